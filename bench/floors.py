"""Capture against its floors: server CPU per single-row statement and per 100k-row statement.

Every variant is a table of the same four columns (``id bigint`` primary key, ``qty
integer``, ``name text``, ``updated_at timestamptz``) and differs only in its triggers:

- ``untracked``: none;
- ``noop_row`` / ``noop_stmt``: a PL/pgSQL trigger that returns at once, row level, or
  statement level with the transition tables capture declares (floor a);
- ``log_row`` / ``log_stmt``: a SECURITY DEFINER function owned by audit_appender,
  search_path pinned as every definer function must, inserting one constant event
  into ``audit.event`` per changed row (the same log, its indexes and partitions;
  floor b). With context the constant event carries constant context values, so the
  context indexes get entries as real events do;
- ``heap_row`` / ``heap_stmt``: the same constant row into ``bench.event_heap``, a copy
  of the log's columns and defaults with no index and no partitions (floor c);
- ``tracked``: ``audit.enable_tracking``, whatever triggers the schema installs.

The statements run inside the server, in a PL/pgSQL procedure per table with static
SQL (cached plans, one COMMIT per statement as a client would), and the cost is the
CPU time of that backend read from ``/proc/<pid>/schedstat`` (nanoseconds; the
utime+stime of ``/proc/<pid>/stat`` when schedstat is missing) around each call: no
client round trip, and much steadier than throughput on a shared machine. Variants
are interleaved in rotating order in every repetition; overheads (variant minus
untracked) and their ratios are taken within one repetition, then summarized.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from .common import Target, log, summarize

ROWS = 100_000  # rows of every single-row table; UPDATEs walk through them
SINGLE_INSERT_BASE = 50_000_000  # ids the single-row INSERTs add (and the DELETEs remove)
BULK_WARM = 20  # single-row statements before a bulk statement in a warm session

# The values the Django middleware sets, in one statement before the write.
CONTEXT = {
    "actor_id": "4242",
    "actor_name": "alice.example",
    "ip": "203.0.113.7",
    "user_agent": "Mozilla/5.0 (X11; Linux x86_64) bench",
}
# One constant event: an UPDATE of one column of a 4-column row, values as text.
CONSTANT_EVENT = {
    "action": "UPDATE",
    "table_name": "public.t_floor",
    "row_key": '{"id": "42"}',
    "old_values": '{"qty": "12"}',
    "new_values": '{"qty": "13"}',
}

SINGLE_VARIANTS = [
    "untracked",
    "noop_row",
    "noop_stmt",
    "log_row",
    "log_stmt",
    "heap_row",
    "heap_stmt",
    "tracked",
]
SINGLE_OPS = ["insert", "update", "update_ctx", "delete"]
FLOORS = {
    "noop": "a trigger that does nothing",
    "log": "one constant event into audit.event",
    "heap": "one constant row into a bare heap",
}
BULK_VARIANTS = ["untracked", "log_stmt", "tracked"]
BULK_OPS = ["update", "insert", "delete"]


@dataclass(frozen=True)
class FloorConfig:
    single_n: int  # statements per measured call
    single_reps: int
    bulk_rows: int
    bulk_reps: int


# ---------------------------------------------------------------------------
# CPU time of a backend
# ---------------------------------------------------------------------------


def cpu_source(pid: int) -> str | None:
    if Path(f"/proc/{pid}/schedstat").exists():
        return "schedstat"
    if Path(f"/proc/{pid}/stat").exists():
        return "stat"
    return None


def backend_cpu(pid: int) -> float:
    """CPU seconds a local backend has used so far."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def written(su: psycopg.Connection) -> tuple[int, int]:
    """Rows ever appended to audit.event and to the bare heap, from their sequences
    (which other sessions see at once, before a commit or a rollback)."""
    row = su.execute(
        "SELECT coalesce(pg_sequence_last_value('audit.event_id_seq'), 0), "
        "coalesce(pg_sequence_last_value('bench.event_heap_id_seq'), 0)"
    ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


# ---------------------------------------------------------------------------
# Schema: floor functions, tables, procedures
# ---------------------------------------------------------------------------


def _floor_function(
    su: psycopg.Connection, name: str, target: str, *, context: bool, level: str
) -> sql.Composed:
    cols = [
        "action",
        "actor_id",
        "actor_name",
        "ip",
        "user_agent",
        "request_id",
        "table_name",
        "row_key",
        "old_values",
        "new_values",
    ]
    ctx = (
        [
            CONTEXT["actor_id"],
            CONTEXT["actor_name"],
            CONTEXT["ip"],
            CONTEXT["user_agent"],
            "req-bench",
        ]
        if context
        else [None] * 5
    )
    values = [
        CONSTANT_EVENT["action"],
        *ctx,
        CONSTANT_EVENT["table_name"],
        CONSTANT_EVENT["row_key"],
        CONSTANT_EVENT["old_values"],
        CONSTANT_EVENT["new_values"],
    ]
    # Typed literals, so a SELECT list needs no inference.
    types = ["text", "text", "text", "inet", "text", "text", "text", "jsonb", "jsonb", "jsonb"]
    lits = sql.SQL(", ").join(
        sql.SQL("{}::{}").format(sql.Literal(v), sql.SQL(t))
        for v, t in zip(values, types, strict=True)
    )
    into = sql.SQL("INSERT INTO {} ({})").format(
        sql.SQL(target), sql.SQL(", ").join(map(sql.Identifier, cols))
    )
    if level == "row":
        body = sql.SQL("BEGIN {} VALUES ({}); RETURN NULL; END").format(into, lits)
    else:
        body = sql.SQL(
            "BEGIN IF TG_OP = 'DELETE' THEN {into} SELECT {lits} FROM bench_old; "
            "ELSE {into} SELECT {lits} FROM bench_new; END IF; RETURN NULL; END"
        ).format(into=into, lits=lits)
    return sql.SQL(
        "CREATE FUNCTION bench.{name}() RETURNS trigger LANGUAGE plpgsql SECURITY DEFINER "
        "SET search_path = pg_catalog, pg_temp AS {body}"
    ).format(name=sql.Identifier(name), body=sql.Literal(body.as_string(su)))


def create_floor_functions(su: psycopg.Connection, app_role: str) -> None:
    """As a superuser: schema bench, the bare heap and the floor trigger functions."""
    su.execute("CREATE SCHEMA IF NOT EXISTS bench")
    su.execute(sql.SQL("GRANT USAGE ON SCHEMA bench TO {}").format(sql.Identifier(app_role)))
    su.execute("GRANT USAGE ON SCHEMA bench TO audit_appender")
    su.execute("CREATE SEQUENCE IF NOT EXISTS bench.event_heap_id_seq")
    su.execute("CREATE TABLE IF NOT EXISTS bench.event_heap (LIKE audit.event INCLUDING DEFAULTS)")
    su.execute(
        "ALTER TABLE bench.event_heap ALTER COLUMN id "
        "SET DEFAULT nextval('bench.event_heap_id_seq')"
    )
    su.execute("GRANT INSERT ON bench.event_heap TO audit_appender")
    su.execute("GRANT USAGE ON SEQUENCE bench.event_heap_id_seq TO audit_appender")
    su.execute(
        "CREATE OR REPLACE FUNCTION bench.floor_noop() RETURNS trigger LANGUAGE plpgsql "
        "AS 'BEGIN RETURN NULL; END'"
    )
    for target, short in (("audit.event", "log"), ("bench.event_heap", "heap")):
        for level in ("row", "stmt"):
            for context in (False, True):
                name = f"floor_{short}_{level}" + ("_ctx" if context else "")
                su.execute(
                    sql.SQL("DROP FUNCTION IF EXISTS bench.{}()").format(sql.Identifier(name))
                )
                su.execute(_floor_function(su, name, target, context=context, level=level))
                su.execute(
                    sql.SQL("ALTER FUNCTION bench.{}() OWNER TO audit_appender").format(
                        sql.Identifier(name)
                    )
                )
    su.execute(
        "DO $$ DECLARE f regprocedure; BEGIN "
        "FOR f IN SELECT p.oid FROM pg_proc p WHERE p.pronamespace = 'bench'::regnamespace LOOP "
        "EXECUTE format('REVOKE ALL ON FUNCTION %s FROM PUBLIC', f); END LOOP; END $$"
    )
    su.execute(
        sql.SQL("GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA bench TO {}").format(
            sql.Identifier(app_role)
        )
    )


def _create_table(app: psycopg.Connection, table: str, rows: int) -> None:
    ident = sql.Identifier(table)
    app.execute(sql.SQL("DROP TABLE IF EXISTS {}").format(ident))
    app.execute(
        sql.SQL(
            "CREATE TABLE {} (id bigint PRIMARY KEY, qty integer NOT NULL, "
            "name text NOT NULL, updated_at timestamptz NOT NULL)"
        ).format(ident)
    )
    app.execute(
        sql.SQL(
            "INSERT INTO {} SELECT g, g %% 1000, 'item ' || g, now() FROM generate_series(1, %s) g"
        ).format(ident),
        [rows],
    )


def _attach(app: psycopg.Connection, table: str, variant: str, context: bool) -> None:
    """Give a table the triggers of its variant."""
    ident = sql.Identifier(table)
    if variant == "untracked":
        return
    if variant == "tracked":
        app.execute("SELECT audit.enable_tracking(%s::regclass)", [table])
        return
    kind, level = variant.split("_")
    fn = sql.Identifier(
        "floor_noop" if kind == "noop" else f"floor_{kind}_{level}" + ("_ctx" if context else "")
    )
    if level == "row":
        app.execute(
            sql.SQL(
                "CREATE TRIGGER bench_floor AFTER INSERT OR UPDATE OR DELETE ON {} "
                "FOR EACH ROW EXECUTE FUNCTION bench.{}()"
            ).format(ident, fn)
        )
        return
    for event, refs in (
        ("INSERT", "NEW TABLE AS bench_new"),
        ("UPDATE", "OLD TABLE AS bench_old NEW TABLE AS bench_new"),
        ("DELETE", "OLD TABLE AS bench_old"),
    ):
        app.execute(
            sql.SQL(
                "CREATE TRIGGER {} AFTER {} ON {} REFERENCING {} "
                "FOR EACH STATEMENT EXECUTE FUNCTION bench.{}()"
            ).format(
                sql.Identifier(f"bench_floor_{event.lower()}"),
                sql.SQL(event),
                ident,
                sql.SQL(refs),
                fn,
            )
        )


def single_table(variant: str, op: str) -> str:
    """The table a variant's statements of one kind run on."""
    if op == "update_ctx" and variant.split("_")[0] in ("log", "heap"):
        return f"t_{variant}_ctx"
    return f"t_{variant}"


_PROCEDURE = """
CREATE OR REPLACE PROCEDURE bench.{proc}(op text, n integer, start_id bigint)
LANGUAGE plpgsql AS $body$
BEGIN
    IF op = 'insert' THEN
        FOR i IN 0 .. n - 1 LOOP
            INSERT INTO public.{tbl} VALUES (start_id + i, 7, 'new item', now());
            COMMIT;
        END LOOP;
    ELSIF op = 'update' THEN
        FOR i IN 0 .. n - 1 LOOP
            UPDATE public.{tbl} SET qty = qty + 1 WHERE id = (start_id + i) % {rows} + 1;
            COMMIT;
        END LOOP;
    ELSIF op = 'update_ctx' THEN
        FOR i IN 0 .. n - 1 LOOP
            -- the five context settings (transaction-local), then the statement
            PERFORM set_config('audit.actor_id', {actor_id}, true),
                    set_config('audit.actor_name', {actor_name}, true),
                    set_config('audit.ip', {ip}, true),
                    set_config('audit.user_agent', {user_agent}, true),
                    set_config('audit.request_id', 'req-' || (start_id + i), true);
            UPDATE public.{tbl} SET qty = qty + 1 WHERE id = (start_id + i) % {rows} + 1;
            COMMIT;
        END LOOP;
    ELSIF op = 'delete' THEN
        FOR i IN 0 .. n - 1 LOOP
            DELETE FROM public.{tbl} WHERE id = start_id + i;
            COMMIT;
        END LOOP;
    ELSE
        RAISE EXCEPTION 'unknown op %', op;
    END IF;
END
$body$
"""

_BULK = {
    "update": "UPDATE {t} SET qty = qty + 1 WHERE id > " + str(BULK_WARM),
    "insert": "INSERT INTO {t} SELECT g, g % 1000, 'item ' || g, now() "
    "FROM generate_series({lo}, {hi}) g",
    "delete": "DELETE FROM {t} WHERE id > " + str(BULK_WARM),
}
_WARM = {
    "update": "UPDATE {t} SET qty = qty + 1 WHERE id = %s",
    "insert": "INSERT INTO {t} VALUES (-%s, 1, 'warm', now())",
    "delete": "DELETE FROM {t} WHERE id = %s",
}


def setup(target: Target, db: str, app_role: str, cfg: FloorConfig) -> dict[str, Any]:
    with target.connect(db) as su:
        create_floor_functions(su, app_role)
    tables: dict[str, tuple[str, bool]] = {}
    for v in SINGLE_VARIANTS:
        for op in SINGLE_OPS:
            tables[single_table(v, op)] = (v, op == "update_ctx")
    bulk_tables = {f"b_{v}": v for v in BULK_VARIANTS}
    with target.connect(db, app_role) as app:
        for table, (variant, context) in tables.items():
            _create_table(app, table, ROWS)
            _attach(app, table, variant, context)
        for table, variant in bulk_tables.items():
            _create_table(app, table, cfg.bulk_rows + BULK_WARM)
            _attach(app, table, variant, False)
    with target.connect(db) as su:
        for table in tables:
            su.execute(
                sql.SQL(_PROCEDURE).format(
                    proc=sql.Identifier(f"single_{table}"),
                    tbl=sql.Identifier(table),
                    rows=sql.Literal(ROWS),
                    **{k: sql.Literal(v) for k, v in CONTEXT.items()},
                )
            )
            su.execute(
                sql.SQL("GRANT EXECUTE ON PROCEDURE bench.{}(text, integer, bigint) TO {}").format(
                    sql.Identifier(f"single_{table}"), sql.Identifier(app_role)
                )
            )
        su.execute("VACUUM ANALYZE")
        capture = su.execute(
            "SELECT tgname, CASE WHEN tgtype & 1 = 1 THEN 'row' ELSE 'statement' END, "
            "tgfoid::regprocedure::text, tgenabled::text "
            "FROM pg_trigger WHERE tgrelid = 't_tracked'::regclass AND NOT tgisinternal "
            "ORDER BY tgname"
        ).fetchall()
    return {
        "capture_triggers": [
            {"name": n, "level": lv, "function": f, "enabled": e} for n, lv, f, e in capture
        ]
    }


# ---------------------------------------------------------------------------
# Single-row statements
# ---------------------------------------------------------------------------


def _ratio(num: float, den: float) -> float | None:
    return num / den if den > 0 else None


def run_single(target: Target, db: str, app_role: str, cfg: FloorConfig) -> dict[str, Any]:
    n = cfg.single_n
    # raw[op][variant] = per-repetition CPU us per statement
    raw: dict[str, dict[str, list[float]]] = {
        op: {v: [] for v in SINGLE_VARIANTS} for op in SINGLE_OPS
    }
    wall: dict[str, dict[str, list[float]]] = {
        op: {v: [] for v in SINGLE_VARIANTS} for op in SINGLE_OPS
    }
    events: dict[str, dict[str, list[float]]] = {
        op: {v: [] for v in SINGLE_VARIANTS} for op in SINGLE_OPS
    }
    with target.connect(db, app_role) as conn, target.connect(db) as su:
        conn.execute("SET synchronous_commit = off")
        pid = conn.info.backend_pid
        source = cpu_source(pid)
        if source is None:
            return {"skipped": "backend CPU time is not readable from /proc (remote server?)"}
        for rep in range(-1, cfg.single_reps):  # rep -1 warms caches and plans, not recorded
            count = min(n, 50) if rep < 0 else n
            if rep >= 0:
                log(f"sql floors single-row: repetition {rep + 1}/{cfg.single_reps}")
            start_insert = SINGLE_INSERT_BASE + (rep + 1) * n * 2
            start_update = ((rep + 1) * 7919 * n) % ROWS
            for i, op in enumerate(SINGLE_OPS):
                shift = (rep + i) % len(SINGLE_VARIANTS)
                order = SINGLE_VARIANTS[shift:] + SINGLE_VARIANTS[:shift]
                for v in order:
                    table = single_table(v, op)
                    start = start_insert if op in ("insert", "delete") else start_update
                    before = written(su)
                    cpu0, t0 = backend_cpu(pid), time.perf_counter()
                    conn.execute(
                        sql.SQL("CALL bench.{}(%s, %s, %s)").format(
                            sql.Identifier(f"single_{table}")
                        ),
                        [op, count, start],
                    )
                    cpu1, t1 = backend_cpu(pid), time.perf_counter()
                    if rep < 0:
                        continue
                    raw[op][v].append((cpu1 - cpu0) / count * 1e6)
                    wall[op][v].append((t1 - t0) / count * 1e6)
                    after = written(su)
                    events[op][v].append((after[0] - before[0] + after[1] - before[1]) / count)
    return {
        "cpu_source": source,
        "statements_per_call": n,
        "reps": cfg.single_reps,
        **summarize_single(raw, wall, events),
        # CPU us per statement of every repetition, in order, for a closer look
        "raw_cpu_us": {
            op: {v: [round(x, 2) for x in xs] for v, xs in by_v.items()} for op, by_v in raw.items()
        },
    }


def summarize_single(
    raw: dict[str, dict[str, list[float]]],
    wall: dict[str, dict[str, list[float]]],
    events: dict[str, dict[str, list[float]]],
) -> dict[str, Any]:
    variants = []
    ratios = []
    for op, by_v in raw.items():
        base = by_v["untracked"]
        over = {v: [x - b for x, b in zip(xs, base, strict=True)] for v, xs in by_v.items()}
        for v, xs in by_v.items():
            variants.append(
                {
                    "operation": op,
                    "variant": v,
                    "cpu_us": summarize(xs),
                    "wall_us": summarize(wall[op][v]),
                    "overhead_us": None if v == "untracked" else summarize(over[v]),
                    "events_per_statement": round(
                        sum(events[op][v]) / max(1, len(events[op][v])), 4
                    ),
                }
            )
        for floor in FLOORS:
            levels = {lv: over[f"{floor}_{lv}"] for lv in ("row", "stmt")}
            medians = {
                lv: (summarize(xs) or {"median": float("inf")})["median"]
                for lv, xs in levels.items()
            }
            cheapest = min(medians, key=lambda lv: medians[lv])
            per_rep = [_ratio(t, f) for t, f in zip(over["tracked"], levels[cheapest], strict=True)]
            ratios.append(
                {
                    "operation": op,
                    "floor": floor,
                    "level": cheapest,
                    "floor_overhead_us": summarize(levels[cheapest]),
                    "tracked_overhead_us": summarize(over["tracked"]),
                    # tracked overhead as a multiple of the floor's, per repetition
                    "ratio": summarize([r for r in per_rep if r is not None]),
                    "reps_without_floor_overhead": sum(r is None for r in per_rep),
                    # the same from each variant's fastest repetition: what a quiet
                    # machine would show (load slows long code paths more)
                    "ratio_of_fastest": _ratio(
                        min(by_v["tracked"]) - min(base),
                        min(by_v[f"{floor}_{cheapest}"]) - min(base),
                    ),
                }
            )
    return {"variants": variants, "ratios": ratios}


# ---------------------------------------------------------------------------
# 100k-row statements
# ---------------------------------------------------------------------------


def _bulk_once(
    target: Target,
    su: psycopg.Connection,
    db: str,
    app_role: str,
    op: str,
    table: str,
    rows: int,
    warm: bool,
) -> tuple[float, float, int]:
    """CPU and wall seconds of one bulk statement (rolled back), and the events it wrote."""
    ident = sql.Identifier(table)
    with target.connect(db, app_role) as conn:
        pid = conn.info.backend_pid
        with conn.transaction(force_rollback=True):
            if warm:
                # Enough single-row statements for PL/pgSQL to settle on its cached plans.
                for k in range(1, BULK_WARM + 1):
                    conn.execute(sql.SQL(_WARM[op]).format(t=ident), [k])
            before = written(su)[0]
            stmt = sql.SQL(_BULK[op]).format(
                t=ident, lo=sql.Literal(rows + BULK_WARM + 1), hi=sql.Literal(2 * rows + BULK_WARM)
            )
            cpu0, t0 = backend_cpu(pid), time.perf_counter()
            cur = conn.execute(stmt)
            cpu1, t1 = backend_cpu(pid), time.perf_counter()
            assert cur.rowcount == rows, (op, table, cur.rowcount)
            events = written(su)[0] - before
    return cpu1 - cpu0, t1 - t0, events


def run_bulk(target: Target, db: str, app_role: str, cfg: FloorConfig) -> dict[str, Any]:
    keys = [(op, s) for op in BULK_OPS for s in ("fresh", "warm")]
    raw: dict[tuple[str, str], dict[str, list[tuple[float, float, int]]]] = {
        k: {v: [] for v in BULK_VARIANTS} for k in keys
    }
    with target.connect(db) as su:
        for rep in range(cfg.bulk_reps):
            log(
                f"sql floors {cfg.bulk_rows:,}-row statements: repetition {rep + 1}/{cfg.bulk_reps}"
            )
            for i, (op, session) in enumerate(keys):
                shift = (rep + i) % len(BULK_VARIANTS)
                for v in BULK_VARIANTS[shift:] + BULK_VARIANTS[:shift]:
                    raw[(op, session)][v].append(
                        _bulk_once(
                            target, su, db, app_role, op, f"b_{v}", cfg.bulk_rows, session == "warm"
                        )
                    )
                    # Rolled back: the dead rows go, so every run starts from the same state.
                    su.execute(sql.SQL("VACUUM {}").format(sql.Identifier(f"b_{v}")))
                    su.execute("VACUUM audit.event")
    out = []
    for (op, session), by_v in raw.items():
        cpu = {v: [c for c, _, _ in xs] for v, xs in by_v.items()}
        base = cpu["untracked"]
        over = {v: [x - b for x, b in zip(xs, base, strict=True)] for v, xs in cpu.items()}
        out.append(
            {
                "operation": op,
                "session": session,
                "rows": cfg.bulk_rows,
                "cpu_s": {v: summarize(xs) for v, xs in cpu.items()},
                "wall_s": {v: summarize([w for _, w, _ in xs]) for v, xs in by_v.items()},
                "events_per_row": {
                    v: round(sum(e for _, _, e in xs) / max(1, len(xs) * cfg.bulk_rows), 4)
                    for v, xs in by_v.items()
                },
                # tracked overhead as a multiple of the floor's (one constant event per row)
                "ratio_to_floor": summarize(
                    [
                        r
                        for r in (
                            _ratio(t, f)
                            for t, f in zip(over["tracked"], over["log_stmt"], strict=True)
                        )
                        if r is not None
                    ]
                ),
                "ratio_of_fastest": _ratio(
                    min(cpu["tracked"]) - min(base), min(cpu["log_stmt"]) - min(base)
                ),
                # plain time ratios against untracked
                "tracked_vs_untracked": summarize(
                    [t / b for t, b in zip(cpu["tracked"], base, strict=True) if b > 0]
                ),
                "floor_vs_untracked": summarize(
                    [f / b for f, b in zip(cpu["log_stmt"], base, strict=True) if b > 0]
                ),
            }
        )
    return {"rows": cfg.bulk_rows, "reps": cfg.bulk_reps, "results": out}
