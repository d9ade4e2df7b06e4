"""The VO-registry face: an OAI-PMH 2.0 publishing registry over the site's records. Pure.

This is the default registry plugin (``registry_plugin = "opus_min.vo.oai:OAIRegistry"``).
A plugin is any class built as ``Plugin(page_size=...)`` with ``respond(site, args, now) ->
bytes``; the application serves its answer at ``/oai.xml`` for GET and POST.
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from datetime import UTC, datetime

from lxml import etree

from .registry import RI, Record, registry_record, registry_time, site_records
from .site import Site

__all__ = ["OAIRegistry"]

OAI = "http://www.openarchives.org/OAI/2.0/"
OAI_DC = "http://www.openarchives.org/OAI/2.0/oai_dc/"
DC = "http://purl.org/dc/elements/1.1/"
FORMATS = {
    "ivo_vor": ("http://www.ivoa.net/xml/RegistryInterface/v1.0/RegistryInterface.xsd", RI),
    "oai_dc": ("http://www.openarchives.org/OAI/2.0/oai_dc.xsd", OAI_DC),
}
SET = "ivo_managed"
VERBS = {
    "Identify": (set(), set()),
    "ListMetadataFormats": (set(), {"identifier"}),
    "ListSets": (set(), {"resumptionToken"}),
    "ListIdentifiers": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
    "ListRecords": ({"metadataPrefix"}, {"from", "until", "set", "resumptionToken"}),
    "GetRecord": ({"identifier", "metadataPrefix"}, set()),
}
"""verb -> (required arguments, optional arguments)."""


class OAIError(Exception):
    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def _parse_stamp(name: str, raw: str) -> tuple[datetime, bool]:
    """A ``from``/``until`` value: (instant, whether it was day granularity)."""
    for fmt, day in (("%Y-%m-%dT%H:%M:%SZ", False), ("%Y-%m-%d", True)):
        try:
            return datetime.strptime(raw, fmt).replace(tzinfo=UTC), day
        except ValueError:
            continue
    raise OAIError("badArgument", f"{name} must be YYYY-MM-DD or YYYY-MM-DDThh:mm:ssZ")


class OAIRegistry:
    """OAI-PMH verbs, errors and resumption over :func:`site_records`."""

    def __init__(self, *, page_size: int = 50) -> None:
        self.page_size = max(1, page_size)

    def respond(self, site: Site, args: Sequence[tuple[str, str]], now: datetime) -> bytes:
        root = etree.Element(f"{{{OAI}}}OAI-PMH", nsmap={"oai": OAI})
        etree.SubElement(root, f"{{{OAI}}}responseDate").text = registry_time(now)
        request = etree.SubElement(root, f"{{{OAI}}}request")
        request.text = site.oai_url
        try:
            verb, values = self._check(args)
            for key, value in sorted(values.items()):
                request.set(key, value)
            request.set("verb", verb)
            getattr(self, f"_{verb}")(root, site, values)
        except OAIError as exc:
            if exc.code in ("badVerb", "badArgument"):
                request.attrib.clear()  # the protocol echoes no arguments for these
            error = etree.SubElement(root, f"{{{OAI}}}error", code=exc.code)
            error.text = exc.message
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    @staticmethod
    def _check(args: Sequence[tuple[str, str]]) -> tuple[str, dict[str, str]]:
        verbs = [v for k, v in args if k == "verb"]
        if len(verbs) != 1 or verbs[0] not in VERBS:
            raise OAIError("badVerb", "illegal or missing verb")
        verb = verbs[0]
        required, optional = VERBS[verb]
        values: dict[str, str] = {}
        for key, value in args:
            if key == "verb":
                continue
            if key not in required | optional:
                raise OAIError("badArgument", f"{verb} does not take {key[:40]!r}")
            if key in values:
                raise OAIError("badArgument", f"{key} given twice")
            values[key] = value
        if "resumptionToken" in values:
            if len(values) > 1:
                raise OAIError("badArgument", "resumptionToken is an exclusive argument")
            return verb, values
        missing = required - values.keys()
        if missing:
            raise OAIError("badArgument", f"{verb} needs {', '.join(sorted(missing))}")
        return verb, values

    # -- verbs -----------------------------------------------------------------------------

    def _Identify(self, root: etree._Element, site: Site, values: dict[str, str]) -> None:  # noqa: N802
        identify = etree.SubElement(root, f"{{{OAI}}}Identify")
        records = site_records(site)
        earliest = min(r.datestamp for r in records)
        for tag, text in (
            ("repositoryName", site.title),
            ("baseURL", site.oai_url),
            ("protocolVersion", "2.0"),
            ("adminEmail", site.contact_email or f"admin@{site.authority}"),
            ("earliestDatestamp", registry_time(earliest)),
            ("deletedRecord", "no"),
            ("granularity", "YYYY-MM-DDThh:mm:ssZ"),
        ):
            etree.SubElement(identify, f"{{{OAI}}}{tag}").text = text
        description = etree.SubElement(identify, f"{{{OAI}}}description")
        description.append(registry_record(site).resource)

    def _ListMetadataFormats(
        self, root: etree._Element, site: Site, values: dict[str, str]
    ) -> None:  # noqa: N802
        if "identifier" in values:
            self._find(site, values["identifier"])
        formats = etree.SubElement(root, f"{{{OAI}}}ListMetadataFormats")
        for prefix, (schema, namespace) in FORMATS.items():
            fmt = etree.SubElement(formats, f"{{{OAI}}}metadataFormat")
            etree.SubElement(fmt, f"{{{OAI}}}metadataPrefix").text = prefix
            etree.SubElement(fmt, f"{{{OAI}}}schema").text = schema
            etree.SubElement(fmt, f"{{{OAI}}}metadataNamespace").text = namespace

    def _ListSets(self, root: etree._Element, site: Site, values: dict[str, str]) -> None:  # noqa: N802
        if "resumptionToken" in values:
            raise OAIError("badResumptionToken", "this list is never split")
        sets = etree.SubElement(root, f"{{{OAI}}}ListSets")
        entry = etree.SubElement(sets, f"{{{OAI}}}set")
        etree.SubElement(entry, f"{{{OAI}}}setSpec").text = SET
        etree.SubElement(entry, f"{{{OAI}}}setName").text = "Resources originating here"

    def _GetRecord(self, root: etree._Element, site: Site, values: dict[str, str]) -> None:  # noqa: N802
        prefix = self._prefix(values["metadataPrefix"])
        record = self._find(site, values["identifier"])
        element = etree.SubElement(root, f"{{{OAI}}}GetRecord")
        self._record(element, record, prefix, full=True)

    def _ListIdentifiers(self, root: etree._Element, site: Site, values: dict[str, str]) -> None:  # noqa: N802
        self._list(root, site, values, "ListIdentifiers", full=False)

    def _ListRecords(self, root: etree._Element, site: Site, values: dict[str, str]) -> None:  # noqa: N802
        self._list(root, site, values, "ListRecords", full=True)

    # -- helpers ---------------------------------------------------------------------------

    @staticmethod
    def _prefix(prefix: str) -> str:
        if prefix not in FORMATS:
            raise OAIError("cannotDisseminateFormat", f"no metadata format {prefix[:40]!r}")
        return prefix

    @staticmethod
    def _find(site: Site, identifier: str) -> Record:
        for record in site_records(site):
            if record.identifier.lower() == identifier.lower():  # IVOIDs compare case-blind
                return record
        raise OAIError("idDoesNotExist", f"no record {identifier[:200]!r}")

    def _list(
        self, root: etree._Element, site: Site, values: dict[str, str], verb: str, full: bool
    ) -> None:
        if "resumptionToken" in values:
            values, offset = self._decode(values["resumptionToken"])
        else:
            offset = 0
        prefix = self._prefix(values["metadataPrefix"])
        if "set" in values and values["set"] != SET:
            raise OAIError("noRecordsMatch", f"no set {values['set'][:40]!r}")
        start = stop = None
        start_day = stop_day = None
        if "from" in values:
            start, start_day = _parse_stamp("from", values["from"])
        if "until" in values:
            stop, stop_day = _parse_stamp("until", values["until"])
            if stop_day:
                stop = stop.replace(hour=23, minute=59, second=59)
        if start_day is not None and stop_day is not None and start_day != stop_day:
            raise OAIError("badArgument", "from and until must have the same granularity")
        if start and stop and start > stop:
            raise OAIError("badArgument", "from is later than until")
        records = [
            r
            for r in site_records(site)
            if (start is None or r.datestamp.replace(microsecond=0) >= start)
            and (stop is None or r.datestamp.replace(microsecond=0) <= stop)
        ]
        if not records:
            raise OAIError("noRecordsMatch", "no record matches these arguments")
        if offset >= len(records):
            raise OAIError("badResumptionToken", "the token points past the list")
        element = etree.SubElement(root, f"{{{OAI}}}{verb}")
        page = records[offset : offset + self.page_size]
        for record in page:
            self._record(element, record, prefix, full)
        if offset or len(records) > self.page_size:
            token = etree.SubElement(
                element,
                f"{{{OAI}}}resumptionToken",
                completeListSize=str(len(records)),
                cursor=str(offset),
            )
            following = offset + len(page)
            if following < len(records):
                token.text = self._encode(values, following)

    @staticmethod
    def _encode(values: dict[str, str], offset: int) -> str:
        payload = json.dumps({"v": values, "o": offset}, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(payload).decode().rstrip("=")

    @staticmethod
    def _decode(token: str) -> tuple[dict[str, str], int]:
        try:
            padded = token + "=" * (-len(token) % 4)
            data = json.loads(base64.urlsafe_b64decode(padded.encode()))
            values, offset = data["v"], int(data["o"])
            if not isinstance(values, dict) or "metadataPrefix" not in values or offset < 0:
                raise ValueError(token)
            return {str(k): str(v) for k, v in values.items()}, offset
        except (ValueError, KeyError, TypeError, binascii.Error, UnicodeDecodeError):
            raise OAIError("badResumptionToken", "not a token of this repository") from None

    @staticmethod
    def _record(parent: etree._Element, record: Record, prefix: str, full: bool) -> None:
        container = etree.SubElement(parent, f"{{{OAI}}}record") if full else parent
        header = etree.SubElement(container, f"{{{OAI}}}header")
        etree.SubElement(header, f"{{{OAI}}}identifier").text = record.identifier
        etree.SubElement(header, f"{{{OAI}}}datestamp").text = registry_time(record.datestamp)
        etree.SubElement(header, f"{{{OAI}}}setSpec").text = SET
        if not full:
            return
        metadata = etree.SubElement(container, f"{{{OAI}}}metadata")
        if prefix == "ivo_vor":
            metadata.append(record.resource)
            return
        dc = etree.SubElement(metadata, f"{{{OAI_DC}}}dc", nsmap={"oai_dc": OAI_DC, "dc": DC})
        etree.SubElement(dc, f"{{{DC}}}title").text = record.title
        etree.SubElement(dc, f"{{{DC}}}identifier").text = record.identifier
        etree.SubElement(dc, f"{{{DC}}}description").text = record.description
        etree.SubElement(dc, f"{{{DC}}}date").text = registry_time(record.datestamp)[:10]
