"""Operator pages under ``/ui/admin/``: the service-definition editor, users and tokens, every
user's jobs with bulk abort/delete, loaded services and load problems, the effective
configuration (secrets masked).

Who may use them: with identity on (``token``/``proxy``), callers with the ``admin`` role; in
``anonymous`` mode, where nobody is an administrator, only requests from a loopback address
(the operator on the server's own machine). POSTs pass the pages' CSRF checks first.
Nothing here writes into ``services/``: the editor hands its files back as downloads.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Sequence
from dataclasses import fields
from typing import TYPE_CHECKING, Any

from werkzeug.routing import Rule
from werkzeug.wrappers import Request, Response

from .editor import (
    KINDS,
    Draft,
    check_draft,
    draft_from_form,
    draft_from_service,
    render_files,
    scaffold,
    zip_files,
)
from .identity import ANONYMOUS, Caller, check_user_name
from .pages import _caller, _check_post, _filter_choices, _int_arg, _page, _render
from .users import UserError
from .uws.controls import parse_phase_filter
from .uws.errors import Forbidden, UsageError, UWSError
from .votable.loader import MAX_FILE_SIZE
from .votable.parse import parse_service

if TYPE_CHECKING:
    from .wsgi import OpusApp

__all__ = ["ADMIN_RULES", "ADMIN_VIEWS", "mask_config"]

_SECRET_NAME = re.compile(r"(secret|password|passwd|token|_key$|credential)", re.IGNORECASE)
_URL_USERINFO = re.compile(r"^([a-z][a-z0-9+.-]*://)[^/@]*@", re.IGNORECASE)
MASK = "•••• (set)"
ROW_LABELS = {"p": "parameter", "u": "Used entity", "g": "Generated result"}
ADMIN_PAGE_SIZE = 50


def mask_config(config: Any) -> list[tuple[str, str]]:
    """Every configuration key with its effective value; secrets (by key name) are replaced by
    a mask and credentials inside URLs are cut out."""
    out = []
    for f in fields(config):
        value = getattr(config, f.name)
        text = str(value).lower() if isinstance(value, bool) else str(value)
        if text and _SECRET_NAME.search(f.name):
            text = MASK
        else:
            text = _URL_USERINFO.sub(r"\1••••@", text)
        out.append((f.name, text))
    return out


def _loopback(request: Request) -> bool:
    try:
        return ipaddress.ip_address(str(request.remote_addr or "").split("%", 1)[0]).is_loopback
    except ValueError:
        return False


def _admin(app: OpusApp, request: Request, *, post: bool = False) -> Caller:
    """The administrator making this request (after the CSRF checks of a POST).

    Raises
    ------
    Forbidden
        Raised for a non-admin caller, or in anonymous mode for a non-loopback peer.
    Unauthenticated
        Raised when identity is on and the caller gave no credentials.
    """
    if post:
        _check_post(app, request)
    if app.auth.mode == "anonymous":
        if not _loopback(request):
            raise Forbidden(
                "with auth = anonymous the operator pages answer only on the server's own "
                "machine (a loopback address)"
            )
        return ANONYMOUS
    caller = _caller(request)
    if not caller.admin:
        raise Forbidden(f"{caller.describe()} is not an administrator (role admin)")
    return caller


# -- overview: services, problems, configuration ------------------------------------------


def _overview(app: OpusApp, request: Request) -> Response:
    _admin(app, request)
    return _render(
        app,
        request,
        "admin.html",
        services=sorted(app.jobs.services.values(), key=lambda s: s.name),
        problems=app.problems,
        services_dir=str(app.config.services),
        config=mask_config(app.config),
    )


# -- users and tokens ----------------------------------------------------------------------


def _roles(raw: str) -> list[str]:
    roles = [r.strip() for r in raw.replace(" ", ",").split(",") if r.strip()]
    for role in roles:
        if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}", role):
            raise UsageError(
                f"role {role[:40]!r}: letters, digits, _ . - (a service name or admin)"
            )
    return roles


def _users(app: OpusApp, request: Request) -> Response:
    post = request.method == "POST"
    _admin(app, request, post=post)
    store = app.auth.users
    message, new_token, status = "", None, 200
    if post:
        action = request.form.get("action", "")
        name = request.form.get("user", "").strip()
        try:
            if action == "create":
                check_user_name(name)
                store.add(name, _roles(request.form.get("roles", "")), None)
                new_token = (name, *store.issue_token(name))
                message = f"user {name} created"
            elif action == "token":
                new_token = (name, *store.issue_token(name))
                message = f"new token for {name}"
            elif action == "roles":
                store.update(name, roles=_roles(request.form.get("roles", "")))
                message = f"roles of {name} saved"
            elif action == "revoke_user":
                count = store.revoke_user(name)
                message = f"user {name} disabled, {count} token(s) revoked"
            elif action == "enable":
                store.update(name, enable=True)
                message = f"user {name} enabled"
            elif action == "revoke_token":
                token_id = request.form.get("token_id", "").strip()
                owner = store.revoke_token(token_id)
                message = f"token {token_id} of {owner} revoked"
            else:
                raise UsageError(f"unknown action {action[:40]!r}")
        except (ValueError, UserError, UsageError) as exc:
            message = exc.message if isinstance(exc, UWSError) else str(exc)
            status = 400
    response = _render(
        app,
        request,
        "admin_users.html",
        status=status,
        users=store.list(),
        message=message,
        failed=status != 200,
        new_token=new_token,
    )
    response.headers["Cache-Control"] = "no-store"
    return response


# -- every user's jobs ---------------------------------------------------------------------


def _jobs(app: OpusApp, request: Request) -> Response:
    post = request.method == "POST"
    caller = _admin(app, request, post=post)
    message, status = "", 200
    if post:
        action = request.form.get("action", "")
        if action not in ("abort", "delete"):
            raise UsageError(f"action must be abort or delete, not {action[:40]!r}")
        chosen = request.form.getlist("job")
        if not chosen:
            raise UsageError("no job selected")
        done, failed = 0, []
        for key in chosen[:1000]:
            service, _, job_id = key.partition("/")
            try:
                if action == "abort":
                    app.jobs.abort(service, job_id, caller)
                else:
                    app.jobs.delete(service, job_id, caller)
                done += 1
            except UWSError as exc:
                failed.append(f"{key[:60]}: {exc.message}")
        message = f"{action}: {done} job(s) done" + (
            f"; failed: {'; '.join(failed)}" if failed else ""
        )
        status = 200 if not failed else 400
    args = request.values if post else request.args
    chosen_service = args.get("service", "").strip()
    if chosen_service:
        app.jobs.service(chosen_service)
    services = [chosen_service] if chosen_service else sorted(app.jobs.services)
    raw_phases = [p for p in args.getlist("phase") if p.strip()]
    phases = parse_phase_filter(raw_phases) if raw_phases else ()
    owner = args.get("owner", "").strip()
    page = _int_arg(request, "page", 1, 1, 100_000)
    found = app.jobs.store.list_page(
        services,
        owner or None,
        phases,
        (page - 1) * ADMIN_PAGE_SIZE,
        ADMIN_PAGE_SIZE + 1,
    )
    return _render(
        app,
        request,
        "admin_jobs.html",
        status=status,
        jobs=found[:ADMIN_PAGE_SIZE],
        more=len(found) > ADMIN_PAGE_SIZE,
        page=page,
        chosen=chosen_service,
        owner=owner,
        **_filter_choices(app, phases),
        message=message,
        failed=status != 200,
    )


# -- the definition editor -----------------------------------------------------------------


def _editor_page(
    app: OpusApp, request: Request, draft: Any, problems: dict[str, list[str]], **extra: Any
) -> Response:
    status = extra.pop("status", 200)
    return _render(
        app,
        request,
        "editor.html",
        status=status,
        draft=draft,
        problems=problems,
        kinds=KINDS,
        row_labels=ROW_LABELS,
        datatypes=(
            "char",
            "unicodeChar",
            "boolean",
            "unsignedByte",
            "short",
            "int",
            "long",
            "float",
            "double",
        ),
        loaded=sorted(app.jobs.services),
        checked=extra.pop("checked", False),
        message=extra.pop("message", ""),
    )


def _download(data: bytes, filename: str, content_type: str) -> Response:
    response = Response(data, content_type=content_type)
    response.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    return response


def _editor(app: OpusApp, request: Request) -> Response:
    if request.method == "GET":
        _admin(app, request)
        name = request.args.get("service", "").strip()
        if name:
            draft = draft_from_service(app.jobs.service(name))
            return _editor_page(app, request, draft, {}, message=f"loaded {name} from services/")
        svc, _ = scaffold("new_service")
        return _editor_page(app, request, draft_from_service(svc), {})
    _admin(app, request, post=True)
    action = request.form.get("action", "check")
    if action == "upload":
        return _load_upload(app, request)
    add = action[len("add_") :] if action.startswith("add_") else ""
    try:
        draft = draft_from_form(request.form, add=add if add in KINDS else "")
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    if add:
        return _editor_page(app, request, draft, {})
    result = check_draft(draft)
    if result.service is None or action == "check":
        ok = result.service is not None
        return _editor_page(
            app,
            request,
            draft,
            result.problems,
            checked=ok,
            status=200 if ok else 400,
            message="" if ok else "the description has problems: see the marked fields",
        )
    files = render_files(result.service)
    name = result.service.name
    if action == "xml":
        return _download(files[f"{name}.xml"], f"{name}.xml", "application/xml")
    if action == "sh":
        return _download(files[f"{name}.sh"], f"{name}.sh", "text/x-shellscript; charset=utf-8")
    if action == "zip":
        return _download(zip_files(files), f"{name}.zip", "application/zip")
    raise UsageError(f"unknown editor action {action[:40]!r}")


def _read_upload(request: Request, field: str) -> tuple[bytes, str] | None:
    storage = request.files.get(field)
    if storage is None or not storage.filename:
        return None
    data = storage.stream.read(MAX_FILE_SIZE + 1)
    if len(data) > MAX_FILE_SIZE:
        raise UsageError(f"{field}: the file is larger than {MAX_FILE_SIZE} bytes (1 MiB)")
    return data, storage.filename


def _load_upload(app: OpusApp, request: Request) -> Response:
    xml = _read_upload(request, "xml_file")
    if xml is None:
        raise UsageError("choose the .xml description to load")
    script = _read_upload(request, "sh_file")
    script_text = None
    if script is not None:
        try:
            script_text = script[0].decode("utf-8")
        except UnicodeDecodeError:
            raise UsageError("the script is not UTF-8 text") from None
    filename = xml[1].rsplit("/", 1)[-1].rsplit("\\", 1)[-1]
    svc, problems = parse_service(xml[0], path=filename, script=script_text or "#!/bin/bash\n")
    if svc is None:
        return _editor_page(
            app,
            request,
            Draft(),
            {"": [str(p) for p in problems]},
            status=400,
            message=f"{filename} does not load",
        )
    draft = draft_from_service(svc)
    note = "" if script_text is not None else " (no script uploaded: write it below)"
    if script_text is None and "script" not in svc.extra:
        draft.fields["script"] = ""
    return _editor_page(app, request, draft, {}, message=f"loaded {filename}{note}")


ADMIN_RULES: Sequence[Rule] = (
    Rule("/ui/admin/", endpoint="ui_admin", methods=["GET"]),
    Rule("/ui/admin/users", endpoint="ui_admin_users", methods=["GET", "POST"]),
    Rule("/ui/admin/jobs", endpoint="ui_admin_jobs", methods=["GET", "POST"]),
    Rule("/ui/admin/editor", endpoint="ui_admin_editor", methods=["GET", "POST"]),
)

ADMIN_VIEWS = {
    "ui_admin": _page(_overview),
    "ui_admin_users": _page(_users),
    "ui_admin_jobs": _page(_jobs),
    "ui_admin_editor": _page(_editor),
}
