"""``pg-audit``: install, inspect and read the audit trail of a PostgreSQL database.

The connection comes from ``--dsn`` or, when it is absent, the usual ``PG*``
environment variables. Every subcommand sets ``func(args) -> int`` (the exit
status); every failure is one line on stderr with an exit status of
``_common.EXIT_STATUSES`` (1 is kept for verify's "tampered").
Subcommands of other modules join through their ``register(subparsers)``:
``cli_retention`` (maintain, seal, verify, archive) and ``demo``.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

try:
    import psycopg
except ImportError:  # pg-audit[django] leaves the driver to the project (docs/django.md)
    sys.exit("pg-audit: the command line needs psycopg 3: pip install 'pg-audit[cli]'")

from . import _export, _report, _status, _tail
from ._common import (
    EXIT_BUG,
    EXIT_ERROR,
    EXIT_INTERRUPTED,
    EXIT_PIPE,
    EXIT_STATUSES,
    connect,
    one_line,
    require_schema,
)
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
        row = conn.execute(
            "SELECT audit.table_name(%s::regclass), EXISTS (SELECT FROM audit.tracked_table t "
            "WHERE t.table_oid = %s::regclass)",
            [args.table, args.table],
        ).fetchone()
        assert row is not None
        name, tracked = row
        if not tracked:
            print(f"pg-audit: {name} is not tracked; nothing to stop")
            return 0
        conn.execute("SELECT audit.disable_tracking(target => %s::regclass)", [args.table])
    print(f"pg-audit: no longer tracking {name} (its events stay)")
    return 0


class Parser(argparse.ArgumentParser):
    """argparse with usage errors in one line, like every other failure."""

    def error(self, message: str) -> NoReturn:
        print(f"pg-audit: {message} (see: {self.prog} --help)", file=sys.stderr)
        raise SystemExit(EXIT_ERROR)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(
        prog="pg-audit",
        description="Install, inspect and read the pg-audit trail of a PostgreSQL database.",
        epilog="Without --dsn, the PG* environment variables (PGHOST, PGDATABASE, ...) apply.\n\n"
        + EXIT_STATUSES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
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
    try:
        args = parser.parse_args(list(argv) if argv is not None else None)
    except SystemExit as exc:  # --help (0) or a usage error (EXIT_ERROR, said in one line)
        return int(exc.code or 0)
    try:
        return int(args.func(args))
    except PgAuditError as exc:
        print(f"pg-audit: {exc}", file=sys.stderr)
        return EXIT_ERROR
    except psycopg.Error as exc:
        print(f"pg-audit: {one_line(exc)}", file=sys.stderr)
        return EXIT_ERROR
    except KeyboardInterrupt:
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `pg-audit export | head`: the reader left. Say nothing, and keep the
        # interpreter from failing again when it flushes stdout at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return EXIT_PIPE
    except OSError as exc:  # files: --output, --expect-file, --dir
        where = f": {exc.filename}" if exc.filename else ""
        print(f"pg-audit: {exc.strerror or exc}{where}", file=sys.stderr)
        return EXIT_ERROR
    except Exception as exc:  # a bug: never mistaken for verify's "tampered"
        if os.environ.get("PG_AUDIT_DEBUG"):
            traceback.print_exc()
        print(
            f"pg-audit: internal error: {type(exc).__name__}: {exc} "
            "(PG_AUDIT_DEBUG=1 shows the traceback; please report it)",
            file=sys.stderr,
        )
        return EXIT_BUG


__all__ = ["build_parser", "main"]

if __name__ == "__main__":
    raise SystemExit(main())
