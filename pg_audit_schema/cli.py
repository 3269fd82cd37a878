"""``pg-audit``: install, inspect and read the audit trail of a PostgreSQL database.

The connection comes from ``--dsn`` or, when it is absent, the usual ``PG*``
environment variables. Every subcommand sets ``func(args) -> int`` (the exit
status); expected failures print one line on stderr and exit non-zero.
Subcommands of other modules join through their ``register(subparsers)``:
``cli_retention`` (maintain, seal, verify, archive) and ``demo``.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

try:
    import psycopg
except ImportError:  # pg-audit[django] leaves the driver to the project (docs/django.md)
    sys.exit("pg-audit: the command line needs psycopg 3: pip install 'pg-audit[cli]'")

from . import _export, _report, _status, _tail
from ._common import EXIT_ERROR, connect, one_line, require_schema
from .errors import PgAuditError
from .installer import install, installed_version, latest_version


def _install(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        before = installed_version(conn)
        if args.command == "upgrade" and before is None:
            raise PgAuditError(
                "the audit schema is not installed in this database; run: pg-audit install"
            )
        applied = install(conn)
    if not applied:
        print(f"pg-audit: schema already at version {before}, nothing to do")
    else:
        names = ", ".join(f"{s.version:04d}_{s.name}" for s in applied)
        start = f"version {before}" if before is not None else "nothing"
        print(f"pg-audit: schema from {start} to version {applied[-1].version} ({names})")
    return 0


def _split_columns(text: str | None) -> list[str]:
    return [c.strip() for c in (text or "").split(",") if c.strip()]


def _track(args: argparse.Namespace) -> int:
    exclude = _split_columns(args.exclude)
    with connect(args) as conn:
        require_schema(conn)
        conn.execute(
            "SELECT audit.enable_tracking(target => %s::regclass, exclude_columns => %s::text[])",
            [args.table, exclude],
        )
        name = conn.execute("SELECT audit.table_name(%s::regclass)", [args.table]).fetchone()
    suffix = f" (never logged: {', '.join(exclude)})" if exclude else ""
    print(f"pg-audit: tracking {name[0] if name else args.table}{suffix}")
    return 0


def _untrack(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        require_schema(conn)
        conn.execute("SELECT audit.disable_tracking(target => %s::regclass)", [args.table])
        name = conn.execute("SELECT audit.table_name(%s::regclass)", [args.table]).fetchone()
    print(f"pg-audit: no longer tracking {name[0] if name else args.table} (its events stay)")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="pg-audit",
        description="Install, inspect and read the pg-audit trail of a PostgreSQL database.",
        epilog="Without --dsn, the PG* environment variables (PGHOST, PGDATABASE, ...) apply.",
    )
    parser.add_argument(
        "--dsn", default=None, help="libpq connection string or URI (default: PG* variables)"
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    p = sub.add_parser(
        "install", help=f"install or upgrade the audit schema (to version {latest_version()})"
    )
    p.set_defaults(func=_install)
    p = sub.add_parser("upgrade", help="apply the schema steps an installed database lacks")
    p.set_defaults(func=_install)

    p = sub.add_parser("status", help="versions, tracked tables, log size, roles and warnings")
    p.set_defaults(func=_status.command)

    p = sub.add_parser("track", help="capture INSERT, UPDATE, DELETE and TRUNCATE of a table")
    p.add_argument("table", help="table name, schema-qualified if not on the search_path")
    p.add_argument(
        "--exclude",
        metavar="COL,...",
        help="columns that never reach the log (password hashes, tokens)",
    )
    p.set_defaults(func=_track)
    p = sub.add_parser("untrack", help="stop capturing a table (its past events stay)")
    p.add_argument("table")
    p.set_defaults(func=_untrack)

    _tail.register(sub)
    _report.register(sub)
    _export.register(sub)

    for module in ("cli_retention", "demo"):
        name = f"{__package__}.{module}"
        try:
            mod = importlib.import_module(name)
        except ModuleNotFoundError as exc:
            if exc.name != name:  # the module is there but broken: say so
                raise
            continue
        mod.register(sub)
    # `pg-audit install --dsn DSN` reads as naturally as `pg-audit --dsn DSN install`.
    for command in sub.choices.values():
        if "--dsn" not in command._option_string_actions:
            command.add_argument("--dsn", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(list(argv) if argv is not None else None)
    try:
        return int(args.func(args))
    except PgAuditError as exc:
        print(f"pg-audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except psycopg.Error as exc:
        print(f"pg-audit: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `pg-audit export | head`: the reader left; say nothing more.
        sys.stderr.close()
        return 0


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
