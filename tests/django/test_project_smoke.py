"""The test project boots on the pg_server database with the schema installed by migrate."""

from __future__ import annotations

import pytest
from django.db import connection

from pg_audit_schema.installer import latest_version


@pytest.mark.django_db
def test_migrate_installs_the_schema_at_the_latest_version() -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT max(version) FROM audit.schema_version")
        assert cursor.fetchone()[0] == latest_version()
