"""Inputs given by reference: open an http(s) URL with a timeout and a total deadline.

Only ``http`` and ``https`` are fetched, redirects included (never ``file:``, ``ftp:`` or any
other scheme, so a reference cannot read the server's own files). The body is read through
:class:`DeadlineReader`, so a server that drips bytes cannot hold a request thread longer than
the timeout.
"""

from __future__ import annotations

import time
import urllib.error
import urllib.request
from typing import IO, Any
from urllib.parse import urlsplit

from .errors import UsageError

__all__ = ["DeadlineReader", "open_url"]

SCHEMES = ("http", "https")


class _Redirects(urllib.request.HTTPRedirectHandler):
    max_redirections = 5

    def redirect_request(self, req: Any, fp: Any, code: int, msg: str, headers: Any, newurl: str):  # type: ignore[no-untyped-def]
        if urlsplit(newurl).scheme.lower() not in SCHEMES:
            raise urllib.error.HTTPError(newurl, code, "redirect to a non-HTTP URL", headers, fp)
        return super().redirect_request(req, fp, code, msg, headers, newurl)


_OPENER = urllib.request.build_opener(_Redirects())
_OPENER.addheaders = [("User-Agent", "opus_min (UWS input fetch)")]


class DeadlineReader:
    """A binary stream that fails once ``deadline`` (monotonic seconds) has passed."""

    def __init__(self, stream: IO[bytes], deadline: float, what: str) -> None:
        self.stream = stream
        self.deadline = deadline
        self.what = what

    def read(self, size: int = -1) -> bytes:
        if time.monotonic() > self.deadline:
            raise UsageError(f"{self.what}: the download took too long")
        # read1: what has arrived (at most ``size``), so the deadline is checked between
        # packets instead of after a whole chunk that a slow server may take ages to send.
        read1 = getattr(self.stream, "read1", None)
        try:
            return read1(size) if read1 is not None else self.stream.read(size)
        except OSError as exc:
            raise UsageError(f"{self.what}: the download failed: {exc}") from None


def open_url(url: str, *, timeout: float, what: str) -> tuple[IO[bytes], str, int | None]:
    """Open ``url``; returns the body stream, its content type and its announced length.

    Raises
    ------
    UsageError
        Raised for a scheme other than http(s), an HTTP error status, a name that does not
        resolve, a refused connection or a timeout, with a message naming ``what``.
    """
    if urlsplit(url).scheme.lower() not in SCHEMES or not urlsplit(url).netloc:
        raise UsageError(f"{what}: {url[:200]!r} is not an http(s) URL")
    try:
        response = _OPENER.open(url, timeout=timeout)
    except urllib.error.HTTPError as exc:
        exc.close()
        raise UsageError(f"{what}: {url[:200]} answered HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, TimeoutError, OSError, ValueError) as exc:
        reason = getattr(exc, "reason", exc)
        raise UsageError(f"{what}: cannot fetch {url[:200]}: {reason}") from None
    length = response.headers.get("Content-Length")
    announced = int(length) if length and length.isdigit() else None
    ctype = response.headers.get_content_type() if response.headers.get("Content-Type") else ""
    return response, ctype, announced
