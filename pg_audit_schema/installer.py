"""Apply the versioned SQL files of ``sql/`` to a database.

The same files, in the same order, as ``psql -f sql/install.sql``:
``bootstrap.sql``, each ``NNNN_name.sql`` the database lacks, then ``guards.sql``
and ``finish.sql``,
all in one transaction. Each step records its own version, so every runner ends
at the same recorded version.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from .errors import NotInstalled, PgAuditError
from .events import EVENT_COLUMNS

try:
    import psycopg

    _DriverError: tuple[type[Exception], ...] = (psycopg.Error,)
except ImportError:  # a psycopg2 Django project: django_bridge.install's connection raises
    _DriverError = ()  # PgAuditError with the server's message itself

__all__ = [
    "EVENT_COLUMNS", "Step", "available_steps", "install", "installed_version", "latest_version",
    "require_installed", "sql_dir",
]

_STEP_NAME = re.compile(r"^(\d{4})_([a-z0-9_]+)\.sql$")


def sql_dir() -> Path:
    """The schema files: inside the wheel, or sql/ of a source checkout."""
    packaged = Path(__file__).parent / "sql"
    if packaged.is_dir():
        return packaged
    return Path(__file__).resolve().parent.parent / "sql"


@dataclass(frozen=True)
class Step:
    version: int
    name: str
    path: Path

    def text(self) -> str:
        return self.path.read_text(encoding="utf-8")


@cache
def available_steps() -> tuple[Step, ...]:
    steps = []
    for path in sorted(sql_dir().glob("*.sql")):
        match = _STEP_NAME.match(path.name)
        if match:
            steps.append(Step(int(match[1]), match[2], path))
    versions = [s.version for s in steps]
    if versions != list(range(1, len(versions) + 1)):
        raise PgAuditError(f"sql/ steps must be numbered 1..n without gaps, found {versions}")
    return tuple(steps)


def latest_version() -> int:
    return available_steps()[-1].version


def installed_version(conn: psycopg.Connection) -> int | None:
    """The highest applied step, or None when the schema is not installed."""
    row = conn.execute(
        "SELECT to_regclass('audit.schema_version') IS NOT NULL"
    ).fetchone()
    if not row or not row[0]:
        return None
    row = conn.execute("SELECT max(version) FROM audit.schema_version").fetchone()
    return row[0] if row else None


def require_installed(conn: psycopg.Connection) -> int:
    version = installed_version(conn)
    if version is None:
        raise NotInstalled(
            "the audit schema is not installed in this database; run: pg-audit install"
        )
    return version


def install(conn: psycopg.Connection) -> list[Step]:
    """Bring the schema up to date; returns the steps that were applied.

    Runs in one transaction (its own, or a savepoint of the caller's), so a
    failure leaves the database as it was. A schema already at the latest
    version is left alone when the caller is not a superuser (only the warning
    about missing guards is repeated): the application's login running
    ``migrate`` after a DBA's install needs no privilege and must not be made a
    member of audit_owner by the bootstrap.
    """
    folder = sql_dir()
    guards = (folder / "guards.sql").read_text(encoding="utf-8")
    finish = (folder / "finish.sql").read_text(encoding="utf-8")
    applied: list[Step] = []
    try:
        if installed_version(conn) == latest_version() and not _is_superuser(conn):
            conn.execute(guards)
            return applied
        with conn.transaction():
            conn.execute((folder / "bootstrap.sql").read_text(encoding="utf-8"))
            done = {
                v for (v,) in conn.execute("SELECT version FROM audit.schema_version")
            }
            for step in available_steps():
                if step.version not in done:
                    conn.execute(step.text())
                    applied.append(step)
            conn.execute(guards)
            conn.execute(finish)
    except _DriverError as exc:
        raise PgAuditError(f"installing the audit schema failed: {_one_line(exc)}") from exc
    return applied


def _is_superuser(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user"
    ).fetchone()
    return bool(row and row[0])


def _one_line(exc: psycopg.Error) -> str:
    diag = exc.diag
    text = diag.message_primary or str(exc).strip().splitlines()[0]
    text = text.removeprefix("pg-audit: ")  # the CLI says pg-audit: once
    if diag.sqlstate:
        text = f"{text} (SQLSTATE {diag.sqlstate})"
    # The server's hint says how to fix it (who may grant a role, where hstore
    # must go): it stays on the one line.
    if diag.message_hint:
        text = f"{text}; hint: {' '.join(diag.message_hint.split())}"
    return text
