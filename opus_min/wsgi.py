"""The WSGI application: routing, request limits, and the single mapping of errors to HTTP.

``create_app(config)`` builds everything (store, services, executor, job service) and returns
an :class:`OpusApp`; ``serve(config)`` runs it under waitress.
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, Rule
from werkzeug.wrappers import Request, Response

from .config import Config, ConfigError
from .executors.local import LocalExecutor
from .uws.errors import UWSError
from .uws.jobfiles import JobFiles
from .uws.model import Job
from .uws.notify import PhaseNotifier
from .uws.service import JobService
from .uws.store import JobStore
from .views import VIEWS
from .votable.loader import load_services
from .votable.model import Problem

if TYPE_CHECKING:
    from collections.abc import Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["OpusApp", "create_app", "serve"]

log = logging.getLogger("opus_min")

_JOB = "/rest/<service>/<job_id>"
URL_MAP = Map(
    [
        Rule("/", endpoint="index", methods=["GET"]),
        Rule("/rest/<service>", endpoint="job_list", methods=["GET", "POST"]),
        Rule(_JOB, endpoint="job", methods=["GET", "POST", "DELETE"]),
        Rule(f"{_JOB}/phase", endpoint="job_phase", methods=["GET", "POST"]),
        Rule(
            f"{_JOB}/executionduration", endpoint="job_execution_duration", methods=["GET", "POST"]
        ),
        Rule(f"{_JOB}/destruction", endpoint="job_destruction", methods=["GET", "POST"]),
        Rule(f"{_JOB}/quote", endpoint="job_quote", methods=["GET"]),
        Rule(f"{_JOB}/owner", endpoint="job_owner", methods=["GET"]),
        Rule(f"{_JOB}/error", endpoint="job_error", methods=["GET"]),
        Rule(f"{_JOB}/parameters", endpoint="job_parameters", methods=["GET", "POST"]),
        Rule(f"{_JOB}/parameters/<path:name>", endpoint="job_parameter", methods=["GET"]),
        Rule(f"{_JOB}/results", endpoint="job_results", methods=["GET"]),
        Rule(f"{_JOB}/results/<path:result_id>", endpoint="job_result", methods=["GET"]),
    ],
    strict_slashes=False,
    merge_slashes=True,
)
"""Every route; the endpoint is the name of its view in ``views.VIEWS``."""

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


class OpusApp:
    """The WSGI callable."""

    def __init__(self, config: Config, jobs: JobService, problems: list[Problem]) -> None:
        self.config = config
        self.jobs = jobs
        self.problems = problems
        self.url_map = URL_MAP

    # URLs are absolute, built from the configured base URL or else the request's Host.
    def base_url(self, request: Request) -> str:
        return (self.config.base_url or request.host_url).rstrip("/")

    def list_url(self, request: Request, service: str) -> str:
        return f"{self.base_url(request)}/rest/{service}"

    def job_url(self, request: Request, job: Job) -> str:
        return f"{self.list_url(request, job.service)}/{job.id}"

    def dispatch(self, request: Request) -> Response:
        adapter = self.url_map.bind_to_environ(request.environ)
        try:
            endpoint, values = adapter.match()
            response = VIEWS[endpoint](self, request, **values)
        except UWSError as exc:
            response = error_response(exc.code, exc.label, exc.message)
        except HTTPException as exc:
            response = error_response(
                exc.code or 500, exc.name.replace(" ", ""), exc.description or ""
            )
            if exc.code == 405 and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            response = error_response(500, "InternalError", "the server failed; see its log")
        return response

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        # Only multipart bodies may carry files; any other body is held to the form limit.
        request.max_content_length = self.config.form_max_bytes + (
            self.config.upload_max_bytes if request.mimetype == "multipart/form-data" else 0
        )
        request.max_form_memory_size = self.config.form_max_bytes
        response = self.dispatch(request)
        response.headers.update(SECURITY_HEADERS)
        return response(environ, start_response)


def error_response(code: int, label: str, message: str) -> Response:
    """A short ``text/plain`` body ``Label: message`` with the right status (never a traceback)."""
    return Response(f"{label}: {message}\n", status=code, content_type="text/plain; charset=utf-8")


def create_app(config: Config, *, start: bool = True, background: bool = True) -> OpusApp:
    """Build the application; with ``start`` the executor, recovery and reaper begin."""
    if config.executor != "local":
        raise ConfigError(f"executor {config.executor!r} is not available in this release")
    services, problems = load_services(config.services)
    for problem in problems:
        log.warning("service skipped: %s", problem)
    store = JobStore(config.database)
    executor = LocalExecutor(max_concurrent=config.max_concurrent_jobs)
    jobs = JobService(
        config=config,
        store=store,
        services=services,
        executor=executor,
        files=JobFiles(config.work_root),
        notifier=PhaseNotifier(config.database),
    )
    if start:
        jobs.start(background=background)
    return OpusApp(config, jobs, problems)


def serve(config: Config, **options: Any) -> None:
    """Run the production server (waitress, a fixed pool of ``config.threads`` threads)."""
    import waitress

    app = create_app(config)
    log.info(
        "serving %d services on http://%s:%d with %d threads",
        len(app.jobs.services),
        config.host,
        config.port,
        config.threads,
    )
    try:
        waitress.serve(
            app,
            host=config.host,
            port=config.port,
            threads=config.threads,
            connection_limit=max(1000, config.threads * 4),
            channel_timeout=120,
            ident="opus_min",
            **options,
        )
    finally:
        app.jobs.stop()
