"""Configuration: one TOML file plus ``OPUS_MIN_*`` environment overrides.

The file is found by ``--config`` or ``OPUS_MIN_CONFIG``; every key can be overridden by the
environment variable ``OPUS_MIN_<KEY>`` (upper case), e.g. ``OPUS_MIN_EXECUTOR=slurm``.
"""

from __future__ import annotations

import os
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

    def resolve(self, root: Path) -> Config:
        """Make relative paths absolute against ``root`` (the config file's folder or cwd)."""
        return replace(
            self,
            database=_absolute(self.database, root),
            services=_absolute(self.services, root),
            work_root=_absolute(self.work_root, root),
        )


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
    return config.resolve(root)
