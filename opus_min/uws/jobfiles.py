"""JobFiles: each job's folder under the work root — uploads in, results out.

Layout: ``<work_root>/<job_id>/`` is the script's working directory (uploaded inputs are saved
there under their Used names, the script writes its Generated files there);
``<work_root>/<job_id>/.opus/`` holds the script copy, ``stdout.log``, ``stderr.log`` and the
wrapper's error note. Every path is checked to stay inside the job's folder.
"""

from __future__ import annotations

import glob
import hashlib
import mimetypes
import re
import secrets
import shutil
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO

from ..votable.model import GeneratedEntity
from .errors import TooLarge, UnknownResource
from .model import Result

__all__ = ["JobFiles", "LOG_RESULTS", "OPTIONAL_MULTIPLICITIES", "allows_many"]

META = ".opus"
TRASH = ".trash"
"""Folder of the work root where deleted jobs' folders are removed (never a job id)."""
LOG_RESULTS = (("stdout", f"{META}/stdout.log"), ("stderr", f"{META}/stderr.log"))
"""The wrapper's standard streams, kept as results of every job."""

OPTIONAL_MULTIPLICITIES = frozenset({"0..1", "0..*", "*", "?", "0"})
"""Generated multiplicities under which a missing file is not an error."""


def allows_many(multiplicity: str) -> bool:
    """Whether a Used multiplicity (``1``, ``0..1``, ``1..*``, ``*``, ``2..5``) admits >1 file."""
    upper = multiplicity.strip().rsplit("..", 1)[-1]
    return upper == "*" or (upper.isdigit() and int(upper) > 1)


_CHUNK = 1 << 16
_JOB_ID = re.compile(r"^[0-9][a-z0-9]{7,63}$")


class JobFiles:
    """File-system side of jobs."""

    def __init__(self, work_root: Path) -> None:
        self.root = Path(work_root).resolve()
        self.root.mkdir(parents=True, exist_ok=True)

    def job_dir(self, job_id: str) -> Path:
        if not _JOB_ID.match(job_id):
            raise UnknownResource(f"no job {job_id!r}")
        return self.root / job_id

    def meta_dir(self, job_id: str) -> Path:
        return self.job_dir(job_id) / META

    def create(self, job_id: str) -> Path:
        path = self.job_dir(job_id)
        (path / META).mkdir(parents=True, exist_ok=False)
        return path

    def remove(self, job_id: str) -> None:
        """Delete the job's folder.

        It is first moved into ``<work_root>/.trash/``: a job still writing while it is being
        cancelled (``scancel`` is asynchronous) can make a plain ``rmtree`` fail half-way and
        leave the folder behind. What such a job leaves in the trash goes with the next delete;
        an empty trash folder is removed.
        """
        path = self.job_dir(job_id)
        trash = self.root / TRASH
        for _ in range(3):
            trash.mkdir(exist_ok=True)
            try:
                path.rename(trash / f"{job_id}-{secrets.token_hex(4)}")
                break
            except FileNotFoundError:
                if not path.exists():
                    break
                # Another delete removed the empty trash folder in between: make it again.
            except OSError:  # not movable (permissions, another file system): delete in place
                shutil.rmtree(path, ignore_errors=True)
                break
        try:
            for leftover in trash.iterdir():
                shutil.rmtree(leftover, ignore_errors=True)
            trash.rmdir()
        except OSError:  # not empty (a job still writing), or another delete emptied it
            pass

    def remove_results(self, job_id: str) -> None:
        """Delete the files but keep the folder's metadata (ARCHIVED jobs)."""
        path = self.job_dir(job_id)
        if path.is_dir():
            for child in path.iterdir():
                if child.name != META:
                    if child.is_dir() and not child.is_symlink():
                        shutil.rmtree(child, ignore_errors=True)
                    else:
                        child.unlink(missing_ok=True)

    def write_script(self, job_id: str, script: str) -> Path:
        path = self.meta_dir(job_id) / "script.sh"
        path.write_text(script, encoding="utf-8")
        return path

    def save_upload(self, job_id: str, name: str, stream: BinaryIO, max_bytes: int) -> int:
        """Copy an uploaded file to ``<job>/<name>``, refusing more than ``max_bytes``."""
        target = self._inside(job_id, name)
        size = 0
        with open(target, "wb") as out:
            while chunk := stream.read(_CHUNK):
                size += len(chunk)
                if size > max_bytes:
                    out.close()
                    target.unlink(missing_ok=True)
                    raise TooLarge(f"{name}: upload larger than {max_bytes} bytes")
                out.write(chunk)
        return size

    def save_input(
        self, job_id: str, name: str, stream: BinaryIO, max_bytes: int
    ) -> tuple[int, str]:
        """Copy an input (upload, fetched URL, another job's result) to ``<job>/<name>``,
        hashing it on the way; returns (size, sha256 hex). The file is written aside and moved
        into place only when complete, so a failed transfer leaves any previous file intact.

        Raises
        ------
        TooLarge
            Raised beyond ``max_bytes`` (nothing is left behind).
        """
        target = self._inside(job_id, name)
        partial = target.with_name(f".{target.name}.part")
        digest = hashlib.sha256()
        size = 0
        try:
            with open(partial, "wb") as out:
                while chunk := stream.read(_CHUNK):
                    size += len(chunk)
                    if size > max_bytes:
                        raise TooLarge(f"{name}: input larger than {max_bytes} bytes")
                    digest.update(chunk)
                    out.write(chunk)
            partial.replace(target)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        return size, digest.hexdigest()

    def read_path(self, job_id: str, relative: str) -> Path:
        """The file of a result or upload, guaranteed to lie inside the job folder."""
        path = self._inside(job_id, relative)
        if not path.is_file():
            raise UnknownResource(f"file {relative!r} of job {job_id} is gone")
        return path

    def _inside(self, job_id: str, relative: str) -> Path:
        base = self.job_dir(job_id).resolve()
        path = (base / relative).resolve()
        if path != base and base not in path.parents:
            raise UnknownResource(f"{relative!r} is outside the job folder")
        return path

    def collect_results(
        self, job_id: str, generated: Iterable[GeneratedEntity]
    ) -> tuple[list[Result], list[str]]:
        """Results for every Generated file present, plus the logs; and the missing names."""
        base = self.job_dir(job_id).resolve()
        results: list[Result] = []
        missing: list[str] = []
        for entity in generated:
            pattern = entity.default or entity.name
            matches = sorted(Path(p) for p in glob.glob(glob.escape(str(base)) + "/" + pattern))
            files = [p for p in matches if p.is_file() and base in p.resolve().parents]
            if not files:
                if entity.multiplicity.strip() not in OPTIONAL_MULTIPLICITIES:
                    missing.append(f"{entity.name} ({pattern})")
                continue
            for index, path in enumerate(files, start=1):
                result_id = entity.name if len(files) == 1 else f"{entity.name}_{index}"
                results.append(self._result(base, path, result_id, entity.content_type))
        taken = {r.id for r in results}
        for result_id, relative in LOG_RESULTS:
            path = base / relative
            if result_id not in taken and path.is_file():
                results.append(self._result(base, path, result_id, "text/plain"))
        return results, missing

    @staticmethod
    def _result(base: Path, path: Path, result_id: str, content_type: str) -> Result:
        digest = hashlib.sha256()
        size = 0
        with open(path, "rb") as handle:
            while chunk := handle.read(_CHUNK):
                size += len(chunk)
                digest.update(chunk)
        mime = content_type or mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        return Result(result_id, str(path.relative_to(base)), mime, size, digest.hexdigest())
