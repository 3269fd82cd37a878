"""Adding pg-audit to a project whose apps were migrated long before, as a user does it.

A throwaway project in tmp_path: the app ``ledger`` is migrated without the bridge; then
django_bridge goes into INSTALLED_APPS, the model gets ``tracked()``, makemigrations writes
the trigger migration, and migrate installs the schema before it. The project has no
django.contrib.admin (an API-only site): the bridge's checks must not need it.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pgtest import PREFIX
from psycopg import sql

REPO = Path(__file__).parent.parent.parent

SETTINGS_BEFORE = """
from psycopg.conninfo import conninfo_to_dict
import os

SECRET_KEY = "adoption-test"
USE_TZ = True
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
INSTALLED_APPS = ["django.contrib.auth", "django.contrib.contenttypes", "ledger"]
_p = conninfo_to_dict(os.environ["PG_AUDIT_DJANGO_DSN"])
DATABASES = {"default": {
    "ENGINE": "django.db.backends.postgresql", "NAME": _p.get("dbname", ""),
    "HOST": _p.get("host", ""), "PORT": str(_p.get("port", "")),
    "USER": _p.get("user", ""), "PASSWORD": _p.get("password", ""),
}}
"""

SETTINGS_AFTER = """
from site_before import *

INSTALLED_APPS = INSTALLED_APPS + ["pgtrigger", "django_bridge"]
MIDDLEWARE = ["django_bridge.middleware.AuditContextMiddleware"]
"""

MODEL = """
from django.db import models
{imports}

class Entry(models.Model):
    name = models.CharField(max_length=50)
    amount = models.IntegerField(default=0)
{meta}
"""

PLAIN = MODEL.format(imports="", meta="")
TRACKED = MODEL.format(imports="from django_bridge.tracking import tracked",
                       meta="\n    class Meta:\n        triggers = tracked()\n")


def _project(root: Path) -> Path:
    (root / "site_before.py").write_text(SETTINGS_BEFORE)
    (root / "site_after.py").write_text(SETTINGS_AFTER)
    (root / "ledger" / "migrations").mkdir(parents=True)
    (root / "ledger" / "__init__.py").write_text("")
    (root / "ledger" / "migrations" / "__init__.py").write_text("")
    (root / "ledger" / "models.py").write_text(PLAIN)
    return root / "ledger"


def _manage(root: Path, dsn: str, settings: str, *args: str) -> str:
    env = {**os.environ, "PG_AUDIT_DJANGO_DSN": dsn, "DJANGO_SETTINGS_MODULE": settings,
           "PYTHONPATH": os.pathsep.join([str(root), str(REPO)])}
    result = subprocess.run([sys.executable, "-m", "django", *args, "--no-color"], env=env,
                            cwd=root, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, (args, result.stderr[-3000:])
    return result.stdout


def _applied(conn: Any) -> list[tuple[str, str]]:
    return conn.execute("SELECT app, name FROM django_migrations "
                        "WHERE app IN ('ledger', 'django_bridge') ORDER BY id").fetchall()


def _write_and_read_back(root: Path, dsn: str, conn: Any) -> list[tuple[Any, ...]]:
    _manage(root, dsn, "site_after", "shell", "-c",
            "from ledger.models import Entry; Entry.objects.create(name='first', amount=5)")
    return conn.execute("SELECT action, table_name, new_values->>'name' FROM audit.event "
                        "WHERE table_name = 'public.ledger_entry' AND action <> 'TRACKING_ENABLED' "
                        "ORDER BY id").fetchall()


def _adopt(root: Path, dsn: str) -> Path:
    """Step 2: the bridge installed, the model tracked, makemigrations as the user runs it."""
    app = root / "ledger"
    (app / "models.py").write_text(TRACKED)
    _manage(root, dsn, "site_after", "makemigrations", "ledger", "-v0")
    [trigger_migration] = sorted((app / "migrations").glob("0002_*.py"))
    text = trigger_migration.read_text()
    # As makemigrations writes it: capture triggers, no dependency on the bridge.
    assert "AddTrigger" in text and "('django_bridge'" not in text, text
    return trigger_migration


def test_adding_pg_audit_to_an_already_migrated_project(tmp_path: Path, pg_server: Any,
                                                        empty_db: Any) -> None:
    dsn = pg_server.conninfo(empty_db.name)
    app = _project(tmp_path)

    # Step 1: the project as it was, migrated long ago.
    _manage(tmp_path, dsn, "site_before", "makemigrations", "ledger", "-v0")
    assert (app / "migrations" / "0001_initial.py").exists()
    _manage(tmp_path, dsn, "site_before", "migrate", "-v0")
    with empty_db.connect() as conn:
        assert _applied(conn) == [("ledger", "0001_initial")]
        assert conn.execute("SELECT to_regnamespace('audit')").fetchone()[0] is None
        conn.execute("INSERT INTO ledger_entry (name, amount) VALUES ('before', 1)")

    # Step 2: pg-audit added.
    trigger_migration = _adopt(tmp_path, dsn).stem
    _manage(tmp_path, dsn, "site_after", "migrate", "-v0")
    with empty_db.connect() as conn:
        applied = _applied(conn)
        assert applied[0] == ("ledger", "0001_initial")
        assert applied.index(("django_bridge", "0001_install")) < applied.index(
            ("ledger", trigger_migration)), applied
        tracked = conn.execute("SELECT table_name::text FROM audit.tracked_table").fetchall()
        assert ("public.ledger_entry",) in tracked
        # The row from before gets no event; the new one does.
        assert _write_and_read_back(tmp_path, dsn, conn) == [
            ("INSERT", "public.ledger_entry", "first")]

    # Nothing left to make or apply, and the history stays consistent.
    _manage(tmp_path, dsn, "site_after", "makemigrations", "--check", "--dry-run", "-v0")
    assert "No planned migration operations" in _manage(
        tmp_path, dsn, "site_after", "migrate", "--plan")


def test_the_adopted_project_on_a_fresh_database(tmp_path: Path, pg_server: Any,
                                                  empty_db: Any) -> None:
    # The same project files, then a new database (a new environment, a test run):
    # the install still comes before the trigger migration, not before ledger's first.
    dsn = pg_server.conninfo(empty_db.name)
    _project(tmp_path)
    _manage(tmp_path, dsn, "site_before", "makemigrations", "ledger", "-v0")
    trigger_migration = _adopt(tmp_path, dsn).stem
    fresh = f"{PREFIX}_{os.getpid()}_adoption_fresh"
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(fresh)))
    try:
        fresh_dsn = pg_server.conninfo(fresh)
        _manage(tmp_path, fresh_dsn, "site_after", "migrate", "-v0")
        with pg_server.connect(fresh) as conn:
            applied = _applied(conn)
            assert applied.index(("django_bridge", "0001_install")) < applied.index(
                ("ledger", trigger_migration)), applied
            assert _write_and_read_back(tmp_path, fresh_dsn, conn) == [
                ("INSERT", "public.ledger_entry", "first")]
    finally:
        with pg_server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(fresh)))
