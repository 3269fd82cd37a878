"""SQL level: pgbench single-row writes, 100k-row statements, context cost, bytes per event.

Two identical tables, ``item_plain`` (untracked) and ``item_tracked`` (audit.enable_tracking),
four columns each. Every variant runs against both, back to back, alternating which goes
first, in every repetition; ratios are tracked/plain of the same repetition.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from .common import Target, ensure_role, log, ratio_summary, recreate_database, summarize

DB = "bench_sql"
APP_ROLE = "bench_app"
TABLES = ("item_plain", "item_tracked")
UPDATE_ROWS = 100_000  # single-row UPDATEs pick a random id among these
DELETE_BASE = 10_000_000  # single-row DELETEs consume ids upward from here
INSERT_BASE = 100_000_000  # single-row INSERTs take ids upward from here

SCRIPTS = {
    "insert": "INSERT INTO {t} (id, qty, name, updated_at) "
    "VALUES (nextval('{t}_ins_seq'), 1, 'new item', now());\n",
    "update": "\\set id random(1, " + str(UPDATE_ROWS) + ")\n"
    "UPDATE {t} SET qty = qty + 1 WHERE id = :id;\n",
    # The scalar subquery is an InitPlan: one nextval, then an index scan.
    "delete": "DELETE FROM {t} WHERE id = (SELECT nextval('{t}_del_seq'));\n",
}

CONTEXT_SCRIPTS = {
    "none": "\\set id random(1, " + str(UPDATE_ROWS) + ")\n"
    "UPDATE item_tracked SET qty = qty + 1 WHERE id = :id;\n",
    # What a middleware does: the context and the statement in one simple-protocol query.
    "set_config": "\\set id random(1, " + str(UPDATE_ROWS) + ")\n"
    "SELECT set_config('audit.actor_id', '4242', true), "
    "set_config('audit.actor_name', 'alice.example', true), "
    "set_config('audit.ip', '203.0.113.7', true), "
    "set_config('audit.user_agent', 'Mozilla/5.0 (X11; Linux x86_64) bench', true), "
    "set_config('audit.request_id', 'req-' || :id, true) \\; "
    "UPDATE item_tracked SET qty = qty + 1 WHERE id = :id;\n",
    "set_context": "\\set id random(1, " + str(UPDATE_ROWS) + ")\n"
    "SELECT audit.set_context(actor_id => '4242', actor_name => 'alice.example', "
    "ip => '203.0.113.7', user_agent => 'Mozilla/5.0 (X11; Linux x86_64) bench', "
    "request_id => 'req-' || :id) \\; "
    "UPDATE item_tracked SET qty = qty + 1 WHERE id = :id;\n",
}


@dataclass(frozen=True)
class SqlConfig:
    seconds: float
    reps: int
    bulk_rows: int
    bulk_reps: int
    bytes_rows: int
    clients: tuple[int, ...] = (1, 2)
    sync: tuple[str, ...] = ("on", "off")
    modes: tuple[str, ...] = ("prepared", "simple")


def setup(target: Target, bulk_rows: int) -> None:
    recreate_database(target, DB, with_schema=True)
    ensure_role(target, APP_ROLE, ["audit_writer"])
    with target.connect(DB) as conn:
        conn.execute(
            sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(APP_ROLE))
        )
    with target.connect(DB, APP_ROLE) as conn:
        for t in TABLES + (
            "bulk_upd_plain",
            "bulk_upd_tracked",
            "bulk_ins_plain",
            "bulk_ins_tracked",
        ):
            conn.execute(
                sql.SQL(
                    "CREATE TABLE {} (id bigint PRIMARY KEY, qty integer NOT NULL, "
                    "name text NOT NULL, updated_at timestamptz NOT NULL)"
                ).format(sql.Identifier(t))
            )
        for t in TABLES:
            conn.execute(
                sql.SQL("CREATE SEQUENCE {} START {}").format(
                    sql.Identifier(f"{t}_ins_seq"), sql.Literal(INSERT_BASE)
                )
            )
            conn.execute(
                sql.SQL("CREATE SEQUENCE {} START {}").format(
                    sql.Identifier(f"{t}_del_seq"), sql.Literal(DELETE_BASE)
                )
            )
        for t in ("item_tracked", "bulk_upd_tracked", "bulk_ins_tracked"):
            conn.execute("SELECT audit.enable_tracking(%s::regclass)", [t])
        for t, n in (
            ("item_plain", UPDATE_ROWS),
            ("item_tracked", UPDATE_ROWS),
            ("bulk_upd_plain", bulk_rows),
            ("bulk_upd_tracked", bulk_rows),
        ):
            conn.execute(
                sql.SQL(
                    "INSERT INTO {} SELECT g, g %% 1000, 'item ' || g, now() "
                    "FROM generate_series(1, %s) g"
                ).format(sql.Identifier(t)),
                [n],
            )
    with target.connect(DB) as conn:
        conn.execute("VACUUM ANALYZE")


class DeleteStock:
    """Keeps rows ahead of each table's delete sequence, so no DELETE misses."""

    def __init__(self) -> None:
        self.filled = {t: DELETE_BASE - 1 for t in TABLES}

    def top_up(self, target: Target, need: int) -> None:
        with target.connect(DB, APP_ROLE) as conn:
            for t in TABLES:
                row = conn.execute(
                    sql.SQL("SELECT last_value, is_called FROM {}").format(
                        sql.Identifier(f"{t}_del_seq")
                    )
                ).fetchone()
                assert row is not None
                used = row[0] if row[1] else row[0] - 1
                if self.filled[t] - used < need:
                    start, stop = self.filled[t] + 1, max(self.filled[t], used) + 2 * need
                    conn.execute(
                        sql.SQL(
                            "INSERT INTO {} SELECT g, 1, 'doomed', now() "
                            "FROM generate_series(%s, %s) g "
                            "ON CONFLICT DO NOTHING"
                        ).format(sql.Identifier(t)),
                        [start, stop],
                    )
                    self.filled[t] = stop


_TPS = re.compile(r"^tps = ([0-9.]+) \(without initial connection time\)", re.M)
_TX = re.compile(r"^number of transactions actually processed: (\d+)", re.M)
_FAILED = re.compile(r"^number of failed transactions: (\d+)", re.M)


def event_seq(target: Target) -> int:
    with target.connect(DB) as conn:
        row = conn.execute("SELECT last_value FROM audit.event_id_seq").fetchone()
        assert row is not None
        return int(row[0])


def pgbench(
    target: Target,
    script: str,
    *,
    clients: int,
    mode: str,
    sync: str,
    seconds: float,
    workdir: Path,
) -> dict[str, Any]:
    path = workdir / f"s{abs(hash(script))}.sql"
    path.write_text(script)
    path.chmod(0o644)
    duration = (
        ["-T", str(max(1, round(seconds)))]
        if seconds >= 1
        else ["-t", str(max(20, int(seconds * 400)))]
    )
    cmd = [
        target.tool("pgbench"),
        "-n",
        "-M",
        mode,
        "-c",
        str(clients),
        "-j",
        str(clients),
        *duration,
        "-f",
        str(path),
        DB,
    ]
    before = event_seq(target)
    done = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        env=target.libpq_env(DB, APP_ROLE, f"-c synchronous_commit={sync}"),
    )
    if done.returncode != 0:
        raise RuntimeError(f"pgbench failed: {done.stderr.strip() or done.stdout.strip()}")
    tps, tx = _TPS.search(done.stdout), _TX.search(done.stdout)
    if not tps or not tx:
        raise RuntimeError(f"cannot read pgbench output: {done.stdout[-500:]}")
    failed = _FAILED.search(done.stdout)
    return {
        "tps": float(tps[1]),
        "transactions": int(tx[1]),
        "failed": int(failed[1]) if failed else 0,
        "events": event_seq(target) - before,
    }


def run_single_row(
    target: Target, cfg: SqlConfig, workdir: Path, stock: DeleteStock
) -> list[dict[str, Any]]:
    configs = [
        (op, c, s, m) for op in SCRIPTS for c in cfg.clients for s in cfg.sync for m in cfg.modes
    ]
    raw: dict[tuple[str, int, str, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {
        k: [] for k in configs
    }
    # Warm-up, not recorded: caches, plans, the first partition pages.
    for t in TABLES:
        pgbench(
            target,
            SCRIPTS["update"].format(t=t),
            clients=1,
            mode="simple",
            sync="off",
            seconds=min(cfg.seconds, 1),
            workdir=workdir,
        )
    for rep in range(cfg.reps):
        log(f"sql single-row: repetition {rep + 1}/{cfg.reps}")
        for i, (op, clients, sync, mode) in enumerate(configs):
            if op == "delete":
                stock.top_up(target, int(40_000 * max(cfg.seconds, 0.25)))
            order = TABLES if (rep + i) % 2 == 0 else TABLES[::-1]
            got = {}
            for t in order:
                got[t] = pgbench(
                    target,
                    SCRIPTS[op].format(t=t),
                    clients=clients,
                    mode=mode,
                    sync=sync,
                    seconds=cfg.seconds,
                    workdir=workdir,
                )
            raw[(op, clients, sync, mode)].append((got["item_plain"], got["item_tracked"]))
    rows = []
    for (op, clients, sync, mode), runs in raw.items():
        rows.append(
            {
                "operation": op,
                "clients": clients,
                "synchronous_commit": sync,
                "protocol": mode,
                "ratio": ratio_summary([(p["tps"], t["tps"]) for p, t in runs]),
                "tps_plain": summarize([p["tps"] for p, _ in runs]),
                "tps_tracked": summarize([t["tps"] for _, t in runs]),
                "events_per_tx": round(
                    sum(t["events"] for _, t in runs)
                    / max(1, sum(t["transactions"] for _, t in runs)),
                    4,
                ),
                "failed": sum(p["failed"] + t["failed"] for p, t in runs),
            }
        )
    return rows


def run_context(target: Target, cfg: SqlConfig, workdir: Path) -> list[dict[str, Any]]:
    variants = list(CONTEXT_SCRIPTS)
    rows = []
    raw: dict[str, dict[str, list[float]]] = {s: {v: [] for v in variants} for s in cfg.sync}
    for rep in range(cfg.reps):
        log(f"sql context: repetition {rep + 1}/{cfg.reps}")
        for sync in cfg.sync:
            order = variants if rep % 2 == 0 else variants[::-1]
            for v in order:
                r = pgbench(
                    target,
                    CONTEXT_SCRIPTS[v],
                    clients=1,
                    mode="simple",
                    sync=sync,
                    seconds=cfg.seconds,
                    workdir=workdir,
                )
                raw[sync][v].append(r["tps"])
    for sync, by_variant in raw.items():
        base = by_variant["none"]
        for v in variants:
            if v == "none":
                continue
            rows.append(
                {
                    "variant": v,
                    "synchronous_commit": sync,
                    "clients": 1,
                    "protocol": "simple",
                    # tps ratio with context / without, on the tracked table, same repetition
                    "ratio": ratio_summary(list(zip(base, by_variant[v], strict=True))),
                    "tps_without": summarize(base),
                    "tps_with": summarize(by_variant[v]),
                }
            )
    return rows


def _bulk_once(target: Target, op: str, table: str, rows: int, warm: bool) -> float:
    with target.connect(DB, APP_ROLE) as prep:
        if op == "insert":
            prep.execute(sql.SQL("TRUNCATE {}").format(sql.Identifier(table)))
        else:
            prep.execute(sql.SQL("VACUUM {}").format(sql.Identifier(table)))
    with target.connect(DB, APP_ROLE) as conn:
        if warm:
            # Enough single-row statements for PL/pgSQL to settle on its cached plans.
            for k in range(1, 21):
                if op == "insert":
                    conn.execute(
                        sql.SQL("INSERT INTO {} VALUES (%s, 1, 'warm', now())").format(
                            sql.Identifier(table)
                        ),
                        [-k],
                    )
                else:
                    conn.execute(
                        sql.SQL("UPDATE {} SET qty = qty + 1 WHERE id = %s").format(
                            sql.Identifier(table)
                        ),
                        [k],
                    )
        if op == "insert":
            stmt = sql.SQL(
                "INSERT INTO {} SELECT g, g %% 1000, 'item ' || g, now() "
                "FROM generate_series(1, %s) g"
            ).format(sql.Identifier(table))
            params: list[Any] = [rows]
        else:
            stmt = sql.SQL("UPDATE {} SET qty = qty + 1").format(sql.Identifier(table))
            params = []
        start = time.perf_counter()
        conn.execute(stmt, params)
        return time.perf_counter() - start


def run_bulk(target: Target, cfg: SqlConfig) -> list[dict[str, Any]]:
    variants = [(op, session) for op in ("update", "insert") for session in ("fresh", "warm")]
    raw: dict[tuple[str, str], list[tuple[float, float]]] = {v: [] for v in variants}
    for rep in range(cfg.bulk_reps):
        log(f"sql bulk {cfg.bulk_rows} rows: repetition {rep + 1}/{cfg.bulk_reps}")
        for i, (op, session) in enumerate(variants):
            kinds = ("plain", "tracked") if (rep + i) % 2 == 0 else ("tracked", "plain")
            got = {
                k: _bulk_once(target, op, f"bulk_{op[:3]}_{k}", cfg.bulk_rows, session == "warm")
                for k in kinds
            }
            raw[(op, session)].append((got["plain"], got["tracked"]))
    return [
        {
            "operation": op,
            "rows": cfg.bulk_rows,
            "session": session,
            # time ratio tracked/plain: 1.0 is free, 2.0 is twice as slow
            "ratio": ratio_summary(pairs),
            "seconds_plain": summarize([p for p, _ in pairs]),
            "seconds_tracked": summarize([t for _, t in pairs]),
        }
        for (op, session), pairs in raw.items()
    ]


def _backend_cpu(pid: int) -> float | None:
    """User+system CPU seconds of a local backend, or None when /proc does not show it."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_cpu(target: Target, cfg: SqlConfig, stock: DeleteStock) -> list[dict[str, Any]]:
    """Backend CPU time per single-row statement, plain vs tracked.

    Throughput on a shared machine moves with everyone else's load; the CPU time
    the backend itself spends per statement moves much less, so it is a second,
    steadier view of the same cost (local servers only).
    """
    n = cfg.bytes_rows
    stmts = {
        "insert": "INSERT INTO {t} VALUES (nextval('{t}_ins_seq'), 7, 'new item', now())",
        "update": "UPDATE {t} SET qty = qty + 1 WHERE id = %s",
        "delete": "DELETE FROM {t} WHERE id = (SELECT nextval('{t}_del_seq'))",
    }
    raw: dict[str, list[tuple[float, float]]] = {op: [] for op in stmts}
    with target.connect(DB, APP_ROLE) as conn:
        conn.execute("SET synchronous_commit = off")
        pid = conn.info.backend_pid
        if _backend_cpu(pid) is None:
            return []
        for rep in range(cfg.reps):
            stock.top_up(target, n + 100)
            for i, op in enumerate(stmts):
                order = TABLES if (rep + i) % 2 == 0 else TABLES[::-1]
                got: dict[str, float] = {}
                for t in order:
                    q = stmts[op].format(t=t)
                    for k in range(20):  # plans settle
                        conn.execute(q, [k + 1] if "%s" in q else None)
                    before = _backend_cpu(pid) or 0.0
                    for k in range(n):
                        conn.execute(q, [k % UPDATE_ROWS + 1] if "%s" in q else None)
                    got[t] = ((_backend_cpu(pid) or 0.0) - before) / n * 1e6
                raw[op].append((got["item_plain"], got["item_tracked"]))
    return [{
        "operation": op, "statements": n,
        # CPU ratio plain/tracked: the throughput share kept when CPU is the limit
        "ratio": ratio_summary([(t, p) for p, t in pairs]),
        "cpu_us_plain": summarize([p for p, _ in pairs]),
        "cpu_us_tracked": summarize([t for _, t in pairs]),
    } for op, pairs in raw.items()]


_SIZES = """
SELECT coalesce(sum(pg_relation_size(relid)), 0),
       coalesce(sum(pg_indexes_size(relid)), 0)
FROM pg_partition_tree('audit.event') WHERE isleaf
"""


def run_bytes(target: Target, cfg: SqlConfig, stock: DeleteStock) -> list[dict[str, Any]]:
    """Size of the events single-row statements write, measured on their own."""
    n = cfg.bytes_rows
    statements = {
        "INSERT": (
            "INSERT INTO item_tracked "
            "VALUES (nextval('item_tracked_ins_seq'), 7, 'new item', now())",
            False,
        ),
        "UPDATE": ("UPDATE item_tracked SET qty = qty + 1 WHERE id = %s", False),
        "UPDATE with context": ("UPDATE item_tracked SET qty = qty + 1 WHERE id = %s", True),
        "DELETE": (
            "DELETE FROM item_tracked WHERE id = (SELECT nextval('item_tracked_del_seq'))",
            False,
        ),
    }
    stock.top_up(target, n)
    out = []
    with target.connect(DB, APP_ROLE) as conn, target.connect(DB) as su:
        for label, (stmt, with_context) in statements.items():
            first = su.execute("SELECT last_value FROM audit.event_id_seq").fetchone()[0]  # type: ignore[index]
            heap0, idx0 = su.execute(_SIZES).fetchone()  # type: ignore[misc]
            for k in range(1, n + 1):
                with conn.transaction():
                    if with_context:
                        conn.execute(
                            "SELECT audit.set_context(actor_id => '4242', "
                            "actor_name => 'alice.example', ip => '203.0.113.7', "
                            "user_agent => 'Mozilla/5.0 (X11; Linux x86_64) bench', "
                            "request_id => %s)",
                            [f"req-{k}"],
                        )
                    conn.execute(stmt, [k] if "%s" in stmt else None)
            heap1, idx1 = su.execute(_SIZES).fetchone()  # type: ignore[misc]
            row = su.execute(
                "SELECT count(*), avg(pg_column_size(e.*)), "
                "avg(coalesce(pg_column_size(e.old_values), 0) "
                "    + coalesce(pg_column_size(e.new_values), 0) "
                "    + pg_column_size(e.row_key)) "
                "FROM audit.event e WHERE id > %s AND table_name = 'public.item_tracked'",
                [first],
            ).fetchone()
            assert row is not None
            events = int(row[0])
            out.append(
                {
                    "operation": label,
                    "events": events,
                    "statements": n,
                    "row_bytes": round(float(row[1] or 0), 1),
                    "jsonb_bytes": round(float(row[2] or 0), 1),
                    "heap_bytes_per_event": round(float(heap1 - heap0) / max(events, 1), 1),
                    "index_bytes_per_event": round(float(idx1 - idx0) / max(events, 1), 1),
                }
            )
    return out


def run(target: Target, cfg: SqlConfig) -> dict[str, Any]:
    setup(target, cfg.bulk_rows)
    stock = DeleteStock()
    with tempfile.TemporaryDirectory(prefix="pg-audit-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        single = run_single_row(target, cfg, workdir, stock)
        context = run_context(target, cfg, workdir)
    bulk = run_bulk(target, cfg)
    sizes = run_bytes(target, cfg, stock)
    log("sql backend CPU per statement")
    cpu = run_cpu(target, cfg, stock)
    return {
        "backend_cpu": cpu,
        "single_row": single,
        "context": context,
        "bulk": bulk,
        "bytes_per_event": sizes,
        "config": cfg.__dict__,
    }
