"""UserStore: users, their roles and limits, and the digests of their tokens (tables of m002).

Shares the JobStore's SQLite file and per-thread connections; tokens themselves are never
stored, only :func:`opus_min.identity.hash_token` of them.
"""

from __future__ import annotations

import secrets
import sqlite3
from dataclasses import dataclass
from datetime import datetime

from .identity import hash_token, new_token
from .uws.model import utcnow
from .uws.store import JobStore, to_db_time

__all__ = ["TokenInfo", "User", "UserError", "UserStore"]


class UserError(ValueError):
    """A user-management request that cannot be done (unknown user, duplicate, ...)."""


@dataclass(frozen=True)
class User:
    name: str
    roles: frozenset[str]
    max_active_jobs: int | None
    created: str
    disabled: bool


@dataclass(frozen=True)
class TokenInfo:
    """What ``users list`` shows of a token: never the token itself."""

    token_id: str
    user: str
    created: str
    revoked: str | None


def _roles_text(roles: frozenset[str] | set[str] | list[str]) -> str:
    return ",".join(sorted({r.strip() for r in roles if r.strip()}))


def _user(row: tuple[object, ...]) -> User:
    name, roles, max_active, created, disabled = row
    return User(
        name=str(name),
        roles=frozenset(r for r in str(roles).split(",") if r),
        max_active_jobs=None if max_active is None else int(str(max_active)),
        created=str(created),
        disabled=bool(disabled),
    )


_USER_COLUMNS = "name, roles, max_active_jobs, created, disabled"


class UserStore:
    """Users and token digests in the job database."""

    def __init__(self, store: JobStore) -> None:
        self.store = store

    def _conn(self) -> sqlite3.Connection:
        return self.store._connection()

    def get(self, name: str) -> User | None:
        row = (
            self._conn()
            .execute(f"SELECT {_USER_COLUMNS} FROM users WHERE name = ?", (name,))
            .fetchone()
        )
        return None if row is None else _user(row)

    def user_for_token(self, digest: str) -> User | None:
        """The user holding the (unrevoked) token with this digest."""
        row = (
            self._conn()
            .execute(
                f"SELECT {', '.join('u.' + c.strip() for c in _USER_COLUMNS.split(','))}"
                " FROM tokens t JOIN users u ON u.name = t.user"
                " WHERE t.digest = ? AND t.revoked IS NULL",
                (digest,),
            )
            .fetchone()
        )
        return None if row is None else _user(row)

    def list(self) -> list[tuple[User, list[TokenInfo]]]:
        conn = self._conn()
        users = [
            _user(r)
            for r in conn.execute(f"SELECT {_USER_COLUMNS} FROM users ORDER BY name").fetchall()
        ]
        out = []
        for user in users:
            tokens = [
                TokenInfo(*row)
                for row in conn.execute(
                    "SELECT token_id, user, created, revoked FROM tokens WHERE user = ?"
                    " ORDER BY created, token_id",
                    (user.name,),
                )
            ]
            out.append((user, tokens))
        return out

    def add(
        self,
        name: str,
        roles: list[str],
        max_active_jobs: int | None,
        *,
        now: datetime | None = None,
    ) -> None:
        """Create a user.

        Raises
        ------
        UserError
            Raised when the name is taken.
        """
        created = to_db_time(now or utcnow())
        with self.store._write() as conn:
            if conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"user {name} exists already")
            conn.execute(
                f"INSERT INTO users ({_USER_COLUMNS}) VALUES (?, ?, ?, ?, 0)",
                (name, _roles_text(roles), max_active_jobs, created),
            )

    def update(
        self,
        name: str,
        *,
        roles: list[str] | None = None,
        max_active_jobs: int | None = None,
        clear_limit: bool = False,
        enable: bool = False,
    ) -> User:
        """Change roles (replaced), the active-job limit, or re-enable a revoked user.

        Raises
        ------
        UserError
            Raised for an unknown user.
        """
        with self.store._write() as conn:
            if not conn.execute("SELECT 1 FROM users WHERE name = ?", (name,)).fetchone():
                raise UserError(f"no user {name}")
            if roles is not None:
                conn.execute(
                    "UPDATE users SET roles = ? WHERE name = ?", (_roles_text(roles), name)
                )
            if max_active_jobs is not None or clear_limit:
                conn.execute(
                    "UPDATE users SET max_active_jobs = ? WHERE name = ?", (max_active_jobs, name)
                )
            if enable:
                conn.execute("UPDATE users SET disabled = 0 WHERE name = ?", (name,))
        user = self.get(name)
        assert user is not None
        return user

    def issue_token(self, name: str, *, now: datetime | None = None) -> tuple[str, str]:
        """A new token for ``name``: returns (token id, token). The token is not kept.

        Raises
        ------
        UserError
            Raised for an unknown or disabled user.
        """
        token = new_token()
        token_id = "t" + secrets.token_hex(5)
        with self.store._write() as conn:
            row = conn.execute("SELECT disabled FROM users WHERE name = ?", (name,)).fetchone()
            if row is None:
                raise UserError(f"no user {name}")
            if row[0]:
                raise UserError(f"user {name} is disabled; enable it first")
            conn.execute(
                "INSERT INTO tokens (token_id, user, digest, created) VALUES (?, ?, ?, ?)",
                (token_id, name, hash_token(token), to_db_time(now or utcnow())),
            )
        return token_id, token

    def revoke_user(self, name: str) -> int:
        """Disable the user and revoke every token; returns how many tokens were revoked.

        Raises
        ------
        UserError
            Raised for an unknown user.
        """
        with self.store._write() as conn:
            if not conn.execute("UPDATE users SET disabled = 1 WHERE name = ?", (name,)).rowcount:
                raise UserError(f"no user {name}")
            return conn.execute(
                "UPDATE tokens SET revoked = ? WHERE user = ? AND revoked IS NULL",
                (to_db_time(utcnow()), name),
            ).rowcount

    def revoke_token(self, token_id: str) -> str:
        """Revoke one token by its id; returns its user.

        Raises
        ------
        UserError
            Raised for an unknown or already revoked token id.
        """
        with self.store._write() as conn:
            row = conn.execute(
                "SELECT user FROM tokens WHERE token_id = ? AND revoked IS NULL", (token_id,)
            ).fetchone()
            if row is None:
                raise UserError(f"no active token {token_id}")
            conn.execute(
                "UPDATE tokens SET revoked = ? WHERE token_id = ?",
                (to_db_time(utcnow()), token_id),
            )
            return str(row[0])
