"""Applying the sql/ steps from a Django migration, on the migration's own connection."""

from __future__ import annotations

from typing import Any

import psycopg

from pg_audit_schema.errors import PgAuditError
from pg_audit_schema.installer import install


def raw_connection(schema_editor: Any) -> psycopg.Connection:
    connection = schema_editor.connection
    connection.ensure_connection()
    raw = connection.connection
    if not isinstance(raw, psycopg.Connection):
        raise PgAuditError(
            "pg-audit: the Django bridge needs the psycopg 3 driver (pip install 'psycopg[binary]')"
        )
    return raw


def install_schema(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    with schema_editor.connection.cursor() as cursor:
        # Opens the migration's transaction, so install() nests in a savepoint
        # instead of committing on its own.
        cursor.execute("SELECT 1")
    install(raw_connection(schema_editor))


def refuse_uninstall(apps: Any, schema_editor: Any) -> None:
    raise PgAuditError(
        "pg-audit: migrating django_bridge backwards would drop the audit log, which is refused; "
        "a superuser removes it by hand (see docs/django.md)"
    )
