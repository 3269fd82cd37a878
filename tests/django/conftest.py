"""The Django test project's database: the pg_server fixture's server.

pytest-django creates the test database there and runs every migration,
django_bridge's included, so the audit schema is installed the way a Django
project installs it. The connection is the server's superuser (the admin
viewer tests create roles); the checks tests use non-superuser roles.
"""

from __future__ import annotations

import os
from typing import Any

import pytest
from psycopg.conninfo import conninfo_to_dict


@pytest.fixture(scope="session")
def django_db_modify_db_settings(pg_server: Any) -> None:
    from django.conf import settings

    params = conninfo_to_dict(pg_server.conninfo())
    db = settings.DATABASES["default"]
    db.update(
        NAME=params.get("dbname", "postgres"),
        HOST=params.get("host", ""),
        PORT=str(params.get("port", "")),
        USER=params.get("user", ""),
        PASSWORD=params.get("password", ""),
    )
    # pgaudit_test prefix: tests/conftest.py drops leftovers by that prefix.
    db.setdefault("TEST", {})["NAME"] = f"pgaudit_test_django_{os.getpid()}"


@pytest.fixture
def last_event_id() -> int:
    from django.db import connection

    with connection.cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM audit.event")
        return int(cursor.fetchone()[0])


@pytest.fixture
def alice(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("alice", "alice@example.com", "alice-pw-1")


@pytest.fixture
def bob(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("bob", "bob@example.com", "bob-pw-1")
