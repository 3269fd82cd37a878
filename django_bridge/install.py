"""Applying the sql/ steps through Django's own connection, whatever its driver.

pg_audit_schema.installer.install() reads the same files as psql -f
sql/install.sql and runs them through a connection's ``execute`` and
``transaction``; here those are Django's cursor and atomic block, so the
migration needs no driver of its own (psycopg2 and psycopg 3 alike) and the
steps join the migration's transaction as a savepoint.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

from django.apps import apps as global_apps
from django.core.management import CommandError
from django.db import DatabaseError, connections, transaction

from pg_audit_schema.errors import PgAuditError
from pg_audit_schema.installer import install

REFUSAL = (
    "pg-audit: migrating django_bridge backwards would drop the audit log, which is refused; "
    "nothing was changed. A superuser removes the schema by hand (see docs/django.md)"
)


class _Result:
    def __init__(self, rows: list[tuple[Any, ...]]) -> None:
        self.rows = rows

    def fetchone(self) -> tuple[Any, ...] | None:
        return self.rows[0] if self.rows else None

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        return iter(self.rows)


class DjangoConnection:
    """What install() uses of a psycopg connection, over a Django connection."""

    def __init__(self, alias: str) -> None:
        self.alias = alias

    def execute(self, sql: str) -> _Result:
        try:
            with connections[self.alias].cursor() as cursor:
                cursor.execute(sql)  # no parameters: the files' % signs stay literal
                return _Result(cursor.fetchall() if cursor.description else [])
        except DatabaseError as exc:
            raise PgAuditError(f"installing the audit schema failed: {exc}".strip()) from exc

    def transaction(self) -> AbstractContextManager[Any]:
        return transaction.atomic(using=self.alias)


def install_schema(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    install(DjangoConnection(schema_editor.connection.alias))  # type: ignore[arg-type]


def refuse_uninstall(apps: Any, schema_editor: Any) -> None:
    raise PgAuditError(REFUSAL)


def refuse_unapplying(plan: list[tuple[Any, bool]] | None, **kwargs: Any) -> None:
    """pre_migrate: refuses a plan that unapplies the install migration before anything of
    it runs (the migrations that depend on it would otherwise be unapplied first)."""
    for migration, backwards in plan or ():
        if backwards and (migration.app_label, migration.name) == ("django_bridge",
                                                                  "0001_install"):
            raise CommandError(REFUSAL)


def tracked_apps() -> list[tuple[str, str]]:
    """(label, "__first__") of every app with a model declared with tracked(): the install
    migration runs before them, whatever their labels and dependencies say."""
    from .tracking import AuditCapture

    labels = {
        model._meta.app_label
        for model in global_apps.get_models(include_auto_created=True)
        if any(isinstance(t, AuditCapture) for t in getattr(model._meta, "triggers", ()))
    }
    return [(label, "__first__") for label in sorted(labels - {"django_bridge"})]
