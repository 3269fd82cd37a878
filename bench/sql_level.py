"""SQL level: capture against its floors, index costs, bytes per event, pgbench throughput.

The measurements that judge the targets are backend CPU time inside the server
(bench/floors.py, bench/indexes.py). pgbench throughput through a client is kept as
a secondary view: it moves with everyone else's load on a shared machine.
"""

from __future__ import annotations

import os
import re
import subprocess
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from psycopg import sql

from . import floors, indexes
from .common import Target, ensure_role, log, ratio_summary, recreate_database, summarize

DB = "bench_sql"
APP_ROLE = "bench_app"
TABLES = ("t_untracked", "t_tracked")  # pgbench and bytes: no auditing, and capture
DELETE_BASE = 10_000_000  # pgbench DELETEs consume ids upward from here
INSERT_BASE = 100_000_000  # pgbench INSERTs take ids upward from here
BYTES_BASE = 90_000_000  # the bytes measurement inserts, then deletes, ids from here

SCRIPTS = {
    "insert": "INSERT INTO {t} (id, qty, name, updated_at) "
    "VALUES (nextval('{t}_ins_seq'), 1, 'new item', now());\n",
    "update": "\\set id random(1, " + str(floors.ROWS) + ")\n"
    "UPDATE {t} SET qty = qty + 1 WHERE id = :id;\n",
    # The scalar subquery is an InitPlan: one nextval, then an index scan.
    "delete": "DELETE FROM {t} WHERE id = (SELECT nextval('{t}_del_seq'));\n",
}
# (clients, synchronous_commit): one durable client, and two CPU-bound ones.
PGBENCH_CONFIGS = ((1, "on"), (2, "off"))


@dataclass(frozen=True)
class SqlConfig:
    floors: floors.FloorConfig
    indexes: indexes.IndexConfig
    pgbench_seconds: float
    pgbench_reps: int
    bytes_rows: int
    pgbench_protocol: str = "simple"


def setup(target: Target, cfg: SqlConfig) -> dict[str, Any]:
    recreate_database(target, DB, with_schema=True)
    ensure_role(target, APP_ROLE, ["audit_writer"])
    with target.connect(DB) as conn:
        conn.execute(
            sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(APP_ROLE))
        )
    info = floors.setup(target, DB, APP_ROLE, cfg.floors)
    with target.connect(DB, APP_ROLE) as conn:
        for t in TABLES:
            for suffix, base in (("_ins_seq", INSERT_BASE), ("_del_seq", DELETE_BASE)):
                conn.execute(
                    sql.SQL("CREATE SEQUENCE {} START {}").format(
                        sql.Identifier(t + suffix), sql.Literal(base)
                    )
                )
    return info


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


def run_pgbench(
    target: Target, cfg: SqlConfig, workdir: Path, stock: DeleteStock
) -> list[dict[str, Any]]:
    """Single-row throughput through a client, untracked vs tracked (secondary)."""
    configs = [(op, c, s) for op in SCRIPTS for c, s in PGBENCH_CONFIGS]
    raw: dict[tuple[str, int, str], list[tuple[dict[str, Any], dict[str, Any]]]] = {
        k: [] for k in configs
    }
    mode = cfg.pgbench_protocol
    # Warm-up, not recorded: caches, plans, the first partition pages.
    for t in TABLES:
        pgbench(
            target,
            SCRIPTS["update"].format(t=t),
            clients=1,
            mode=mode,
            sync="off",
            seconds=min(cfg.pgbench_seconds, 1),
            workdir=workdir,
        )
    for rep in range(cfg.pgbench_reps):
        log(f"sql pgbench: repetition {rep + 1}/{cfg.pgbench_reps}")
        for i, (op, clients, sync) in enumerate(configs):
            if op == "delete":
                stock.top_up(target, int(40_000 * max(cfg.pgbench_seconds, 0.25)))
            order = TABLES if (rep + i) % 2 == 0 else TABLES[::-1]
            got = {
                t: pgbench(
                    target,
                    SCRIPTS[op].format(t=t),
                    clients=clients,
                    mode=mode,
                    sync=sync,
                    seconds=cfg.pgbench_seconds,
                    workdir=workdir,
                )
                for t in order
            }
            raw[(op, clients, sync)].append((got["t_untracked"], got["t_tracked"]))
    return [
        {
            "operation": op,
            "clients": clients,
            "synchronous_commit": sync,
            "protocol": mode,
            # TPS tracked / untracked of the same repetition
            "ratio": ratio_summary([(p["tps"], t["tps"]) for p, t in runs]),
            "tps_plain": summarize([p["tps"] for p, _ in runs]),
            "tps_tracked": summarize([t["tps"] for _, t in runs]),
            "events_per_tx": round(
                sum(t["events"] for _, t in runs) / max(1, sum(t["transactions"] for _, t in runs)),
                4,
            ),
            "failed": sum(p["failed"] + t["failed"] for p, t in runs),
        }
        for (op, clients, sync), runs in raw.items()
    ]


_SIZES = """
SELECT coalesce(sum(pg_relation_size(relid)), 0),
       coalesce(sum(pg_indexes_size(relid)), 0)
FROM pg_partition_tree('audit.event') WHERE isleaf
"""


def run_bytes(target: Target, cfg: SqlConfig) -> list[dict[str, Any]]:
    """Size of the events single-row statements of a client write, measured on their own
    and first, before any rolled-back event leaves free space in the log."""
    n = cfg.bytes_rows
    ins = "INSERT INTO t_tracked VALUES (%s, 7, 'new item', now())"
    upd = "UPDATE t_tracked SET qty = qty + 1 WHERE id = %s"
    statements = {
        "INSERT": (ins, BYTES_BASE, False),
        "UPDATE": (upd, 0, False),
        "UPDATE with context": (upd, n, True),
        "DELETE": ("DELETE FROM t_tracked WHERE id = %s", BYTES_BASE, False),
    }
    out = []
    with target.connect(DB, APP_ROLE) as conn, target.connect(DB) as su:
        for label, (stmt, base, with_context) in statements.items():
            first = floors.written(su)[0]
            heap0, idx0 = su.execute(_SIZES).fetchone()  # type: ignore[misc]
            for k in range(1, n + 1):
                with conn.transaction():
                    if with_context:
                        # What the Django middleware sends before the statement.
                        conn.execute(
                            "SELECT set_config('audit.actor_id', %s, true), "
                            "set_config('audit.actor_name', %s, true), "
                            "set_config('audit.ip', %s, true), "
                            "set_config('audit.user_agent', %s, true), "
                            "set_config('audit.request_id', %s, true)",
                            [*floors.CONTEXT.values(), f"req-{k}"],
                        )
                    conn.execute(stmt, [base + k])
            heap1, idx1 = su.execute(_SIZES).fetchone()  # type: ignore[misc]
            row = su.execute(
                "SELECT count(*), avg(pg_column_size(e.*)), "
                "avg(coalesce(pg_column_size(e.old_values), 0) "
                "    + coalesce(pg_column_size(e.new_values), 0) "
                "    + pg_column_size(e.row_key)), "
                "avg(coalesce(pg_column_size(e.detail), 0)), "
                "min(e.detail::text) "
                "FROM audit.event e WHERE id > %s AND table_name = 'public.t_tracked'",
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
                    "values_bytes": round(float(row[2] or 0), 1),
                    "detail_bytes": round(float(row[3] or 0), 1),
                    "detail_example": row[4],
                    "heap_bytes_per_event": round(float(heap1 - heap0) / max(events, 1), 1),
                    "index_bytes_per_event": round(float(idx1 - idx0) / max(events, 1), 1),
                }
            )
    return out


def run(target: Target, cfg: SqlConfig) -> dict[str, Any]:
    load: dict[str, list[float]] = {}  # 1-, 5- and 15-minute load averages as each phase starts
    info = setup(target, cfg)
    log("sql bytes per event")
    load["bytes"] = list(os.getloadavg())
    sizes = run_bytes(target, cfg)
    stock = DeleteStock()
    with tempfile.TemporaryDirectory(prefix="pg-audit-bench-") as tmp:
        workdir = Path(tmp)
        workdir.chmod(0o755)
        load["pgbench"] = list(os.getloadavg())
        tps = run_pgbench(target, cfg, workdir, stock)
    load["floors_single"] = list(os.getloadavg())
    single = floors.run_single(target, DB, APP_ROLE, cfg.floors)
    load["floors_bulk"] = list(os.getloadavg())
    bulk = floors.run_bulk(target, DB, APP_ROLE, cfg.floors)
    load["index_costs"] = list(os.getloadavg())
    index_costs = indexes.run(target, DB, cfg.indexes)
    load["end"] = list(os.getloadavg())
    return {
        "load": load,
        "capture_triggers": info["capture_triggers"],
        "floors_single": single,
        "floors_bulk": bulk,
        "index_costs": index_costs,
        "bytes_per_event": sizes,
        "pgbench": tps,
        "config": asdict(cfg),
    }
