"""A PROV document kept as plain records, written out two ways: as a ``prov`` library
``ProvDocument`` (for PROV-XML, PROV-N and SVG) or straight to PROV-JSON.

Pure. The builder records with the same calls it would make on a ``ProvDocument``
(``entity``, ``activity``, ``used``, ``wasGeneratedBy``, ...), so both writers get exactly the
same records. PROV-JSON is written directly because the library's model checks and coerces
every attribute as it is added: for ProvSAP ``DEPTH=ALL`` over 1 000 jobs that was two thirds
of the answer's time (bench P6). The JSON is what ``prov`` 3 writes for the same records
(tests compare the two), limited to the values the builder uses: text, integers, qualified
names and date-times.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from prov.identifier import Namespace, QualifiedName
from prov.model import ProvDocument

__all__ = ["RecordedDocument"]

_INT32 = 2**31
_INT64 = 2**63

# Formal attributes of each record kind, in PROV-JSON order (None: left out).
_FORMAL = {
    "entity": (),
    "agent": (),
    "activity": ("prov:startTime", "prov:endTime"),
    "used": ("prov:activity", "prov:entity", "prov:time"),
    "wasGeneratedBy": ("prov:entity", "prov:activity", "prov:time"),
    "wasAssociatedWith": ("prov:activity", "prov:agent", "prov:plan"),
    "wasInfluencedBy": ("prov:influencee", "prov:influencer"),
    "wasInformedBy": ("prov:informed", "prov:informant"),
    "wasInvalidatedBy": ("prov:entity", "prov:activity", "prov:time"),
}


@dataclass(frozen=True)
class _Record:
    kind: str
    identifier: QualifiedName
    formal: tuple[Any, ...]
    attributes: Mapping[QualifiedName, Any]


class RecordedDocument:
    """The records of one PROV document, in the order they were made."""

    def __init__(self) -> None:
        self.default_namespace: str | None = None
        self.namespaces: list[Namespace] = []
        self.records: list[_Record] = []

    # -- recording (the ProvDocument calls the builder uses) -----------------------------

    def set_default_namespace(self, uri: str) -> None:
        self.default_namespace = uri

    def add_namespace(self, prefix: str, uri: str) -> Namespace:
        namespace = Namespace(prefix, uri)
        self.namespaces.append(namespace)
        return namespace

    def _add(self, kind: str, identifier: QualifiedName, formal: tuple[Any, ...], attrs) -> None:
        self.records.append(_Record(kind, identifier, formal, dict(attrs or {})))

    def entity(self, identifier: QualifiedName, attributes: Mapping | None = None) -> None:
        self._add("entity", identifier, (), attributes)

    def agent(self, identifier: QualifiedName, attributes: Mapping | None = None) -> None:
        self._add("agent", identifier, (), attributes)

    def activity(
        self,
        identifier: QualifiedName,
        start: datetime | None = None,
        end: datetime | None = None,
        attributes: Mapping | None = None,
    ) -> None:
        self._add("activity", identifier, (start, end), attributes)

    def used(self, activity, entity, time, identifier, other_attributes=None) -> None:
        self._add("used", identifier, (activity, entity, time), other_attributes)

    def wasGeneratedBy(self, entity, activity, time, identifier, other_attributes=None) -> None:
        self._add("wasGeneratedBy", identifier, (entity, activity, time), other_attributes)

    def wasAssociatedWith(self, activity, agent, plan, identifier, other_attributes=None) -> None:
        self._add("wasAssociatedWith", identifier, (activity, agent, plan), other_attributes)

    def wasInfluencedBy(self, influencee, influencer, identifier, other_attributes=None) -> None:
        self._add("wasInfluencedBy", identifier, (influencee, influencer), other_attributes)

    def wasInformedBy(self, informed, informant, identifier) -> None:
        self._add("wasInformedBy", identifier, (informed, informant), None)

    def wasInvalidatedBy(self, entity, activity, time, identifier) -> None:
        self._add("wasInvalidatedBy", identifier, (entity, activity, time), None)

    # -- writing -------------------------------------------------------------------------

    def to_prov(self) -> ProvDocument:
        """The same records as a ``prov`` document."""
        doc = ProvDocument()
        if self.default_namespace is not None:
            doc.set_default_namespace(self.default_namespace)
        for namespace in self.namespaces:
            doc.add_namespace(namespace)
        for rec in self.records:
            attrs = rec.attributes or None
            if rec.kind in ("entity", "agent"):
                getattr(doc, rec.kind)(rec.identifier, attrs)
            elif rec.kind == "activity":
                doc.activity(rec.identifier, *rec.formal, attrs)
            elif rec.kind in ("wasInformedBy", "wasInvalidatedBy"):
                getattr(doc, rec.kind)(*rec.formal, rec.identifier)
            else:
                getattr(doc, rec.kind)(*rec.formal, rec.identifier, other_attributes=attrs)
        return doc

    def to_json(self) -> dict[str, Any]:
        """The PROV-JSON container of the records (what ``json.dumps`` turns into text)."""
        prefixes = {ns.prefix: ns.uri for ns in self.namespaces}
        if self.default_namespace is not None:
            prefixes["default"] = self.default_namespace
        container: dict[str, Any] = {"prefix": prefixes} if prefixes else {}
        for rec in self.records:
            body: dict[str, Any] = {}
            for name, value in zip(_FORMAL[rec.kind], rec.formal, strict=True):
                if value is not None:
                    body[name] = value.isoformat() if isinstance(value, datetime) else str(value)
            for key, value in rec.attributes.items():
                body[str(key)] = _value(value)
            records = container.setdefault(rec.kind, {})
            key = str(rec.identifier)
            if key not in records:
                records[key] = body
            elif isinstance(records[key], list):  # PROV-JSON lists records sharing an id
                records[key].append(body)
            else:
                records[key] = [records[key], body]
        return container


def _value(value: Any) -> Any:
    """An attribute value as PROV-JSON writes it."""
    if isinstance(value, str):
        return value
    if isinstance(value, QualifiedName):
        return {"$": str(value), "type": "xsd:QName"}
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        kind = (
            "int"
            if -_INT32 <= value < _INT32
            else "long"
            if -_INT64 <= value < _INT64
            else "integer"
        )
        return {"$": str(value), "type": f"xsd:{kind}"}
    if isinstance(value, datetime):
        return {"$": value.isoformat(), "type": "xsd:dateTime"}
    raise TypeError(f"no PROV-JSON form for {type(value).__name__} values")
