"""PhaseNotifier: wakes WAITing requests when a job changes, in this process and in others.

Within a process, each waiter holds a ``threading.Event`` registered under its job id. Across
processes that share the database, every process binds a Unix datagram socket in one folder
derived from the database path; a change is announced by sending the job id to each socket
there. Nothing polls: a waiter sleeps until its event is set or its WAIT time runs out.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import socket
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

__all__ = ["PhaseNotifier"]


class PhaseNotifier:
    """Per-job wake-ups for blocking GETs."""

    def __init__(self, database: Path) -> None:
        key = hashlib.sha256(str(Path(database).resolve()).encode()).hexdigest()[:16]
        # Socket paths are limited to ~107 bytes, so the folder lives in the temp dir.
        self.folder = Path(tempfile.gettempdir()) / f"opus_min-{key}"
        self._lock = threading.Lock()
        self._waiters: dict[str, set[threading.Event]] = {}
        self._sock: socket.socket | None = None
        self._path: Path | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Listen for changes announced by other processes."""
        if self._sock is not None:
            return
        self.folder.mkdir(mode=0o700, exist_ok=True)
        self._path = self.folder / f"{os.getpid()}-{os.urandom(4).hex()}.sock"
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        sock.bind(str(self._path))
        self._sock = sock
        self._thread = threading.Thread(target=self._listen, name="opus-notify", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        sock, self._sock = self._sock, None
        if sock is not None:
            with contextlib.suppress(OSError):
                # A datagram to ourselves ends the blocking recv.
                sock.sendto(b"", str(self._path))
            sock.close()
        if self._path is not None:
            with contextlib.suppress(OSError):
                self._path.unlink()

    def _listen(self) -> None:
        sock = self._sock
        while sock is not None and self._sock is sock:
            try:
                data = sock.recv(256)
            except OSError:
                return
            if data:
                self._wake(data.decode(errors="replace"))

    def _wake(self, job_id: str) -> None:
        with self._lock:
            for event in self._waiters.get(job_id, ()):
                event.set()

    @contextlib.contextmanager
    def subscribe(self, job_id: str) -> Iterator[threading.Event]:
        """Register before reading the job, so that no change between read and wait is lost."""
        event = threading.Event()
        with self._lock:
            self._waiters.setdefault(job_id, set()).add(event)
        try:
            yield event
        finally:
            with self._lock:
                waiters = self._waiters.get(job_id)
                if waiters is not None:
                    waiters.discard(event)
                    if not waiters:
                        del self._waiters[job_id]

    def waiting(self) -> int:
        with self._lock:
            return sum(len(w) for w in self._waiters.values())

    def publish(self, job_id: str) -> None:
        """Announce a change of ``job_id`` here and to every other process."""
        self._wake(job_id)
        if not self.folder.is_dir():
            return
        payload = job_id.encode()
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as out:
            out.setblocking(False)
            for path in self.folder.glob("*.sock"):
                if path == self._path:
                    continue
                try:
                    out.sendto(payload, str(path))
                except (ConnectionRefusedError, FileNotFoundError):
                    # A process that died without cleaning up: its socket is stale.
                    with contextlib.suppress(OSError):
                        path.unlink()
                except (BlockingIOError, OSError):
                    # A full receiver queue must not block the publisher; it re-reads anyway.
                    pass
