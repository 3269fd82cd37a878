"""migrate installs the same schema as psql; each way can follow the other; no uninstall."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection

from pg_audit_schema.installer import latest_version, sql_dir

pytestmark = pytest.mark.django_db(transaction=True)


def _psql_install(pg_server: Any, dbname: str) -> str:
    result = subprocess.run(
        [pg_server.tool("psql"), "-X", "-v", "ON_ERROR_STOP=1", "-f",
         str(sql_dir() / "install.sql")],
        env=pg_server.libpq_env(dbname), capture_output=True, text=True, check=True)
    return result.stdout


def _manage(pg_server: Any, dbname: str, *args: str) -> subprocess.CompletedProcess[str]:
    here = Path(__file__).parent
    env = {**os.environ, "PG_AUDIT_DJANGO_DSN": pg_server.conninfo(dbname),
           "DJANGO_SETTINGS_MODULE": "testproject.settings",
           "PYTHONPATH": os.pathsep.join([str(here), str(here.parent.parent)])}
    return subprocess.run([sys.executable, "-m", "django", *args, "--no-color"], env=env,
                          capture_output=True, text=True)


def _migrate(pg_server: Any, dbname: str) -> None:
    result = _manage(pg_server, dbname, "migrate", "-v0")
    assert result.returncode == 0, result.stderr


def _state(pg_server: Any, dbname: str) -> tuple[Any, ...]:
    with pg_server.connect(dbname) as conn:
        versions = conn.execute("SELECT array_agg(version ORDER BY version) "
                                "FROM audit.schema_version").fetchone()[0]
        events = conn.execute("SELECT count(*) FROM audit.event").fetchone()[0]
        tracked = conn.execute("SELECT array_agg(table_name::text || excluded_columns::text "
                               "ORDER BY 1) FROM audit.tracked_table").fetchone()[0]
        triggers = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit%%'"
                                ).fetchone()[0]
    return versions, events, tracked, triggers


def test_migrate_after_psql_then_psql_again_changes_nothing(pg_server: Any,
                                                            empty_db: Any) -> None:
    _psql_install(pg_server, empty_db.name)
    _migrate(pg_server, empty_db.name)
    versions, events, tracked, triggers = _state(pg_server, empty_db.name)
    assert versions == list(range(1, latest_version() + 1))
    assert "public.auth_user{last_login,password}" in tracked
    assert "public.shop_product{secret_note}" in tracked
    _psql_install(pg_server, empty_db.name)
    _migrate(pg_server, empty_db.name)
    assert _state(pg_server, empty_db.name) == (versions, events, tracked, triggers)


def test_psql_after_migrate_changes_nothing(pg_server: Any) -> None:
    dbname = connection.settings_dict["NAME"]
    before = _state(pg_server, dbname)
    assert before[0] == list(range(1, latest_version() + 1))
    out = _psql_install(pg_server, dbname)
    assert f"version {latest_version()}" in out
    assert _state(pg_server, dbname) == before


def _applied(pg_server: Any, dbname: str) -> list[tuple[str, str]]:
    with pg_server.connect(dbname) as conn:
        return conn.execute("SELECT app, name FROM django_migrations ORDER BY id").fetchall()


def test_migrate_on_a_fresh_database_whatever_the_app_labels(pg_server: Any,
                                                             empty_db: Any) -> None:
    # accounts sorts before django_bridge and its migration has dependencies = [].
    result = _manage(pg_server, empty_db.name, "migrate", "-v0")
    assert result.returncode == 0, result.stderr
    applied = _applied(pg_server, empty_db.name)
    assert applied.index(("django_bridge", "0001_install")) < applied.index(
        ("accounts", "0001_initial"))
    versions, _events, tracked, _triggers = _state(pg_server, empty_db.name)
    assert versions == list(range(1, latest_version() + 1))
    assert "public.accounts_profile{}" in tracked


def test_a_tracked_apps_migrations_depend_on_the_install_migration() -> None:
    from django.db.migrations.loader import MigrationLoader

    graph = MigrationLoader(None, ignore_no_migrations=True).graph
    for app in ("accounts", "shop"):
        assert ("django_bridge", "0001_install") in graph.forwards_plan((app, "0001_initial"))


def test_unapplying_the_install_migration_is_refused_before_anything_changes(
    pg_server: Any, empty_db: Any
) -> None:
    _migrate(pg_server, empty_db.name)
    before = _state(pg_server, empty_db.name)
    applied = _applied(pg_server, empty_db.name)
    result = _manage(pg_server, empty_db.name, "migrate", "django_bridge", "zero", "-v0")
    assert result.returncode != 0
    assert "refused" in result.stderr and "nothing was changed" in result.stderr
    # The tracked apps' migrations, which come after the install, were not unapplied first.
    assert _applied(pg_server, empty_db.name) == applied
    assert _state(pg_server, empty_db.name) == before
