"""A job's batch script: the sbatch options and the script text, rendered from a template. Pure.

Options come from the controller (paths, limits), the configuration (defaults) and, per job,
from control parameters ``slurm_<key>`` that a service allows by declaring them as InputParams.
Every value is checked against a strict character set before it is written into an ``#SBATCH``
line, so no value can end the comment and become shell code. Job parameter values are never
part of the script.
"""

from __future__ import annotations

import re
import shlex
import string
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

__all__ = [
    "JOB_OPTIONS",
    "BatchSettings",
    "job_overrides",
    "render_batch_script",
    "sbatch_options",
    "time_limit",
]

TEMPLATE = (Path(__file__).with_name("batch_template.sh")).read_text(encoding="utf-8")
"""The batch script template (``string.Template``: ``$directives``, ``$job_id``, ``$runner``,
``$meta``)."""

JOB_OPTIONS = ("partition", "nodes", "ntasks", "cpus_per_task", "mem", "account", "qos")
"""sbatch options a service may open to clients: an InputParam named ``slurm_<key>`` (its
datatype, MIN/MAX and OPTIONs say which values are allowed; its default is the service's)."""

_CLIENT_VALUE = re.compile(r"[A-Za-z0-9_.:+,=@-]{1,128}")
_PATH_VALUE = re.compile(r"[^\s'\"\\%\x00-\x1f\x7f]{1,4096}")
"""No white space, quotes, backslash, ``%`` (an sbatch file-name pattern) or control characters."""


@dataclass(frozen=True)
class BatchSettings:
    """Cluster-wide sbatch defaults from the configuration (empty = the cluster's default)."""

    partition: str = ""
    nodes: int = 1
    ntasks: int = 1
    mem: str = ""
    watchdog: bool = True
    """Whether the job enforces executionDuration itself (to the second); ``--time`` is then
    one minute longer, a backstop."""


def time_limit(duration: int, *, watchdog: bool) -> int | None:
    """``--time`` in whole minutes for an executionDuration in seconds; None when unlimited.

    Slurm limits are whole minutes, checked about every 30 s. With the in-job watchdog the
    Slurm limit is a backstop one minute beyond the rounded-up duration.
    """
    if duration <= 0:
        return None
    minutes = -(-duration // 60)
    return minutes + 1 if watchdog else minutes


def job_overrides(environment: Mapping[str, str]) -> dict[str, str]:
    """The ``slurm_<key>`` values of a job (from the service's declared InputParams).

    Raises
    ------
    ValueError
        Raised when a value has characters sbatch options never need.
    """
    overrides: dict[str, str] = {}
    for key in JOB_OPTIONS:
        value = environment.get(f"slurm_{key}", "").strip()
        if not value:
            continue
        if not _CLIENT_VALUE.fullmatch(value):
            raise ValueError(f"slurm_{key}: {value[:40]!r} is not a valid sbatch value")
        overrides[key] = value
    return overrides


def sbatch_options(
    *,
    job_id: str,
    job_dir: PurePath,
    meta_dir: PurePath,
    duration: int,
    settings: BatchSettings,
    overrides: Mapping[str, str] | None = None,
) -> list[str]:
    """The sbatch options of one job, as ``--name=value`` strings in a stable order.

    Raises
    ------
    ValueError
        Raised for a path or value that cannot be written safely into an ``#SBATCH`` line.
    """
    values: dict[str, str | None] = {
        "job-name": f"opus-{job_id}",
        "chdir": str(job_dir),
        "output": str(meta_dir / "stdout.log"),
        "error": str(meta_dir / "stderr.log"),
        "no-requeue": None,
        "export": "NONE",
        "nodes": str(settings.nodes),
        "ntasks": str(settings.ntasks),
    }
    minutes = time_limit(duration, watchdog=settings.watchdog)
    if minutes is not None:
        values["time"] = str(minutes)
    if settings.partition:
        values["partition"] = settings.partition
    if settings.mem:
        values["mem"] = settings.mem
    for key, value in (overrides or {}).items():
        if key not in JOB_OPTIONS:
            raise ValueError(f"slurm_{key} is not an option a job may set")
        values[key.replace("_", "-")] = value
    options = []
    for name, value in values.items():
        if value is None:
            options.append(f"--{name}")
        elif _PATH_VALUE.fullmatch(value):
            options.append(f"--{name}={value}")
        else:
            raise ValueError(f"--{name}: {value[:60]!r} cannot be passed to sbatch safely")
    return options


def render_batch_script(
    *,
    job_id: str,
    options: Sequence[str],
    runner: PurePath,
    meta_dir: PurePath,
    template: str = TEMPLATE,
) -> str:
    """The batch script: ``#SBATCH`` lines, then ``exec`` of the static runner."""
    for option in options:
        if not option.startswith("--") or not _PATH_VALUE.fullmatch(option):
            raise ValueError(f"{option[:60]!r} is not a safe sbatch option")
    return string.Template(template).substitute(
        directives="\n".join(f"#SBATCH {option}" for option in options),
        job_id=job_id,
        runner=shlex.quote(str(runner)),
        meta=shlex.quote(str(meta_dir)),
    )
