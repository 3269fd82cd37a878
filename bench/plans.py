"""``python -m bench.plans``: the EXPLAIN plans of docs/dba-guide.md ("Indexes and plans").

Generates a log in one monthly partition (November 2026), set-based, as the
superuser (the append-only triggers refuse UPDATE and DELETE only), in the form
capture writes now: every value a JSON string of PostgreSQL's text output. The
mix: 60 % UPDATE, 15 % INSERT, 5 % DELETE of four tables, 10 % LOGIN,
3 % LOGIN_FAILED, 4 % LOGOUT, 0.1 % group grants (INSERT into
auth_user_groups), 2.9 % auth_user updates of last_login; one event every
250 ms from 2026-11-01 on. Then VACUUM ANALYZE, and each query of the guide
under ``EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, BUFFERS OFF)``: one warm-up,
then the run with the median execution time of five. Prints the guide's code
blocks, the numbers its prose quotes, and which partition index stands for
which index. The embedded server gets the benchmark's settings (bench/common.py).

    .venv/bin/python -m bench.plans                 # 10,000,000 events, embedded PostgreSQL 18
    .venv/bin/python -m bench.plans --events 200000 # seconds
"""

from __future__ import annotations

import argparse
import statistics
import time
from typing import Any

from .common import bench_server, log, recreate_database

DB = "bench_plans"
MONTH = "2026-11-01"
REPS = 5
LAST_FITTING = 30 * 86400 * 4 - 1  # g = 1 .. this, 250 ms apart, stay in November

# One event per g, 250 ms apart. k = g * 7 mod 1000 interleaves the kinds (7 is
# prime to 1000, so each kind keeps its per-mille share in every 1000 events);
# 4,999 users and 49,999 rows per table, both prime to 1000 and to 4, so every
# user does every kind of thing and every row of every table has events.
GENERATE = """
INSERT INTO audit.event (id, occurred_at, tx_started_at, action, outcome, actor_id, actor_name,
                         ip, user_agent, request_id, db_role, application_name, table_name,
                         row_key, old_values, new_values, detail, txid)
SELECT g, ts, ts, action,
       CASE action WHEN 'LOGIN' THEN 'success' WHEN 'LOGOUT' THEN 'success'
                   WHEN 'LOGIN_FAILED' THEN 'failure' END,
       CASE WHEN action <> 'LOGIN_FAILED' THEN actor END,
       CASE WHEN action <> 'LOGIN_FAILED' THEN 'user' || actor END,
       CASE WHEN action = 'LOGIN_FAILED' THEN ('198.51.100.' || g %% 50)::inet
            ELSE ('10.' || actor::int %% 200 || '.' || actor::int / 200 || '.1')::inet END,
       'Mozilla/5.0 (X11; Linux x86_64) Firefox/' || (120 + g %% 20) || '.0',
       'req-' || g / 4, 'shop_app', 'shop', tbl,
       CASE WHEN tbl = 'public.auth_user' THEN jsonb_build_object('id', actor)
            WHEN tbl IS NOT NULL THEN jsonb_build_object('id', rid::text) END,
       CASE WHEN action = 'UPDATE' AND tbl = 'public.auth_user'
                THEN jsonb_build_object('last_login', (ts - interval '3 days')::text)
            WHEN action = 'UPDATE' AND g %% 3 = 0
                THEN jsonb_build_object('qty', (g %% 100)::text, 'price', price)
            WHEN action = 'UPDATE' THEN jsonb_build_object('qty', (g %% 100)::text)
            WHEN action = 'DELETE' THEN row_image
       END,
       CASE WHEN action = 'UPDATE' AND tbl = 'public.auth_user'
                THEN jsonb_build_object('last_login', ts::text)
            WHEN action = 'UPDATE' AND g %% 3 = 0
                THEN jsonb_build_object('qty', (g %% 100 + 1)::text, 'price', new_price)
            WHEN action = 'UPDATE' THEN jsonb_build_object('qty', (g %% 100 + 1)::text)
            WHEN action = 'INSERT' AND tbl = 'public.auth_user_groups'
                THEN jsonb_build_object('id', rid::text, 'user_id', actor,
                                        'group_id', (g %% 5 + 1)::text)
            WHEN action = 'INSERT' THEN row_image
       END,
       CASE WHEN action = 'LOGIN_FAILED' THEN jsonb_build_object('username', 'user' || actor) END,
       (1000 + g / 2)::text::xid8
FROM generate_series(%(lo)s::bigint, %(hi)s::bigint) g
CROSS JOIN LATERAL (
    SELECT %(month)s::timestamptz + g * interval '250 ms' AS ts,
           g * 7 %% 1000 AS k,
           ((g * 7919) %% 4999 + 1)::text AS actor,
           (g * 31) %% 49999 + 1 AS rid,
           ((g %% 9000 + 100) / 100.0)::numeric(10, 2)::text AS price,
           ((g %% 9000 + 150) / 100.0)::numeric(10, 2)::text AS new_price
) p
CROSS JOIN LATERAL (
    SELECT CASE WHEN k < 600 THEN 'UPDATE' WHEN k < 750 THEN 'INSERT' WHEN k < 800 THEN 'DELETE'
                WHEN k < 900 THEN 'LOGIN' WHEN k < 930 THEN 'LOGIN_FAILED'
                WHEN k < 970 THEN 'LOGOUT' WHEN k = 970 THEN 'INSERT' ELSE 'UPDATE' END AS action,
           CASE WHEN k < 800 THEN 'public.shop_' ||
                    (ARRAY['order', 'customer', 'product', 'invoice'])[g %% 4 + 1]
                WHEN k = 970 THEN 'public.auth_user_groups'
                WHEN k > 970 THEN 'public.auth_user' END AS tbl,
           jsonb_build_object('id', rid::text, 'qty', (g %% 100)::text, 'price', price,
                              'name', 'item ' || rid, 'updated_at', ts::text) AS row_image
) x
"""

QUERIES: list[tuple[str, str]] = [
    (
        "auth_events, one day",
        "SELECT * FROM audit.auth_events WHERE occurred_at >= '2026-11-20' "
        "AND occurred_at < '2026-11-21';",
    ),
    (
        "auth_events, newest 100",
        "SELECT * FROM audit.auth_events ORDER BY occurred_at DESC LIMIT 100;",
    ),
    (
        "auth_events, newest 100 by event_id",
        "SELECT * FROM audit.auth_events ORDER BY event_id DESC LIMIT 100;",
    ),
    (
        "failed_login_bursts, inner scan",
        "SELECT 1 FROM audit.event e WHERE e.action IN ('LOGIN', 'LOGOUT', 'LOGIN_FAILED')\n"
        "  AND e.outcome = 'failure' AND e.occurred_at >= '2026-11-20' "
        "AND e.occurred_at < '2026-11-21';",
    ),
    (
        "privilege_changes, the month",
        "SELECT * FROM audit.privilege_changes WHERE occurred_at >= '2026-11-01';",
    ),
    (
        "privilege_changes, newest 100",
        "SELECT * FROM audit.privilege_changes ORDER BY occurred_at DESC LIMIT 100;",
    ),
    (
        "privilege_changes, newest 100 by event_id",
        "SELECT * FROM audit.privilege_changes ORDER BY event_id DESC LIMIT 100;",
    ),
    (
        "privilege_changes, one day",
        "SELECT * FROM audit.privilege_changes WHERE occurred_at >= '2026-11-20' "
        "AND occurred_at < '2026-11-21';",
    ),
    (
        "column_changes, one row (the row_ref expression)",
        "SELECT * FROM audit.column_changes\n"
        "WHERE audit.row_ref(table_name, row_key) = "
        "audit.row_ref('public.shop_order', '{\"id\": \"124\"}')\n"
        "  AND table_name = 'public.shop_order' AND row_key = '{\"id\": \"124\"}';",
    ),
    (
        "column_changes, one user since a date",
        "SELECT * FROM audit.column_changes WHERE actor_id = '42' "
        "AND occurred_at >= '2026-11-25';",
    ),
    (
        "column_changes, newest 100",
        "SELECT * FROM audit.column_changes ORDER BY event_id DESC LIMIT 100;",
    ),
]

# Timed as a whole (a plpgsql function's own plan does not show in EXPLAIN).
CALLS: list[tuple[str, str]] = [
    (
        "failed_login_bursts, one day",
        "SELECT * FROM audit.failed_login_bursts(since => '2026-11-20', \"until\" => '2026-11-21')",
    ),
]

# Numbers the prose quotes.
COUNTS: list[tuple[str, str]] = [
    ("events", "SELECT count(*) FROM audit.event"),
    (
        "auth events on 2026-11-20",
        "SELECT count(*) FROM audit.auth_events WHERE occurred_at >= '2026-11-20' "
        "AND occurred_at < '2026-11-21'",
    ),
    (
        "failures on 2026-11-20",
        "SELECT count(*) FROM audit.event WHERE action = 'LOGIN_FAILED' "
        "AND occurred_at >= '2026-11-20' AND occurred_at < '2026-11-21'",
    ),
    ("privilege changes", "SELECT count(*) FROM audit.privilege_changes"),
    (
        "auth_user updates (last_login)",
        "SELECT count(*) FROM audit.event WHERE table_name = 'public.auth_user'",
    ),
]


def _elide_empty(lines: list[str], empty: set[str]) -> list[str]:
    """Drops the scans of partitions without rows (and the lines under them)."""
    out: list[str] = []
    skip_deeper_than: int | None = None
    for line in lines:
        depth = len(line) - len(line.lstrip())
        if skip_deeper_than is not None:
            if depth > skip_deeper_than:
                continue
            skip_deeper_than = None
        if "->" in line and any(f" on {p} " in line for p in empty):
            skip_deeper_than = depth
            continue
        out.append(line)
    return out


def _explain(conn: Any, query: str, empty: set[str]) -> tuple[float, str]:
    conn.execute(query.rstrip(";")).fetchall()  # warm-up
    runs = []
    for _ in range(REPS):
        rows = conn.execute(
            "EXPLAIN (ANALYZE, COSTS OFF, TIMING OFF, BUFFERS OFF) " + query.rstrip(";")
        ).fetchall()
        lines = [r[0] for r in rows]
        ms = float(lines[-1].split(":")[1].split()[0])
        runs.append((ms, "\n".join(_elide_empty(lines, empty))))
    runs.sort(key=lambda r: r[0])
    return runs[len(runs) // 2]


def _timed(conn: Any, query: str) -> float:
    conn.execute(query).fetchall()
    secs = []
    for _ in range(REPS):
        start = time.perf_counter()
        conn.execute(query).fetchall()
        secs.append(time.perf_counter() - start)
    return statistics.median(secs) * 1000


def generate(conn: Any, events: int) -> float:
    conn.execute(
        "CREATE TABLE audit.event_2026_11 PARTITION OF audit.event "
        "FOR VALUES FROM ('2026-11-01') TO ('2026-12-01')"
    )
    conn.execute("SELECT audit.protect_table('audit.event_2026_11')")
    chunk = 1_000_000
    start = time.perf_counter()
    for lo in range(1, events + 1, chunk):
        hi = min(events, lo + chunk - 1)
        conn.execute(GENERATE, {"lo": lo, "hi": hi, "month": MONTH})
        log(f"plans: generated {hi:,} of {events:,} events")
    conn.execute("SELECT setval('audit.event_id_seq', %s)", [events])
    generated = time.perf_counter() - start
    start = time.perf_counter()
    conn.execute("VACUUM ANALYZE audit.event")
    vacuumed = time.perf_counter() - start
    log(f"plans: generated in {generated:.0f} s, VACUUM ANALYZE in {vacuumed:.0f} s")
    return generated


def report(conn: Any) -> None:
    size, heap = conn.execute(
        "SELECT sum(pg_total_relation_size(relid)), sum(pg_relation_size(relid)) "
        "FROM pg_partition_tree('audit.event')"
    ).fetchone()
    print(f"size: {int(size) / 1e9:.2f} GB with indexes, {int(heap) / 1e9:.2f} GB heap")
    for name, q in COUNTS:
        print(f"{name}: {conn.execute(q).fetchone()[0]:,}")
    print("\nindexes of audit.event_2026_11 (partition index -> index of audit.event, size):")
    for part_index, parent, idx_size in conn.execute(
        "SELECT c.relname, p.relname, pg_size_pretty(pg_relation_size(c.oid)) "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "JOIN pg_inherits h ON h.inhrelid = i.indexrelid JOIN pg_class p ON p.oid = h.inhparent "
        "WHERE i.indrelid = 'audit.event_2026_11'::regclass ORDER BY c.relname"
    ).fetchall():
        print(f"  {part_index} -> {parent} ({idx_size})")
    empty = {
        r[0]
        for r in conn.execute(
            "SELECT c.relname FROM pg_partition_tree('audit.event') t "
            "JOIN pg_class c ON c.oid = t.relid WHERE t.isleaf AND c.reltuples <= 0"
        ).fetchall()
    }
    for label, call in CALLS:
        print(f"\n{label}: {_timed(conn, call):.1f} ms (median of {REPS})\n  {call}")
    for label, query in QUERIES:
        ms, plan = _explain(conn, query, empty)
        print(f"\n{label} (median execution of {REPS}: {ms} ms):\n\n```\n{query}\n\n{plan}\n```")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.plans", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--events", type=int, default=10_000_000)
    p.add_argument("--dsn", default=None, help="a server (superuser) instead of an embedded one")
    p.add_argument("--bindir", default=None, help="PostgreSQL bin directory")
    p.add_argument("--port", type=int, default=55498)
    p.add_argument("--reuse", action="store_true",
                   help="report on the database of an earlier run (with --dsn)")
    args = p.parse_args(argv)
    if args.reuse and not args.dsn:
        p.error("--reuse needs --dsn: an embedded server is gone after each run")
    if not 0 < args.events <= LAST_FITTING:
        p.error(f"--events: 1 to {LAST_FITTING:,} (250 ms apart, they must fit in November 2026)")
    with bench_server(args.dsn, args.bindir, args.port) as target:
        if not args.reuse:
            recreate_database(target, DB, with_schema=True)
        with target.connect(DB) as conn:
            conn.execute("SET TimeZone = 'UTC'")
            print(f"PostgreSQL {conn.execute('SHOW server_version').fetchone()[0]}")
            if not args.reuse:
                generate(conn, args.events)
            report(conn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
