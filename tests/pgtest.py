"""Handles on the test server and its databases, shared by the fixtures in
conftest.py and the tests that type their arguments (import them from here,
not from conftest: tests/django has a conftest of its own)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import psycopg
from psycopg import sql
from psycopg.conninfo import make_conninfo

PREFIX = "pgaudit_test"
PASSWORD = "pgaudit-test-password"


@dataclass(frozen=True)
class PgServer:
    dsn: str  # a superuser connection to the maintenance database
    bindir: str | None  # where psql and pgbench live, when known

    def conninfo(self, dbname: str | None = None, user: str | None = None) -> str:
        extra: dict[str, str] = {}
        if dbname:
            extra["dbname"] = dbname
        if user:
            extra["user"] = user
            extra["password"] = PASSWORD
        return make_conninfo(self.dsn, **extra)

    def connect(self, dbname: str | None = None, user: str | None = None) -> psycopg.Connection:
        return psycopg.connect(self.conninfo(dbname, user), autocommit=True)

    def libpq_env(self, dbname: str | None = None, user: str | None = None) -> dict[str, str]:
        """Environment for psql and pgbench pointed at this server."""
        params = psycopg.conninfo.conninfo_to_dict(self.conninfo(dbname, user))
        names = {
            "host": "PGHOST",
            "port": "PGPORT",
            "user": "PGUSER",
            "dbname": "PGDATABASE",
            "password": "PGPASSWORD",
        }
        return {**os.environ, **{names[k]: str(v) for k, v in params.items() if k in names}}

    def tool(self, name: str) -> str:
        return os.path.join(self.bindir, name) if self.bindir else name


@dataclass(frozen=True)
class Database:
    server: PgServer
    name: str

    def conninfo(self, user: str | None = None) -> str:
        return self.server.conninfo(self.name, user)

    def connect(self, user: str | None = None) -> psycopg.Connection:
        """Autocommit connection, as the superuser or as one of the test roles."""
        return self.server.connect(self.name, user)


def reset_public_schema(db: Database, roles: dict[str, str]) -> int:
    """An empty public schema for the next test of a shared database; returns
    the newest event id so far, so the test reads only its own events."""
    with db.connect() as conn:
        conn.execute("DROP SCHEMA public CASCADE")
        conn.execute("CREATE SCHEMA public")
        conn.execute("GRANT USAGE ON SCHEMA public TO PUBLIC")
        for role in roles.values():
            conn.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role))
            )
        row = conn.execute("SELECT coalesce(max(id), 0) FROM audit.event").fetchone()
    return row[0] if row else 0


def printed(values: dict[str, object] | None) -> dict[str, str | None] | None:
    """Column values as capture records them: PostgreSQL's text output of each
    (str() of an int, a str as it is), SQL NULL as JSON null."""
    if values is None:
        return None
    return {k: None if v is None else str(v) for k, v in values.items()}
