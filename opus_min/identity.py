"""Who is calling: the three identity modes and the :class:`Caller` every job operation takes.

- ``anonymous``: every request is the single shared anonymous owner (``ownerId`` nil).
- ``token``: ``Authorization: Bearer TOKEN`` or ``Basic NAME:TOKEN``, checked against the
  SHA-256 digests of the tokens ``opus-min users`` issued (tokens are never stored).
- ``proxy``: a front-end proxy authenticates and names the user in a header (or the WSGI
  ``REMOTE_USER``); believed only when the TCP peer is one of the configured proxy addresses.

No Werkzeug here: ``wsgi`` hands over the header values and the peer address.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import ipaddress
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .config import ConfigError
from .uws.errors import Forbidden, Unauthenticated

if TYPE_CHECKING:
    from .config import Config
    from .users import UserStore

__all__ = [
    "ADMIN_ROLE",
    "ANONYMOUS",
    "AUTH_MODES",
    "CALLER_ENVIRON_KEY",
    "COOKIE_ALLOWED_ENVIRON_KEY",
    "TOKEN_COOKIE",
    "Authenticator",
    "Caller",
    "as_caller",
    "check_user_name",
    "hash_token",
    "new_token",
    "parse_networks",
]

AUTH_MODES = ("anonymous", "token", "proxy")
"""Values of the ``auth`` configuration key."""

ADMIN_ROLE = "admin"
"""The role that sees and manages every job and may create jobs of every service."""

CALLER_ENVIRON_KEY = "opus_min.caller"
"""WSGI environ key under which ``wsgi`` leaves a function returning the request's Caller."""

TOKEN_COOKIE = "opus_min_token"
"""Cookie in which the sign-in page keeps a browser's token (HttpOnly, SameSite=Strict)."""

COOKIE_ALLOWED_ENVIRON_KEY = "opus_min.cookie_allowed"
"""Set in the environ by a page view once a POST passed its CSRF checks; without it the token
cookie counts only for GET and HEAD, so no cross-site form can change a job with it."""

TOKEN_PREFIX = "om_"
"""Issued tokens start with this, so secret scanners and people can recognise them."""

REALM = "opus_min"

_USER_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,63}$")
_PROXY_NAME = re.compile(r"^[^\x00-\x20\x7f-\x9f]{1,256}$")


@dataclass(frozen=True)
class Caller:
    """The authenticated user of a request (``name`` "" is the anonymous owner)."""

    name: str
    roles: frozenset[str] = field(default_factory=frozenset)
    max_active_jobs: int | None = None
    """The user's own limit on active jobs; None = the configured ``max_active_jobs``."""

    @property
    def admin(self) -> bool:
        return ADMIN_ROLE in self.roles

    def may_manage(self, owner: str) -> bool:
        """Whether this caller may read and change a job owned by ``owner``."""
        return self.admin or owner == self.name

    def may_create(self, service: str, restricted: Sequence[str]) -> bool:
        """Whether this caller may create jobs of ``service`` (restricted ones need its role)."""
        return service not in restricted or self.admin or service in self.roles

    def describe(self) -> str:
        return f"user {self.name}" if self.name else "the anonymous user"


ANONYMOUS = Caller("")
"""The shared owner of ``auth = "anonymous"``."""


def as_caller(owner: str | Caller) -> Caller:
    """Accept a bare owner name where a Caller is expected (tests, internal callers)."""
    return owner if isinstance(owner, Caller) else Caller(owner)


def new_token() -> str:
    """A fresh bearer token: 256 random bits, URL-safe."""
    return TOKEN_PREFIX + secrets.token_urlsafe(32)


def hash_token(token: str) -> str:
    """The stored form of a token: hex SHA-256.

    Tokens are 256-bit random strings made by :func:`new_token`, never chosen by people, so
    there is no dictionary to try: a preimage search over 2**256 is out of reach whatever the
    hash speed. A slow password hash (bcrypt, scrypt) would add nothing against that and would
    cost tens of milliseconds on *every* request. The digest is looked up through a unique
    index, so no secret is ever compared byte by byte in Python.
    """
    return hashlib.sha256(token.encode("utf-8", "surrogateescape")).hexdigest()


def check_user_name(name: str) -> str:
    """A name for ``opus-min users``: 1–64 of letters, digits and ``. _ @ + -``.

    Raises
    ------
    ValueError
        Raised with a message for any other name.
    """
    if not _USER_NAME.match(name):
        raise ValueError(
            f"user name {name[:80]!r}: use 1 to 64 letters, digits or . _ @ + - "
            "(starting with a letter or digit)"
        )
    return name


def parse_networks(text: str) -> tuple[ipaddress.IPv4Network | ipaddress.IPv6Network, ...]:
    """``"127.0.0.1, 10.0.0.0/8, ::1"`` → networks (single addresses are /32 or /128).

    Raises
    ------
    ValueError
        Raised naming the first entry that is not an address or network.
    """
    networks = []
    for item in text.replace(";", ",").split(","):
        item = item.strip()
        if not item:
            continue
        try:
            networks.append(ipaddress.ip_network(item, strict=False))
        except ValueError:
            raise ValueError(f"{item!r} is not an IP address or network") from None
    return tuple(networks)


def _challenge(error: str | None = None) -> list[tuple[str, str]]:
    bearer = f'Bearer realm="{REALM}"' + (f', error="{error}"' if error else "")
    return [
        ("WWW-Authenticate", bearer),
        ("WWW-Authenticate", f'Basic realm="{REALM}", charset="UTF-8"'),
    ]


class Authenticator:
    """Turns a request's credentials into a :class:`Caller` according to ``config.auth``."""

    def __init__(self, config: Config, users: UserStore) -> None:
        self.mode = config.auth
        if self.mode not in AUTH_MODES:
            raise ConfigError(f"auth must be one of {', '.join(AUTH_MODES)}")
        self.users = users
        self.trusted = parse_networks(config.proxy_trusted)
        self.user_header = config.proxy_user_header
        if self.mode == "proxy" and not self.trusted:
            raise ConfigError('auth = "proxy" needs proxy_trusted (the proxy addresses)')

    @property
    def uses_remote_user(self) -> bool:
        """Whether the proxy's user comes from the WSGI variable rather than a header."""
        return self.user_header.upper() == "REMOTE_USER"

    def identify(
        self,
        *,
        authorization: str | None,
        peer: str | None,
        proxy_user: str | None,
        cookie_token: str | None = None,
    ) -> Caller:
        """The caller of one request (``cookie_token``: the sign-in cookie, token mode only, used
        when the request has no Authorization header).

        Raises
        ------
        Unauthenticated
            Raised (401, with a challenge) for missing or invalid credentials.
        Forbidden
            Raised for a disabled user, or a proxy-mode request not from a trusted proxy.
        """
        if self.mode == "anonymous":
            return ANONYMOUS
        if self.mode == "proxy":
            return self._from_proxy(peer, proxy_user)
        if not (authorization and authorization.strip()) and cookie_token:
            authorization = f"Bearer {cookie_token}"
        return self._from_token(authorization)

    def _from_proxy(self, peer: str | None, proxy_user: str | None) -> Caller:
        if not self._trusted_peer(peer):
            # Never believe a user name (or X-Forwarded-For) from anyone but the proxy.
            raise Forbidden("requests must come through the authenticating front-end proxy")
        name = (proxy_user or "").strip()
        if not name:
            raise Unauthenticated("the front-end proxy did not name a user", _challenge())
        if not _PROXY_NAME.match(name):
            raise Unauthenticated("the user name sent by the proxy is not usable", _challenge())
        user = self.users.get(name)
        if user is None:
            return Caller(name)
        if user.disabled:
            raise Forbidden(f"user {name} is disabled")
        return Caller(name, user.roles, user.max_active_jobs)

    def _trusted_peer(self, peer: str | None) -> bool:
        if not peer:
            return False
        try:
            address = ipaddress.ip_address(peer.split("%", 1)[0])
        except ValueError:
            return False
        if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
            address = address.ipv4_mapped
        return any(address in network for network in self.trusted)

    def _from_token(self, authorization: str | None) -> Caller:
        if not authorization or not authorization.strip():
            raise Unauthenticated("this server needs a token (Authorization header)", _challenge())
        scheme, _, credentials = authorization.strip().partition(" ")
        credentials = credentials.strip()
        claimed: str | None = None
        if scheme.lower() == "bearer":
            token = credentials
        elif scheme.lower() == "basic":
            try:
                decoded = base64.b64decode(credentials, validate=True).decode("utf-8")
            except (binascii.Error, UnicodeDecodeError):
                raise Unauthenticated(
                    "malformed Basic credentials", _challenge("invalid_request")
                ) from None
            claimed, sep, token = decoded.partition(":")
            if not sep:
                raise Unauthenticated(
                    "Basic credentials must be NAME:TOKEN", _challenge("invalid_request")
                )
        else:
            raise Unauthenticated(
                f"unsupported authorization scheme {scheme[:20]!r}; use Bearer or Basic",
                _challenge("invalid_request"),
            )
        if not token or len(token) > 200:
            raise Unauthenticated("invalid or revoked token", _challenge("invalid_token"))
        user = self.users.user_for_token(hash_token(token))
        if user is None or (claimed is not None and claimed != user.name):
            raise Unauthenticated("invalid or revoked token", _challenge("invalid_token"))
        if user.disabled:
            raise Forbidden(f"user {user.name} is disabled")
        return Caller(user.name, user.roles, user.max_active_jobs)
