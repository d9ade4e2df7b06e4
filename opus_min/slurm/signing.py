"""Signed job callbacks: one HMAC-SHA256 token per (job, event) from a server key.

The key is 32 random bytes in a file (by default ``callback.key`` next to the database), created
with mode 0600 on first start. A token is ``HMAC(key, "<job id>\\n<event>")`` in hex: it is
written only into the job's own ``.opus/callback`` file (0600), so only the job (and Slurm's
hook, running as root or as the job's user) can send that event for that job. A token never
fits another job or another event, and the phase rules refuse a replay.
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import os
import secrets
from pathlib import Path

__all__ = ["EVENTS", "CallbackKey"]

EVENTS = ("executing", "completed", "error", "aborted", "slurm")
"""What a callback can report: the job's own start and end (``aborted`` = the in-job
executionDuration watchdog fired) and ``slurm``, the final state sent by the Slurm-side hook."""

KEY_BYTES = 32


class CallbackKey:
    """The server key; signs and checks callback tokens."""

    def __init__(self, key: bytes) -> None:
        if len(key) < 16:
            raise ValueError("a callback key needs at least 16 bytes")
        self._key = key

    @classmethod
    def load(cls, path: Path) -> CallbackKey:
        """Read the key file, creating it (0600, random) when it does not exist.

        Raises
        ------
        OSError
            Raised when the file can be neither read nor created.
        ValueError
            Raised when the file holds no usable key.
        """
        path.parent.mkdir(parents=True, exist_ok=True)
        with contextlib.suppress(FileExistsError):
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w") as handle:
                handle.write(secrets.token_hex(KEY_BYTES) + "\n")
        text = path.read_text(encoding="ascii").strip()
        try:
            key = bytes.fromhex(text)
        except ValueError:
            key = text.encode()
        return cls(key)

    def sign(self, job_id: str, event: str) -> str:
        message = f"{job_id}\n{event}".encode()
        return hmac.new(self._key, message, hashlib.sha256).hexdigest()

    def verify(self, job_id: str, event: str, token: str) -> bool:
        """Constant-time check of a token; unknown events never verify."""
        if event not in EVENTS:
            return False
        given = token.strip().lower().encode("utf-8", "replace")
        return hmac.compare_digest(self.sign(job_id, event).encode(), given)
