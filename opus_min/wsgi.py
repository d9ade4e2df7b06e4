"""The WSGI application: routing, request limits, and the single mapping of errors to HTTP.

``create_app(config)`` builds everything (store, services, executor, job service) and returns
an :class:`OpusApp`; ``serve(config)`` runs it under waitress.
"""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING, Any

from werkzeug.exceptions import HTTPException
from werkzeug.routing import Map, RequestRedirect, Rule
from werkzeug.wrappers import Request, Response

from .admin import ADMIN_RULES, ADMIN_VIEWS
from .config import Config, ConfigError
from .cors import CorsPolicy
from .discovery import DISCOVERY_VIEWS, load_registry, published_services
from .executors import Executor
from .executors.local import LocalExecutor
from .identity import (
    ANONYMOUS,
    CALLER_ENVIRON_KEY,
    COOKIE_ALLOWED_ENVIRON_KEY,
    TOKEN_COOKIE,
    Authenticator,
    Caller,
)
from .pages import PAGE_RULES, PAGE_VIEWS
from .provviews import PROVSAP_VIEWS
from .restroutes import RestRoutes
from .slurm import SlurmExecutor
from .users import UserStore
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
    from collections.abc import Callable, Iterable

    from _typeshed.wsgi import StartResponse, WSGIEnvironment

__all__ = ["OpusApp", "create_app", "serve", "server_options"]

log = logging.getLogger("opus_min")

_JOB = "/rest/<service>/<job_id>"
URL_MAP = Map(
    [
        Rule("/", endpoint="root", methods=["GET"]),
        Rule("/services", endpoint="catalogue", methods=["GET"]),
        Rule("/jdl/<service>", endpoint="service_document", methods=["GET"]),
        Rule("/capabilities", endpoint="capabilities", methods=["GET"]),
        Rule("/availability", endpoint="availability", methods=["GET"]),
        Rule("/oai.xml", endpoint="oai", methods=["GET", "POST"]),
        Rule("/rest/<service>/capabilities", endpoint="service_capabilities", methods=["GET"]),
        Rule("/rest/<service>/availability", endpoint="availability", methods=["GET"]),
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
        Rule("/callback/<job_id>", endpoint="job_callback", methods=["POST"]),
        Rule("/provsap", endpoint="provsap", methods=["GET", "POST"]),
        *PAGE_RULES,
        *ADMIN_RULES,
    ],
    strict_slashes=False,
    merge_slashes=True,
)
"""Every route; the endpoint is the name of its view in ``views.VIEWS`` or
``discovery.DISCOVERY_VIEWS``."""

REST_ROUTES = RestRoutes.from_rules(URL_MAP.iter_rules())
"""The UWS routes of ``URL_MAP``, matched directly (the Map answers everything else)."""

ENDPOINTS = {**VIEWS, **DISCOVERY_VIEWS, **PROVSAP_VIEWS, **PAGE_VIEWS, **ADMIN_VIEWS}

SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Cross-Origin-Opener-Policy": "same-origin",
}
"""Set on every response."""

DEFAULT_HEADERS = {
    # Nothing we serve needs scripts, styles or frames; ``sandbox`` also disarms a job result
    # that is HTML or SVG (its scripts cannot run in this origin, where other users' jobs are).
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'none'; sandbox",
    # Job documents are per-user and change: never kept by shared caches or the browser.
    "Cache-Control": "no-store",
}
"""Set on every response whose view did not choose its own value."""

_SECURITY_LIST = list(SECURITY_HEADERS.items())
_SECURITY_NAMES = frozenset(name.lower() for name in SECURITY_HEADERS)
_DEFAULT_LIST = list(DEFAULT_HEADERS.items())


class OpusApp:
    """The WSGI callable."""

    def __init__(
        self, config: Config, jobs: JobService, problems: list[Problem], registry: Any = None
    ) -> None:
        self.config = config
        self.jobs = jobs
        self.problems = problems
        self.published = published_services(jobs.services)
        self.registry = registry
        self.url_map = URL_MAP
        self.rest_routes = REST_ROUTES
        self.auth = Authenticator(config, UserStore(jobs.store))
        self.cors = CorsPolicy.from_config(config)
        self._base_urls: dict[tuple[str | None, ...], str] = {}

    # URLs are absolute, built from the configured base URL or else the request's Host.
    def base_url(self, request: Request) -> str:
        if self.config.base_url:
            return self.config.base_url.rstrip("/")
        # Built from scheme, Host and SCRIPT_NAME (request.host_url re-encodes the whole
        # current URL), and remembered per combination: a measurable share of a job GET.
        environ = request.environ
        key = (
            environ.get("wsgi.url_scheme"),
            environ.get("HTTP_HOST"),
            environ.get("SERVER_NAME"),
            environ.get("SERVER_PORT"),
            environ.get("SCRIPT_NAME"),
        )
        found = self._base_urls.get(key)
        if found is None:
            found = f"{request.scheme}://{request.host}{request.root_path}".rstrip("/")
            if len(self._base_urls) >= 64:  # Host is the client's: keep the memory bounded
                self._base_urls.clear()
            self._base_urls[key] = found
        return found

    def list_url(self, request: Request, service: str) -> str:
        return f"{self.base_url(request)}/rest/{service}"

    def job_url(self, request: Request, job: Job) -> str:
        return f"{self.list_url(request, job.service)}/{job.id}"

    def dispatch(self, request: Request) -> Response:
        try:
            found = self.rest_routes.match(request.method, request.environ.get("PATH_INFO", ""))
            if found is None:
                found = self.url_map.bind_to_environ(request.environ).match()
            endpoint, values = found
            response = ENDPOINTS[endpoint](self, request, **values)
        except UWSError as exc:
            response = error_response(exc.code, exc.label, exc.message)
            for name, value in exc.headers:
                response.headers.add(name, value)
        except HTTPException as exc:
            response = error_response(
                exc.code or 500, exc.name.replace(" ", ""), exc.description or ""
            )
            if exc.code == 405 and exc.valid_methods:
                response.headers["Allow"] = ", ".join(exc.valid_methods)
            if isinstance(exc, RequestRedirect):  # merged slashes: keep the target
                response.headers["Location"] = exc.new_url
        except Exception:
            log.exception("unexpected error on %s %s", request.method, request.path)
            response = error_response(500, "InternalError", "the server failed; see its log")
        return response

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        # Only multipart bodies may carry files; any other body is held to the form limit.
        multipart = "CONTENT_TYPE" in environ and request.mimetype == "multipart/form-data"
        request.max_content_length = self.config.form_max_bytes + (
            self.config.upload_max_bytes if multipart else 0
        )
        request.max_form_memory_size = self.config.form_max_bytes
        environ[CALLER_ENVIRON_KEY] = self._caller_of(request)
        cross_site = "HTTP_ORIGIN" in environ  # only browsers' cross-site requests carry it
        if cross_site and self.cors.is_preflight(request):
            response = self.cors.preflight(request)
        elif cross_site:
            own = {
                f"{request.scheme}://{request.host}",
                "/".join(self.base_url(request).split("/")[:3]),
            }
            response = self.cors.refuses(request, own) or self.dispatch(request)
            self.cors.decorate(request, response)
        else:
            response = self.dispatch(request)
        app_iter, status, headers = response.get_wsgi_response(environ)
        # Appended as plain tuples: setting them one by one on Headers was a measurable share
        # of a /phase request.
        header_list = [h for h in headers if h[0].lower() not in _SECURITY_NAMES]
        present = {name.lower() for name, _ in header_list}
        header_list.extend(_SECURITY_LIST)
        header_list.extend(h for h in _DEFAULT_LIST if h[0].lower() not in present)
        start_response(status, header_list)
        return app_iter

    def _caller_of(self, request: Request) -> Callable[[], Caller]:
        """The request's identity, worked out on first use (public resources never ask).

        The peer is the TCP peer (``REMOTE_ADDR`` as waitress sets it), never a forwarding
        header; the proxy's user comes from the configured header or ``REMOTE_USER``.
        """
        found: list[Caller] = []

        def caller() -> Caller:
            if not found:
                auth = self.auth
                if auth.mode == "anonymous":  # nothing in the request can change the answer
                    return ANONYMOUS
                proxy_user = (
                    request.environ.get("REMOTE_USER")
                    if auth.uses_remote_user
                    else request.headers.get(auth.user_header)
                )
                # The pages' sign-in cookie: for GET/HEAD, and for a page POST that passed its
                # CSRF checks (pages set the flag); never for other changes.
                cookie_ok = request.method in ("GET", "HEAD") or request.environ.get(
                    COOKIE_ALLOWED_ENVIRON_KEY
                )
                found.append(
                    auth.identify(
                        authorization=request.headers.get("Authorization"),
                        peer=request.environ.get("REMOTE_ADDR"),
                        proxy_user=proxy_user,
                        cookie_token=request.cookies.get(TOKEN_COOKIE) if cookie_ok else None,
                    )
                )
            return found[0]

        return caller


def error_response(code: int, label: str, message: str) -> Response:
    """A short ``text/plain`` body ``Label: message`` with the right status (never a traceback)."""
    return Response(f"{label}: {message}\n", status=code, content_type="text/plain; charset=utf-8")


def create_app(config: Config, *, start: bool = True, background: bool = True) -> OpusApp:
    """Build the application; with ``start`` the executor, recovery and reaper begin."""
    if config.executor not in ("local", "slurm"):
        raise ConfigError(f"executor {config.executor!r} is not 'local' or 'slurm'")
    services, problems = load_services(config.services)
    for problem in problems:
        log.warning("service skipped: %s", problem)
    store = JobStore(config.database)
    executor: Executor
    if config.executor == "slurm":
        try:
            executor = SlurmExecutor.from_config(config)
        except (OSError, ValueError) as exc:
            raise ConfigError(f"callback_key_file: {exc}") from None
    else:
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
    return OpusApp(config, jobs, problems, load_registry(config))


def serve(config: Config, **options: Any) -> None:
    """Run the production server (waitress, a fixed pool of ``config.threads`` threads)."""
    import waitress

    app = create_app(config)
    tune_collector()
    log.info(
        "serving %d services on http://%s:%d with %d threads",
        len(app.jobs.services),
        config.host,
        config.port,
        config.threads,
    )
    try:
        waitress.serve(app, host=config.host, port=config.port, **server_options(config), **options)
    finally:
        app.jobs.stop()


GC_THRESHOLD = (20_000, 10, 10)
"""Allocations between young-generation collections (Python's default is 700)."""


def tune_collector() -> None:
    """Keep the garbage collector off the server's hot paths.

    What exists after start-up (services, routes, libraries) lives as long as the process, so
    ``gc.freeze`` takes it out of every later collection. A large ProvSAP answer builds about
    10^5 objects that live until it is sent; at the default threshold the collector walked them
    again and again (bench P6, DEPTH=ALL over 1 000 jobs: 0.43 → 0.36 s in-process).
    """
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLD)


def server_options(config: Config) -> dict[str, Any]:
    """waitress settings of ``serve`` (the tests use them too).

    waitress buffers a request body to disk before the application sees it; capping it at
    the configured limits (plus room for multipart headers) means an endless or chunked upload
    is cut off with a 413 there instead of filling the disk.
    """
    return {
        "threads": config.threads,
        "connection_limit": max(1000, config.threads * 4),
        "channel_timeout": 120,
        "ident": "opus_min",
        "max_request_body_size": config.upload_max_bytes + config.form_max_bytes + 65536,
    }
