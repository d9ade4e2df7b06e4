"""``opus-min`` command line: ``serve`` the application, ``check`` service definitions,
manage ``users`` and their tokens, scaffold a ``new-service``."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from .config import ConfigError, load_config
from .usercli import add_users_parser, users_command

__all__ = ["main"]


def _check(folder: Path) -> int:
    from .votable.loader import load_services

    if not folder.is_dir():
        print(f"{folder}: not a folder", file=sys.stderr)
        return 2
    services, problems = load_services(folder)
    for name in sorted(services):
        print(f"ok      {name}  ({services[name].source})")
    for problem in problems:
        print(f"PROBLEM {problem}")
    print(f"{len(services)} service(s) loaded, {len(problems)} problem(s)")
    return 1 if problems else 0


def _new_service(name: str, folder: Path, force: bool) -> int:
    from .editor import scaffold

    try:
        _, files = scaffold(name)
    except ValueError as exc:
        print(f"opus-min new-service: {exc}", file=sys.stderr)
        return 2
    folder.mkdir(parents=True, exist_ok=True)
    existing = [folder / n for n in files if (folder / n).exists()]
    if existing and not force:
        print(f"opus-min new-service: {existing[0]} exists (use --force)", file=sys.stderr)
        return 1
    for filename, data in files.items():
        path = folder / filename
        path.write_bytes(data)
        if filename.endswith(".sh"):
            path.chmod(0o755)
        print(f"wrote {path}")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="opus-min", description=__doc__)
    parser.add_argument("--config", help="TOML configuration file (default: $OPUS_MIN_CONFIG)")
    sub = parser.add_subparsers(dest="command", required=True)
    serve_p = sub.add_parser("serve", help="run the server (waitress)")
    serve_p.add_argument("--host")
    serve_p.add_argument("--port", type=int)
    check_p = sub.add_parser("check", help="check service definitions; non-zero exit on problems")
    check_p.add_argument("folder", nargs="?", help="services folder (default: configured)")
    new_p = sub.add_parser("new-service", help="write NAME.xml and NAME.sh, a working scaffold")
    new_p.add_argument("name")
    new_p.add_argument("--dir", help="folder to write into (default: the current folder)")
    new_p.add_argument("--force", action="store_true", help="overwrite existing files")
    add_users_parser(sub)
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        config = load_config(args.config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    if args.command == "new-service":
        return _new_service(args.name, Path(args.dir or "."), args.force)
    if args.command == "check":
        return _check(Path(args.folder) if args.folder else config.services)
    if args.command == "users":
        return users_command(config, args)
    from dataclasses import replace

    from .wsgi import serve

    if args.host:
        config = replace(config, host=args.host)
    if args.port is not None:
        config = replace(config, port=args.port)
    try:
        serve(config)
    except ConfigError as exc:
        print(f"configuration error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
