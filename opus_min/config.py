"""Configuration: one TOML file plus ``OPUS_MIN_*`` environment overrides.

The file is found by ``--config`` or ``OPUS_MIN_CONFIG``; every key can be overridden by the
environment variable ``OPUS_MIN_<KEY>`` (upper case), e.g. ``OPUS_MIN_EXECUTOR=slurm``.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, fields, replace
from pathlib import Path
from typing import Any

__all__ = ["Config", "ConfigError", "load_config"]


class ConfigError(ValueError):
    """The configuration file or an override is not usable."""


@dataclass(frozen=True)
class Config:
    """Every setting of the server, with the embedded defaults of ``make run``."""

    base_url: str = ""
    """Public base URL (``https://host/prefix``); empty = taken from each request's Host."""
    host: str = "127.0.0.1"
    port: int = 8000
    threads: int = 48
    """Server threads; WAIT requests hold one each, so this bounds concurrent waiters too."""
    database: Path = Path("var/opus_min.sqlite")
    services: Path = Path("services")
    work_root: Path = Path("var/jobs")
    executor: str = "local"
    max_concurrent_jobs: int = 4
    """Jobs the local executor runs at once; others stay QUEUED."""
    wait_max: int = 55
    """Cap in seconds on ``WAIT`` (pyvo reads with a 60 s timeout)."""
    execution_duration_default: int = 600
    """executionDuration when the service description gives none (seconds)."""
    execution_duration_max: int = 86400
    allow_unlimited_duration: bool = False
    """Whether a client may ask for executionDuration=0 (unlimited)."""
    destruction_interval: int = 7 * 86400
    """Seconds from creation to destruction."""
    destruction_max: int = 30 * 86400
    destruction_policy: str = "delete"
    """What the reaper does at destruction time: ``delete`` or ``archive``."""
    reaper_interval: float = 60.0
    upload_max_bytes: int = 100 * 1024 * 1024
    form_max_bytes: int = 1024 * 1024
    """Limit on the non-file part of a request body."""
    last_redirect: int = 50
    """``LAST`` added to the job-list redirect after DELETE."""
    # -- VO discovery (descriptors, VOSI, registry) --
    authority: str = "opus-min.invalid"
    """IVOA naming authority of the records (``ivo://<authority>/uws/<service>``)."""
    registry_title: str = "opus_min job services"
    publisher: str = "opus_min operators"
    contact_name: str = ""
    """Curation contact of the VOResource records (defaults to the publisher)."""
    contact_email: str = ""
    registry_plugin: str = "opus_min.vo.oai:OAIRegistry"
    """``module:Class`` of the registry face served at ``/oai.xml``; empty = none."""
    oai_page_size: int = 50
    """Records per OAI-PMH list response before a resumptionToken."""
    # -- identity and ownership --
    auth: str = "anonymous"
    """``anonymous`` (one shared owner), ``token`` (Bearer/Basic tokens of ``opus-min users``)
    or ``proxy`` (a trusted front-end proxy names the user)."""
    proxy_trusted: str = ""
    """Comma-separated addresses or networks of the proxy; only their TCP peers are believed."""
    proxy_user_header: str = "X-Remote-User"
    """Header in which the proxy names the user, or ``REMOTE_USER`` for the WSGI variable."""
    restricted_services: str = ""
    """Comma-separated services whose jobs only users with that role (or admin) may create."""
    max_active_jobs: int = 0
    """Active (PENDING to SUSPENDED) jobs one user may have at once; 0 = no limit."""
    # -- provenance and inputs by reference --
    fetch_timeout: float = 30.0
    """Seconds a Used input given by URL may take to download (connect and whole body)."""
    voprov_namespace: str = "http://www.ivoa.net/documents/ProvenanceDM/index.html#"
    """URI of the ``voprov`` prefix in provenance documents (ProvDM 1.0 defines none)."""

    # -- operator tools and embedding --
    cors_origins: str = ""
    """Comma-separated origins (``https://portal.example.org``) whose pages may call the API
    with fetch/XHR, or ``*``; empty = none (no CORS headers at all)."""
    cors_methods: str = "GET, POST, DELETE"
    """Methods allowed cross-origin (GET and HEAD always are, for an allowed origin)."""
    cors_headers: str = "Authorization, Content-Type"
    """Request headers a cross-origin request may carry (``*`` = any)."""
    cors_credentials: bool = False
    """Whether cross-origin requests may carry cookies (``Access-Control-Allow-Credentials``)."""
    cors_max_age: int = 600
    """Seconds a browser may cache a preflight answer."""

    # -- Slurm executor (executor = "slurm") --
    slurm_partition: str = ""
    """sbatch ``--partition`` of every job; empty = the cluster's default partition."""
    slurm_nodes: int = 1
    slurm_ntasks: int = 1
    slurm_mem: str = ""
    """sbatch ``--mem`` (e.g. ``2G``); empty = the cluster's default."""
    slurm_watchdog: bool = True
    """Enforce executionDuration inside the job, to the second; ``--time`` is then a backstop
    one minute longer (Slurm limits are whole minutes, checked about every 30 s)."""
    slurm_bin: str = ""
    """Folder of sbatch, scancel, scontrol, squeue, sacct; empty = found on ``PATH``."""
    slurm_work_root: str = ""
    """``work_root`` as the compute nodes see it (shared file system); empty = the same path."""
    slurm_callback_url: str = ""
    """Base URL the jobs call back (``<url>/callback/<job id>``); empty = ``base_url``, else
    ``http://host:port`` (``127.0.0.1`` when ``host`` is a wildcard)."""
    callback_key_file: str = ""
    """Server key that signs job callbacks (created 0600 on first start); empty =
    ``callback.key`` in the database's folder."""

    def resolve(self, root: Path) -> Config:
        """Make relative paths absolute against ``root`` (the config file's folder or cwd)."""
        return replace(
            self,
            database=_absolute(self.database, root),
            services=_absolute(self.services, root),
            work_root=_absolute(self.work_root, root),
        )


def _check_identity(config: Config) -> None:
    from .identity import AUTH_MODES, parse_networks

    if config.auth not in AUTH_MODES:
        raise ConfigError(f"auth: {config.auth!r} is not one of {', '.join(AUTH_MODES)}")
    try:
        trusted = parse_networks(config.proxy_trusted)
    except ValueError as exc:
        raise ConfigError(f"proxy_trusted: {exc}") from None
    if config.auth == "proxy" and not trusted:
        raise ConfigError('auth = "proxy" needs proxy_trusted: the addresses of the proxy')
    header = config.proxy_user_header
    # waitress drops header names with "_" (so a client cannot smuggle X_Remote_User).
    if header.upper() != "REMOTE_USER" and not re.fullmatch(r"[A-Za-z0-9-]{1,64}", header):
        raise ConfigError("proxy_user_header: a header name of letters, digits and '-'")
    if config.max_active_jobs < 0:
        raise ConfigError("max_active_jobs must be 0 (no limit) or more")


def _absolute(path: Path, root: Path) -> Path:
    return path if path.is_absolute() else (root / path).resolve()


def _coerce(name: str, kind: Any, raw: Any) -> Any:
    """Turn a TOML or environment value into the field's type, or explain why not."""
    try:
        if kind in ("bool", bool):
            if isinstance(raw, bool):
                return raw
            text = str(raw).strip().lower()
            if text in ("1", "true", "yes", "on"):
                return True
            if text in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        if kind in ("int", int):
            if isinstance(raw, bool):
                raise ValueError(raw)
            return int(raw)
        if kind in ("float", float):
            return float(raw)
        if kind in ("Path", Path):
            return Path(str(raw)).expanduser()
        if isinstance(raw, list):  # TOML arrays for the comma-separated keys
            return ", ".join(str(item) for item in raw)
        return str(raw)
    except ValueError:
        raise ConfigError(f"{name}: {raw!r} is not a valid {kind}") from None


def load_config(path: str | Path | None = None, environ: dict[str, str] | None = None) -> Config:
    """Read the TOML file (if any), apply environment overrides, check, resolve paths.

    Raises
    ------
    ConfigError
        Raised for an unknown key, a value of the wrong type or an unreadable file.
    """
    environ = dict(os.environ if environ is None else environ)
    path = path or environ.get("OPUS_MIN_CONFIG") or None
    values: dict[str, Any] = {}
    root = Path.cwd()
    if path:
        file = Path(path)
        try:
            data = tomllib.loads(file.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as exc:
            raise ConfigError(f"{file}: {exc}") from None
        # Accept both a flat file and one with an [opus_min] table.
        values.update(data.get("opus_min", data))
        root = file.resolve().parent
    known = {f.name: f.type for f in fields(Config)}
    for key in values:
        if key not in known:
            raise ConfigError(f"unknown configuration key {key!r}")
    for key in known:
        env = environ.get(f"OPUS_MIN_{key.upper()}")
        if env is not None:
            values[key] = env
    config = Config(**{key: _coerce(key, known[key], raw) for key, raw in values.items()})
    if config.executor not in ("local", "slurm"):
        raise ConfigError(f"executor: {config.executor!r} is not 'local' or 'slurm'")
    if config.destruction_policy not in ("delete", "archive"):
        raise ConfigError("destruction_policy must be 'delete' or 'archive'")
    if not 1 <= config.wait_max <= 55:
        raise ConfigError("wait_max must be between 1 and 55 seconds")
    if config.threads < 4:
        raise ConfigError("threads must be at least 4")
    if not 0 < config.fetch_timeout <= 600:
        raise ConfigError("fetch_timeout must be more than 0 and at most 600 seconds")
    _check_identity(config)
    if config.cors_credentials and "*" in config.cors_origins:
        raise ConfigError("cors_credentials needs explicit cors_origins, not '*'")
    if config.cors_max_age < 0:
        raise ConfigError("cors_max_age must be 0 or more")
    return config.resolve(root)
