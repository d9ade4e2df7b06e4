"""UWS 1.1 XML documents (job, job list, results, parameters). Pure: model in, bytes out.

Element order follows the XSD sequence of ``UWS-v1.1.xsd`` exactly; every instant is UTC with
``Z``; nillable elements are written ``xsi:nil="true"`` rather than left empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import quote
from xml.sax.saxutils import escape as _escape

from .model import Job, Parameter, format_instant

__all__ = [
    "render_job",
    "render_jobs",
    "render_parameters",
    "render_results",
    "xml_safe",
]

_HEADER = '<?xml version="1.0" encoding="UTF-8"?>\n'
_NS = (
    ' xmlns:uws="http://www.ivoa.net/xml/UWS/v1.0"'
    ' xmlns:xlink="http://www.w3.org/1999/xlink"'
    ' xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance"'
)
# Characters XML 1.0 cannot carry even escaped; such values are given by reference instead.
_NOT_XML = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]")


_SPECIAL = re.compile('[&<>"\r]')
# An attribute value's newlines and tabs would be normalised to spaces by a parser.
_ATTRIBUTE_WHITESPACE = str.maketrans({"\n": "&#10;", "\t": "&#9;"})


def escape(text: str) -> str:
    """``text`` as XML character data (also safe inside a double-quoted attribute); a carriage
    return becomes a character reference, or a parser would read it back as a newline."""
    if _SPECIAL.search(text) is None:  # the common case, and the cheap one
        return text
    return _escape(text, {'"': "&quot;", "\r": "&#13;"})


def quoteattr(text: str) -> str:
    """``text`` as a double-quoted XML attribute value (newlines and tabs kept as such)."""
    return f'"{escape(text).translate(_ATTRIBUTE_WHITESPACE)}"'


def xml_safe(text: str) -> bool:
    """Whether ``text`` can appear as XML 1.0 character data."""
    return _NOT_XML.search(text) is None


def _text(tag: str, value: str | None) -> str:
    if value is None:
        return f'<uws:{tag} xsi:nil="true"/>'
    return f"<uws:{tag}>{escape(value)}</uws:{tag}>"


def _instant(tag: str, value: datetime | None) -> str:
    # An instant's text never needs escaping.
    if value is None:
        return f'<uws:{tag} xsi:nil="true"/>'
    return f"<uws:{tag}>{format_instant(value)}</uws:{tag}>"


# Anything that stops a name or value from being written as it is (quote, markup, attribute
# whitespace, characters XML cannot carry): the rare values that take the slow path.
_NOT_VERBATIM = re.compile('[&<>"\t\n\r\x00-\x08\x0b\x0c\x0e-\x1f\ufffe\uffff\ud800-\udfff]')


def _parameter(param: Parameter, job_url: str) -> str:
    name, value = param.name, param.value
    if not param.by_reference:
        if _NOT_VERBATIM.search(name) is None and _NOT_VERBATIM.search(value) is None:
            return f'<uws:parameter id="{name}">{value}</uws:parameter>'
        if xml_safe(value):
            return f"<uws:parameter id={quoteattr(name)}>{escape(value)}</uws:parameter>"
    href = f"{job_url}/parameters/{quote(name, safe='')}"
    attrs = f'id={quoteattr(name)} byReference="true"'
    return f"<uws:parameter {attrs}>{escape(href)}</uws:parameter>"


def _parameters_body(job: Job, job_url: str) -> str:
    return "".join(_parameter(p, job_url) for p in job.parameters)


def _results_body(job: Job, job_url: str) -> str:
    parts = []
    for result in job.results:
        href = f"{job_url}/results/{quote(result.id, safe='')}"
        parts.append(
            f'<uws:result id={quoteattr(result.id)} xlink:type="simple"'
            f" xlink:href={quoteattr(href)}"
            f' size="{result.size}" mime-type={quoteattr(result.mime_type)}/>'
        )
    return "".join(parts)


def render_job(job: Job, job_url: str) -> bytes:
    """The ``uws:job`` document of ``job``, whose absolute URL is ``job_url``."""
    # One f-string: this is the most requested document, and its rendering was a measurable
    # share of a GET (bench P1).
    run_id = _text("runId", job.run_id) if job.run_id is not None and xml_safe(job.run_id) else ""
    error = ""
    if job.error is not None:
        has_detail = "true" if job.error.detail else "false"
        error = (
            f'<uws:errorSummary type="{job.error.type.value}" hasDetail="{has_detail}">'
            f"<uws:message>{escape(_NOT_XML.sub('?', job.error.message))}</uws:message>"
            "</uws:errorSummary>"
        )
    return (
        f'{_HEADER}<uws:job{_NS} version="1.1">{_text("jobId", job.id)}{run_id}'
        f"{_text('ownerId', job.owner or None)}<uws:phase>{job.phase.value}</uws:phase>"
        f"{_instant('quote', job.quote)}{_instant('creationTime', job.creation_time)}"
        f"{_instant('startTime', job.start_time)}{_instant('endTime', job.end_time)}"
        f"<uws:executionDuration>{int(job.execution_duration)}</uws:executionDuration>"
        f"{_instant('destruction', job.destruction)}"
        f"<uws:parameters>{_parameters_body(job, job_url)}</uws:parameters>"
        f"<uws:results>{_results_body(job, job_url)}</uws:results>{error}</uws:job>"
    ).encode()


def render_jobs(jobs: Iterable[Job], list_url: str) -> bytes:
    """The ``uws:jobs`` list with full jobrefs (phase, runId, ownerId, creationTime)."""
    out = [_HEADER, f'<uws:jobs{_NS} version="1.1">']
    for job in jobs:
        href = f"{list_url}/{job.id}"
        out.append(
            f'<uws:jobref id={quoteattr(job.id)} xlink:type="simple" xlink:href={quoteattr(href)}>'
        )
        out.append(_text("phase", job.phase.value))
        if job.run_id is not None and xml_safe(job.run_id):
            out.append(_text("runId", job.run_id))
        out.append(_text("ownerId", job.owner or None))
        out.append(_instant("creationTime", job.creation_time))
        out.append("</uws:jobref>")
    out.append("</uws:jobs>")
    return "".join(out).encode()


def render_results(job: Job, job_url: str) -> bytes:
    """The ``uws:results`` document."""
    return f"{_HEADER}<uws:results{_NS}>{_results_body(job, job_url)}</uws:results>".encode()


def render_parameters(job: Job, job_url: str) -> bytes:
    """The ``uws:parameters`` document."""
    body = _parameters_body(job, job_url)
    return f"{_HEADER}<uws:parameters{_NS}>{body}</uws:parameters>".encode()
