"""``opus-min users …``: add, list, change and revoke users and their tokens.

A new token is printed once, alone on standard output (``TOKEN=$(opus-min users add ann)``);
everything else goes to standard error. The database keeps only the token's SHA-256.
"""

from __future__ import annotations

import argparse
import sys

from .config import Config
from .identity import ADMIN_ROLE, check_user_name
from .users import UserError, UserStore
from .uws.store import JobStore

__all__ = ["add_users_parser", "users_command"]


def add_users_parser(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    users = sub.add_parser("users", help="manage users, roles and tokens (auth = token/proxy)")
    cmds = users.add_subparsers(dest="users_command", required=True)
    add = cmds.add_parser("add", help="add a user and print a new token (shown once)")
    add.add_argument("name")
    add.add_argument(
        "--role",
        action="append",
        default=[],
        help=f"a role: {ADMIN_ROLE!r} or a restricted service's name (repeatable)",
    )
    add.add_argument("--max-active", type=int, help="this user's active-job limit (0 = none)")
    add.add_argument("--no-token", action="store_true", help="no token (users of auth = proxy)")
    token = cmds.add_parser("token", help="print a new token for an existing user (shown once)")
    token.add_argument("name")
    cmds.add_parser("list", help="users, roles, limits and token ids (never the tokens)")
    revoke = cmds.add_parser(
        "revoke", help="disable a user and revoke all its tokens, or revoke one token"
    )
    target = revoke.add_mutually_exclusive_group(required=True)
    target.add_argument("name", nargs="?")
    target.add_argument("--token", metavar="TOKEN_ID", help="revoke only this token")
    change = cmds.add_parser("set", help="replace roles, change the limit, re-enable")
    change.add_argument("name")
    change.add_argument("--role", action="append", help="the new roles (repeatable)")
    change.add_argument("--no-roles", action="store_true", help="remove every role")
    change.add_argument(
        "--max-active", help="this user's active-job limit (0 = none, 'default' = configured)"
    )
    change.add_argument("--enable", action="store_true", help="re-enable a revoked user")


def _err(text: str) -> None:
    print(text, file=sys.stderr)


def users_command(config: Config, args: argparse.Namespace) -> int:
    users = UserStore(JobStore(config.database))
    try:
        return _run(config, users, args)
    except UserError as exc:
        _err(f"error: {exc}")
        return 1


def _run(config: Config, users: UserStore, args: argparse.Namespace) -> int:
    command = args.users_command
    if command == "add":
        try:
            check_user_name(args.name)
        except ValueError as exc:
            _err(f"error: {exc}")
            return 2
        if args.max_active is not None and args.max_active < 0:
            _err("error: --max-active must be 0 or more")
            return 2
        users.add(args.name, args.role, args.max_active)
        _err(f"user {args.name} added; roles: {', '.join(sorted(args.role)) or '-'}")
        if not args.no_token:
            _print_token(users, args.name)
        if config.auth == "anonymous":
            _err('note: auth = "anonymous" in this configuration; users matter with token/proxy')
        return 0
    if command == "token":
        _print_token(users, args.name)
        return 0
    if command == "list":
        rows = users.list()
        print(f"{'user':<24} {'status':<9} {'max-active':<10} {'roles':<24} active tokens")
        for user, tokens in rows:
            active = [t.token_id for t in tokens if t.revoked is None]
            limit = "default" if user.max_active_jobs is None else str(user.max_active_jobs)
            status = "disabled" if user.disabled else "enabled"
            roles = ",".join(sorted(user.roles)) or "-"
            print(f"{user.name:<24} {status:<9} {limit:<10} {roles:<24} {' '.join(active) or '-'}")
        return 0
    if command == "revoke":
        if args.token:
            owner = users.revoke_token(args.token)
            _err(f"token {args.token} of {owner} revoked")
        else:
            count = users.revoke_user(args.name)
            _err(f"user {args.name} disabled, {count} token(s) revoked")
        return 0
    # set
    roles = [] if args.no_roles else args.role
    limit: int | None = None
    clear = False
    if args.max_active is not None:
        if args.max_active == "default":
            clear = True
        else:
            try:
                limit = int(args.max_active)
            except ValueError:
                limit = -1
            if limit < 0:
                _err("error: --max-active takes a number >= 0 or 'default'")
                return 2
    user = users.update(
        args.name, roles=roles, max_active_jobs=limit, clear_limit=clear, enable=args.enable
    )
    _err(
        f"user {user.name}: roles {', '.join(sorted(user.roles)) or '-'}, max-active "
        f"{'default' if user.max_active_jobs is None else user.max_active_jobs}, "
        f"{'disabled' if user.disabled else 'enabled'}"
    )
    return 0


def _print_token(users: UserStore, name: str) -> None:
    token_id, token = users.issue_token(name)
    _err(f"token {token_id} for {name} (shown once; the server keeps only its SHA-256):")
    print(token)
