"""Django level: the same project and workloads under each library, ratios against no auditing.

Each library has its own venv (bench/peers.py), its own database on the same server
and its own processes. Repetitions go round the libraries in rotating order, so
every library's numbers sit beside the baseline's of the same round.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from . import peers
from .common import BENCH_DIR, Target, log, ratio_summary, recreate_database, summarize

ALL = ["none", "django_bridge", "pghistory", "auditlog", "auditrum"]
SMOKE = ["none", "django_bridge"]
WORKLOADS = ["create", "update", "delete", "queryset_update", "bulk_create", "request"]
SCRIPT = BENCH_DIR / "django_workload.py"


def _call(python: Path, phase: str, args: dict[str, Any]) -> dict[str, Any]:
    done = subprocess.run(
        [str(python), str(SCRIPT), phase, json.dumps(args)],
        capture_output=True,
        text=True,
        timeout=900,
    )
    for line in reversed(done.stdout.splitlines()):
        if line.startswith("BENCH-RESULT "):
            return json.loads(line.removeprefix("BENCH-RESULT "))  # type: ignore[no-any-return]
    tail = (done.stderr or done.stdout).strip().splitlines()[-15:]
    raise RuntimeError(f"{args['library']} {phase} failed:\n" + "\n".join(tail))


def cpu_seconds(measured: dict[str, Any]) -> float | None:
    """CPU of the Django process and its database backend for one workload, or None when
    the backend's CPU could not be read (a remote server)."""
    if measured.get("server_cpu_s") is None:
        return None
    return float(measured["client_cpu_s"] + measured["server_cpu_s"])


def capture_status(history: list[int | None], expected: int) -> str:
    if any(h is None for h in history):
        return "n/a"
    low = min(h for h in history if h is not None)
    if low >= expected:
        return "captured"
    if max(h for h in history if h is not None) == 0:
        return "not captured"
    return f"partial ({low} of {expected})"


def run(
    target: Target, *, smoke: bool, libraries: str | None, reps: int | None = None
) -> dict[str, Any]:
    libs = libraries.split(",") if libraries else (SMOKE if smoke else ALL)
    if "none" not in libs:
        libs = ["none", *libs]
    sizes = (
        {"single": 20, "bulk": 200, "requests": 10}
        if smoke
        else {"single": 300, "bulk": 10_000, "requests": 300}
    )
    reps = reps or (1 if smoke else 5)
    # Smoke uses the project's venv (Django and the bridge are there); a full run
    # builds one venv per library from PyPI.
    local = [lib for lib in libs if smoke and lib in SMOKE]
    pythons = {
        **{lib: Path(sys.executable) for lib in local},
        **peers.ensure([lib for lib in libs if lib not in local]),
    }
    setups: dict[str, Any] = {}
    failed: dict[str, str] = {}
    for lib in libs:
        dbname = f"bench_dj_{lib}"
        recreate_database(target, dbname, with_schema=False)
        args = {
            "library": lib,
            "db": {"name": dbname, "host": target.host, "port": target.port, "user": target.user},
            "sizes": sizes,
        }
        try:
            setups[lib] = {"args": args, "notes": _call(pythons[lib], "setup", args)["notes"]}
            log(f"django: {lib} set up")
        except RuntimeError as exc:
            failed[lib] = str(exc)
            log(f"django: {lib} setup FAILED: {exc}")
    if "none" in failed:
        raise RuntimeError(f"the unaudited baseline failed to set up: {failed['none']}")
    active = [lib for lib in libs if lib in setups]
    raw: dict[str, list[dict[str, Any]]] = {lib: [] for lib in active}
    notes: dict[str, list[str]] = {lib: list(setups[lib]["notes"]) for lib in active}
    for rep in range(reps):
        log(f"django: repetition {rep + 1}/{reps}")
        order = active[rep % len(active) :] + active[: rep % len(active)]
        for lib in order:
            try:
                got = _call(pythons[lib], "run", setups[lib]["args"])
            except RuntimeError as exc:
                failed[lib] = str(exc)
                log(f"django: {lib} run FAILED: {exc}")
                continue
            raw[lib].append(got["workloads"])
            notes[lib].extend(n for n in got["notes"] if n not in notes[lib])
    table = []
    for wl in WORKLOADS:
        base = [r[wl]["seconds"] for r in raw["none"]]
        base_cpu = [cpu_seconds(r[wl]) for r in raw["none"]]
        for lib in active:
            runs = raw[lib]
            if not runs:
                continue
            expected = runs[0][wl]["operations"]
            status = capture_status([r[wl]["history_rows"] for r in runs], expected)
            secs = [r[wl]["seconds"] for r in runs]
            cpu = [cpu_seconds(r[wl]) for r in runs]
            row: dict[str, Any] = {
                "workload": wl,
                "library": lib,
                "operations": expected,
                "capture": status,
                "us_per_op": summarize([s / expected * 1e6 for s in secs]),
                "cpu_us_per_op": summarize([c / expected * 1e6 for c in cpu if c is not None]),
                # the two parts of it: Django's process, and its database backend
                "client_cpu_us_per_op": summarize(
                    [r[wl]["client_cpu_s"] / expected * 1e6 for r in runs]
                ),
                "server_cpu_us_per_op": summarize(
                    [
                        r[wl]["server_cpu_s"] / expected * 1e6
                        for r in runs
                        if r[wl].get("server_cpu_s") is not None
                    ]
                ),
                "history_rows_per_rep": [r[wl]["history_rows"] for r in runs],
            }
            if lib != "none" and len(base) == len(secs):
                # time ratio library/none of the same round; only meaningful if captured
                row["ratio"] = ratio_summary(list(zip(base, secs, strict=True)))
                row["cpu_ratio"] = ratio_summary(
                    [(b, c) for b, c in zip(base_cpu, cpu, strict=True) if b and c]
                )
            if wl == "request":
                row["who_and_where"] = runs[-1][wl].get("who_and_where")
            table.append(row)
    return {
        "sizes": sizes,
        "reps": reps,
        "libraries": active,
        "failed": failed,
        "notes": notes,
        "versions": {lib: peers.versions(pythons[lib]) for lib in libs},
        "results": table,
    }
