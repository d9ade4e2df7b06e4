"""Web pages for people: services, job forms generated from the ActivityDescriptions, job lists
and job pages, served under ``/ui/`` (and at ``/`` to browsers).

The pages live under their own prefix instead of answering ``text/html`` at the UWS URLs: Java
clients (STILTS taplint among them) send ``Accept: text/html, ..., */*`` by default, so content
negotiation at ``/rest/...`` would hand them HTML. ``/rest/...`` therefore always answers UWS.

Pages are server-rendered Jinja2 templates (autoescaped, StrictUndefined) with one small static
script (``static/opus.js``: the job page follows its phase with UWS ``WAIT``). Every page POST
(create, run, abort, delete, sign-in, sign-out) is checked against cross-site forgery: a
per-browser random token (cookie ``opus_min_csrf``, HttpOnly, SameSite=Strict) must come back in
the form, and ``Origin``/``Sec-Fetch-Site``, when the browser sends them, must be this site. Only
then may the sign-in cookie (token mode) identify the caller of a POST; for GET it always may.
"""

from __future__ import annotations

import functools
import hmac
import re
import secrets
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from importlib import resources
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode, urlsplit

import jinja2
from werkzeug.exceptions import HTTPException
from werkzeug.routing import RequestRedirect, Rule
from werkzeug.utils import redirect
from werkzeug.wrappers import Request, Response

from .identity import (
    CALLER_ENVIRON_KEY,
    COOKIE_ALLOWED_ENVIRON_KEY,
    REALM,
    TOKEN_COOKIE,
    Caller,
)
from .uws.controls import parse_phase_filter
from .uws.errors import Forbidden, Unauthenticated, UnknownResource, UsageError, UWSError
from .uws.jobfiles import OPTIONAL_MULTIPLICITIES, allows_many
from .uws.model import ACTIVE_PHASES, WAITABLE_PHASES, Job, Phase, Result
from .uws.service import Upload
from .votable.model import InputParam, ServiceDescription, UsedEntity
from .votable.values import INT_RANGES, is_array

if TYPE_CHECKING:
    from .wsgi import OpusApp

__all__ = ["PAGE_CSP", "PAGE_RULES", "PAGE_VIEWS", "services_page"]

PAGE_CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
"""Content-Security-Policy of every page: our own static script and style, images from this
origin (results, the provenance graph), nothing inline, no frames."""

CSRF_COOKIE = "opus_min_csrf"
"""Per-browser random token every page form carries back (double-submit)."""

CSRF_FIELD = "csrf_token"

PAGE_SIZE = 20
"""Jobs per page of a job list (``per_page`` may ask for 1 to ``MAX_PAGE_SIZE``)."""
MAX_PAGE_SIZE = 200
MAX_PAGE = 100_000

LOG_TAIL_BYTES = 16 * 1024
"""How much of the end of stdout and stderr the job page shows (the full files are results)."""

INLINE_IMAGES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})
"""Result types shown inline on the job page (SVG is not: a result is untrusted content)."""

FLOAT_TYPES = frozenset({"float", "double"})

STATIC_FILES = {
    "opus.css": "text/css; charset=utf-8",
    "opus.js": "text/javascript; charset=utf-8",
}
"""The only files served from ``opus_min/static`` (by name, never by path)."""

_TOKEN_CHARS = re.compile(r"^[A-Za-z0-9_\-]{1,200}$")
_CSRF_SHAPE = re.compile(r"^[A-Za-z0-9_\-]{43}$")
_RUN_ID_FIELD = "RUNID"
_DURATION_FIELD = "EXECUTIONDURATION"

View = Callable[..., Response]

_templates = jinja2.Environment(
    loader=jinja2.PackageLoader("opus_min", "templates"),
    autoescape=True,
    undefined=jinja2.StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
)


def _instant(value: datetime | None) -> str:
    return value.strftime("%Y-%m-%d %H:%M:%S UTC") if value is not None else "—"


def _filesize(size: int) -> str:
    value = float(size)
    for unit in ("bytes", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{size} bytes" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} bytes"  # pragma: no cover


def _elapsed(job: Job) -> str:
    if job.start_time is None or job.end_time is None:
        return ""
    seconds = (job.end_time - job.start_time).total_seconds()
    if seconds < 120:
        return f"{seconds:.1f} s"
    return f"{seconds / 60:.1f} min"


_templates.filters["instant"] = _instant
_templates.filters["filesize"] = _filesize


# -- the form a service description generates ------------------------------------------------


@dataclass(frozen=True)
class Field:
    """One form control generated from an InputParam or a Used entity."""

    name: str
    kind: str
    """``number``, ``text``, ``select`` or ``file``."""
    label: str
    description: str
    required: bool
    unit: str = ""
    default: str | None = None
    options: tuple[str, ...] = ()
    minimum: str | None = None
    maximum: str | None = None
    step: str | None = None
    maxlength: int | None = None
    hint: str = ""
    reference: str = ""
    """For a Used entity: what its value/ID field takes instead of a file."""
    multiple: bool = False
    """For a Used entity whose multiplicity admits several files."""

    @property
    def id(self) -> str:
        return f"f-{self.name}"


def _bound_text(param: InputParam) -> str:
    parts = []
    if param.minimum is not None:
        parts.append(f"{'≥' if param.minimum_inclusive else '>'} {param.minimum}")
    if param.maximum is not None:
        parts.append(f"{'≤' if param.maximum_inclusive else '<'} {param.maximum}")
    return " and ".join(parts)


def _html_bound(bound: str | None, inclusive: bool, nudge: int, integer: bool) -> str | None:
    """A MIN/MAX as an HTML ``min``/``max`` (inclusive): an exclusive integer bound moves by one;
    an exclusive real bound cannot be said in HTML and is left to the server's check."""
    if bound is None:
        return None
    if inclusive:
        return bound
    text = bound.strip()
    if integer and text.lstrip("+-").isdigit():
        return str(int(text) + nudge)
    return None


def _param_field(param: InputParam) -> Field:
    hints = []
    if param.datatype != "char" and param.datatype != "unicodeChar":
        hints.append(param.datatype + (f"[{param.arraysize}]" if is_array(param) else ""))
    bounds = _bound_text(param)
    if bounds:
        hints.append(bounds)
    if param.ucd:
        hints.append(f"UCD {param.ucd}")
    common: dict[str, Any] = {
        "name": param.name,
        "label": param.name,
        "description": param.description,
        "required": param.required,
        "unit": param.unit or "",
        "default": param.default,
        "hint": "; ".join(hints),
    }
    if param.options:
        return Field(kind="select", options=param.options, **common)
    if param.datatype == "boolean" and not is_array(param):
        return Field(kind="select", options=("true", "false"), **common)
    numeric = param.datatype in INT_RANGES or param.datatype in FLOAT_TYPES
    if numeric and not is_array(param):
        integer = param.datatype in INT_RANGES
        minimum = _html_bound(param.minimum, param.minimum_inclusive, +1, integer)
        maximum = _html_bound(param.maximum, param.maximum_inclusive, -1, integer)
        if integer:  # the datatype's own range, where the description sets none
            low, high = INT_RANGES[param.datatype]
            minimum = str(low) if minimum is None else minimum
            maximum = str(high) if maximum is None else maximum
        step = "1" if integer else "any"
        return Field(kind="number", minimum=minimum, maximum=maximum, step=step, **common)
    maxlength = None
    if param.datatype in ("char", "unicodeChar") and param.arraysize:
        digits = param.arraysize.rstrip("*")
        maxlength = int(digits) if digits.isdigit() else None
    if is_array(param):
        common["hint"] = "values separated by spaces; " + common["hint"]
    return Field(kind="text", maxlength=maxlength, **common)


def form_fields(svc: ServiceDescription) -> tuple[list[Field], list[Field]]:
    """The parameter fields and the file fields of a service's form."""
    params = [_param_field(p) for p in svc.parameters]
    files = [
        Field(
            name=e.name,
            kind="file",
            label=e.name,
            description=e.description,
            required=e.multiplicity.strip() not in OPTIONAL_MULTIPLICITIES,
            reference=_reference_hint(e),
            multiple=allows_many(e.multiplicity),
            hint="; ".join(
                part
                for part in (
                    e.content_type,
                    f"role {e.role}" if e.role else "",
                    f"multiplicity {e.multiplicity}" if e.multiplicity else "",
                )
                if part
            ),
        )
        for e in svc.used
    ]
    return params, files


def _reference_hint(entity: UsedEntity) -> str:
    url = entity.url.strip()
    if url and url != "file://$ID" and "$ID" in url:
        return f"or an ID, fetched from {url}"
    return "or the http(s) URL of the file (a result URL of this server works too)"


def _field_of_error(message: str, svc: ServiceDescription) -> str | None:
    """The form field a server message is about (messages start with ``name:``)."""
    head = message.split(":", 1)[0].strip() if ":" in message else ""
    if head:
        param = svc.parameter(head)
        if param is not None:
            return param.name
        entity = svc.used_entity(head)
        if entity is not None:
            return entity.name
    upper = message.upper()
    for control in (_RUN_ID_FIELD, _DURATION_FIELD):
        if upper.startswith(control):
            return control
    return None


# -- shared page machinery -----------------------------------------------------------------


def _base(app: OpusApp, request: Request) -> str:
    return app.base_url(request)


def _caller(request: Request) -> Caller:
    """The caller, as ``views._owner`` asks (raises 401/403 when there is none)."""
    return request.environ[CALLER_ENVIRON_KEY]()  # type: ignore[no-any-return]


def _maybe_caller(request: Request) -> Caller | None:
    try:
        return _caller(request)
    except UWSError:
        return None


def _csrf_token(request: Request) -> str:
    token = request.cookies.get(CSRF_COOKIE, "")
    if _CSRF_SHAPE.match(token):
        return token
    fresh = request.environ.get("opus_min.csrf_new")
    if fresh is None:
        fresh = secrets.token_urlsafe(32)
        request.environ["opus_min.csrf_new"] = fresh
    return str(fresh)


def _own_origins(app: OpusApp, request: Request) -> set[str]:
    origins = {f"{request.scheme}://{request.host}"}
    if app.config.base_url:
        parts = urlsplit(app.config.base_url)
        origins.add(f"{parts.scheme}://{parts.netloc}")
    return origins


def _check_post(app: OpusApp, request: Request) -> None:
    """Refuse a page POST that another site could have made; then allow the sign-in cookie.

    Raises
    ------
    Forbidden
        Raised for a cross-site request or a missing or wrong form token.
    """
    fetch_site = request.headers.get("Sec-Fetch-Site")
    if fetch_site is not None and fetch_site not in ("same-origin", "none"):
        raise Forbidden("form submitted from another site; open the page here and try again")
    origin = request.headers.get("Origin")
    # "null" is what a browser sends under Referrer-Policy: no-referrer; the token decides then.
    if origin and origin != "null" and origin.rstrip("/") not in _own_origins(app, request):
        raise Forbidden("form submitted from another site; open the page here and try again")
    cookie = request.cookies.get(CSRF_COOKIE, "")
    sent = request.form.get(CSRF_FIELD, "")
    if not _CSRF_SHAPE.match(cookie) or not hmac.compare_digest(cookie, sent):
        raise Forbidden("the form is out of date or came from elsewhere; reload the page")
    request.environ[COOKIE_ALLOWED_ENVIRON_KEY] = True


def _secure(app: OpusApp, request: Request) -> bool:
    return request.scheme == "https" or app.config.base_url.startswith("https:")


def _cookie_options(app: OpusApp, request: Request) -> dict[str, object]:
    """The one policy of our cookies (CSRF token, sign-in token): never readable by scripts,
    never sent cross-site, only over TLS when the site is served over TLS."""
    return {"path": "/", "httponly": True, "samesite": "Strict", "secure": _secure(app, request)}


def _filter_choices(app: OpusApp, phases: Sequence[Phase]) -> dict[str, Any]:
    """What the service and phase filters (``_filters.html``) offer and which phases are on."""
    return {
        "all_services": sorted(app.jobs.services),
        "phases": [p.value for p in Phase],
        "selected": {p.value for p in phases},
    }


def _render(
    app: OpusApp, request: Request, template: str, status: int = 200, **context: Any
) -> Response:
    base = _base(app, request)
    caller = _maybe_caller(request) if app.auth.mode != "anonymous" else None
    body = _templates.get_template(template).render(
        base=base,
        ui=f"{base}/ui",
        static=f"{base}/ui/static",
        title=app.config.registry_title,
        auth_mode=app.auth.mode,
        user=caller.name if caller is not None and caller.name else None,
        csrf=_csrf_token(request),
        csrf_field=CSRF_FIELD,
        here=_relative_here(request),
        **context,
    )
    return Response(body, status=status, content_type="text/html; charset=utf-8")


def _relative_here(request: Request) -> str:
    query = request.query_string.decode("latin-1")
    return request.path + (f"?{query}" if query else "")


def _error_page(app: OpusApp, request: Request, status: int, label: str, message: str) -> Response:
    return _render(app, request, "error.html", status=status, label=label, message=message)


def _page(view: View) -> View:
    """Run a page view: domain errors become HTML error pages (a browser that must sign in is
    sent to the sign-in page); every page gets its CSP and the CSRF cookie."""

    @functools.wraps(view)
    def wrapper(app: OpusApp, request: Request, **values: Any) -> Response:
        try:
            response = view(app, request, **values)
        except Unauthenticated as exc:
            if app.auth.mode == "token" and request.method == "GET":
                target = urlencode({"next": _relative_here(request)})
                response = redirect(f"{_base(app, request)}/ui/signin?{target}", code=303)
            else:
                response = _error_page(app, request, 401, exc.label, exc.message)
                response.headers["WWW-Authenticate"] = f'Bearer realm="{REALM}"'
        except UWSError as exc:
            response = _error_page(app, request, exc.code, exc.label, exc.message)
        except HTTPException as exc:
            if isinstance(exc, RequestRedirect) or exc.code is None or exc.code >= 500:
                raise
            response = _error_page(
                app, request, exc.code, exc.name.replace(" ", ""), exc.description or ""
            )
        response.headers["Content-Security-Policy"] = PAGE_CSP
        fresh = request.environ.get("opus_min.csrf_new")
        if fresh is not None:
            response.set_cookie(CSRF_COOKIE, fresh, **_cookie_options(app, request))
        return response

    return wrapper


# -- services ------------------------------------------------------------------------------


def _safe_link(url: str) -> str:
    """A documentation link only if it is http(s) (never ``javascript:`` or ``data:``)."""
    return url if urlsplit(url.strip()).scheme in ("http", "https") else ""


def services_page(app: OpusApp, request: Request) -> Response:
    """The list of services (``/ui/`` and ``/`` for browsers)."""
    return _page(_services)(app, request)


def _services(app: OpusApp, request: Request) -> Response:
    services = [
        {
            "svc": svc,
            "doculink": _safe_link(svc.doculink),
            "restricted": name in app.jobs.restricted_services,
        }
        for name, svc in sorted(app.jobs.services.items())
    ]
    return _render(app, request, "services.html", services=services)


# -- the form ------------------------------------------------------------------------------


def _service_form(app: OpusApp, request: Request, service: str) -> Response:
    svc = app.jobs.service(service)
    if request.method == "POST":
        return _create(app, request, svc)
    return _form_page(app, request, svc)


def _form_page(
    app: OpusApp,
    request: Request,
    svc: ServiceDescription,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    message: str = "",
    status: int = 200,
) -> Response:
    params, files = form_fields(svc)
    errors = errors or {}
    return _render(
        app,
        request,
        "form.html",
        status=status,
        svc=svc,
        params=params,
        files=files,
        values=values or {},
        errors=errors,
        message=message,
        run_id_field=_RUN_ID_FIELD,
        duration_field=_DURATION_FIELD,
        controls_open=_RUN_ID_FIELD in errors or _DURATION_FIELD in errors,
        duration_default=svc.execution_duration or app.config.execution_duration_default,
        duration_max=app.config.execution_duration_max,
        restricted=svc.name in app.jobs.restricted_services,
    )


def _submitted(svc: ServiceDescription, request: Request) -> list[tuple[str, str]]:
    """The form's job fields: empty numeric, boolean or OPTION fields are left out (the default,
    or the 'required' message, applies); control fields only when filled in."""
    fields: list[tuple[str, str]] = []
    for name, value in request.form.items(multi=True):
        if name == CSRF_FIELD:
            continue
        if name in (_RUN_ID_FIELD, _DURATION_FIELD):
            if value.strip():
                fields.append((name, value.strip()))
            continue
        if name == "PHASE":
            fields.append((name, value))
            continue
        param = svc.parameter(name)
        if param is None:
            entity = svc.used_entity(name)
            if entity is not None and value.strip():
                fields.append((entity.name, value.strip()))  # an input given by reference
            continue  # the generated form sends nothing else; ignore anything added to it
        textual = param.datatype in ("char", "unicodeChar") and not param.options
        if not textual and not value.strip():
            continue  # "—" in a select, or an emptied number: not given
        fields.append((param.name, value))
    return fields


def _create(app: OpusApp, request: Request, svc: ServiceDescription) -> Response:
    _check_post(app, request)
    fields = _submitted(svc, request)
    # A file input left empty still sends a part (no file name, no bytes): not an upload.
    uploads = [
        Upload(name, storage.filename or name, storage.stream)
        for name, storage in request.files.items(multi=True)
        if storage.filename and svc.used_entity(name) is not None
    ]
    values = {name: value for name, value in request.form.items() if name != CSRF_FIELD}
    try:
        job = app.jobs.create(
            svc.name, _caller(request), fields, uploads, base_url=_base(app, request)
        )
    except UsageError as exc:
        field = _field_of_error(exc.message, svc)
        errors = {field: exc.message} if field else {}
        return _form_page(
            app,
            request,
            svc,
            values=values,
            errors=errors,
            message="" if field else exc.message,
            status=400,
        )
    except Forbidden as exc:
        return _form_page(app, request, svc, values=values, message=exc.message, status=403)
    return redirect(_job_page_url(app, request, job), code=303)


# -- job lists -----------------------------------------------------------------------------


def _job_page_url(app: OpusApp, request: Request, job: Job) -> str:
    return f"{_base(app, request)}/ui/jobs/{job.service}/{job.id}"


def _int_arg(request: Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.args.get(name, "").strip()
    if not raw:
        return default
    if not raw.isdigit() or not low <= int(raw) <= high:
        raise UsageError(f"{name} must be a whole number from {low} to {high}, not {raw[:40]!r}")
    return int(raw)


def _job_list(app: OpusApp, request: Request, service: str | None = None) -> Response:
    caller = _caller(request)
    if service is not None:
        app.jobs.service(service)
    chosen = request.args.get("service", "").strip() if service is None else service
    if chosen:
        app.jobs.service(chosen)
    services = [chosen] if chosen else sorted(app.jobs.services)
    raw_phases = [p for p in request.args.getlist("phase") if p.strip()]
    phases = parse_phase_filter(raw_phases) if raw_phases else ()
    page = _int_arg(request, "page", 1, 1, MAX_PAGE)
    per_page = _int_arg(request, "per_page", PAGE_SIZE, 1, MAX_PAGE_SIZE)
    found = app.jobs.list_page(services, caller, phases, (page - 1) * per_page, per_page + 1)
    jobs, more = found[:per_page], len(found) > per_page

    def page_url(number: int) -> str:
        args: list[tuple[str, str]] = []
        if service is None and chosen:
            args.append(("service", chosen))
        args.extend(("phase", p.value) for p in phases)
        if per_page != PAGE_SIZE:
            args.append(("per_page", str(per_page)))
        if number > 1:
            args.append(("page", str(number)))
        path = f"/ui/services/{service}/jobs" if service else "/ui/jobs"
        return f"{_base(app, request)}{path}" + (f"?{urlencode(args)}" if args else "")

    return _render(
        app,
        request,
        "jobs.html",
        jobs=jobs,
        service=service,
        chosen=chosen,
        **_filter_choices(app, phases),
        page=page,
        newer=page_url(page - 1) if page > 1 else None,
        older=page_url(page + 1) if more else None,
        per_page=per_page,
        default_per_page=PAGE_SIZE,
        admin=caller.admin,
        show_owner=caller.admin or app.auth.mode != "anonymous",
    )


def _service_jobs(app: OpusApp, request: Request, service: str) -> Response:
    return _job_list(app, request, service)


# -- the job page ----------------------------------------------------------------------------


def _tail(app: OpusApp, job: Job, result: Result) -> str:
    try:
        path = app.jobs.files.read_path(job.id, result.path)
        with path.open("rb") as handle:
            size = handle.seek(0, 2)
            handle.seek(max(0, size - LOG_TAIL_BYTES))
            data = handle.read()
    except (OSError, UWSError):
        return ""
    text = data.decode("utf-8", "replace")
    return ("…" + text) if size > LOG_TAIL_BYTES else text


def _provenance(app: OpusApp, request: Request, job: Job) -> dict[str, Any] | None:
    """Links to the provenance graph and documents of a finished job, when this server has a
    ProvSAP endpoint."""
    rules = [r for r in app.url_map.iter_rules() if r.endpoint == "provsap"]
    if not rules or job.phase not in (Phase.COMPLETED, Phase.ERROR, Phase.ABORTED):
        return None
    url = _base(app, request) + rules[0].rule

    def link(fmt: str) -> str:
        return f"{url}?{urlencode({'ID': job.id, 'RESPONSEFORMAT': fmt})}"

    return {
        "svg": link("SVG"),
        "formats": [(name, link(name)) for name in ("PROV-JSON", "PROV-XML", "PROV-N")],
    }


def _job_page(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    if request.method == "POST":
        return _job_action(app, request, service, job_id)
    caller = _caller(request)
    job = app.jobs.get(service, job_id, caller)
    svc = app.jobs.services.get(service)
    job_url = app.job_url(request, job)
    logs = {}
    results = []
    for result in job.results:
        if result.id in ("stdout", "stderr"):
            logs[result.id] = _tail(app, job, result)
        results.append(
            {
                "result": result,
                "url": f"{job_url}/results/{result.id}",
                "image": result.mime_type in INLINE_IMAGES,
                "description": next(
                    (g.description for g in (svc.generated if svc else ()) if g.name == result.id),
                    "",
                ),
            }
        )
    return _render(
        app,
        request,
        "job.html",
        job=job,
        job_url=job_url,
        page_url=_job_page_url(app, request, job),
        results=results,
        logs=logs,
        elapsed=_elapsed(job),
        live=job.phase in WAITABLE_PHASES,
        can_run=job.phase in (Phase.PENDING, Phase.HELD),
        can_abort=job.phase in ACTIVE_PHASES,
        provenance=_provenance(app, request, job),
        mine=caller.name == job.owner,
    )


def _job_action(app: OpusApp, request: Request, service: str, job_id: str) -> Response:
    _check_post(app, request)
    caller = _caller(request)
    action = request.form.get("action", "")
    if action == "run":
        job = app.jobs.run(service, job_id, caller)
    elif action == "abort":
        job = app.jobs.abort(service, job_id, caller)
    elif action == "delete":
        app.jobs.delete(service, job_id, caller)
        return redirect(f"{_base(app, request)}/ui/services/{service}/jobs", code=303)
    else:
        raise UsageError(f"action must be run, abort or delete, not {action[:40]!r}")
    return redirect(_job_page_url(app, request, job), code=303)


# -- sign-in (token mode) ------------------------------------------------------------------


def _next_target(app: OpusApp, request: Request, raw: str) -> str:
    """Where to go after signing in: a page of this site only (never another host)."""
    raw = raw.strip()
    if not raw.startswith("/ui/") or "\\" in raw or any(ord(c) < 0x20 for c in raw):
        raw = "/ui/"
    return _base(app, request) + raw


def _signin(app: OpusApp, request: Request) -> Response:
    if app.auth.mode != "token":
        raise UnknownResource(
            f"this server identifies users in {app.auth.mode} mode: there is nothing to sign in to"
        )
    next_raw = request.values.get("next", "/ui/")
    if request.method == "GET":
        return _render(app, request, "signin.html", next=next_raw, error="")
    _check_post(app, request)
    token = request.form.get("token", "").strip()
    error = ""
    caller: Caller | None = None
    if not _TOKEN_CHARS.match(token):
        error = "that is not a token: paste the om_… token `opus-min users` printed"
    else:
        try:
            caller = app.auth.identify(authorization=f"Bearer {token}", peer=None, proxy_user=None)
        except UWSError as exc:
            error = exc.message
    if caller is None:
        return _render(app, request, "signin.html", status=403, next=next_raw, error=error)
    response = redirect(_next_target(app, request, next_raw), code=303)
    response.set_cookie(TOKEN_COOKIE, token, **_cookie_options(app, request))
    return response


def _signout(app: OpusApp, request: Request) -> Response:
    _check_post(app, request)
    response = redirect(f"{_base(app, request)}/ui/", code=303)
    response.delete_cookie(TOKEN_COOKIE, **_cookie_options(app, request))
    return response


# -- static files --------------------------------------------------------------------------


def ui_static(app: OpusApp, request: Request, name: str) -> Response:
    content_type = STATIC_FILES.get(name)
    if content_type is None:
        raise UnknownResource(f"no static file {name[:80]!r}")
    body = (resources.files("opus_min") / "static" / name).read_bytes()
    response = Response(body, content_type=content_type)
    response.headers["Cache-Control"] = "public, max-age=300"
    return response


PAGE_RULES: Sequence[Rule] = (
    Rule("/ui/", endpoint="ui_home", methods=["GET"]),
    Rule("/ui/static/<name>", endpoint="ui_static", methods=["GET"]),
    Rule("/ui/jobs", endpoint="ui_jobs", methods=["GET"]),
    Rule("/ui/jobs/<service>/<job_id>", endpoint="ui_job", methods=["GET", "POST"]),
    Rule("/ui/services/<service>", endpoint="ui_service", methods=["GET", "POST"]),
    Rule("/ui/services/<service>/jobs", endpoint="ui_service_jobs", methods=["GET"]),
    Rule("/ui/signin", endpoint="ui_signin", methods=["GET", "POST"]),
    Rule("/ui/signout", endpoint="ui_signout", methods=["POST"]),
)
"""The page routes (``wsgi`` adds them to its Map)."""

PAGE_VIEWS: dict[str, View] = {
    "ui_home": _page(_services),
    "ui_static": ui_static,
    "ui_jobs": _page(_job_list),
    "ui_job": _page(_job_page),
    "ui_service": _page(_service_form),
    "ui_service_jobs": _page(_service_jobs),
    "ui_signin": _page(_signin),
    "ui_signout": _page(_signout),
}
"""Endpoint name → page view."""
