"""Serialisations of a recorded PROV document: PROV-JSON (written directly, see ``document``),
PROV-XML and PROV-N (the ``prov`` library) and an SVG graph (``prov.dot`` and Graphviz ``dot``)."""

from __future__ import annotations

import json
import shutil
import subprocess
import warnings
from dataclasses import dataclass

from prov.model import ProvDocument

from ..uws.errors import UWSError
from .document import RecordedDocument

__all__ = [
    "FORMATS",
    "RESULT_FORMATS",
    "Format",
    "FormatUnavailable",
    "SVG_MAX_RECORDS",
    "serialize",
]

SVG_MAX_RECORDS = 3000
"""Larger graphs are refused as SVG (Graphviz needs minutes, nobody can read the picture)."""
DOT_TIMEOUT = 60.0


class FormatUnavailable(UWSError):
    """The format needs a tool this server lacks (Graphviz ``dot``) or cannot draw the graph."""

    code = 503
    label = "ServiceUnavailable"


@dataclass(frozen=True)
class Format:
    name: str
    """The RESPONSEFORMAT value."""
    media_type: str
    prov_format: str
    """``prov`` serializer name, or ``svg``."""
    extension: str


FORMATS = {
    f.name: f
    for f in (
        Format("PROV-JSON", "application/json", "json", "json"),
        Format("PROV-XML", "application/provenance+xml", "xml", "xml"),
        Format("PROV-N", "text/provenance-notation", "provn", "provn"),
        Format("SVG", "image/svg+xml", "svg", "svg"),
    )
}
"""RESPONSEFORMAT values; their media types are accepted as values too."""

RESULT_FORMATS = {
    "provjson": FORMATS["PROV-JSON"],
    "provxml": FORMATS["PROV-XML"],
    "provn": FORMATS["PROV-N"],
    "provsvg": FORMATS["SVG"],
}
"""Result ids under which every final job serves its own provenance."""


def serialize(records: RecordedDocument, fmt: Format) -> bytes:
    """The document in ``fmt`` (UTF-8).

    Raises
    ------
    FormatUnavailable
        Raised for SVG when ``dot`` is missing, fails, or the graph is too large to draw.
    """
    if fmt.prov_format == "json":
        return json.dumps(records.to_json()).encode("utf-8")
    doc = records.to_prov()
    if fmt.prov_format != "svg":
        text = doc.serialize(format=fmt.prov_format)
        assert isinstance(text, str)
        return text.encode("utf-8")
    return _svg(doc)


def _svg(doc: ProvDocument) -> bytes:
    dot = shutil.which("dot")
    if dot is None:
        raise FormatUnavailable(
            "SVG needs Graphviz (the dot program), which this server lacks; ask for PROV-JSON,"
            " PROV-XML or PROV-N"
        )
    records = len(doc.get_records())
    if records > SVG_MAX_RECORDS:
        raise FormatUnavailable(
            f"the graph has {records} records, more than the {SVG_MAX_RECORDS} this server"
            " draws; ask for a smaller DEPTH or another format"
        )
    from prov.dot import prov_to_dot

    with warnings.catch_warnings():
        # An invalidation without an activity is drawn to a blank node, which is what it is.
        warnings.simplefilter("ignore")
        source = prov_to_dot(doc, use_labels=True, direction="BT").to_string()
    try:
        done = subprocess.run(
            [dot, "-Tsvg"],
            input=source.encode("utf-8"),
            capture_output=True,
            timeout=DOT_TIMEOUT,
            check=False,
        )
    except subprocess.TimeoutExpired:
        raise FormatUnavailable("Graphviz took too long to draw the graph") from None
    if done.returncode != 0:
        message = done.stderr.decode("utf-8", "replace").strip()[:200]
        raise FormatUnavailable(f"Graphviz failed: {message}")
    return done.stdout
