"""``pg-audit report``: a summary of a period an auditor can read."""

from __future__ import annotations

import argparse
import datetime as dt
from collections import Counter
from typing import Any

import psycopg

from ._common import connect, period, positive, require_schema
from ._tail import clean
from .errors import PgAuditError
from .events import actor_label, ip_text

TOP = 10


def register(sub: Any) -> None:
    p = sub.add_parser("report", help="summary of a period: actions, actors, bursts, privileges")
    p.add_argument("--since", help="start (timestamp, or 7d / 24h / 30m ago; default 1d)")
    p.add_argument("--until", help="end, exclusive (default: now)")
    p.add_argument(
        "--threshold", type=positive(int), default=5,
        help="failed logins that make a burst (default 5)",
    )
    p.add_argument(
        "--window", default="10 minutes", help="window of a burst (default '10 minutes')"
    )
    p.set_defaults(func=command)


def _table(headers: list[str], rows: list[tuple[Any, ...]]) -> list[str]:
    if not rows:
        return ["  (none)"]
    cells = [[clean("" if v is None else v) for v in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    fmt = "  " + "  ".join(f"{{:<{w}}}" for w in widths)
    return [fmt.format(*headers).rstrip(), fmt.format(*("-" * w for w in widths)).rstrip()] + [
        fmt.format(*r).rstrip() for r in cells
    ]


def build(
    conn: psycopg.Connection, since: dt.datetime, until: dt.datetime, threshold: int, window: str
) -> str:
    span = [since, until]
    out = [f"pg-audit report from {since.isoformat()} to {until.isoformat()}", ""]

    rows = conn.execute(
        "SELECT action, count(*) FROM audit.event WHERE occurred_at >= %s AND occurred_at < %s "
        "GROUP BY action ORDER BY count(*) DESC, action",
        span,
    ).fetchall()
    total = sum(r[1] for r in rows)
    out += [f"Events by action ({total} in all)"] + _table(["action", "events"], rows) + [""]

    # Who, spelled as everywhere else (events.actor_label): grouped in the
    # database by what the label depends on, merged here.
    events: Counter[tuple[str, str]] = Counter()
    failures: Counter[tuple[str, str]] = Counter()
    for actor_id, actor_name, db_role, context, n, failed in conn.execute(
        "SELECT actor_id, actor_name, db_role, "
        "ip IS NOT NULL OR user_agent IS NOT NULL OR request_id IS NOT NULL, count(*), "
        "count(*) FILTER (WHERE outcome = 'failure') "
        "FROM audit.event WHERE occurred_at >= %s AND occurred_at < %s GROUP BY 1, 2, 3, 4",
        span,
    ):
        who = (actor_label(actor_id, actor_name, db_role, context or None), db_role)
        events[who] += n
        failures[who] += failed
    rows = [
        (who, role, n, failures[(who, role)])
        for (who, role), n in sorted(events.items(), key=lambda i: (-i[1], i[0]))[:TOP]
    ]
    out += [f"Top actors (first {TOP})"] + _table(["actor", "db role", "events", "failures"], rows)
    out.append("")

    try:
        rows = conn.execute(
            "SELECT subject_kind, subject, max_in_window, failures, first_failure, last_failure, "
            "array_to_string(other_subjects, ', ') FROM audit.failed_login_bursts("
            'threshold => %s, "window" => %s::interval, since => %s, "until" => %s)',
            [threshold, window, *span],
        ).fetchall()
    except (psycopg.errors.InvalidDatetimeFormat, psycopg.errors.InvalidParameterValue) as exc:
        raise PgAuditError(f"--window: not a positive interval: {window!r}") from exc
    out += (
        [f"Failed-login bursts ({threshold} or more within {window})"]
        + _table(
            ["kind", "subject", "most in window", "failures", "first", "last", "seen with"], rows
        )
        + [""]
    )

    found = conn.execute(
        "SELECT occurred_at, privilege, change, "
        "grantee_kind || ' ' || coalesce(grantee_id, 'all'), "
        "object_id, actor_id, actor_name, db_role, ip, request_id "
        "FROM audit.privilege_changes WHERE occurred_at >= %s AND occurred_at < %s "
        "ORDER BY event_id",
        span,
    ).fetchall()
    rows = [
        (when, privilege, change, to, obj,
         actor_label(actor_id, actor_name, role, ip, None, request), role, ip_text(ip))
        for when, privilege, change, to, obj, actor_id, actor_name, role, ip, request in found
    ]
    out += (
        ["Privilege changes"]
        + _table(["when", "privilege", "change", "to", "object", "by", "db role", "from"], rows)
        + [""]
    )

    rows = conn.execute(
        "SELECT table_name, count(*), count(*) FILTER (WHERE action = 'INSERT'), "
        "count(*) FILTER (WHERE action = 'UPDATE'), count(*) FILTER (WHERE action = 'DELETE'), "
        "count(*) FILTER (WHERE action = 'TRUNCATE') "
        "FROM audit.event WHERE occurred_at >= %s AND occurred_at < %s AND table_name IS NOT NULL "
        "GROUP BY table_name ORDER BY 2 DESC, 1 LIMIT %s",
        [*span, TOP],
    ).fetchall()
    out += [f"Busiest tables (first {TOP})"] + _table(
        ["table", "events", "insert", "update", "delete", "truncate"], rows
    )
    return "\n".join(out)


def command(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        require_schema(conn)
        since, until = period(conn, args.since, args.until)
        print(build(conn, since, until, args.threshold, args.window))
    return 0
