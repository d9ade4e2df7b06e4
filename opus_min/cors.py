"""Cross-origin access to the UWS API (``/rest``, ``/services``, ``/jdl``, VOSI …) so that a
page on another site can drive it with fetch/XHR. Nothing is allowed unless configured
(``cors_origins``); the pages under ``/ui/`` never answer cross-origin.

A preflight (``OPTIONS`` with ``Origin`` and ``Access-Control-Request-Method``) from an allowed
origin asking for allowed methods and headers gets a 204 with the ``Access-Control-*`` headers;
any other preflight gets a 403 without them, so the browser refuses the request. A state-changing
request (POST, DELETE, …) carrying the ``Origin`` of a site that is neither this one nor allowed
is refused with a 403 before it reaches a view.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from werkzeug.wrappers import Request, Response

if TYPE_CHECKING:
    from .config import Config

__all__ = ["CorsPolicy"]

SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
EXPOSED_HEADERS = "Location, Content-Disposition"
"""Response headers a script may read (the job URL after a create)."""


def _items(raw: str, *, upper: bool = False, lower: bool = False) -> frozenset[str]:
    items = {item.strip() for item in raw.split(",") if item.strip()}
    if upper:
        items = {item.upper() for item in items}
    if lower:
        items = {item.lower() for item in items}
    return frozenset(items)


@dataclass(frozen=True)
class CorsPolicy:
    """The configured CORS rules."""

    origins: frozenset[str]
    methods: frozenset[str]
    headers: frozenset[str]
    credentials: bool
    max_age: int

    @classmethod
    def from_config(cls, config: Config) -> CorsPolicy:
        return cls(
            origins=frozenset(o.rstrip("/") for o in _items(config.cors_origins)),
            methods=_items(config.cors_methods, upper=True),
            headers=_items(config.cors_headers, lower=True),
            credentials=bool(config.cors_credentials),
            max_age=int(config.cors_max_age),
        )

    @staticmethod
    def applies(request: Request) -> bool:
        return not request.path.startswith("/ui/") and request.path != "/ui"

    def allows(self, origin: str) -> bool:
        return bool(origin) and origin != "null" and (origin in self.origins or "*" in self.origins)

    def _allow_origin(self, response: Response, origin: str) -> None:
        if "*" in self.origins and not self.credentials:
            response.headers["Access-Control-Allow-Origin"] = "*"
        else:
            response.headers["Access-Control-Allow-Origin"] = origin
            response.vary.add("Origin")
        if self.credentials:
            response.headers["Access-Control-Allow-Credentials"] = "true"

    @staticmethod
    def is_preflight(request: Request) -> bool:
        return (
            request.method == "OPTIONS"
            and "Origin" in request.headers
            and "Access-Control-Request-Method" in request.headers
        )

    def preflight(self, request: Request) -> Response:
        origin = request.headers.get("Origin", "").rstrip("/")
        method = request.headers.get("Access-Control-Request-Method", "").strip().upper()
        wanted = _items(request.headers.get("Access-Control-Request-Headers", ""), lower=True)
        if not self.applies(request) or not self.allows(origin):
            return _refused(f"origin {origin[:100]!r} is not allowed")
        if method not in self.methods and method not in ("GET", "HEAD"):
            return _refused(f"method {method[:20]!r} is not allowed")
        extra = sorted(wanted - self.headers)
        if extra and "*" not in self.headers:
            return _refused(f"request header(s) {', '.join(extra)[:200]} not allowed")
        response = Response(status=204)
        self._allow_origin(response, origin)
        response.headers["Access-Control-Allow-Methods"] = ", ".join(
            sorted(self.methods | {"GET", "HEAD"})
        )
        if wanted:
            response.headers["Access-Control-Allow-Headers"] = ", ".join(sorted(wanted))
        response.headers["Access-Control-Max-Age"] = str(self.max_age)
        response.vary.add("Origin")
        return response

    def refuses(self, request: Request, own_origins: set[str]) -> Response | None:
        """A 403 for a state-changing API request from a foreign, non-allowed origin."""
        origin = request.headers.get("Origin")
        if origin is None or request.method in SAFE_METHODS or not self.applies(request):
            return None
        origin = origin.rstrip("/")
        if origin in own_origins or (self.allows(origin) and request.method in self.methods):
            return None
        return _refused(f"{request.method} from origin {origin[:100]!r} is not allowed")

    def decorate(self, request: Request, response: Response) -> None:
        """Add the CORS headers to an actual response for an allowed origin."""
        origin = request.headers.get("Origin", "").rstrip("/")
        if not origin or not self.applies(request) or not self.allows(origin):
            return
        self._allow_origin(response, origin)
        response.headers["Access-Control-Expose-Headers"] = EXPOSED_HEADERS


def _refused(message: str) -> Response:
    return Response(
        f"Forbidden: CORS: {message}\n", status=403, content_type="text/plain; charset=utf-8"
    )
