"""``pg-audit tail``: follow new events as they commit.

tail reads ``id > last seen`` through the primary key once a second (one
index probe), and sooner when woken on channel ``audit_event``, which the
trigger ``audit_notify`` announces if a superuser enabled it (it is off by
default: notifying serialises commits; see sql/0003_reporting.sql). Ids are taken
in insertion order but committed in any order, so an id skipped over may
still arrive from a longer transaction: such gaps are remembered and asked
for again at the next wake-up, for a while.
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

import psycopg
from psycopg.rows import dict_row

from ._common import connect, positive, require_schema
from ._export import exact, jsonl_line, select_list
from .events import actor_label, compact, load_json, value_text

CHANNEL = "audit_event"
BATCH = 5000
GAP_TTL = 600.0  # seconds a skipped id may still commit
GAP_MAX = 100_000
POLL = 1.0  # seconds between reads when no notification wakes tail

# The columns of export, in its order: tail --json and export write the same objects.
COLUMNS = select_list()


def register(sub: Any) -> None:
    p = sub.add_parser("tail", help="follow new events live")
    p.add_argument(
        "--action", help="only these actions (comma-separated, e.g. LOGIN_FAILED,DELETE)"
    )
    p.add_argument("--actor", help="only events whose actor id or actor name is this")
    p.add_argument("--table", help="only events of this table (schema.table, or table)")
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.add_argument(
        "--limit", type=positive(int, allow_zero=True), default=0,
        help="stop after this many events (default 0: no limit)",
    )
    p.add_argument(
        "--timeout",
        type=positive(float, allow_zero=True),
        default=0,
        help="stop after this many seconds (default: run until Ctrl-C)",
    )
    p.set_defaults(func=command)


def clean(value: object) -> str:
    """Text safe for one terminal line: control characters (newlines, escape
    sequences) shown as escapes, so a crafted user name cannot forge lines."""
    text = str(value)
    if text.isprintable():
        return text
    return "".join(
        c if c.isprintable() else c.encode("unicode_escape").decode("ascii") for c in text
    )


def one_line(ev: dict[str, Any]) -> str:
    """A readable line: time, id, action, who, from where, what: the row key as
    JSON (to paste into audit.row_history), changed values as their text (numbers
    of older events exact)."""
    parts = [
        ev["occurred_at"].strftime("%Y-%m-%d %H:%M:%S%z"),
        f"#{ev['id']}",
        ev["action"] + (f"({ev['outcome']})" if ev.get("outcome") else ""),
    ]
    who = actor_label(
        ev.get("actor_id"), ev.get("actor_name"), ev.get("db_role"),
        ev.get("ip"), ev.get("user_agent"), ev.get("request_id"),
    )
    parts.append(f"by {clean(who)}")
    if ev.get("ip"):
        parts.append(f"from {ev['ip']}")
    parts.append(f"db={clean(ev['db_role'])}")
    if ev.get("table_name"):
        parts.append(f"{clean(ev['table_name'])} {clean(compact(load_json(ev.get('row_key'))))}")
    new = load_json(ev.get("new_values"))
    if ev["action"] == "UPDATE" and new:
        old = load_json(ev.get("old_values")) or {}
        changes = ", ".join(
            f"{k}: {value_text(old.get(k))} -> {value_text(v)}" for k, v in sorted(new.items())
        )
        parts.append(clean(changes))
    elif ev.get("detail"):
        parts.append(clean(compact(load_json(ev["detail"]))))
    return " ".join(parts)


def to_json(ev: dict[str, Any]) -> str:
    return jsonl_line(ev)


class _Filter:
    def __init__(self, args: argparse.Namespace) -> None:
        self.actions = {a.strip().upper() for a in (args.action or "").split(",") if a.strip()}
        self.actor = args.actor
        self.table = args.table

    def __call__(self, ev: dict[str, Any]) -> bool:
        if self.actions and ev["action"] not in self.actions:
            return False
        if self.actor and self.actor not in (ev.get("actor_id"), ev.get("actor_name")):
            return False
        if self.table:
            name = ev.get("table_name") or ""
            if name != self.table and name.split(".", 1)[-1] != self.table:
                return False
        return True


def follow(conn: psycopg.Connection, args: argparse.Namespace) -> int:
    wanted = _Filter(args)
    # notifies() keeps what arrives between its calls (psycopg >= 3.2, without
    # notify handlers), so a notice that comes during a fetch is not lost.
    woken = [False]
    conn.execute(f"LISTEN {CHANNEL}")
    # Everything committed before LISTEN took effect is history, not news.
    row = conn.execute("SELECT coalesce(max(id), 0) FROM audit.event").fetchone()
    last = int(row[0]) if row else 0
    gaps: dict[int, float] = {}
    shown = 0
    deadline = time.monotonic() + args.timeout if args.timeout > 0 else None
    cur = conn.cursor(row_factory=dict_row)
    while True:
        if woken[0]:
            woken[0] = False
            now = time.monotonic()
            for gap in [g for g, seen in gaps.items() if now - seen > GAP_TTL]:
                del gaps[gap]
            rows = cur.execute(
                f"SELECT {COLUMNS} FROM audit.event WHERE id > %s OR id = ANY(%s) "
                "ORDER BY id LIMIT %s",
                [last, list(gaps), BATCH],
            ).fetchall()
            for ev in map(exact, rows):
                if ev["id"] > last:
                    if len(gaps) < GAP_MAX:
                        for missing in range(last + 1, min(ev["id"], last + 1 + GAP_MAX)):
                            gaps[missing] = now
                    last = ev["id"]
                else:
                    gaps.pop(ev["id"], None)
                if wanted(ev):
                    print(to_json(ev) if args.json else one_line(ev), flush=True)
                    shown += 1
                    if args.limit and shown >= args.limit:
                        return 0
            if len(rows) == BATCH:
                woken[0] = True
                continue
        wait = POLL
        if deadline is not None:
            wait = min(wait, deadline - time.monotonic())
            if wait <= 0:
                return 0
        for _ in conn.notifies(timeout=wait, stop_after=1):
            pass
        woken[0] = True


def command(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        require_schema(conn)
        if not args.json and sys.stderr.isatty():
            print("pg-audit: following new events (Ctrl-C to stop)", file=sys.stderr)
        return follow(conn, args)
