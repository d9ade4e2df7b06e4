"""``/provsap``: the ProvSAP endpoint (GET or POST), answered from the provenance tables.

Parameters (names case-insensitive): ``ID`` (repeatable; a job or a file), ``DEPTH`` (an
integer or ``ALL``, default ``ALL``), ``DIRECTION`` (``BACK`` default, or ``FORTH``), ``AGENT``
(TRUE/FALSE), ``MODEL`` (``IVOA`` default, or ``W3C``), ``RESPONSEFORMAT`` (``PROV-JSON``
default, ``PROV-XML``, ``PROV-N``, ``SVG``); ``MEMBERS`` and ``STEPS`` are accepted and ignored.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

from .identity import CALLER_ENVIRON_KEY
from .provsap import Format, parse_query

if TYPE_CHECKING:
    from .wsgi import OpusApp

__all__ = ["PROVSAP_VIEWS", "prov_content_type"]


def prov_content_type(fmt: Format) -> str:
    """The response content type of a provenance document (text formats in UTF-8)."""
    if fmt.media_type.startswith("text/") or fmt.media_type.endswith(("json", "xml")):
        return f"{fmt.media_type}; charset=utf-8"
    return fmt.media_type


def provsap(app: OpusApp, request: Request) -> Response:
    args = list(request.args.items(multi=True))
    if request.method == "POST":
        args += list(request.form.items(multi=True))
    query = parse_query(args)
    caller = request.environ[CALLER_ENVIRON_KEY]()
    body = app.jobs.provenance.query(query, caller, app.base_url(request))
    return Response(body, content_type=prov_content_type(query.format))


PROVSAP_VIEWS = {"provsap": provsap}
"""Endpoint name → view (the Rule is in ``wsgi.URL_MAP``)."""
