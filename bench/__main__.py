"""``python -m bench``: run the benchmark suite and write the results file.

bench/run                    # full run (about 7 minutes on 2 cores)
bench/run --smoke            # seconds; what CI runs
bench/run --full-reporting   # the reporting level on 10M events instead of 1M
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
import time
from pathlib import Path

from . import floors, indexes, sql_level
from .common import BENCH_DIR, ROOT, Results, bench_server, log, machine_info

LEVELS = ("sql", "django", "reporting")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--smoke", action="store_true", help="tiny sizes, one repetition, no peer venvs")
    p.add_argument("--full-reporting", action="store_true", help="reporting level on 10M events")
    p.add_argument("--levels", default=",".join(LEVELS), help="comma list of sql,django,reporting")
    p.add_argument(
        "--libraries",
        default=None,
        help="comma list of Django libraries (default: all; smoke: none,django_bridge)",
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="results file (default bench/results/latest.json; smoke: bench/results/smoke.json)",
    )
    p.add_argument(
        "--docs",
        default=None,
        help="write the Markdown report here (default: docs/benchmarks.md on a full run)",
    )
    p.add_argument(
        "--dsn", default=None, help="use this server (superuser) instead of an embedded one"
    )
    p.add_argument("--bindir", default=None, help="PostgreSQL bin directory (pgbench)")
    p.add_argument("--port", type=int, default=55499)
    p.add_argument("--seconds", type=float, default=None, help="pgbench run length (full: 2)")
    p.add_argument(
        "--reps",
        type=int,
        default=None,
        help="repetitions of every measurement (full: floors 41, bulk 5, index costs 41 and 3, "
        "pgbench 3, django 5)",
    )
    return p.parse_args(argv)


def sql_config(args: argparse.Namespace) -> sql_level.SqlConfig:
    if args.smoke:
        cfg = sql_level.SqlConfig(
            floors=floors.FloorConfig(single_n=20, single_reps=2, bulk_rows=500, bulk_reps=1),
            indexes=indexes.IndexConfig(single_n=10, single_reps=2, bulk_rows=200, bulk_reps=1),
            pgbench_seconds=0.1,
            pgbench_reps=1,
            bytes_rows=30,
        )
    else:
        cfg = sql_level.SqlConfig(
            floors=floors.FloorConfig(single_n=500, single_reps=41, bulk_rows=100_000, bulk_reps=5),
            indexes=indexes.IndexConfig(
                single_n=250, single_reps=41, bulk_rows=100_000, bulk_reps=3
            ),
            pgbench_seconds=2,
            pgbench_reps=3,
            bytes_rows=2000,
        )
    if args.seconds is not None:
        cfg = dataclasses.replace(cfg, pgbench_seconds=args.seconds)
    if args.reps is not None:
        cfg = dataclasses.replace(
            cfg,
            pgbench_reps=args.reps,
            floors=dataclasses.replace(cfg.floors, single_reps=args.reps, bulk_reps=args.reps),
            indexes=dataclasses.replace(cfg.indexes, single_reps=args.reps, bulk_reps=args.reps),
        )
    return cfg


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    levels = [lv for lv in args.levels.split(",") if lv]
    unknown = set(levels) - set(LEVELS)
    if unknown:
        raise SystemExit(f"unknown level(s): {', '.join(sorted(unknown))}")
    out = args.out or BENCH_DIR / "results" / ("smoke.json" if args.smoke else "latest.json")
    docs = (
        (Path(args.docs) if args.docs else None)
        if args.docs is not None
        else (None if args.smoke else ROOT / "docs" / "benchmarks.md")
    )
    results = Results(out)
    started = time.time()
    with bench_server(args.dsn, args.bindir, args.port) as target:
        results.data = {
            "mode": "smoke" if args.smoke else "full",
            "started_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
            "command": " ".join(["bench/run", *(sys.argv[1:] if argv is None else argv)]),
            "machine": machine_info(target),
        }
        if "sql" in levels:
            cfg = sql_config(args)
            t0 = time.time()
            results.data["sql"] = sql_level.run(target, cfg)
            results.data["sql"]["elapsed_s"] = round(time.time() - t0, 1)
            results.save()
        if "django" in levels:
            from . import django_level

            t0 = time.time()
            results.data["django"] = django_level.run(
                target, smoke=args.smoke, libraries=args.libraries, reps=args.reps
            )
            results.data["django"]["elapsed_s"] = round(time.time() - t0, 1)
            results.save()
        if "reporting" in levels:
            from . import reporting

            t0 = time.time()
            events = 20_000 if args.smoke else (10_000_000 if args.full_reporting else 1_000_000)
            results.data["reporting"] = reporting.run(target, events=events, smoke=args.smoke)
            results.data["reporting"]["elapsed_s"] = round(time.time() - t0, 1)
            results.save()
    results.data["elapsed_s"] = round(time.time() - started, 1)
    results.data["machine"]["loadavg_at_end"] = os.getloadavg()
    results.save()
    log(f"results: {out} ({results.data['elapsed_s']} s)")
    if docs:
        from .render import render

        docs.write_text(render(results.data))
        log(f"report: {docs}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
