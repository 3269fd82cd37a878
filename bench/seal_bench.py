"""Insert throughput: sealing alongside vs none vs a per-insert advisory-lock chain.

    .venv/bin/python -m bench.seal_bench [--seconds 10] [--reps 4] [--sync on]

Two pgbench writers insert single rows into a tracked table (one audit event per
transaction). Three variants run back to back in every repetition, in rotated
order, so drift on a shared machine hits them alike:

* ``plain``: no sealing.
* ``sealing``: ``audit.seal()`` every second from a third connection.
* ``lock_chain``: what auditrum-style chains do, built here only: a row trigger on
  audit.event takes a transaction advisory lock, reads the chain head, hashes the
  new event onto it and writes the head back, so writers serialise until commit.
* ``no_txid_index``: no sealing and without the btree on txid that sealing adds
  (``audit.event_txid_idx``), to show what the index costs every insert.

Ratios are variant/plain within the same repetition.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from .common import Target, bench_server, ensure_role, log, recreate_database, summarize

DB = "bench_seal"
APP_ROLE = "bench_seal_app"
SCRIPT = "INSERT INTO item (qty, name) VALUES (1, 'sealed item');\n"
_TPS = re.compile(r"tps = ([0-9.]+) \(without initial connection time\)")

LOCK_CHAIN_SQL = """
CREATE TABLE bench_chain_head (one boolean PRIMARY KEY, hash bytea NOT NULL);
INSERT INTO bench_chain_head VALUES (true, '\\x00');
CREATE TABLE bench_chain (event_id bigint, hash bytea NOT NULL);
CREATE FUNCTION bench_chain_link() RETURNS trigger LANGUAGE plpgsql
SECURITY DEFINER SET search_path = public, pg_catalog AS $$
DECLARE
    prev bytea;
    h bytea;
BEGIN
    PERFORM pg_advisory_xact_lock(424242);  -- held until commit: the serialisation point
    SELECT hash INTO prev FROM bench_chain_head;
    h := sha256(prev || convert_to(audit.event_canonical(NEW), 'UTF8'));
    INSERT INTO bench_chain VALUES (NEW.id, h);
    UPDATE bench_chain_head SET hash = h;
    RETURN NEW;
END
$$;
"""


def setup(target: Target) -> None:
    recreate_database(target, DB, with_schema=True)
    ensure_role(target, APP_ROLE, ["audit_writer"])
    with target.connect(DB) as conn:
        conn.execute(LOCK_CHAIN_SQL)
        conn.execute("CREATE TABLE item (id bigserial PRIMARY KEY, qty int, name text)")
        conn.execute(f"ALTER TABLE item OWNER TO {APP_ROLE}")
        conn.execute("SELECT audit.enable_tracking('item')")
        conn.execute("SELECT audit.seal()")


def set_lock_chain(target: Target, on: bool) -> None:
    with target.connect(DB) as conn:
        if on:
            conn.execute(
                "CREATE TRIGGER bench_chain BEFORE INSERT ON audit.event "
                "FOR EACH ROW EXECUTE FUNCTION bench_chain_link()"
            )
            conn.execute("ALTER TABLE audit.event ENABLE ALWAYS TRIGGER bench_chain")
        else:
            conn.execute("DROP TRIGGER IF EXISTS bench_chain ON audit.event")


def pgbench(target: Target, seconds: int, sync: str, workdir: Path) -> float:
    script = workdir / "insert.sql"
    script.write_text(SCRIPT)
    script.chmod(0o644)
    done = subprocess.run(
        [
            target.tool("pgbench"),
            "-n",
            "-M",
            "prepared",
            "-c",
            "2",
            "-j",
            "2",
            "-T",
            str(seconds),
            "-f",
            str(script),
            DB,
        ],
        capture_output=True,
        text=True,
        env=target.libpq_env(DB, APP_ROLE, f"-c synchronous_commit={sync}"),
    )
    match = _TPS.search(done.stdout)
    if done.returncode != 0 or not match:
        raise RuntimeError(f"pgbench failed: {done.stderr.strip() or done.stdout[-500:]}")
    return float(match[1])


class Sealer(threading.Thread):
    """Calls audit.seal() once a second until stopped."""

    def __init__(self, target: Target) -> None:
        super().__init__(daemon=True)
        self.target = target
        self.stop = threading.Event()
        self.seals = 0
        self.seconds: list[float] = []
        self.us_per_event: list[float] = []

    def run(self) -> None:
        with self.target.connect(DB) as conn:
            while not self.stop.is_set():
                start = time.perf_counter()
                # Two statements: one statement's snapshot cannot see the batch it wrote.
                batch = conn.execute("SELECT audit.seal()").fetchone()
                row = (
                    conn.execute(
                        "SELECT event_count FROM audit.seal WHERE batch = %s", [batch[0]]
                    ).fetchone()
                    if batch and batch[0]
                    else None
                )
                took = time.perf_counter() - start
                self.seconds.append(took)
                if row and row[0]:
                    self.us_per_event.append(took * 1e6 / row[0])
                self.seals += 1
                self.stop.wait(max(0.0, 1.0 - (time.perf_counter() - start)))


def set_txid_index(target: Target, on: bool) -> None:
    with target.connect(DB) as conn:
        if on:
            conn.execute("CREATE INDEX IF NOT EXISTS event_txid_idx ON audit.event (txid)")
        else:
            conn.execute("DROP INDEX audit.event_txid_idx")


def run_variant(
    target: Target, variant: str, seconds: int, sync: str, workdir: Path
) -> dict[str, Any]:
    if variant == "lock_chain":
        set_lock_chain(target, True)
    if variant == "no_txid_index":
        set_txid_index(target, False)
    sealer = Sealer(target) if variant == "sealing" else None
    if sealer:
        # Catch up on the other turns' events first, untimed: the steady state
        # is one second of events per seal, not a backlog of three turns.
        with target.connect(DB) as conn:
            conn.execute("SELECT audit.seal()")
        sealer.start()
    try:
        tps = pgbench(target, seconds, sync, workdir)
    finally:
        if sealer:
            sealer.stop.set()
            sealer.join()
        if variant == "lock_chain":
            set_lock_chain(target, False)
        if variant == "no_txid_index":
            set_txid_index(target, True)
    result: dict[str, Any] = {"variant": variant, "tps": tps}
    if sealer:
        result["seals"] = sealer.seals
        result["seal_ms_median"] = round(summarize(sealer.seconds)["median"] * 1000, 2)
        if sealer.us_per_event:
            result["seal_us_per_event"] = round(summarize(sealer.us_per_event)["median"], 1)
    return result


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(
        prog="bench.seal_bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # Short turns, many repetitions: on a shared machine the load changes within
    # seconds, so ratios of neighbouring turns are the fair comparison.
    p.add_argument("--seconds", type=int, default=3)
    p.add_argument("--reps", type=int, default=12)
    p.add_argument("--sync", default="on", help="synchronous_commit of the writers")
    p.add_argument("--dsn")
    p.add_argument("--bindir")
    p.add_argument("--port", type=int, default=55490)
    p.add_argument("--out", type=Path, help="write the results as JSON here")
    args = p.parse_args(argv)
    variants = ["plain", "sealing", "lock_chain", "no_txid_index"]
    load_at_start = os.getloadavg()
    with (
        bench_server(args.dsn, args.bindir, args.port) as target,
        tempfile.TemporaryDirectory() as tmp,
    ):
        setup(target)
        workdir = Path(tmp)
        Path(tmp).chmod(0o755)
        pgbench(target, 2, args.sync, workdir)  # warm-up
        reps = []
        for rep in range(args.reps):
            k = rep % len(variants)
            order = variants[k:] + variants[:k]
            got = {v: run_variant(target, v, args.seconds, args.sync, workdir) for v in order}
            reps.append(got)
            log(f"rep {rep + 1}: " + ", ".join(f"{v} {got[v]['tps']:.0f} tps" for v in variants))
        with target.connect(DB) as conn:
            verified = conn.execute("SELECT ok, batches, events FROM audit.verify()").fetchone()
    summary = {
        "seconds": args.seconds,
        "reps": args.reps,
        "writers": 2,
        "synchronous_commit": args.sync,
        "tps": {v: summarize([r[v]["tps"] for r in reps]) for v in variants},
        "ratio_sealing_vs_plain": summarize(
            [r["sealing"]["tps"] / r["plain"]["tps"] for r in reps]
        ),
        "ratio_lock_chain_vs_plain": summarize(
            [r["lock_chain"]["tps"] / r["plain"]["tps"] for r in reps]
        ),
        "ratio_plain_vs_no_txid_index": summarize(
            [r["plain"]["tps"] / r["no_txid_index"]["tps"] for r in reps]
        ),
        "seal_ms_median": summarize([r["sealing"]["seal_ms_median"] for r in reps]),
        "seal_us_per_event": summarize(
            [r["sealing"]["seal_us_per_event"] for r in reps if "seal_us_per_event" in r["sealing"]]
        ),
        "loadavg_at_start": load_at_start,
        "verify_after_run": {"ok": verified[0], "batches": verified[1], "events": verified[2]}
        if verified
        else None,
        "repetitions": reps,
    }
    text = json.dumps(summary, indent=1)
    print(text)
    if args.out:
        args.out.write_text(text + "\n")


if __name__ == "__main__":
    main()
