"""Discovery endpoints: service descriptors, the service catalogue, VOSI, the registry face.

With only the base URL a VO client finds everything: ``GET /`` (non-browser) and
``GET /services`` answer the DataLink catalogue of every service; ``/jdl/<svc>`` the
per-service document; ``/capabilities`` and ``/availability`` (also below each job list) VOSI;
``/oai.xml`` the OAI-PMH publishing registry when a registry plugin is configured.
"""

from __future__ import annotations

import importlib
import os
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from werkzeug.wrappers import Request, Response

from .config import Config, ConfigError
from .uws.model import utcnow
from .vo.site import PublishedService, Site
from .vo.vosi import (
    REGISTRY_ID,
    UWS_ID,
    Capability,
    render_availability,
    render_capabilities,
    vosi_capabilities,
)
from .votable.descriptor import (
    DATALINK_CONTENT_TYPE,
    ServiceLinks,
    render_catalogue,
    render_service_document,
)
from .votable.model import ServiceDescription

if TYPE_CHECKING:
    from .wsgi import OpusApp

__all__ = ["DISCOVERY_VIEWS", "load_registry", "published_services"]

PROVSAP_ID = "ivo://ivoa.net/std/ProvSAP"
"""standardID of the ``/provsap`` capability. ProvSAP is an IVOA Working Draft whose text we
could not consult; this follows the usual ``ivo://ivoa.net/std/<Standard>`` form and may change
when the standard is published."""

XML = "application/xml; charset=utf-8"


def published_services(services: Mapping[str, ServiceDescription]) -> tuple[PublishedService, ...]:
    """Each service with the modification time of its definition (registry datestamps)."""
    published = []
    for name in sorted(services):
        svc = services[name]
        stamps = []
        for path in (svc.source, svc.script_source.split("#", 1)[0]):
            try:
                stamps.append(os.stat(path).st_mtime)
            except OSError:
                continue
        updated = (
            datetime.fromtimestamp(max(stamps), UTC) if stamps else datetime(1970, 1, 1, tzinfo=UTC)
        )
        published.append(PublishedService(svc, updated))
    return tuple(published)


def load_registry(config: Config) -> Any | None:
    """Build the configured registry plugin (``module:Class``), or None when disabled."""
    spec = config.registry_plugin.strip()
    if not spec:
        return None
    module_name, _, attribute = spec.partition(":")
    try:
        factory = getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"registry_plugin {spec!r} cannot be loaded: {exc}") from None
    return factory(page_size=config.oai_page_size)


def site_of(app: OpusApp, request: Request) -> Site:
    config = app.config
    return Site(
        base_url=app.base_url(request),
        authority=config.authority,
        title=config.registry_title,
        publisher=config.publisher,
        contact_name=config.contact_name,
        contact_email=config.contact_email,
        services=app.published,
        started=app.jobs.started_at,
    )


def _links(site: Site, svc: ServiceDescription) -> ServiceLinks:
    return ServiceLinks(svc, site.jobs_url(svc.name), site.service_ivoid(svc.name))


def _votable(body: bytes) -> Response:
    return Response(body, content_type=DATALINK_CONTENT_TYPE)


def catalogue(app: OpusApp, request: Request) -> Response:
    site = site_of(app, request)
    return _votable(render_catalogue(_links(site, p.description) for p in site.services))


def service_document(app: OpusApp, request: Request, service: str) -> Response:
    svc = app.jobs.service(service)
    return _votable(render_service_document(_links(site_of(app, request), svc)))


def root(app: OpusApp, request: Request) -> Response:
    """Browsers get the services page (``pages``); VO clients (``*/*``) the DataLink catalogue."""
    accept = request.accept_mimetypes
    if accept["text/html"] > accept[DATALINK_CONTENT_TYPE.split(";")[0]]:
        from .pages import services_page

        response = services_page(app, request)
    else:
        response = catalogue(app, request)
    response.vary.add("Accept")
    return response


def _root_capabilities(app: OpusApp, site: Site) -> list[Capability]:
    caps = vosi_capabilities(site.base_url)
    for published in site.services:
        caps.append(
            Capability(
                UWS_ID,
                site.jobs_url(published.name),
                use="base",
                version="1.1",
                query_type="POST",
                result_type="application/xml",
                description=f"{published.name}: UWS job list"
                f" (descriptor {site.descriptor_url(published.name)})",
            )
        )
    caps.append(
        Capability(
            PROVSAP_ID,
            f"{site.base_url}/provsap",
            use="base",
            query_type="GET",
            result_type="application/json",
            description="ProvSAP: provenance of jobs and files (ID, DEPTH, DIRECTION, AGENT,"
            " MODEL, RESPONSEFORMAT PROV-JSON, PROV-XML, PROV-N or SVG)",
        )
    )
    if app.registry is not None:
        # The registry record itself uses vg:Harvest/vg:OAIHTTP; here plain ParamHTTP, which
        # VOSI clients such as pyvo understand without warnings.
        caps.append(
            Capability(
                REGISTRY_ID,
                site.oai_url,
                use="base",
                query_type="GET",
                result_type="text/xml",
                description="OAI-PMH 2.0 publishing registry of these services",
            )
        )
    return caps


def capabilities(app: OpusApp, request: Request) -> Response:
    site = site_of(app, request)
    return Response(render_capabilities(_root_capabilities(app, site)), content_type=XML)


def service_capabilities(app: OpusApp, request: Request, service: str) -> Response:
    app.jobs.service(service)
    site = site_of(app, request)
    jobs = site.jobs_url(service)
    caps = vosi_capabilities(jobs) + [
        Capability(
            UWS_ID,
            jobs,
            use="base",
            version="1.1",
            query_type="POST",
            result_type="application/xml",
            description=f"{service}: UWS job list (descriptor {site.descriptor_url(service)})",
        ),
    ]
    return Response(render_capabilities(caps), content_type=XML)


def availability(app: OpusApp, request: Request, service: str | None = None) -> Response:
    if service is not None:
        app.jobs.service(service)
    ok, notes = app.jobs.health()
    if ok:
        notes = [f"{len(app.jobs.services)} services, {app.jobs.executor.name} executor"]
    body = render_availability(ok, app.jobs.started_at, notes)
    return Response(body, content_type=XML)


def oai(app: OpusApp, request: Request) -> Response:
    if app.registry is None:
        from .uws.errors import UnknownResource

        raise UnknownResource("no registry face is configured")
    args = list(request.args.items(multi=True))
    if request.method == "POST":
        args += list(request.form.items(multi=True))
    body = app.registry.respond(site_of(app, request), args, utcnow())
    return Response(body, content_type="text/xml; charset=utf-8")


DISCOVERY_VIEWS: dict[str, Callable[..., Response]] = {
    "root": root,
    "catalogue": catalogue,
    "service_document": service_document,
    "capabilities": capabilities,
    "service_capabilities": service_capabilities,
    "availability": availability,
    "oai": oai,
}
