"""What the discovery documents describe: the site and its published services. Pure data."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from ..votable.model import ServiceDescription

__all__ = ["PublishedService", "Site"]


@dataclass(frozen=True)
class PublishedService:
    """One job type as the VO sees it."""

    description: ServiceDescription
    updated: datetime
    """Last change of its definition (file modification time), for registry datestamps."""

    @property
    def name(self) -> str:
        return self.description.name


@dataclass(frozen=True)
class Site:
    """The server as a whole: absolute base URL, naming authority, curation."""

    base_url: str
    authority: str
    title: str
    publisher: str
    contact_name: str
    contact_email: str
    services: tuple[PublishedService, ...] = field(default=())
    started: datetime | None = None

    def jobs_url(self, service: str) -> str:
        return f"{self.base_url}/rest/{service}"

    def descriptor_url(self, service: str) -> str:
        return f"{self.base_url}/jdl/{service}"

    def service_ivoid(self, service: str) -> str:
        return f"ivo://{self.authority}/uws/{service}"

    @property
    def registry_ivoid(self) -> str:
        return f"ivo://{self.authority}/registry"

    @property
    def authority_ivoid(self) -> str:
        return f"ivo://{self.authority}"

    @property
    def oai_url(self) -> str:
        return f"{self.base_url}/oai.xml"
