"""The benchmark suite's smoke mode, end to end, so it cannot rot.

No timing is asserted: only that every variant ran, that tracked statements
wrote exactly their events, and that the report renders.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from psycopg import sql

from bench.__main__ import main
from bench.render import render

BENCH_DBS = ["bench_sql", "bench_dj_none", "bench_dj_django_bridge", "bench_report"]


@pytest.fixture
def smoke_results(pg_server, tmp_path: Path):  # type: ignore[no-untyped-def]
    if not pg_server.bindir:
        pytest.skip("pgbench is needed: run against the embedded server")
    out = tmp_path / "smoke.json"
    try:
        assert (
            main(
                [
                    "--smoke",
                    "--dsn",
                    pg_server.dsn,
                    "--bindir",
                    pg_server.bindir,
                    "--out",
                    str(out),
                    "--docs",
                    "",
                ]
            )
            == 0
        )
        data = json.loads(out.read_text())
        with pg_server.connect("bench_sql") as conn:
            # what the catalog says, to compare the index table with
            data["catalog_indexes"] = [
                name
                for (name,) in conn.execute(
                    "SELECT indexrelid::regclass::text FROM pg_index "
                    "WHERE indrelid = 'audit.event'::regclass"
                )
            ]
        yield data
    finally:
        with pg_server.connect() as conn:
            for name in BENCH_DBS:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def test_smoke_runs_every_level_and_the_report_renders(smoke_results) -> None:  # type: ignore[no-untyped-def]
    data = smoke_results
    sq = data["sql"]
    # the capture as the schema installs it, read from the catalog
    assert sq["capture_triggers"] and all(t["enabled"] == "A" for t in sq["capture_triggers"])

    single = sq["floors_single"]
    assert single["cpu_source"] in ("schedstat", "stat")
    variants = {(r["operation"], r["variant"]): r for r in single["variants"]}
    assert set(variants) == {
        (op, v)
        for op in ("insert", "update", "update_ctx", "delete")
        for v in (
            "untracked",
            "noop_row",
            "noop_stmt",
            "log_row",
            "log_stmt",
            "heap_row",
            "heap_stmt",
            "tracked",
        )
    }
    for (_op, v), row in variants.items():
        # every tracked statement wrote exactly its event, every writing floor its row
        writes = v.startswith(("log", "heap")) or v == "tracked"
        assert row["events_per_statement"] == (1.0 if writes else 0.0), row
        assert row["cpu_us"]["median"] > 0
    ratios = {(r["operation"], r["floor"]): r for r in single["ratios"]}
    assert set(ratios) == {
        (op, f)
        for op in ("insert", "update", "update_ctx", "delete")
        for f in ("noop", "log", "heap")
    }
    assert all(r["level"] in ("row", "stmt") for r in ratios.values())

    bulk = sq["floors_bulk"]["results"]
    assert {(r["operation"], r["session"]) for r in bulk} == {
        (op, s) for op in ("update", "insert", "delete") for s in ("fresh", "warm")
    }
    for row in bulk:
        assert row["events_per_row"] == {"untracked": 0.0, "log_stmt": 1.0, "tracked": 1.0}, row

    # one row per index of the log, as the catalog lists them
    costs = sq["index_costs"]
    assert sorted("audit." + r["index"] for r in costs["indexes"]) == sorted(
        data["catalog_indexes"]
    )
    for row in costs["indexes"]:
        assert row["single_ctx"] and row["single_no_ctx"] and row["bulk"], row

    for row in sq["bytes_per_event"]:
        assert row["events"] == row["statements"], row
        assert row["row_bytes"] > 0
    by_op = {r["operation"]: r for r in sq["bytes_per_event"]}
    # without context the event carries the statement; with context it does not
    assert "UPDATE t_tracked" in by_op["UPDATE"]["detail_example"]
    assert by_op["UPDATE with context"]["detail_bytes"] == 0

    for row in sq["pgbench"]:
        assert row["failed"] == 0
        assert row["events_per_tx"] == 1.0, row

    dj = data["django"]
    assert dj["failed"] == {}
    ours = {r["workload"]: r for r in dj["results"] if r["library"] == "django_bridge"}
    assert set(ours) == {"create", "update", "delete", "queryset_update", "bulk_create", "request"}
    # database triggers see what signals miss: QuerySet.update() and bulk_create()
    assert {w: r["capture"] for w, r in ours.items()} == {w: "captured" for w in ours}
    # the server is local: every workload has the CPU of Django and of its backend
    assert all(r["cpu_us_per_op"]["median"] > 0 for r in ours.values()), ours

    rp = data["reporting"]
    assert rp["log"]["events"] == 20_000
    core = [q for q in rp["queries"] if q["query"].startswith("core:")]
    assert core and all(q["status"] == "ok" for q in core), core
    # key lookups timed again on a log written after step 6 only
    again = [q for q in rp["queries"] if "since step 0006" in q["query"]]
    assert len(again) == 4 and all(q["status"] == "ok" for q in again), again

    if rp["admin"].get("status") == "ok":
        assert {p["http_status"] for p in rp["admin"]["pages"].values()} == {200}, rp["admin"]

    page = render(data, previous="")
    for heading in (
        "## Targets",
        "## Capture against its floors",
        "## What each index",
        "## Bytes per event",
        "## Django level",
        "## Reporting level",
    ):
        assert heading in page, heading
    assert "_Not written yet._" in page


def test_capture_check_tells_missing_from_partial() -> None:
    from bench.django_level import capture_status

    assert capture_status([0, 0], 100) == "not captured"
    assert capture_status([40, 100], 100) == "partial (40 of 100)"
    assert capture_status([100, 101], 100) == "captured"
    assert capture_status([None], 100) == "n/a"
