"""Load every service description of a folder (``<name>.xml`` plus an optional ``<name>.sh``).

Each file is read with a size cap and parsed on its own, so one broken file is reported and
skipped while the others still load.
"""

from __future__ import annotations

import stat
from collections.abc import Iterable
from pathlib import Path

from .model import Problem, ServiceDescription
from .parse import parse_service

__all__ = ["MAX_FILE_SIZE", "format_problems", "load_services"]

MAX_FILE_SIZE = 1024 * 1024
"""Largest service or script file read (1 MiB): a description is a few kilobytes."""


def load_services(folder: Path) -> tuple[dict[str, ServiceDescription], list[Problem]]:
    """Parse every ``*.xml`` of ``folder`` (in name order; hidden files are skipped).

    The script comes from the ``script`` PARAM or ``<stem>.sh`` beside the file (for OPUS's
    ``<name>_vot.xml``, also ``<name>.sh``). Returns the services by name and all Problems.
    """
    folder = Path(folder)
    services: dict[str, ServiceDescription] = {}
    problems: list[Problem] = []
    if not folder.is_dir():
        return services, [Problem(str(folder), None, "the service folder does not exist")]

    seen: dict[str, str] = {}  # folded name -> path of the file that defined it
    for xml_path in sorted(folder.glob("*.xml")):
        if xml_path.name.startswith("."):
            continue  # editor and backup files such as .#name.xml
        try:
            data = _read_capped(xml_path)
        except _Unreadable as exc:
            problems.append(exc.problem)
            continue
        script_problem = None
        try:
            script, script_path = _read_script(xml_path)
        except _Unreadable as exc:
            # Still parse the description so its own problems are reported in the same pass.
            script, script_path, script_problem = None, "", exc.problem
            problems.append(script_problem)
        service, found = parse_service(
            data, path=str(xml_path), script=script, script_source=script_path
        )
        problems.extend(found)
        if service is None or script_problem is not None:
            continue
        # Names are compared case-insensitively: they end up in URLs and directory names.
        folded = service.name.casefold()
        if folded in seen:
            problems.append(
                Problem(
                    str(xml_path),
                    None,
                    f"duplicate service name {service.name!r} (already defined in {seen[folded]})",
                )
            )
            continue
        seen[folded] = str(xml_path)
        services[service.name] = service
    return services, problems


def format_problems(problems: Iterable[Problem]) -> str:
    """One ``path:line: message`` line per Problem (empty string when there are none)."""
    return "\n".join(str(problem) for problem in problems)


class _Unreadable(Exception):
    """A file that cannot be used; carries the Problem to report."""

    def __init__(self, path: Path, message: str) -> None:
        super().__init__(message)
        self.problem = Problem(str(path), None, message)


def _read_capped(path: Path) -> bytes:
    """The file's bytes; _Unreadable when it is not a regular file, unreadable or too big."""
    try:
        # stat first: opening a FIFO named *.xml would block the loader.
        if not stat.S_ISREG(path.stat().st_mode):
            raise _Unreadable(path, "not a regular file")
        with path.open("rb") as handle:
            data = handle.read(MAX_FILE_SIZE + 1)
    except OSError as exc:
        raise _Unreadable(path, f"cannot read the file: {exc.strerror or exc}") from exc
    if len(data) > MAX_FILE_SIZE:
        raise _Unreadable(path, f"the file is larger than {MAX_FILE_SIZE} bytes (1 MiB)")
    return data


def _script_candidates(xml_path: Path) -> list[Path]:
    stem = xml_path.name[: -len(".xml")]
    candidates = [xml_path.with_name(f"{stem}.sh")]
    if stem.endswith("_vot") and len(stem) > len("_vot"):
        candidates.append(xml_path.with_name(f"{stem[: -len('_vot')]}.sh"))
    return candidates


def _read_script(xml_path: Path) -> tuple[str | None, str]:
    """The first existing ``.sh`` beside ``xml_path`` as text and its path (None, "" if none)."""
    for candidate in _script_candidates(xml_path):
        if not candidate.exists():
            continue
        data = _read_capped(candidate)
        try:
            return data.decode("utf-8"), str(candidate)
        except UnicodeDecodeError as exc:
            raise _Unreadable(candidate, f"the script is not UTF-8: {exc.reason}") from exc
    return None, ""
