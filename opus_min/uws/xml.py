"""UWS 1.1 XML documents (job, job list, results, parameters). Pure: model in, bytes out.

Element order follows the XSD sequence of ``UWS-v1.1.xsd`` exactly; every instant is UTC with
``Z``; nillable elements are written ``xsi:nil="true"`` rather than left empty.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from datetime import datetime
from urllib.parse import quote
from xml.sax.saxutils import escape, quoteattr

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


def xml_safe(text: str) -> bool:
    """Whether ``text`` can appear as XML 1.0 character data."""
    return _NOT_XML.search(text) is None


def _text(tag: str, value: str | None) -> str:
    if value is None:
        return f'<uws:{tag} xsi:nil="true"/>'
    return f"<uws:{tag}>{escape(value)}</uws:{tag}>"


def _instant(tag: str, value: datetime | None) -> str:
    return _text(tag, None if value is None else format_instant(value))


def _parameter(param: Parameter, job_url: str) -> str:
    if param.by_reference or not xml_safe(param.value):
        href = f"{job_url}/parameters/{quote(param.name, safe='')}"
        attrs = f'id={quoteattr(param.name)} byReference="true"'
        return f"<uws:parameter {attrs}>{escape(href)}</uws:parameter>"
    return f"<uws:parameter id={quoteattr(param.name)}>{escape(param.value)}</uws:parameter>"


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
    out = [_HEADER, f'<uws:job{_NS} version="1.1">', _text("jobId", job.id)]
    if job.run_id is not None and xml_safe(job.run_id):
        out.append(_text("runId", job.run_id))
    out.append(_text("ownerId", job.owner or None))
    out.append(_text("phase", job.phase.value))
    out.append(_instant("quote", job.quote))
    out.append(_instant("creationTime", job.creation_time))
    out.append(_instant("startTime", job.start_time))
    out.append(_instant("endTime", job.end_time))
    out.append(_text("executionDuration", str(int(job.execution_duration))))
    out.append(_instant("destruction", job.destruction))
    out.append(f"<uws:parameters>{_parameters_body(job, job_url)}</uws:parameters>")
    out.append(f"<uws:results>{_results_body(job, job_url)}</uws:results>")
    if job.error is not None:
        has_detail = "true" if job.error.detail else "false"
        out.append(
            f'<uws:errorSummary type="{job.error.type.value}" hasDetail="{has_detail}">'
            f"<uws:message>{escape(_NOT_XML.sub('?', job.error.message))}</uws:message>"
            "</uws:errorSummary>"
        )
    out.append("</uws:job>")
    return "".join(out).encode()


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
