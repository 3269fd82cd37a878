"""What the ``pg-audit`` subcommands share: connecting, one-line errors, time arguments."""

from __future__ import annotations

import argparse
import datetime as dt
import re
import sys

import psycopg
from psycopg import errors as pgerrors

from .errors import NotInstalled, PgAuditError
from .installer import installed_version

EXIT_ERROR = 2

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
        print(f"pg-audit: warning: {diag.message_primary}", file=sys.stderr)


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
    row = conn.execute(
        "SELECT n.oid IS NOT NULL, coalesce(has_schema_privilege(n.oid, 'USAGE'), false), "
        "current_user FROM (SELECT 1) one LEFT JOIN pg_namespace n ON n.nspname = 'audit'"
    ).fetchone()
    assert row is not None
    exists, usable, user = row
    if not exists:
        raise NotInstalled(
            "the audit schema is not installed in this database; run: pg-audit install"
        )
    if not usable:
        raise PgAuditError(
            f"permission denied: role {user} may not use schema audit "
            "(grant it audit_reader to read the log)"
        )
    version = installed_version(conn)
    if version is None:
        raise NotInstalled(
            "the audit schema is not installed in this database; run: pg-audit install"
        )
    return version


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
