"""Provenance of jobs (IVOA ProvDM on W3C PROV, the ``prov`` library) and ProvSAP.

Pure: ``records`` (what the store returns), ``walk`` (the ProvSAP traversal), ``build`` (PROV
records from a graph), ``document`` (those records as a ``prov`` document or as PROV-JSON),
``formats`` (serialisations), ``query`` (ProvSAP parameters).
"""

from __future__ import annotations

from .build import DEFAULT_VOPROV, MODELS, build_records, entity_id, job_qname
from .document import RecordedDocument
from .formats import FORMATS, RESULT_FORMATS, Format, FormatUnavailable, serialize
from .query import ProvQuery, UnsupportedFormat, parse_query
from .records import ActivityRecord, EntityRecord, GeneratedRecord, ProvGraph, UsedRecord
from .walk import ProvSource, walk

__all__ = [
    "DEFAULT_VOPROV",
    "FORMATS",
    "MODELS",
    "RESULT_FORMATS",
    "ActivityRecord",
    "EntityRecord",
    "Format",
    "FormatUnavailable",
    "GeneratedRecord",
    "ProvGraph",
    "ProvQuery",
    "ProvSource",
    "RecordedDocument",
    "UnsupportedFormat",
    "UsedRecord",
    "build_records",
    "entity_id",
    "job_qname",
    "parse_query",
    "serialize",
    "walk",
]
