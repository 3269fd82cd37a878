"""The canonical form of an event and the hash of a seal batch, outside the database.

The same bytes as ``audit.event_canonical()`` and ``audit.seal_hash()``
(sql/0004_retention.sql, sql/0007_seals.sql), computed from raw column values
so that a verifier does not depend on functions a superuser can replace.
docs/retention.md describes the format byte for byte.

Raw values are PostgreSQL's text output of each column, read in a session with
``TimeZone = 'UTC'`` and ``DateStyle = ISO`` (``raw_text_cursor`` sets up the
loaders; ``pin_session`` the settings); ``id`` may be an int.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from collections.abc import Sequence

import psycopg
from psycopg.types.string import TextLoader

# Positions in a canonical line. Frozen per format: a new column means a new format.
FIELDS_1 = (
    "format",
    "id",
    "occurred_at",
    "tx_started_at",
    "action",
    "outcome",
    "actor_id",
    "actor_name",
    "ip",
    "user_agent",
    "request_id",
    "db_role",
    "application_name",
    "table_name",
    "row_key",
    "old_values",
    "new_values",
    "detail",
    "txid",
)
FIELDS_2 = (*FIELDS_1, "old_row_key")
FIELDS = {1: FIELDS_1, 2: FIELDS_2}

# The columns of audit.event a verifier reads, in this order.
COLUMNS = FIELDS_2[1:]

ZERO_HASH = bytes(32)

# PostgreSQL's escape_json(): the two-character escapes, \u00XX (lower-case hex)
# for the other control characters, everything else as it is (UTF-8).
_ESCAPES = {c: f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update({0x08: "\\b", 0x0C: "\\f", 0x0A: "\\n", 0x0D: "\\r", 0x09: "\\t"})
_ESCAPES.update({ord('"'): '\\"', ord("\\"): "\\\\"})

_NEEDS_ESCAPE = re.compile(r'[\x00-\x1f"\\]')

# timestamptz text output with TimeZone UTC and DateStyle ISO.
_TIMESTAMPTZ = re.compile(r"(\d{4,}-\d\d-\d\d) (\d\d:\d\d:\d\d(?:\.\d+)?)\+00( BC)?")
_ISO_UTC = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,6}))?")


def json_string(text: str) -> str:
    if _NEEDS_ESCAPE.search(text) is None:
        return '"' + text + '"'
    return '"' + text.translate(_ESCAPES) + '"'


def json_timestamp(raw: str) -> str:
    """timestamptz text (UTC, ISO) as jsonb encodes the UTC timestamp: 2026-11-27T06:19:55.32"""
    match = _TIMESTAMPTZ.fullmatch(raw)
    if not match:
        return raw  # infinity, -infinity
    date, time, bc = match.groups()
    if "." in time:
        time = time.rstrip("0").rstrip(".")
    return f"{date}T{time}{bc or ''}"


def instant(json_ts: str) -> dt.datetime | None:
    """A canonical UTC timestamp as an aware datetime; None outside years 1-9999."""
    match = _ISO_UTC.fullmatch(json_ts)
    if not match:
        return None
    *parts, fraction = match.groups()
    micro = int((fraction or "0").ljust(6, "0"))
    return dt.datetime(*map(int, parts), micro, tzinfo=dt.timezone.utc)  # type: ignore[misc]


def bound(json_ts: str) -> dt.datetime:
    """A canonical UTC timestamp for comparisons: infinities and times outside years
    1-9999 become the earliest or latest datetime."""
    at = instant(json_ts)
    if at is not None:
        return at
    early = json_ts.startswith("-") or json_ts.endswith(" BC")
    return (dt.datetime.min if early else dt.datetime.max).replace(tzinfo=dt.timezone.utc)


def inet_text(raw: str) -> str:
    """inet's text output as text(inet) gives it: always with the prefix length."""
    if "/" in raw:
        return raw
    return raw + ("/128" if ":" in raw else "/32")


def canonical(row: Sequence[object]) -> str:
    """The canonical text of one event from its raw values in ``COLUMNS`` order."""
    (
        event_id, occurred_at, tx_started_at, action, outcome, actor_id, actor_name, ip,
        user_agent, request_id, db_role, application_name, table_name, row_key, old_values,
        new_values, detail, txid, old_row_key,
    ) = row  # fmt: skip
    parts = [
        "1" if old_row_key is None else "2",
        str(event_id),
        _timestamp(occurred_at),
        _timestamp(tx_started_at),
        _text(action),
        _text(outcome),
        _text(actor_id),
        _text(actor_name),
        "null" if ip is None else json_string(inet_text(str(ip))),
        _text(user_agent),
        _text(request_id),
        _text(db_role),
        _text(application_name),
        _text(table_name),
        # jsonb's own text output is already canonical.
        _jsonb(row_key),
        _jsonb(old_values),
        _jsonb(new_values),
        _jsonb(detail),
        _text(txid),
    ]
    if old_row_key is not None:
        parts.append(str(old_row_key))
    return "[" + ", ".join(parts) + "]"


def _text(value: object) -> str:
    return "null" if value is None else json_string(str(value))


def _timestamp(value: object) -> str:
    return "null" if value is None else json_string(json_timestamp(str(value)))


def _jsonb(value: object) -> str:
    return "null" if value is None else str(value)


def row_hash(canonical_text: str) -> bytes:
    return hashlib.sha256(canonical_text.encode("utf-8")).digest()


def seal_hash(
    batch: int,
    from_xid: int,
    to_xid: int,
    event_count: int,
    event_ids: Sequence[int],
    event_times: Sequence[str],
    row_hashes: bytes,
    prev_hash: bytes,
) -> bytes:
    """audit.seal_hash(); ``event_times`` as canonical UTC timestamps (json_timestamp)."""
    ids_text = "{" + ",".join(str(i) for i in event_ids) + "}"
    times_text = "[" + ", ".join(json_string(t) for t in event_times) + "]"
    return hashlib.sha256(
        f"pg-audit-seal/1|{batch}|{from_xid}|{to_xid}|{event_count}|".encode()
        + prev_hash
        + hashlib.sha256(row_hashes).digest()
        + hashlib.sha256(ids_text.encode()).digest()
        + hashlib.sha256(times_text.encode()).digest()
    ).digest()


def pin_session(conn: psycopg.Connection) -> None:
    """Inside a transaction: the output settings raw values assume, and a search_path
    on which no object of anyone else can stand in for a builtin."""
    conn.execute(
        "SET LOCAL search_path = pg_catalog, pg_temp; SET LOCAL TimeZone = 'UTC'; "
        "SET LOCAL DateStyle = 'ISO, YMD'; SET LOCAL bytea_output = 'hex'"
    )


def raw_text_cursor(cursor: psycopg.Cursor) -> psycopg.Cursor:  # type: ignore[type-arg]
    """Load timestamps, addresses and jsonb as the server's text, not as Python objects."""
    for name in ("timestamptz", "inet", "jsonb"):
        cursor.adapters.register_loader(name, TextLoader)
    return cursor
