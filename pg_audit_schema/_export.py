"""``pg-audit export``: every event of a period as JSON lines or CSV, in constant memory.

Rows come through a server-side cursor in batches. Output is safe to feed to
line-based tools and spreadsheets: no value can start a new line (JSON escapes
control characters; CSV cells get them as backslash escapes), and a CSV cell
that a spreadsheet would run as a formula gets a leading apostrophe.
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import psycopg
from psycopg.rows import dict_row

from ._common import connect, require_schema, time_arg
from .installer import EVENT_COLUMNS

BATCH = 2000
FIELDS = list(EVENT_COLUMNS)
QUERY = (
    "SELECT id, occurred_at, tx_started_at, action, outcome, actor_id, actor_name, ip::text AS ip, "
    "user_agent, request_id, db_role, application_name, table_name, row_key, old_values, "
    "new_values, detail, txid::text AS txid FROM audit.event "
    "WHERE occurred_at >= %s AND occurred_at < %s ORDER BY id"
)

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


def csv_cell(value: object) -> str:
    """One CSV cell: control characters escaped (backslash first, so it stays
    reversible) and formula-leading text defused with an apostrophe."""
    if value is None:
        return ""
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, dict | list):
        # JSON already escapes control characters; only the rarer line breaks remain.
        text = json.dumps(value, ensure_ascii=False, separators=(",", ":"))
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
    out = {k: (v.isoformat() if isinstance(v, dt.datetime) else v) for k, v in row.items()}
    # ensure_ascii: U+2028, U+0085 and the like become \u escapes, never a line break.
    return json.dumps(out, ensure_ascii=True, separators=(",", ":"), default=str)


def rows(
    conn: psycopg.Connection, since: dt.datetime, until: dt.datetime
) -> Iterator[dict[str, Any]]:
    """The events of [since, until), oldest id first, BATCH at a time from the server."""
    with conn.transaction(), conn.cursor("pg_audit_export", row_factory=dict_row) as cur:
        cur.itersize = BATCH
        cur.execute(QUERY, [since, until])
        yield from cur


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
        since = time_arg(conn, args.since, "1d", "--since")
        until = time_arg(conn, args.until, "now", "--until")
        progress = sys.stderr if sys.stderr.isatty() else None
        if args.output:
            with open(args.output, "w", encoding="utf-8", newline="") as f:
                n = write(f, rows(conn, since, until), args.format, progress)
        else:
            n = write(sys.stdout, rows(conn, since, until), args.format, progress)
            sys.stdout.flush()
    if not progress:
        print(f"pg-audit: {n} events exported", file=sys.stderr)
    return 0
