"""Reporting level: a generated log, then the reporting views, investigation functions
and the admin changelist timed on it.

The log is generated set-based by the superuser (INSERT is what the append-only
triggers allow), spread over the last 90 days in monthly partitions, with a mix of
data changes, logins, failed-login bursts, admin actions and privilege changes; its
older half shaped as events from before step 0006, its newer half as capture writes
them now (see GENERATE).
Only what exists at run time is timed; the rest is listed as missing.
"""

from __future__ import annotations

import json
import statistics
import subprocess
import sys
import time
from typing import Any

from psycopg import sql

from .common import BENCH_DIR, Target, log, recreate_database

DB = "bench_report"
SPAN_DAYS = 90
DATA_TABLES = [
    "shop_order",
    "shop_customer",
    "shop_product",
    "shop_invoice",
    "shop_payment",
    "shop_shipment",
]

# The older half of the log is shaped as events written before step 0006 (typed
# JSON values); the newer half as the capture writes them now: values as text,
# a key change now and then (old_row_key), and every twentieth data change made
# without application context, carrying its statement.
GENERATE = """
INSERT INTO audit.event (occurred_at, tx_started_at, action, outcome, actor_id, actor_name, ip,
                         user_agent, request_id, db_role, table_name, row_key, old_row_key,
                         old_values, new_values, detail)
SELECT ts, ts, action,
       CASE action WHEN 'LOGIN' THEN 'success' WHEN 'LOGOUT' THEN 'success'
                   WHEN 'LOGIN_FAILED' THEN 'failure' END,
       CASE WHEN action = 'LOGIN_FAILED' OR bare THEN NULL ELSE actor END,
       CASE WHEN action = 'LOGIN_FAILED' OR bare THEN NULL ELSE 'user' || actor END,
       CASE WHEN bare THEN NULL
            WHEN action = 'LOGIN_FAILED' THEN ('198.51.100.' || (g %% 20))::inet
            ELSE ('10.' || (g %% 200) || '.' || (g / 200 %% 250) || '.' || (g %% 7 + 1))::inet END,
       CASE WHEN NOT bare THEN 'Mozilla/5.0 (bench ' || (g %% 12) || ')' END,
       CASE WHEN NOT bare THEN 'req-' || (g / 4) END,
       CASE WHEN bare THEN 'dba' ELSE 'app' END,
       tbl, CASE WHEN tbl IS NOT NULL THEN jsonb_build_object('id', pg_temp.v(rid, newer)) END,
       CASE WHEN moved THEN jsonb_build_object('id', pg_temp.v(rid + 200000, newer)) END,
       CASE WHEN action = 'UPDATE' AND tbl = 'public.auth_user'
                THEN jsonb_build_object('is_superuser', pg_temp.v(false, newer))
            WHEN moved THEN jsonb_build_object('id', pg_temp.v(rid + 200000, newer))
            WHEN action = 'UPDATE' THEN jsonb_build_object('qty', pg_temp.v(g %% 1000, newer))
            WHEN action = 'DELETE'
                THEN jsonb_build_object('id', pg_temp.v(rid, newer),
                                        'qty', pg_temp.v(g %% 1000, newer),
                                        'name', 'item ' || rid, 'updated_at', ts)
       END,
       CASE WHEN action = 'UPDATE' AND tbl = 'public.auth_user'
                THEN jsonb_build_object('is_superuser', pg_temp.v(true, newer))
            WHEN moved THEN jsonb_build_object('id', pg_temp.v(rid, newer))
            WHEN action = 'UPDATE' THEN jsonb_build_object('qty', pg_temp.v(g %% 1000 + 1, newer))
            WHEN action = 'INSERT' AND tbl = 'public.auth_user_groups'
                THEN jsonb_build_object('id', pg_temp.v(rid, newer),
                                        'user_id', pg_temp.v(actor::int, newer),
                                        'group_id', pg_temp.v(1, newer))
            WHEN action = 'INSERT'
                THEN jsonb_build_object('id', pg_temp.v(rid, newer),
                                        'qty', pg_temp.v(g %% 1000, newer),
                                        'name', 'item ' || rid, 'updated_at', ts)
       END,
       CASE WHEN action = 'LOGIN_FAILED' THEN jsonb_build_object('username', 'user' || actor)
            WHEN action = 'ADMIN_UPDATE' THEN jsonb_build_object('message', 'Changed qty.',
                                                                  'object_id', rid::text)
            WHEN bare THEN jsonb_build_object(
                'statement', CASE action
                    WHEN 'UPDATE' THEN 'UPDATE ' || tbl || ' SET qty = qty + 1 WHERE id = ' || rid
                    WHEN 'INSERT' THEN 'INSERT INTO ' || tbl || ' (id) VALUES (' || rid || ')'
                    ELSE 'DELETE FROM ' || tbl || ' WHERE id = ' || rid END)
       END
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
CROSS JOIN LATERAL (
    SELECT now() - make_interval(secs => %(span)s * (1 - g::float8 / %(total)s)) AS ts,
           ((g * 7919) %% 5000 + 1)::text AS actor,
           (g * 31) %% 200000 + 1 AS rid,
           g > %(total)s / 2 AS newer,
           CASE WHEN g %% 100 < 55 THEN 'UPDATE' WHEN g %% 100 < 70 THEN 'INSERT'
                WHEN g %% 100 < 75 THEN 'DELETE' WHEN g %% 100 < 85 THEN 'LOGIN'
                WHEN g %% 100 < 91 THEN 'LOGIN_FAILED' WHEN g %% 100 < 95 THEN 'LOGOUT'
                WHEN g %% 100 < 97 THEN 'ADMIN_UPDATE' WHEN g %% 100 = 97 THEN 'INSERT'
                WHEN g %% 100 = 98 THEN 'UPDATE' ELSE 'EXPORT_REPORT' END AS action,
           CASE WHEN g %% 100 < 75 THEN 'public.shop_' ||
                    (ARRAY['order','customer','product','invoice','payment','shipment'])[g %% 6 + 1]
                WHEN g %% 100 = 97 THEN 'public.auth_user_groups'
                WHEN g %% 100 = 98 THEN 'public.auth_user' END AS tbl
) x
CROSS JOIN LATERAL (
    SELECT newer AND tbl IS NOT NULL AND g %% 20 = 0 AS bare,
           newer AND action = 'UPDATE' AND tbl LIKE 'public.shop%%' AND g %% 1000 = 1 AS moved
) y
"""
# A value as the capture of its time wrote it: typed JSON before step 0006, text after.
VALUE_FUNCTION = """
CREATE FUNCTION pg_temp.v(val anyelement, as_text boolean) RETURNS jsonb
LANGUAGE sql IMMUTABLE
AS $$ SELECT CASE WHEN as_text THEN to_jsonb(val::text) ELSE to_jsonb(val) END $$
"""

# (label, SQL, objects it needs). Functions are called with named arguments where the
# signature is known at run time; see _investigations().
VIEWS = [
    (
        "core: audit.row_history of one row",
        "SELECT count(*) FROM audit.row_history('public.shop_order'::regclass, '{\"id\": 18601}')",
        ["audit.row_history"],
    ),
    (
        "core: newest 100 events by id (the admin's ordering)",
        "SELECT * FROM audit.event ORDER BY id DESC LIMIT 100",
        [],
    ),
    (
        "core: newest 100 events by occurred_at",
        "SELECT * FROM audit.event ORDER BY occurred_at DESC LIMIT 100",
        [],
    ),
    (
        "core: one actor's events, last 7 days",
        "SELECT count(*) FROM audit.event WHERE actor_id = '42' "
        "AND occurred_at >= now() - interval '7 days'",
        [],
    ),
    (
        "core: one request's events",
        "SELECT count(*) FROM audit.event WHERE request_id = 'req-123456'",
        [],
    ),
    (
        "audit.auth_events: newest 100",
        "SELECT * FROM audit.auth_events ORDER BY occurred_at DESC LIMIT 100",
        ["audit.auth_events"],
    ),
    (
        "audit.auth_events: count, last 24 hours",
        "SELECT count(*) FROM audit.auth_events WHERE occurred_at >= now() - interval '1 day'",
        ["audit.auth_events"],
    ),
    (
        "audit.privilege_changes: newest 100",
        "SELECT * FROM audit.privilege_changes ORDER BY occurred_at DESC LIMIT 100",
        ["audit.privilege_changes"],
    ),
    (
        "audit.privilege_changes: count, last 30 days",
        "SELECT count(*) FROM audit.privilege_changes "
        "WHERE occurred_at >= now() - interval '30 days'",
        ["audit.privilege_changes"],
    ),
    (
        "audit.column_changes() of one row",
        "SELECT count(*) FROM audit.column_changes('public.shop_order', '{\"id\": 18601}')",
        ["audit.column_changes"],
    ),
    (
        "audit.column_changes: newest 100",
        "SELECT * FROM audit.column_changes ORDER BY occurred_at DESC LIMIT 100",
        ["audit.column_changes"],
    ),
]


def _investigations(conn: Any) -> list[tuple[str, str, list[str]]]:
    """Calls of the investigation functions (signatures of sql/0003_reporting.sql)."""
    key = "'{\"id\": 18601}'::jsonb"
    return [
        ("audit.failed_login_bursts() with defaults (last day)",
         "SELECT count(*) FROM audit.failed_login_bursts()", ["audit.failed_login_bursts"]),
        ("audit.failed_login_bursts(since => 7 days ago)",
         "SELECT count(*) FROM audit.failed_login_bursts(since => now() - interval '7 days')",
         ["audit.failed_login_bursts"]),
        ("audit.last_change() of one row's column",
         f"SELECT * FROM audit.last_change('public.shop_order'::regclass, {key}, 'qty')",
         ["audit.last_change"]),
        ("audit.row_as_of() of one row, 30 days ago",
         f"SELECT * FROM audit.row_as_of('public.shop_order'::regclass, {key}, "
         "now() - interval '30 days')", ["audit.row_as_of"]),
    ]


def _exists(conn: Any, name: str) -> bool:
    row = conn.execute(
        "SELECT to_regclass(%s) IS NOT NULL OR EXISTS (SELECT FROM pg_proc p "
        "WHERE p.pronamespace = 'audit'::regnamespace AND p.proname = %s)",
        [name, name.removeprefix("audit.")],
    ).fetchone()
    return bool(row and row[0])


def setup(target: Target, events: int) -> dict[str, Any]:
    recreate_database(target, DB, with_schema=True)
    with target.connect(DB) as conn:
        for t in DATA_TABLES:
            conn.execute(
                sql.SQL(
                    "CREATE TABLE public.{} (id bigint PRIMARY KEY, qty integer, name text, "
                    "updated_at timestamptz)"
                ).format(sql.Identifier(t))
            )
            # The investigation functions answer for tracked tables only.
            conn.execute("SELECT audit.enable_tracking(%s::regclass)", [f"public.{t}"])
        # Past months: create_partitions() only looks ahead.
        for back in range(1, 5):
            start = conn.execute(
                "SELECT date_trunc('month', now() - make_interval(months => %s))::date", [back]
            ).fetchone()[0]  # type: ignore[index]
            name = f"event_{start:%Y_%m}"
            conn.execute(
                sql.SQL(
                    "CREATE TABLE IF NOT EXISTS audit.{} PARTITION OF audit.event "
                    "FOR VALUES FROM ({}) TO ({})"
                ).format(
                    sql.Identifier(name),
                    sql.Literal(start),
                    sql.Literal(f"{start.year + start.month // 12}-{start.month % 12 + 1:02d}-01"),
                )
            )
            conn.execute("SELECT audit.protect_table(%s::regclass)", [f"audit.{name}"])
        conn.execute(VALUE_FUNCTION)
        chunk = 500_000
        start = time.perf_counter()
        for lo in range(1, events + 1, chunk):
            hi = min(events, lo + chunk - 1)
            conn.execute(GENERATE, {"lo": lo, "hi": hi, "total": events, "span": SPAN_DAYS * 86400})
            log(f"reporting: generated {hi:,} of {events:,} events")
        generated = time.perf_counter() - start
        conn.execute("VACUUM ANALYZE audit.event")
        size = conn.execute(
            "SELECT sum(pg_total_relation_size(relid)) FROM pg_partition_tree('audit.event')"
        ).fetchone()[0]  # type: ignore[index]
    return {
        "events": events,
        "generate_seconds": round(generated, 1),
        "events_per_second": round(events / generated),
        "total_bytes": int(size),
    }


# Queries that look a row up by its key: timed again as if every event were written
# after step 0006 (no older events to scan for keys that moved).
BY_KEY = ("row_history", "column_changes()", "last_change", "row_as_of")


def _step6_applied_at(conn: Any, at: str) -> None:
    """Records step 0006 as applied at ``at`` (an SQL timestamptz expression): the
    investigation functions scan events older than that for keys that moved before
    old_row_key existed. Benchmark databases only: schema_version is append-only."""
    conn.execute("ALTER TABLE audit.schema_version DISABLE TRIGGER audit_append_only")
    conn.execute(
        sql.SQL("UPDATE audit.schema_version SET applied_at = {} WHERE version = 6").format(
            sql.SQL(at)
        )
    )
    conn.execute("ALTER TABLE audit.schema_version ENABLE ALWAYS TRIGGER audit_append_only")


def time_queries(target: Target, reps: int, *, by_key_only: bool = False) -> list[dict[str, Any]]:
    out = []
    with target.connect(DB) as conn:
        conn.execute("SET statement_timeout = '120s'")
        for label, query, needs in VIEWS + _investigations(conn):
            if by_key_only and not any(k in label for k in BY_KEY):
                continue
            missing = [n for n in needs if not _exists(conn, n)]
            if missing:
                out.append({"query": label, "status": f"missing: {', '.join(missing)}"})
                continue
            secs: list[float] = []
            try:
                for _ in range(reps):
                    start = time.perf_counter()
                    conn.execute(query).fetchall()
                    secs.append(time.perf_counter() - start)
            except Exception as exc:  # noqa: BLE001 - a failing query is a result to report
                out.append(
                    {
                        "query": label,
                        "sql": query,
                        "status": f"error: {str(exc).splitlines()[0][:200]}",
                    }
                )
                continue
            out.append(
                {
                    "query": label,
                    "sql": query,
                    "status": "ok",
                    "ms_median": round(statistics.median(secs) * 1000, 2),
                    "ms_first": round(secs[0] * 1000, 2),
                    "ms_max": round(max(secs) * 1000, 2),
                }
            )
    return out


def time_admin(target: Target, reps: int) -> dict[str, Any]:
    args = {
        "db": {"name": DB, "host": target.host, "port": target.port, "user": target.user},
        "reps": reps,
    }
    done = subprocess.run(
        [sys.executable, str(BENCH_DIR / "admin_workload.py"), json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=600,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT "))  # type: ignore[no-any-return]
    tail = (done.stderr or done.stdout).strip().splitlines()[-8:]
    return {"status": "error", "error": "\n".join(tail)}


def run(target: Target, *, events: int, smoke: bool) -> dict[str, Any]:
    generated = setup(target, events)
    reps = 1 if smoke else 5
    log("reporting: timing views and functions")
    with target.connect(DB) as conn:
        # The older half of the log is shaped as from before step 0006: the
        # upgrade happened half-way.
        _step6_applied_at(conn, f"now() - interval '{SPAN_DAYS // 2} days'")
    queries = time_queries(target, reps)
    with target.connect(DB) as conn:
        _step6_applied_at(conn, f"now() - interval '{SPAN_DAYS + 1} days'")
    for q in time_queries(target, reps, by_key_only=True):
        q["query"] += " (every event written since step 0006)"
        queries.append(q)
    log("reporting: timing the admin changelist")
    admin = time_admin(target, reps)
    return {"log": generated, "queries": queries, "admin": admin, "reps": reps}
