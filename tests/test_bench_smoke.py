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
        yield json.loads(out.read_text())
    finally:
        with pg_server.connect() as conn:
            for name in BENCH_DBS:
                conn.execute(
                    sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
                )


def test_smoke_runs_every_level_and_the_report_renders(smoke_results) -> None:  # type: ignore[no-untyped-def]
    data = smoke_results
    single = data["sql"]["single_row"]
    assert len(single) == 3 * 2 * 2 * 2  # operations x clients x sync x protocol
    for row in single:
        assert row["failed"] == 0
        # every tracked single-row transaction wrote exactly one event
        assert row["events_per_tx"] == 1.0, row
        assert row["ratio"]["median"] > 0
    assert {(r["operation"], r["session"]) for r in data["sql"]["bulk"]} == {
        ("update", "fresh"),
        ("update", "warm"),
        ("insert", "fresh"),
        ("insert", "warm"),
    }
    assert {(r["variant"], r["synchronous_commit"]) for r in data["sql"]["context"]} == {
        ("set_config", "on"),
        ("set_config", "off"),
        ("set_context", "on"),
        ("set_context", "off"),
    }
    for row in data["sql"]["bytes_per_event"]:
        assert row["events"] == row["statements"], row
        assert row["row_bytes"] > 0

    assert [r["operation"] for r in data["sql"]["backend_cpu"]] == ["insert", "update", "delete"]

    dj = data["django"]
    assert dj["failed"] == {}
    ours = {r["workload"]: r for r in dj["results"] if r["library"] == "django_bridge"}
    assert set(ours) == {"create", "update", "delete", "queryset_update", "bulk_create", "request"}
    # database triggers see what signals miss: QuerySet.update() and bulk_create()
    assert {w: r["capture"] for w, r in ours.items()} == {w: "captured" for w in ours}

    rp = data["reporting"]
    assert rp["log"]["events"] == 20_000
    core = [q for q in rp["queries"] if q["query"].startswith("core:")]
    assert core and all(q["status"] == "ok" for q in core), core

    if rp["admin"].get("status") == "ok":
        assert {p["http_status"] for p in rp["admin"]["pages"].values()} == {200}, rp["admin"]

    page = render(data, previous="")
    assert "## Targets" in page and "## SQL level" in page and "## Django level" in page


def test_capture_check_tells_missing_from_partial() -> None:
    from bench.django_level import capture_status

    assert capture_status([0, 0], 100) == "not captured"
    assert capture_status([40, 100], 100) == "partial (40 of 100)"
    assert capture_status([100, 101], 100) == "captured"
    assert capture_status([None], 100) == "n/a"
