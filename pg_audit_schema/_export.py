"""``pg-audit export``: every event of a period as JSON lines or CSV, in constant memory.

Rows come through a server-side cursor in batches. Values leave exactly as
stored: jsonb columns are written as the server's own text of them (12.50 stays
12.50, a 30-digit numeric keeps every digit), times with their offset,
addresses as PostgreSQL prints them. Output is safe to feed to line-based tools
and spreadsheets: no value can start a new line (JSON escapes control
characters; CSV cells get them as backslash escapes), and a CSV cell that a
spreadsheet would run as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import datetime as dt
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import psycopg
from psycopg.rows import dict_row

from ._common import connect, period, require_schema
from .events import EXPORT_COLUMNS, JSON_COLUMNS, ascii_json, ip_text

BATCH = 2000
FIELDS = list(EXPORT_COLUMNS)


def select_list() -> str:
    """The columns of an export: jsonb as its text (exact numbers), txid as text."""
    return ", ".join(
        f"{c}::text AS {c}" if c in JSON_COLUMNS or c == "txid" else c for c in EXPORT_COLUMNS
    )


QUERY = (
    f"SELECT {select_list()} FROM audit.event "
    "WHERE occurred_at >= %s AND occurred_at < %s ORDER BY id"
)


class RawJSON(str):
    """JSON text of a jsonb column, written as it is."""

# What spreadsheets read as the start of a formula (OWASP CSV injection).
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
# Besides \r and \n, str.splitlines() and some viewers break lines at these.
_LINE_BREAKS = {"\x0b", "\x0c", "\x1c", "\x1d", "\x1e", "\x85", "\u2028", "\u2029"}


def register(sub: Any) -> None:
    p = sub.add_parser("export", help="stream events of a period as jsonl or csv")
    p.add_argument("--since", help="start (timestamp, or 7d / 24h / 30m ago; default 1d)")
    p.add_argument("--until", help="end, exclusive (default: now)")
    p.add_argument("--format", choices=["jsonl", "csv"], default="jsonl")
    p.add_argument("--output", "-o", help="write to this file instead of stdout")
    p.set_defaults(func=command)


def exact(row: dict[str, Any]) -> dict[str, Any]:
    """A row as fetched with select_list(): jsonb text marked raw, addresses as printed."""
    out = dict(row)
    for c in JSON_COLUMNS:
        if out.get(c) is not None:
            out[c] = RawJSON(out[c])
    out["ip"] = ip_text(out.get("ip"))
    return out


def csv_cell(value: object) -> str:
    """One CSV cell: control characters escaped (backslash first, so it stays
    reversible) and formula-leading text defused with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, RawJSON | dict | list):
        # JSON already escapes control characters; only the rarer line breaks remain.
        text = value if isinstance(value, RawJSON) else json.dumps(
            value, ensure_ascii=False, separators=(",", ":")
        )
        if not text.isprintable():
            text = "".join(f"\\u{ord(c):04x}" if not c.isprintable() else c for c in text)
        return "'" + text if text.startswith(FORMULA_START) else text
    text = str(value)
    if not text.isprintable() or "\\" in text:
        text = "".join(_escape(c) for c in text)
    if text.startswith(FORMULA_START):
        text = "'" + text
    return text


def _escape(c: str) -> str:
    if c == "\\":
        return "\\\\"
    if c == "\n":
        return "\\n"
    if c == "\r":
        return "\\r"
    if c == "\t":
        return "\\t"
    if c in _LINE_BREAKS or (not c.isprintable() and c != " "):
        return c.encode("unicode_escape").decode("ascii")
    return c


def jsonl_line(row: dict[str, Any]) -> str:
    """One JSON object on one line, ASCII only: U+2028, U+0085 and the like
    become \\u escapes, never a line break. jsonb columns go in as their text."""
    parts = []
    for k, v in row.items():
        if isinstance(v, RawJSON):
            text = ascii_json(v)
        elif isinstance(v, dt.datetime):
            text = json.dumps(v.isoformat())
        else:
            text = json.dumps(v, ensure_ascii=True, default=str)
        parts.append(f"{json.dumps(k)}:{text}")
    return "{" + ",".join(parts) + "}"


def rows(
    conn: psycopg.Connection, since: dt.datetime, until: dt.datetime
) -> Iterator[dict[str, Any]]:
    """The events of [since, until), oldest id first, BATCH at a time from the server."""
    with conn.transaction(), conn.cursor("pg_audit_export", row_factory=dict_row) as cur:
        cur.itersize = BATCH
        cur.execute(QUERY, [since, until])
        for row in cur:
            yield exact(row)


def write(
    out: TextIO, events: Iterator[dict[str, Any]], fmt: str, progress: TextIO | None = None
) -> int:
    writer = csv.writer(out, lineterminator="\r\n") if fmt == "csv" else None
    if writer:
        writer.writerow(FIELDS)
    n = 0
    for ev in events:
        if writer:
            writer.writerow([csv_cell(ev[f]) for f in FIELDS])
        else:
            out.write(jsonl_line(ev) + "\n")
        n += 1
        if progress and n % 10_000 == 0:
            progress.write(f"\rpg-audit: {n:,} events exported")
            progress.flush()
    if progress:
        progress.write(f"\rpg-audit: {n:,} events exported\n")
    return n


def command(args: argparse.Namespace) -> int:
    with connect(args, autocommit=True) as conn:
        require_schema(conn)
        since, until = period(conn, args.since, args.until)
        progress = sys.stderr if sys.stderr.isatty() else None
        out = open(args.output, "w", encoding="utf-8", newline="") if args.output else sys.stdout
        # Closed here, before the connection: a reader that left (export | head)
        # must not leave the cursor's transaction to be rolled back after it.
        with contextlib.closing(rows(conn, since, until)) as events:
            try:
                n = write(out, events, args.format, progress)
                out.flush()
            finally:
                if out is not sys.stdout:
                    out.close()
    if not progress:
        print(f"pg-audit: {n} events exported", file=sys.stderr)
    return 0
