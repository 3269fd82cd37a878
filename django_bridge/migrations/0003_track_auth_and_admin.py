"""Tracks the user, group and permission tables, and turns admin log entries into events.

Who granted superuser to whom: auth_user changes (password hash and
last_login excluded) and the membership and permission link tables. Set
PG_AUDIT_TRACK_AUTH = False before the first migrate to leave them alone.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.db import migrations, router

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
    models.append((group._meta.get_field("permissions").remote_field.through, []))
    return models


def _here(cursor: Any, alias: str, model: Any, quote: Any) -> bool:
    """The model's table is in this database: the routers migrate it here and it exists
    (a project may keep auth on another database than the audited one)."""
    if not router.allow_migrate_model(alias, model):
        return False
    cursor.execute("SELECT pg_catalog.to_regclass(%s) IS NOT NULL",
                   [quote(model._meta.db_table)])
    return bool(cursor.fetchone()[0])


def track(apps: Any, schema_editor: Any) -> None:
    if schema_editor.connection.vendor != "postgresql":
        return
    alias = schema_editor.connection.alias
    quote = schema_editor.connection.ops.quote_name
    with schema_editor.connection.cursor() as cursor:
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


def _dependencies() -> list[tuple[str, str]]:
    deps = [("django_bridge", "0002_auditevent"),
            migrations.swappable_dependency(settings.AUTH_USER_MODEL)]
    if global_apps.is_installed("django.contrib.auth"):
        deps.append(("auth", "0012_alter_user_first_name_max_length"))
    if global_apps.is_installed("django.contrib.admin"):
        deps.append(("admin", "0003_logentry_add_action_flag_choices"))
    if global_apps.is_installed("django.contrib.contenttypes"):
        deps.append(("contenttypes", "0002_remove_content_type_name"))
    return deps


class Migration(migrations.Migration):
    dependencies = _dependencies()
    operations = [
        # Backwards: a no-op. Tracking stays; audit.disable_tracking() stops it.
        migrations.RunPython(track, migrations.RunPython.noop, elidable=False),
    ]
