"""Shared pieces: the server, databases, timing statistics and the results file."""

from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql

from pg_audit_schema import install
from pg_audit_schema.embedded import temporary_server

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = ROOT / "bench"

# A durable server: with fsync off a commit costs nothing, and "synchronous_commit
# on" would measure the same thing as "off".
SERVER_SETTINGS = {
    "fsync": "on",
    "full_page_writes": "on",
    "shared_buffers": "512MB",
    "max_wal_size": "4GB",
    "checkpoint_timeout": "30min",
    "work_mem": "16MB",
    "maintenance_work_mem": "256MB",
    "log_min_messages": "warning",
}


@dataclass(frozen=True)
class Target:
    """Where the benchmark connects: a socket dir or host, and the bindir of pgbench."""

    host: str
    port: int
    user: str
    bindir: str

    def conninfo(self, dbname: str, user: str | None = None) -> str:
        return psycopg.conninfo.make_conninfo(
            host=self.host, port=str(self.port), dbname=dbname, user=user or self.user
        )

    def connect(self, dbname: str, user: str | None = None) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname, user), autocommit=True)

    def libpq_env(self, dbname: str, user: str | None = None, options: str = "") -> dict[str, str]:
        env = {
            **os.environ,
            "PGHOST": self.host,
            "PGPORT": str(self.port),
            "PGUSER": user or self.user,
            "PGDATABASE": dbname,
        }
        env.pop("PGPASSWORD", None)
        if options:
            env["PGOPTIONS"] = options
        return env

    def tool(self, name: str) -> str:
        return os.path.join(self.bindir, name)


@contextmanager
def bench_server(dsn: str | None, bindir: str | None, port: int) -> Iterator[Target]:
    """An existing server (``--dsn`` and ``--bindir``) or a fresh embedded one."""
    if dsn:
        params = psycopg.conninfo.conninfo_to_dict(dsn)
        if not bindir:
            raise SystemExit("--dsn needs --bindir (where pgbench lives)")
        yield Target(
            str(params.get("host", "/tmp")),
            int(params.get("port", 5432)),
            str(params.get("user", "postgres")),
            bindir,
        )
        return
    with temporary_server(
        Path(bindir) if bindir else None, port=port, settings=SERVER_SETTINGS
    ) as server:
        yield Target(str(server.socket_dir), server.port, server.superuser, str(server.bindir))


def recreate_database(target: Target, name: str, *, with_schema: bool) -> None:
    with target.connect("postgres") as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    if with_schema:
        with target.connect(name) as conn:
            install(conn)


def ensure_role(target: Target, role: str, grants: list[str]) -> None:
    with target.connect("postgres") as conn:
        exists = conn.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", [role]).fetchone()
        if not exists:
            conn.execute(sql.SQL("CREATE ROLE {} LOGIN").format(sql.Identifier(role)))
        for grant in grants:
            conn.execute(
                sql.SQL("GRANT {} TO {}").format(sql.Identifier(grant), sql.Identifier(role))
            )


def summarize(values: list[float]) -> dict[str, float | int] | None:
    """Median and spread (min, max, quartiles) of repeated measurements; None when there
    are none."""
    if not values:
        return None
    ordered = sorted(values)
    q1, _, q3 = statistics.quantiles(ordered, n=4) if len(ordered) > 1 else (ordered[0],) * 3
    return {
        "median": statistics.median(ordered),
        "min": ordered[0],
        "max": ordered[-1],
        "q1": q1,
        "q3": q3,
        "n": len(ordered),
    }


def ratio_summary(pairs: list[tuple[float, float]]) -> dict[str, float | int] | None:
    """Per-repetition ratios variant/baseline, each from measurements taken side by side."""
    return summarize([v / b for b, v in pairs if b > 0])


def timed(fn: Any) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def machine_info(target: Target) -> dict[str, Any]:
    cpu = platform.processor() or ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_kb = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal"):
                mem_kb = int(line.split()[1])
    except OSError:
        pass
    with target.connect("postgres") as conn:
        server_version = conn.execute("SHOW server_version").fetchone()[0]  # type: ignore[index]
    commit = subprocess.run(
        ["git", "-C", str(ROOT), "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    return {
        "nproc": os.cpu_count(),
        "cpu": cpu,
        "memory_gib": round(mem_kb / 1024 / 1024, 1),
        "loadavg_at_start": os.getloadavg(),
        "python": platform.python_version(),
        "postgresql": server_version,
        "psycopg": psycopg.__version__,
        "git_commit": commit,
        "server_settings": SERVER_SETTINGS,
    }


@dataclass
class Results:
    path: Path
    data: dict[str, Any] = field(default_factory=dict)

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(self.data, indent=1, default=str) + "\n")
        tmp.replace(self.path)


def log(message: str) -> None:
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", flush=True)
