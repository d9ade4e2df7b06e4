"""VOSI capabilities and availability documents. Pure: lxml elements in, bytes out.

Capability children are unqualified (VOResource's elementFormDefault); every capability has a
``standardID`` (pyvo's lookups fail on one without) and ParamHTTP interfaces with absolute URLs.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from ..uws.model import format_instant

__all__ = [
    "Capability",
    "NSMAP",
    "UWS_ID",
    "add_capability",
    "render_availability",
    "render_capabilities",
    "vosi_capabilities",
]

VOSI_CAP = "http://www.ivoa.net/xml/VOSICapabilities/v1.0"
VOSI_AVAIL = "http://www.ivoa.net/xml/VOSIAvailability/v1.0"
XSI = "http://www.w3.org/2001/XMLSchema-instance"
NSMAP = {
    "vr": "http://www.ivoa.net/xml/VOResource/v1.0",
    "vs": "http://www.ivoa.net/xml/VODataService/v1.1",
    "vg": "http://www.ivoa.net/xml/VORegistry/v1.0",
    "xsi": XSI,
}
UWS_ID = "ivo://ivoa.net/std/UWS#rest-1.1"
CAPABILITIES_ID = "ivo://ivoa.net/std/VOSI#capabilities"
AVAILABILITY_ID = "ivo://ivoa.net/std/VOSI#availability"
REGISTRY_ID = "ivo://ivoa.net/std/Registry"


@dataclass(frozen=True)
class Capability:
    """One ``capability``: a standard id, one interface, and its access URL."""

    standard_id: str | None
    url: str
    use: str = "full"
    description: str | None = None
    interface: str = "vs:ParamHTTP"
    version: str | None = None
    query_type: str | None = None
    result_type: str | None = None
    capability_type: str | None = None
    """``xsi:type`` of the capability itself (``vg:Harvest`` for OAI-PMH)."""
    max_records: int | None = None


def vosi_capabilities(base: str) -> list[Capability]:
    """The two VOSI capabilities of an endpoint whose documents live below ``base``."""
    return [
        Capability(CAPABILITIES_ID, f"{base}/capabilities"),
        Capability(AVAILABILITY_ID, f"{base}/availability"),
    ]


def add_capability(parent: etree._Element, cap: Capability) -> None:
    """Append ``cap`` (unqualified elements) to a capabilities or resource element."""
    element = etree.SubElement(parent, "capability")
    if cap.capability_type:
        element.set(f"{{{XSI}}}type", cap.capability_type)
    if cap.standard_id:
        element.set("standardID", cap.standard_id)
    if cap.description:
        etree.SubElement(element, "description").text = cap.description
    interface = etree.SubElement(element, "interface")
    interface.set(f"{{{XSI}}}type", cap.interface)
    if cap.standard_id:
        interface.set("role", "std")
    if cap.version:
        interface.set("version", cap.version)
    access = etree.SubElement(interface, "accessURL", use=cap.use)
    access.text = cap.url
    if cap.query_type:
        etree.SubElement(interface, "queryType").text = cap.query_type
    if cap.result_type:
        etree.SubElement(interface, "resultType").text = cap.result_type
    if cap.max_records is not None:
        etree.SubElement(element, "maxRecords").text = str(cap.max_records)


def render_capabilities(capabilities: Iterable[Capability]) -> bytes:
    root = etree.Element(f"{{{VOSI_CAP}}}capabilities", nsmap={"vosi": VOSI_CAP, **NSMAP})
    for cap in capabilities:
        add_capability(root, cap)
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def render_availability(available: bool, up_since: datetime | None, notes: Sequence[str]) -> bytes:
    root = etree.Element(f"{{{VOSI_AVAIL}}}availability", nsmap={"vosi": VOSI_AVAIL})
    etree.SubElement(root, f"{{{VOSI_AVAIL}}}available").text = "true" if available else "false"
    if up_since is not None and available:
        etree.SubElement(root, f"{{{VOSI_AVAIL}}}upSince").text = format_instant(up_since)
    for note in notes:
        etree.SubElement(root, f"{{{VOSI_AVAIL}}}note").text = note
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")
