"""One function per endpoint: parse the HTTP request, call the JobService, render the answer.

Views raise domain errors; ``wsgi`` turns them into HTTP responses in one place.
"""

from __future__ import annotations

import mimetypes
import re
from collections.abc import Callable
from typing import TYPE_CHECKING

from werkzeug.datastructures import MultiDict
from werkzeug.utils import redirect, send_file
from werkzeug.wrappers import Request, Response

from .uws import xml
from .uws.controls import parse_after, parse_int, parse_last, parse_phase_filter
from .uws.errors import UnknownResource, UsageError
from .uws.model import format_instant
from .uws.service import Upload
from .uws.store import ListFilter

if TYPE_CHECKING:
    from .wsgi import OpusApp

__all__ = ["VIEWS"]

XML = "application/xml; charset=utf-8"
TEXT = "text/plain; charset=utf-8"

View = Callable[..., Response]


def _query(request: Request) -> MultiDict[str, str]:
    """Query arguments with lower-cased names: UWS control names are case-insensitive."""
    folded: MultiDict[str, str] = MultiDict()
    for key, value in request.args.items(multi=True):
        folded.add(key.lower(), value)
    return folded


def _form_fields(request: Request) -> list[tuple[str, str]]:
    return list(request.form.items(multi=True))


def _owner(request: Request) -> str:
    # Identity arrives with its own issue; until then every caller is the anonymous owner.
    return ""


def _see_other(url: str) -> Response:
    return redirect(url, code=303)


def _text(body: str) -> Response:
    return Response(body, mimetype="text/plain", content_type=TEXT)


def _xml(body: bytes) -> Response:
    return Response(body, content_type=XML)


# -- job list ------------------------------------------------------------------------------


def job_list(app: OpusApp, request: Request, service: str) -> Response:
    if request.method == "POST":
        return create_job(app, request, service)
    args = _query(request)
    flt = ListFilter(
        phases=parse_phase_filter(args.getlist("phase")),
        after=parse_after(args["after"]) if "after" in args else None,
        last=parse_last(args["last"]) if "last" in args else None,
    )
    jobs = app.jobs.list(service, _owner(request), flt)
    return _xml(xml.render_jobs(jobs, app.list_url(request, service)))


def create_job(app: OpusApp, request: Request, service: str) -> Response:
    app.jobs.service(service)
    uploads = [
        Upload(name, storage.filename or name, storage.stream)
        for name, storage in request.files.items(multi=True)
    ]
    job = app.jobs.create(service, _owner(request), _form_fields(request), uploads)
    return _see_other(app.job_url(request, job))


# -- the job -------------------------------------------------------------------------------


def job(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "DELETE":
        app.jobs.delete(service, job_id, owner)
        return _see_other(app.list_url(request, service) + f"?LAST={app.config.last_redirect}")
    if request.method == "POST":
        outcome = app.jobs.post_to_job(service, job_id, owner, _form_fields(request))
        if outcome == "deleted":
            return _see_other(app.list_url(request, service) + f"?LAST={app.config.last_redirect}")
        return _see_other(app.job_url(request, app.jobs.get(service, job_id, owner)))
    args = _query(request)
    if "wait" in args:
        phases = parse_phase_filter(args.getlist("phase")) if "phase" in args else ()
        if len(phases) > 1:
            raise UsageError("PHASE with WAIT takes a single phase")
        current = app.jobs.wait(
            service, job_id, owner, parse_int("WAIT", args["wait"]), phases[0] if phases else None
        )
    else:
        current = app.jobs.get(service, job_id, owner)
    return _xml(xml.render_job(current, app.job_url(request, current)))


def job_phase(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "POST":
        form = {k.lower(): v for k, v in _form_fields(request)}
        if "phase" not in form:
            raise UsageError("POST PHASE=RUN or PHASE=ABORT")
        current = app.jobs.set_phase(service, job_id, owner, form["phase"])
        return _see_other(app.job_url(request, current))
    return _text(app.jobs.get(service, job_id, owner).phase.value)


def job_execution_duration(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "POST":
        form = {k.lower(): v for k, v in _form_fields(request)}
        if "executionduration" not in form:
            raise UsageError("POST EXECUTIONDURATION=<seconds>")
        current = app.jobs.set_execution_duration(service, job_id, owner, form["executionduration"])
        return _see_other(app.job_url(request, current))
    return _text(str(app.jobs.get(service, job_id, owner).execution_duration))


def job_destruction(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "POST":
        form = {k.lower(): v for k, v in _form_fields(request)}
        if "destruction" not in form:
            raise UsageError("POST DESTRUCTION=<ISO 8601 instant>")
        current = app.jobs.set_destruction(service, job_id, owner, form["destruction"])
        return _see_other(app.job_url(request, current))
    current = app.jobs.get(service, job_id, owner)
    return _text(format_instant(current.destruction) if current.destruction else "")


def job_quote(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    current = app.jobs.get(service, job_id, _owner(request))
    return _text(format_instant(current.quote) if current.quote else "")


def job_owner(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    return _text(app.jobs.get(service, job_id, _owner(request)).owner)


def job_error(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    current = app.jobs.get(service, job_id, _owner(request))
    if current.error is None:
        raise UnknownResource(f"job {job_id} has no error")
    body = current.error.message
    if current.error.detail:
        body += "\n\n" + current.error.detail
    return _text(body + "\n")


def job_parameters(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "POST":
        current = app.jobs.update_parameters(service, job_id, owner, _form_fields(request))
        return _see_other(app.job_url(request, current))
    current = app.jobs.get(service, job_id, owner)
    return _xml(xml.render_parameters(current, app.job_url(request, current)))


def job_parameter(app: OpusApp, request: Request, service: str, job_id: str, name: str) -> Response:
    current = app.jobs.get(service, job_id, _owner(request))
    param = current.parameter(name)
    if param is None:
        raise UnknownResource(f"job {job_id} has no parameter {name[:80]!r}")
    if param.file:
        path = app.jobs.files.read_path(current.id, param.file)
        return _file(request, path, param.file)
    return _text(param.value)


def job_results(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    current = app.jobs.get(service, job_id, _owner(request))
    return _xml(xml.render_results(current, app.job_url(request, current)))


def job_result(
    app: OpusApp, request: Request, service: str, job_id: str, result_id: str
) -> Response:
    current = app.jobs.get(service, job_id, _owner(request))
    result = current.result(result_id)
    if result is None:
        raise UnknownResource(f"job {job_id} has no result {result_id[:80]!r}")
    path = app.jobs.files.read_path(current.id, result.path)
    return _file(request, path, path.name, result.mime_type)


_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")


def _file(request: Request, path: object, name: str, mime: str | None = None) -> Response:
    safe = _SAFE_NAME.sub("_", str(name).rsplit("/", 1)[-1]).lstrip(".") or "download"
    mime = mime or mimetypes.guess_type(safe)[0] or "application/octet-stream"
    response = send_file(
        path, request.environ, mimetype=mime, download_name=safe, conditional=True, etag=True
    )
    # Results open inline (images, text) but are never sniffed into something else.
    response.headers["Content-Disposition"] = f'inline; filename="{safe}"'
    return response


def index(app: OpusApp, request: Request) -> Response:
    lines = ["opus_min: UWS 1.1 job lists", ""]
    for name, description in sorted(app.jobs.services.items()):
        lines.append(f"{app.base_url(request)}/rest/{name}  {description.description[:100]}")
    return _text("\n".join(lines) + "\n")


VIEWS: dict[str, View] = {
    "index": index,
    "job_list": job_list,
    "job": job,
    "job_phase": job_phase,
    "job_execution_duration": job_execution_duration,
    "job_destruction": job_destruction,
    "job_quote": job_quote,
    "job_owner": job_owner,
    "job_error": job_error,
    "job_parameters": job_parameters,
    "job_parameter": job_parameter,
    "job_results": job_results,
    "job_result": job_result,
}
"""Endpoint name → view; the names match the Rules in ``wsgi``."""
