"""Applying the sql/ steps through Django's own connection, whatever its driver.

pg_audit_schema.installer.install() reads the same files as psql -f
sql/install.sql and runs them through a connection's ``execute`` and
``transaction``; here those are Django's cursor and atomic block, so the
migration needs no driver of its own (psycopg2 and psycopg 3 alike) and the
steps join the migration's transaction as a savepoint.
"""

from __future__ import annotations

import pkgutil
from collections.abc import Iterator
from contextlib import AbstractContextManager
from importlib import import_module
from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.core.management import CommandError
from django.db import DatabaseError, connections, router, transaction

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


EXCLUDED_USER_COLUMNS = ("password", "last_login")


def _models(apps: Any) -> list[tuple[Any, list[str]]]:
    app_label, model_name = settings.AUTH_USER_MODEL.split(".")
    user = apps.get_model(app_label, model_name)
    models = [(user, [c for c in EXCLUDED_USER_COLUMNS
                      if c in {f.column for f in user._meta.concrete_fields}])]
    for name in ("groups", "user_permissions"):
        try:
            models.append((user._meta.get_field(name).remote_field.through, []))
        except Exception:  # noqa: BLE001 - a custom user model without PermissionsMixin
            pass
    try:
        group = apps.get_model("auth", "Group")
    except LookupError:
        return models
    models.append((group, []))
    try:
        models.append((group._meta.get_field("permissions").remote_field.through, []))
    except Exception:  # noqa: BLE001 - auth without migrations: its state has no m2m
        pass
    return models


def _here(cursor: Any, alias: str, model: Any, quote: Any) -> bool:
    """The model's table is in this database: the routers migrate it here and it exists
    (a project may keep auth on another database than the audited one)."""
    if not router.allow_migrate_model(alias, model):
        return False
    cursor.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                   [quote(model._meta.db_table)])
    return bool(cursor.fetchone()[0])


def track_auth_and_admin(apps: Any, connection: Any) -> None:
    """Tracks the user, group and permission tables and attaches the admin log trigger,
    for those of them that live in this database (migration 0003, or post_migrate)."""
    if connection.vendor != "postgresql":
        return
    alias = connection.alias
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if getattr(settings, "PG_AUDIT_TRACK_AUTH", True):
            for model, excluded in _models(apps):
                if _here(cursor, alias, model, quote):
                    cursor.execute(
                        "SELECT audit.enable_tracking(target => %s::regclass, "
                        "exclude_columns => %s)",
                        [quote(model._meta.db_table), excluded],
                    )
        try:
            log = apps.get_model("admin", "LogEntry")
            content_type = apps.get_model("contenttypes", "ContentType")
        except LookupError:
            return
        if not (_here(cursor, alias, log, quote) and _here(cursor, alias, content_type, quote)):
            return
        cursor.execute(
            "SELECT audit.enable_admin_log(admin_log => %s::regclass, "
            "content_type => %s::regclass)",
            [quote(log._meta.db_table), quote(content_type._meta.db_table)],
        )


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


def capture_migrations() -> list[tuple[str, str]]:
    """(label, name) of every migration, in any app, that adds a capture trigger: the install
    migration runs before each of them, whatever their labels and dependencies say. Not before
    an app's first migration: a project adopting pg-audit applied that one long ago, and
    migrate would refuse the history (InconsistentMigrationHistory)."""
    from django.db.migrations.loader import MigrationLoader
    from pgtrigger.migrations import AddTrigger

    from .tracking import AuditCapture, CompiledCapture

    if not global_apps.ready:  # a migration module imported outside a set-up project
        return []
    found = []
    for config in global_apps.get_app_configs():
        package_name = MigrationLoader.migrations_module(config.label)[0]
        if config.label == "django_bridge" or package_name is None:
            continue
        try:
            package = import_module(package_name)
        except ModuleNotFoundError:  # no migrations; anything else, Django's loader reports
            continue
        for _, name, is_pkg in pkgutil.iter_modules(getattr(package, "__path__", [])):
            if is_pkg or name[0] in "_~":  # as Django's loader skips them
                continue
            migration = getattr(import_module(f"{package_name}.{name}"), "Migration", None)
            if any(isinstance(op, AddTrigger)
                   and isinstance(op.trigger, (CompiledCapture, AuditCapture))
                   for op in getattr(migration, "operations", ())):
                found.append((config.label, name))
    return sorted(found)


def _unmigrated(using: str) -> bool:
    """django_bridge's migrations are turned off (pytest-django's --nomigrations,
    MIGRATION_MODULES = None) and this database should hold the schema."""
    from django.db.migrations.loader import MigrationLoader

    from .routing import allows_schema

    return (MigrationLoader.migrations_module("django_bridge")[0] is None
            and connections[using].vendor == "postgresql" and allows_schema(using))


def install_without_migrations(using: str, **kwargs: Any) -> None:
    """pre_migrate: without migrations, the schema goes in before the tables are created
    (pgtrigger's schema editor adds the capture triggers of tracked() models with them)."""
    if _unmigrated(using):
        try:
            install(DjangoConnection(using))  # type: ignore[arg-type]
        except PgAuditError as exc:
            raise PgAuditError(
                f"pg-audit: django_bridge's migrations are turned off (--nomigrations?) and "
                f"installing the audit schema in their place failed: {exc}") from exc


def track_without_migrations(using: str, **kwargs: Any) -> None:
    """post_migrate: without migrations, what 0003_track_auth_and_admin would have done."""
    if _unmigrated(using):
        track_auth_and_admin(global_apps, connections[using])
