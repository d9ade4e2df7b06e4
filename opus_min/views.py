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

from .identity import CALLER_ENVIRON_KEY, Caller
from .provsap import RESULT_FORMATS
from .provviews import prov_content_type
from .uws import xml
from .uws.controls import parse_after, parse_int, parse_last, parse_phase_filter
from .uws.errors import PhaseConflict, UnknownResource, UsageError
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
    if not request.environ.get("QUERY_STRING"):  # most requests: skip parsing nothing
        return folded
    for key, value in request.args.items(multi=True):
        folded.add(key.lower(), value)
    return folded


def _form_fields(request: Request) -> list[tuple[str, str]]:
    return list(request.form.items(multi=True))


def _owner(request: Request) -> Caller:
    """The authenticated caller (the single place where identity enters the views).

    ``wsgi`` leaves the authenticator's answer in the environ; asking for it raises 401/403
    when the request carries no acceptable identity, so public resources simply never ask.
    """
    return request.environ[CALLER_ENVIRON_KEY]()  # type: ignore[no-any-return]


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
    job = app.jobs.create(
        service, _owner(request), _form_fields(request), uploads, base_url=app.base_url(request)
    )
    return _see_other(app.job_url(request, job))


# -- the job -------------------------------------------------------------------------------


def job(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "DELETE":
        app.jobs.delete(service, job_id, owner)
        return _see_other(app.list_url(request, service) + f"?LAST={app.config.last_redirect}")
    if request.method == "POST":
        outcome = app.jobs.post_to_job(
            service, job_id, owner, _form_fields(request), base_url=app.base_url(request)
        )
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
    return _text(app.jobs.get(service, job_id, owner, detail=False).phase.value)


def job_execution_duration(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "POST":
        form = {k.lower(): v for k, v in _form_fields(request)}
        if "executionduration" not in form:
            raise UsageError("POST EXECUTIONDURATION=<seconds>")
        current = app.jobs.set_execution_duration(service, job_id, owner, form["executionduration"])
        return _see_other(app.job_url(request, current))
    return _text(str(app.jobs.get(service, job_id, owner, detail=False).execution_duration))


def job_destruction(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "POST":
        form = {k.lower(): v for k, v in _form_fields(request)}
        if "destruction" not in form:
            raise UsageError("POST DESTRUCTION=<ISO 8601 instant>")
        current = app.jobs.set_destruction(service, job_id, owner, form["destruction"])
        return _see_other(app.job_url(request, current))
    current = app.jobs.get(service, job_id, owner, detail=False)
    return _text(format_instant(current.destruction) if current.destruction else "")


def job_quote(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    current = app.jobs.get(service, job_id, _owner(request))
    return _text(format_instant(current.quote) if current.quote else "")


def job_owner(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    return _text(app.jobs.get(service, job_id, _owner(request), detail=False).owner)


def job_error(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    current = app.jobs.get(service, job_id, _owner(request), detail=False)
    if current.error is None:
        raise UnknownResource(f"job {job_id} has no error")
    body = current.error.message
    if current.error.detail:
        body += "\n\n" + current.error.detail
    return _text(body + "\n")


def job_parameters(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    owner = _owner(request)
    if request.method == "POST":
        current = app.jobs.update_parameters(
            service, job_id, owner, _form_fields(request), base_url=app.base_url(request)
        )
        return _see_other(app.job_url(request, current))
    current = app.jobs.get(service, job_id, owner)
    return _xml(xml.render_parameters(current, app.job_url(request, current)))


def job_parameter(app: OpusApp, request: Request, service: str, job_id: str, name: str) -> Response:
    current = app.jobs.get(service, job_id, _owner(request))
    param = current.parameter(name)
    if param is None:
        raise UnknownResource(f"job {job_id} has no parameter {name[:80]!r}")
    if param.file and " " in param.file:
        # Several uploaded files: their local names, one a line (each is a file of the job).
        return _text("\n".join(param.file.split()) + "\n")
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
    if result is None and result_id in RESULT_FORMATS:
        # The job's own provenance (provjson, provxml, provn, provsvg), built on request.
        fmt = RESULT_FORMATS[result_id]
        body = app.jobs.provenance.job_document(current, app.base_url(request), fmt)
        response = Response(body, content_type=prov_content_type(fmt))
        response.headers["Content-Disposition"] = f'inline; filename="provenance.{fmt.extension}"'
        return response
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
    # Per-user data: no shared cache keeps it; the browser revalidates with the ETag.
    response.headers["Cache-Control"] = "private, no-cache"
    return response


VIEWS: dict[str, View] = {
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


# -- job callbacks (Slurm) -------------------------------------------------------------------


def job_callback(app: OpusApp, request: Request, job_id: str) -> Response:
    """``POST /callback/{job_id}``: a signed state report from a Slurm job or Slurm's hook.

    A wrong signature (forged, or another event's token) and a report that no longer fits the
    job's phase (replayed, stale) are both 403, and change nothing.
    """
    executor = app.jobs.executor
    receive = getattr(executor, "receive", None)
    if receive is None:
        raise UnknownResource(f"the {executor.name} executor takes no job callbacks")
    form = {key.lower(): value for key, value in request.form.items()}
    report = receive(job_id, form)
    settle = getattr(executor, "settle", None)
    follow_up = (lambda: settle(report)) if report.settle and settle is not None else None
    if not app.jobs.accept_callback(report.event, settle=follow_up):
        phase = report.event.phase
        raise PhaseConflict(f"job {job_id}: {phase} report refused (stale or replayed)")
    return _text("accepted\n")


VIEWS["job_callback"] = job_callback
