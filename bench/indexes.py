"""What each index of audit.event costs an insert.

The indexes are read from the catalog, so the table follows the schema. For every
index there is a copy of the log's columns and defaults (not partitioned) with all of
the log's indexes but that one, beside a copy with all of them and one with none.
The same events go into each copy, in rotating order, inside the server:

- single rows: a PL/pgSQL procedure inserting one event per statement, one COMMIT
  each, as capture of single-row statements does, with and without context;
- bulk: one INSERT ... SELECT of many events (one transaction, with context, as a
  ``QuerySet.update()`` through the Django middleware writes them), into a copy
  emptied first.

An index's cost is the backend CPU time of the copy without it subtracted from the
copy with all (leave one out), per event; ``all - none`` is what the indexes cost
together. Events are shaped like captured UPDATEs: values as text, a row key that
varies, context columns when set, the statement text when not.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import psycopg
from psycopg import sql

from .common import Target, log, summarize
from .floors import CONTEXT, backend_cpu, cpu_source

COLUMNS = [
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
    "detail",
]

# One event per i; context columns set or NULL. {i} is an SQL expression (bigint).
_CTX_VALUES = (
    "'UPDATE', {actor_id}, {actor_name}, {ip}::inet, {user_agent}, 'req-' || {i}, "
    "'public.item', jsonb_build_object('id', ({i}::bigint * 7919 % 1000000)::text), "
    '\'{{"qty": "12"}}\'::jsonb, \'{{"qty": "13"}}\'::jsonb, NULL::jsonb'
)
_NO_CTX_VALUES = (
    "'UPDATE', NULL, NULL, NULL::inet, NULL, NULL, "
    "'public.item', jsonb_build_object('id', ({i}::bigint * 7919 % 1000000)::text), "
    '\'{{"qty": "12"}}\'::jsonb, \'{{"qty": "13"}}\'::jsonb, '
    "jsonb_build_object('statement', 'UPDATE item SET qty = qty + 1 WHERE id = ' || {i})"
)

_PROCEDURE = """
CREATE OR REPLACE PROCEDURE bench.{proc}(n integer, start_id bigint, context boolean)
LANGUAGE plpgsql AS $body$
BEGIN
    IF context THEN
        FOR i IN start_id .. start_id + n - 1 LOOP
            INSERT INTO bench.{tbl} ({cols}) VALUES ({ctx});
            COMMIT;
        END LOOP;
    ELSE
        FOR i IN start_id .. start_id + n - 1 LOOP
            INSERT INTO bench.{tbl} ({cols}) VALUES ({no_ctx});
            COMMIT;
        END LOOP;
    END IF;
END
$body$
"""


@dataclass(frozen=True)
class IndexConfig:
    single_n: int
    single_reps: int
    bulk_rows: int
    bulk_reps: int


def log_indexes(conn: psycopg.Connection) -> list[dict[str, str]]:
    """The indexes of audit.event (the partitioned parent), as the catalog has them."""
    rows = conn.execute(
        "SELECT c.relname, pg_get_indexdef(i.indexrelid), "
        "       coalesce(obj_description(i.indexrelid, 'pg_class'), '') "
        "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
        "WHERE i.indrelid = 'audit.event'::regclass ORDER BY c.relname"
    ).fetchall()
    return [{"name": n, "definition": d, "comment": cm} for n, d, cm in rows]


def _index_on(copy: str, definition: str) -> sql.Composed:
    # "CREATE [UNIQUE] INDEX name ON [ONLY] audit.event USING method (...)": the same
    # method, columns and predicate on the copy, under a generated name.
    head, tail = definition.split(" USING ", 1)
    unique = sql.SQL("UNIQUE " if head.startswith("CREATE UNIQUE") else "")
    return sql.SQL("CREATE {}INDEX ON bench.{} USING {}").format(
        unique, sql.Identifier(copy), sql.SQL(tail)
    )


def setup(target: Target, db: str) -> dict[str, Any]:
    with target.connect(db) as su:
        indexes = log_indexes(su)
        copies: dict[str, list[str]] = {"ix_all": [ix["name"] for ix in indexes], "ix_none": []}
        for k, ix in enumerate(indexes):
            copies[f"ix_without_{k}"] = [o["name"] for o in indexes if o is not ix]
        su.execute("CREATE SCHEMA IF NOT EXISTS bench")
        su.execute("CREATE SEQUENCE IF NOT EXISTS bench.ix_id_seq")
        by_name = {ix["name"]: ix["definition"] for ix in indexes}
        cols = sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        for copy, keep in copies.items():
            ident = sql.Identifier(copy)
            su.execute(sql.SQL("DROP TABLE IF EXISTS bench.{}").format(ident))
            su.execute(
                sql.SQL("CREATE TABLE bench.{} (LIKE audit.event INCLUDING DEFAULTS)").format(ident)
            )
            su.execute(
                sql.SQL(
                    "ALTER TABLE bench.{} ALTER COLUMN id SET DEFAULT nextval('bench.ix_id_seq')"
                ).format(ident)
            )
            for name in keep:
                su.execute(_index_on(copy, by_name[name]))
            su.execute(
                sql.SQL(_PROCEDURE).format(
                    proc=sql.Identifier(f"insert_{copy}"),
                    tbl=ident,
                    cols=cols,
                    ctx=_values(su, True, "i"),
                    no_ctx=_values(su, False, "i"),
                )
            )
    return {"indexes": indexes, "copies": copies}


def _values(conn: psycopg.Connection, context: bool, i: str) -> sql.SQL:
    """The VALUES of one event as SQL text; ``i`` is the expression that numbers it."""
    template = _CTX_VALUES if context else _NO_CTX_VALUES
    return sql.SQL(
        template.format(i=i, **{c: sql.Literal(x).as_string(conn) for c, x in CONTEXT.items()})
    )


def _bulk_statement(conn: psycopg.Connection, copy: str, start: int, rows: int) -> sql.Composed:
    return (
        sql.SQL("INSERT INTO bench.{} ({}) SELECT ").format(
            sql.Identifier(copy), sql.SQL(", ").join(map(sql.Identifier, COLUMNS))
        )
        + _values(conn, True, "g")
        + sql.SQL(" FROM generate_series({}, {}) g").format(
            sql.Literal(start), sql.Literal(start + rows - 1)
        )
    )


def run(target: Target, db: str, cfg: IndexConfig) -> dict[str, Any]:
    info = setup(target, db)
    copies = list(info["copies"])
    # raw[kind][copy]: per-repetition CPU us per event
    kinds = ["bulk", "single_ctx", "single_no_ctx"]
    raw: dict[str, dict[str, list[float]]] = {k: {c: [] for c in copies} for k in kinds}
    with target.connect(db) as conn:
        conn.execute("SET synchronous_commit = off")
        pid = conn.info.backend_pid
        if cpu_source(pid) is None:
            return {"skipped": "backend CPU time is not readable from /proc (remote server?)"}
        # Bulk first: each copy ends with a log of bulk_rows events, which the
        # single-row inserts then add to.
        for rep in range(cfg.bulk_reps):
            log(
                f"sql index costs, {cfg.bulk_rows:,}-event statements: "
                f"repetition {rep + 1}/{cfg.bulk_reps}"
            )
            shift = rep % len(copies)
            for copy in copies[shift:] + copies[:shift]:
                conn.execute(sql.SQL("TRUNCATE bench.{}").format(sql.Identifier(copy)))
                stmt = _bulk_statement(conn, copy, rep * cfg.bulk_rows, cfg.bulk_rows)
                cpu0 = backend_cpu(pid)
                conn.execute(stmt)
                raw["bulk"][copy].append((backend_cpu(pid) - cpu0) / cfg.bulk_rows * 1e6)
        start = 10 * cfg.bulk_rows
        for rep in range(-1, cfg.single_reps):
            count = min(cfg.single_n, 50) if rep < 0 else cfg.single_n
            if rep >= 0:
                log(f"sql index costs, single-row events: repetition {rep + 1}/{cfg.single_reps}")
            for j, context in enumerate((True, False)):
                shift = (rep + j) % len(copies)
                for copy in copies[shift:] + copies[:shift]:
                    cpu0 = backend_cpu(pid)
                    conn.execute(
                        sql.SQL("CALL bench.{}(%s, %s, %s)").format(
                            sql.Identifier(f"insert_{copy}")
                        ),
                        [count, start, context],
                    )
                    cpu = (backend_cpu(pid) - cpu0) / count * 1e6
                    if rep >= 0:
                        raw["single_ctx" if context else "single_no_ctx"][copy].append(cpu)
                start += count
    rows = []
    for k, ix in enumerate(info["indexes"]):
        copy = f"ix_without_{k}"
        row: dict[str, Any] = {
            "index": ix["name"],
            "definition": ix["definition"],
            "comment": ix["comment"],
        }
        for kind in kinds:
            row[kind] = summarize(
                [a - w for a, w in zip(raw[kind]["ix_all"], raw[kind][copy], strict=True)]
            )
        rows.append(row)
    totals = {
        kind: {
            "all_us": summarize(raw[kind]["ix_all"]),
            "none_us": summarize(raw[kind]["ix_none"]),
            "indexes_us": summarize(
                [a - n for a, n in zip(raw[kind]["ix_all"], raw[kind]["ix_none"], strict=True)]
            ),
        }
        for kind in kinds
    }
    with target.connect(db) as conn:
        for copy in copies:
            conn.execute(sql.SQL("DROP TABLE bench.{}").format(sql.Identifier(copy)))
            conn.execute(
                sql.SQL("DROP PROCEDURE bench.{}").format(sql.Identifier(f"insert_{copy}"))
            )
    return {
        "single_n": cfg.single_n,
        "single_reps": cfg.single_reps,
        "bulk_rows": cfg.bulk_rows,
        "bulk_reps": cfg.bulk_reps,
        "indexes": rows,
        "totals": totals,
        "measured_at": time.strftime("%H:%M:%S"),
    }
