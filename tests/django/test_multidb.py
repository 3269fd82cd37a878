"""SQLite default, audited PostgreSQL second: the bridge follows the router, drops nothing."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

HERE = Path(__file__).parent


def test_sqlite_default_with_the_audited_postgresql_second(pg_server: Any, empty_db: Any,
                                                          tmp_path: Path) -> None:
    env = {**os.environ, "PG_AUDIT_DJANGO_DSN": pg_server.conninfo(empty_db.name),
           "PG_AUDIT_SQLITE": str(tmp_path / "default.sqlite3"),
           "DJANGO_SETTINGS_MODULE": "testproject.settings_multidb",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent)])}
    result = subprocess.run([sys.executable, str(HERE / "multidb_run.py")], env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    outcome = json.loads(result.stdout.strip().splitlines()[-1])
    # No E001 for SQLite (the router keeps the bridge off it); W020: the test logs in as
    # a superuser.
    assert outcome["checks"] == [] and outcome["database_checks"] == ["pg_audit.W020"], outcome
    assert outcome["statuses"] == [200, 302, 200] and outcome["products"] == 1, outcome
    with empty_db.connect() as conn:
        events = conn.execute(
            "SELECT action, actor_name, host(ip), detail->>'username', table_name "
            "FROM audit.event WHERE action IN ('LOGIN_FAILED', 'LOGIN', 'INSERT') ORDER BY id"
        ).fetchall()
        tracked = conn.execute("SELECT table_name FROM audit.tracked_table ORDER BY 1").fetchall()
    assert events == [
        ("LOGIN_FAILED", None, "192.0.2.44", "carol", None),
        ("LOGIN", "carol", "192.0.2.44", None, None),
        ("INSERT", "carol", "192.0.2.44", None, "public.shop_product"),
    ]
    # Auth lives on SQLite: nothing of it tracked on PostgreSQL, the shop's tables are.
    assert [t for (t,) in tracked] == ["public.accounts_profile", "public.shop_order",
                                       "public.shop_product"]
