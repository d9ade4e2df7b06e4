"""VOResource records of the site: the registry, its naming authority, one per service. Pure.

Each record is an ``ri:Resource`` element with ``xsi:type`` ``vg:Registry``, ``vg:Authority``
or ``vs:DataService``, carrying the content VOResource requires (title, identifier, curation
with publisher and contact, subject, description, referenceURL) and its capabilities.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from lxml import etree

from .site import PublishedService, Site
from .vosi import NSMAP, REGISTRY_ID, UWS_ID, XSI, Capability, add_capability, vosi_capabilities

__all__ = ["Record", "RI", "site_records"]

RI = "http://www.ivoa.net/xml/RegistryInterface/v1.0"
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def registry_time(value: datetime) -> str:
    """Seconds granularity with ``Z`` (OAI-PMH and VOResource datestamps)."""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Record:
    """One harvestable record: identifier, datestamp, Dublin Core summary, VOResource body."""

    identifier: str
    datestamp: datetime
    title: str
    description: str
    resource: etree._Element


def _resource(
    site: Site,
    kind: str,
    identifier: str,
    title: str,
    description: str,
    created: datetime,
    updated: datetime,
    reference: str,
    subjects: list[str],
) -> etree._Element:
    root = etree.Element(f"{{{RI}}}Resource", nsmap={"ri": RI, **NSMAP})
    root.set(f"{{{XSI}}}type", kind)
    root.set("created", registry_time(created))
    root.set("updated", registry_time(updated))
    root.set("status", "active")
    etree.SubElement(root, "title").text = title
    etree.SubElement(root, "identifier").text = identifier
    curation = etree.SubElement(root, "curation")
    etree.SubElement(curation, "publisher").text = site.publisher
    contact = etree.SubElement(curation, "contact")
    etree.SubElement(contact, "name").text = site.contact_name or site.publisher
    if site.contact_email:
        etree.SubElement(contact, "email").text = site.contact_email
    content = etree.SubElement(root, "content")
    for subject in subjects or ["virtual observatory"]:
        etree.SubElement(content, "subject").text = subject
    etree.SubElement(content, "description").text = description or title
    etree.SubElement(content, "referenceURL").text = reference
    return root


def _dates(site: Site) -> tuple[datetime, datetime]:
    stamps = [s.updated for s in site.services] or [site.started or EPOCH]
    return min(stamps), max(stamps)


def registry_record(site: Site) -> Record:
    earliest, latest = _dates(site)
    title = f"{site.title} publishing registry"
    description = f"Publishing registry of {site.title}: UWS 1.1 job services run by opus_min."
    root = _resource(
        site,
        "vg:Registry",
        site.registry_ivoid,
        title,
        description,
        earliest,
        latest,
        f"{site.base_url}/",
        ["virtual observatory"],
    )
    add_capability(
        root,
        Capability(
            REGISTRY_ID,
            site.oai_url,
            use="base",
            interface="vg:OAIHTTP",
            version="1.0",
            capability_type="vg:Harvest",
            max_records=0,
        ),
    )
    for cap in vosi_capabilities(site.base_url):
        add_capability(root, cap)
    etree.SubElement(root, "full").text = "false"
    etree.SubElement(root, "managedAuthority").text = site.authority
    return Record(site.registry_ivoid, latest, title, description, root)


def authority_record(site: Site) -> Record:
    earliest, _ = _dates(site)
    title = f"{site.authority} naming authority"
    description = f"The authority {site.authority} is managed by {site.publisher}."
    root = _resource(
        site,
        "vg:Authority",
        site.authority_ivoid,
        title,
        description,
        earliest,
        earliest,
        f"{site.base_url}/",
        ["virtual observatory"],
    )
    etree.SubElement(root, "managingOrg").text = site.publisher
    return Record(site.authority_ivoid, earliest, title, description, root)


def service_record(site: Site, published: PublishedService) -> Record:
    svc = published.description
    name = svc.name
    first_line = (svc.description or name).strip().split("\n")[0]
    title = f"{name}: {first_line}"[:200]
    subjects = [s for s in (svc.type, svc.subtype) if s] or ["virtual observatory"]
    ivoid = site.service_ivoid(name)
    root = _resource(
        site,
        "vs:DataService",
        ivoid,
        title,
        svc.description or title,
        published.updated,
        published.updated,
        svc.doculink or site.descriptor_url(name),
        subjects,
    )
    add_capability(
        root,
        Capability(
            UWS_ID,
            site.jobs_url(name),
            use="base",
            version="1.1",
            query_type="POST",
            result_type="application/xml",
            description=f"UWS 1.1 job list; POST the parameters of the service descriptor"
            f" {site.descriptor_url(name)} to create a job",
        ),
    )
    add_capability(
        root,
        Capability(
            None,
            site.descriptor_url(name),
            interface="vr:WebBrowser",
            description="Service descriptor (DataLink VOTable with the ActivityDescription)",
        ),
    )
    for cap in vosi_capabilities(site.jobs_url(name)):
        add_capability(root, cap)
    return Record(ivoid, published.updated, title, svc.description or title, root)


def site_records(site: Site) -> list[Record]:
    """Registry, authority and services, in a stable order."""
    records = [registry_record(site), authority_record(site)]
    records.extend(service_record(site, s) for s in sorted(site.services, key=lambda s: s.name))
    return records
