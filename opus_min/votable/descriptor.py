"""VOTable documents that describe services to VO clients. Pure: model in, bytes out.

Two spellings of one service live side by side (they cannot share a RESOURCE):
- the OPUS ``voprov:ActivityDescription`` RESOURCE (``InputParams``, ``Used``, ``Generated``),
  re-rendered from the checked model, for OPUS-style readers and the provenance layer;
- a DataLink service descriptor, ``RESOURCE type="meta" utype="adhoc:service"`` with
  ``accessURL`` (the job list), ``standardID`` (UWS 1.1) and ``GROUP name="inputParams"``,
  which pyvo's ``DatalinkResults``/``DatalinkQuery`` and TOPCAT read.
Both documents also carry the DataLink ``{links}`` results table that DataLink readers require.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from lxml import etree

from .model import GeneratedEntity, InputParam, ServiceDescription, UsedEntity

__all__ = [
    "DATALINK_CONTENT_TYPE",
    "ServiceLinks",
    "render_activity_description",
    "render_catalogue",
    "render_service_document",
]

VOTABLE_NS = "http://www.ivoa.net/xml/VOTable/v1.3"
UWS_STANDARD_ID = "ivo://ivoa.net/std/UWS#rest-1.1"
DATALINK_CONTENT_TYPE = "application/x-votable+xml;content=datalink"

DALI_XTYPES = frozenset(
    {
        "timestamp",
        "interval",
        "point",
        "circle",
        "polygon",
        "multipolygon",
        "shape",
        "moc",
        "hms",
        "dms",
        "uri",
        "uuid",
        "json",
    }
)
"""xtypes a DataLink client understands; OPUS's ``application/octet-stream`` is not one."""

_LINKS_FIELDS = (
    ("ID", "char", "meta.id;meta.main", None),
    ("access_url", "char", "meta.ref.url", None),
    ("service_def", "char", "meta.ref", None),
    ("error_message", "char", "meta.code.error", None),
    ("description", "char", "meta.note", None),
    ("semantics", "char", "meta.code", None),
    ("content_type", "char", "meta.code.mime", None),
    ("content_length", "long", "phys.size;meta.file", "byte"),
)
"""The eight DataLink {links} columns with their UCDs."""


@dataclass(frozen=True)
class ServiceLinks:
    """Where one service lives: absolute URLs and its registry identifier."""

    service: ServiceDescription
    jobs_url: str
    ivoid: str


def _el(
    parent: etree._Element, tag: str, text: str | None = None, **attrs: str | None
) -> etree._Element:
    element = etree.SubElement(parent, f"{{{VOTABLE_NS}}}{tag}")
    for key, value in attrs.items():
        if value is not None:
            element.set(key, value)
    if text:
        element.text = text
    return element


def _char_param(parent: etree._Element, name: str, value: str, **attrs: str | None) -> None:
    _el(parent, "PARAM", name=name, datatype="char", arraysize="*", value=value, **attrs)


def _values(parent: etree._Element, param: InputParam) -> None:
    if param.minimum is None and param.maximum is None and not param.options:
        return
    values = _el(parent, "VALUES")
    if param.minimum is not None:
        _el(values, "MIN", value=param.minimum, inclusive=None if param.minimum_inclusive else "no")
    if param.maximum is not None:
        _el(values, "MAX", value=param.maximum, inclusive=None if param.maximum_inclusive else "no")
    for option in param.options:
        _el(values, "OPTION", value=option)


def _document() -> etree._Element:
    return etree.Element(f"{{{VOTABLE_NS}}}VOTABLE", nsmap={None: VOTABLE_NS}, version="1.3")


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8", pretty_print=True)


# -- the OPUS ActivityDescription -----------------------------------------------------------


def _activity_resource(
    parent: etree._Element, svc: ServiceDescription, links: ServiceLinks | None
) -> None:
    """The ActivityDescription RESOURCE; ``links`` adds accessURL and standardID (served form)."""
    res = _el(
        parent,
        "RESOURCE",
        ID=svc.name,
        name=svc.name,
        type="meta",
        utype="voprov:ActivityDescription",
    )
    if svc.description:
        _el(res, "DESCRIPTION", svc.description)
    if links is not None:
        _char_param(res, "accessURL", links.jobs_url, ucd="meta.ref.url")
        _char_param(res, "standardID", UWS_STANDARD_ID)
    for name, value, utype in (
        ("doculink", svc.doculink, "voprov:ActivityDescription.doculink"),
        ("type", svc.type, "voprov:ActivityDescription.type"),
        ("subtype", svc.subtype, "voprov:ActivityDescription.subtype"),
        ("version", svc.version, "voprov:ActivityDescription.version"),
        ("contact_name", svc.contact_name, "voprov:Agent.name"),
        ("contact_email", svc.contact_email, "voprov:Agent.email"),
    ):
        _char_param(res, name, value, utype=utype)
    _el(
        res,
        "PARAM",
        name="executionDuration",
        datatype="int",
        value=str(svc.execution_duration),
        unit="s",
        utype="uws:Job.executionDuration",
    )
    if svc.quote is not None:
        _el(
            res,
            "PARAM",
            name="quote",
            datatype="int",
            value=str(svc.quote),
            unit="s",
            utype="uws:Job.quote",
        )
    group = _el(res, "GROUP", name="InputParams")
    for param in svc.parameters:
        element = _el(
            group,
            "PARAM",
            ID=param.name,
            name=param.name,
            datatype=param.datatype,
            arraysize=param.arraysize,
            value=param.default or "",
            unit=param.unit,
            ucd=param.ucd,
            utype=param.utype,
            xtype=param.xtype,
            type=None if param.required else "no_query",
        )
        if param.description:
            _el(element, "DESCRIPTION", param.description)
        _values(element, param)
    used = _el(res, "GROUP", name="Used")
    for entity in svc.used:
        _entity_group(used, entity, "voprov:UsedDescription", url=entity.url)
    generated = _el(res, "GROUP", name="Generated")
    for entity in svc.generated:
        _entity_group(generated, entity, "voprov:WasGeneratedBy", url=None)


def _entity_group(
    parent: etree._Element, entity: UsedEntity | GeneratedEntity, utype: str, url: str | None
) -> None:
    group = _el(parent, "GROUP", name=entity.name, utype=utype, ref=getattr(entity, "ref", None))
    if entity.description:
        _el(group, "DESCRIPTION", entity.description)
    prefix = (
        "voprov:UsedDescription"
        if utype == "voprov:UsedDescription"
        else ("voprov:WasGeneratedByDescription")
    )
    _char_param(group, "role", entity.role, utype=f"{prefix}.role")
    _char_param(group, "multiplicity", entity.multiplicity, utype=f"{prefix}.multiplicity")
    _char_param(group, "default", entity.default or "", utype="voprov:Entity.id")
    _char_param(
        group, "content_type", entity.content_type, utype="voprov:EntityDescription.content_type"
    )
    if url is not None:
        _char_param(group, "url", url, utype="voprov:EntityDescription.url")


# -- DataLink -------------------------------------------------------------------------------


def _descriptor_id(name: str) -> str:
    return f"{name}-sd"


def _adhoc_resource(parent: etree._Element, links: ServiceLinks) -> None:
    svc = links.service
    res = _el(
        parent,
        "RESOURCE",
        ID=_descriptor_id(svc.name),
        name=_descriptor_id(svc.name),
        type="meta",
        utype="adhoc:service",
    )
    if svc.description:
        _el(res, "DESCRIPTION", svc.description)
    _char_param(res, "accessURL", links.jobs_url, ucd="meta.ref.url")
    _char_param(res, "standardID", UWS_STANDARD_ID)
    _char_param(res, "resourceIdentifier", links.ivoid)
    _char_param(res, "contentType", "application/xml")
    group = _el(res, "GROUP", name="inputParams")
    for param in svc.parameters:
        scalar_float = param.datatype in ("float", "double") and param.arraysize in (None, "")
        value = param.default or ""
        element = _el(
            group,
            "PARAM",
            name=param.name,
            datatype=param.datatype,
            # pyvo 1.9 crashes on a scalar float/double PARAM with an empty value unless it
            # is explicitly an array of one; such parameters have no default to show.
            arraysize="1" if scalar_float and not value else param.arraysize,
            value=value,
            unit=param.unit,
            ucd=param.ucd,
            xtype=param.xtype if param.xtype in DALI_XTYPES else None,
        )
        description = param.description
        if param.required and param.default is None:
            description = (description + " " if description else "") + "(required)"
        if description:
            _el(element, "DESCRIPTION", description)
        _values(element, param)
    for entity in svc.used:
        element = _el(group, "PARAM", name=entity.name, datatype="char", arraysize="*", value="")
        kind = entity.content_type or "a file"
        _el(
            element,
            "DESCRIPTION",
            (entity.description + ". " if entity.description else "")
            + f"Input file ({kind}): upload it with multipart/form-data under this name.",
        )


def _links_table(parent: etree._Element, rows: Sequence[ServiceLinks]) -> None:
    res = _el(parent, "RESOURCE", type="results")
    _el(res, "INFO", name="QUERY_STATUS", value="OK")
    table = _el(res, "TABLE", name="services")
    for name, datatype, ucd, unit in _LINKS_FIELDS:
        _el(
            table,
            "FIELD",
            name=name,
            datatype=datatype,
            arraysize="*" if datatype == "char" else None,
            ucd=ucd,
            unit=unit,
        )
    data = _el(_el(table, "DATA"), "TABLEDATA")
    for links in rows:
        tr = _el(data, "TR")
        for value in (
            links.ivoid,
            "",
            _descriptor_id(links.service.name),
            "",
            links.service.description,
            "#proc",
            "application/xml",
            "-1",
        ):
            _el(tr, "TD", value)


def render_service_document(links: ServiceLinks) -> bytes:
    """The per-service document (``/jdl/<svc>``): ActivityDescription, links row, descriptor."""
    root = _document()
    _activity_resource(root, links.service, links)
    _links_table(root, [links])
    _adhoc_resource(root, links)
    return _serialise(root)


def render_activity_description(service: ServiceDescription) -> bytes:
    """The ActivityDescription alone (one RESOURCE): the ``services/<name>.xml`` file the
    definition editor and ``opus-min new-service`` write; the script stays in ``<name>.sh``."""
    root = _document()
    _activity_resource(root, service, None)
    return _serialise(root)


def render_catalogue(services: Iterable[ServiceLinks]) -> bytes:
    """Every service as a DataLink results table plus one ``adhoc:service`` descriptor each.

    The ActivityDescriptions are left out: their PARAM IDs would collide across services.
    """
    rows = list(services)
    root = _document()
    _links_table(root, rows)
    for links in rows:
        _adhoc_resource(root, links)
    return _serialise(root)
