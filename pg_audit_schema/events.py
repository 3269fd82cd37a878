"""How events are spelled wherever they leave the database: column order,
who did it, JSON values to the digit, addresses.

Shared by the CLI (export, tail, report), the demo and the Django admin viewer,
so all of them say the same thing the same way. No database driver is
imported here: the viewer may run on psycopg2.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

# The columns of audit.event in the order of the canonical form of an event
# (audit.event_canonical, format 1): archives hold them in this order.
EVENT_COLUMNS = (
    "id", "occurred_at", "tx_started_at", "action", "outcome", "actor_id", "actor_name", "ip",
    "user_agent", "request_id", "db_role", "application_name", "table_name", "row_key",
    "old_values", "new_values", "detail", "txid",
)

# Every column, in the order of canonical format 2 (old_row_key last): the
# columns and their order of `pg-audit export` (jsonl and csv) and of the admin
# viewer's CSV export.
EXPORT_COLUMNS = (*EVENT_COLUMNS, "old_row_key")

# Columns that hold jsonb.
JSON_COLUMNS = frozenset({"row_key", "old_values", "new_values", "detail", "old_row_key"})

# An event of a request or job without a signed-in user.
ANONYMOUS = "anonymous"


def actor_label(
    actor_id: str | None,
    actor_name: str | None,
    db_role: str | None,
    ip: object = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> str:
    """Who did it, in one word: the user name (or id); ``anonymous`` for a
    request or job without a user (it has an address, a user agent or a
    request id); otherwise nobody set any context (psql, cron) and the database
    login that made the change is the answer."""
    if actor_name:
        return actor_name
    if actor_id:
        return actor_id
    if ip or user_agent or request_id:
        return ANONYMOUS
    return db_role or ANONYMOUS


def load_json(text: str | bytes | None) -> Any:
    """jsonb text as Python values, numbers exact: 12.50 stays Decimal('12.50')."""
    if text is None:
        return None
    return json.loads(text, parse_float=Decimal)


def compact(value: Any) -> str:
    """Compact JSON text with Decimals written as the numbers they are (12.50,
    not 12.5 and not "12.50"); non-ASCII kept as it is."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(str(k), ensure_ascii=False)}:{compact(v)}"
                              for k, v in value.items()) + "}"
    if isinstance(value, list | tuple):
        return "[" + ",".join(compact(v) for v in value) + "]"
    return json.dumps(value, ensure_ascii=False)


def value_text(value: Any) -> str:
    """A column value as a person reads it on one line: captured text as itself
    (12.50, MUG-01, t), JSON-quoted only where it would not read as one word
    (empty, with white space, ``null``, or starting with a quote); a JSON number of
    an older event exactly (12.50); SQL NULL as ``null``."""
    if isinstance(value, str):
        plain = value.split() == [value] and value != "null" and not value.startswith('"')
        return value if plain else json.dumps(value, ensure_ascii=False)
    return compact(value)


def ascii_json(text: str) -> str:
    """JSON text with every non-ASCII character as a \\u escape (valid anywhere:
    such characters only occur inside strings), so U+2028 and friends can never
    break a line for a line-based reader."""
    if text.isascii():
        return text
    out = []
    for c in text:
        n = ord(c)
        if n < 0x80:
            out.append(c)
        elif n < 0x10000:
            out.append(f"\\u{n:04x}")
        else:
            n -= 0x10000
            out.append(f"\\u{0xD800 + (n >> 10):04x}\\u{0xDC00 + (n & 0x3FF):04x}")
    return "".join(out)


def ip_text(value: object) -> str | None:
    """An address as PostgreSQL prints it: 203.0.113.9, or 10.0.0.0/8 for a network."""
    if value is None:
        return None
    text = str(value)
    for host_mask in ("/32", "/128"):
        if text.endswith(host_mask):
            return text[: -len(host_mask)]
    return text
