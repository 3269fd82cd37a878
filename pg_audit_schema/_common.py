"""What the ``pg-audit`` subcommands share: exit statuses, connecting, one-line
errors, time arguments."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys
from typing import Any

import psycopg
from psycopg import errors as pgerrors

from .errors import NotInstalled, PgAuditError
from .installer import installed_version

# Exit statuses, documented in `pg-audit --help` (EXIT_STATUSES) and docs/cli.md.
EXIT_OK = 0
EXIT_TAMPERED = 1  # verify, archive verify and archive show only: the trail or an archive altered
EXIT_ERROR = 2  # anything else that went wrong: bad input, connection, permission, files
EXIT_BUG = 3  # an unexpected error in pg-audit itself (a traceback follows)
EXIT_INTERRUPTED = 130  # Ctrl-C or SIGTERM
EXIT_PIPE = 141  # the reader of the output went away (export | head), as after SIGPIPE

EXIT_STATUSES = f"""exit status:
  {EXIT_OK}    success
  {EXIT_TAMPERED}    verify, archive verify or archive show found the trail or an archive
       altered (only then)
  {EXIT_ERROR}    any other failure, said in one line on stderr: bad arguments, cannot
       connect, schema not installed, permission denied, no such table, file errors
  {EXIT_BUG}    an unexpected error in pg-audit itself (please report it)
  {EXIT_INTERRUPTED}  interrupted (Ctrl-C)
  {EXIT_PIPE}  the output's reader went away (pg-audit export | head)"""

_AGO = re.compile(r"^(\d+)\s*(s|m|min|h|d|w)$")
_UNITS = {"s": "seconds", "m": "minutes", "min": "minutes", "h": "hours", "d": "days", "w": "weeks"}


def one_line(exc: psycopg.Error) -> str:
    """A server error as one line, with the role when it is a permission problem."""
    diag = exc.diag
    text = diag.message_primary or (str(exc).strip().splitlines() or [type(exc).__name__])[0]
    text = text.removeprefix("pg-audit: ")  # our own server messages carry it already
    if isinstance(exc, pgerrors.InsufficientPrivilege) and not text.startswith("permission"):
        text = f"permission denied: {text}"
    return text


def _warn(diag: psycopg.errors.Diagnostic) -> None:
    if diag.severity_nonlocalized == "WARNING" and diag.message_primary:
        text = diag.message_primary.removeprefix("pg-audit: ")  # our server messages carry it
        print(f"pg-audit: warning: {text}", file=sys.stderr)


def connect(args: argparse.Namespace, autocommit: bool = True) -> psycopg.Connection:
    dsn = getattr(args, "dsn", None) or ""
    try:
        conn = psycopg.connect(dsn, autocommit=autocommit)
    except psycopg.Error as exc:
        # libpq may add hint lines and one line per address tried; the first says why.
        lines = [ln.strip() for ln in str(exc).splitlines() if ln.strip()] or [type(exc).__name__]
        raise PgAuditError(
            f"cannot connect: {lines[0].removeprefix('connection failed: ')}"
        ) from exc
    except ValueError as exc:  # a malformed connection string
        raise PgAuditError(f"cannot connect: {exc}") from exc
    conn.add_notice_handler(_warn)
    return conn


def require_schema(conn: psycopg.Connection) -> int:
    """The installed version; a clear error when the schema is missing or out of reach."""
    # Every role may use the schema (its objects keep their own privileges):
    # the version table, readable by audit_reader and audit_writer, tells
    # whether this role may work with it at all.
    row = conn.execute(
        "SELECT n.oid IS NOT NULL, coalesce(has_schema_privilege(n.oid, 'USAGE') "
        "AND (c.oid IS NULL OR has_table_privilege(c.oid, 'SELECT')), false), current_user "
        "FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = 'audit' "
        "LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = 'schema_version'"
    ).fetchone()
    assert row is not None
    exists, usable, user = row
    if not exists:
        raise NotInstalled(
            "the audit schema is not installed in this database; run: pg-audit install"
        )
    if not usable:
        raise PgAuditError(
            f"permission denied: role {user} may not read schema audit "
            "(grant it audit_reader to read the log)"
        )
    version = installed_version(conn)
    if version is None:
        raise NotInstalled(
            "the audit schema is not installed in this database; run: pg-audit install"
        )
    return version


def period(
    conn: psycopg.Connection, since: str | None, until: str | None, default_since: str = "1d"
) -> tuple[dt.datetime, dt.datetime]:
    """--since and --until, refused when reversed (such a period matches nothing)."""
    start = time_arg(conn, since, default_since, "--since")
    end = time_arg(conn, until, "now", "--until")
    if start > end:
        raise PgAuditError(
            f"--since ({start.isoformat()}) is after --until ({end.isoformat()}): "
            "the period is reversed"
        )
    return start, end


def positive(kind: type[int] | type[float], allow_zero: bool = False) -> Any:
    """An argparse type: a number above zero (or zero too), else a one-line error."""

    def parse(text: str) -> int | float:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if value < 0 or (value == 0 and not allow_zero):
            raise argparse.ArgumentTypeError(
                f"must be {'0 or more' if allow_zero else 'more than 0'}, got {text}"
            )
        return value

    parse.__name__ = kind.__name__
    return parse


def time_arg(conn: psycopg.Connection, text: str | None, default: str, name: str) -> dt.datetime:
    """A --since/--until value: '7d', '24h', '30m' ago, or anything timestamptz accepts."""
    value = (text or default).strip()
    match = _AGO.match(value)
    try:
        if match:
            row = conn.execute(
                "SELECT now() - %s::interval", [f"{match[1]} {_UNITS[match[2]]}"]
            ).fetchone()
        else:
            row = conn.execute("SELECT %s::timestamptz", [value]).fetchone()
    except psycopg.DataError as exc:
        raise PgAuditError(f"{name}: not a time: {value!r} (try 2026-01-31, 7d or 24h)") from exc
    assert row is not None
    return row[0]
