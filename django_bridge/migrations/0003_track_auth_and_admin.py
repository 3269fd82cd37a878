"""Tracks the user, group and permission tables, and turns admin log entries into events.

Who granted superuser to whom: auth_user changes (password hash and
last_login excluded) and the membership and permission link tables. Set
PG_AUDIT_TRACK_AUTH = False before the first migrate to leave them alone.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps as global_apps
from django.conf import settings
from django.db import migrations

from django_bridge.install import track_auth_and_admin


def track(apps: Any, schema_editor: Any) -> None:
    track_auth_and_admin(apps, schema_editor.connection)


def _dependencies() -> list[tuple[str, str]]:
    from django.db.migrations.loader import MigrationLoader

    deps = [("django_bridge", "0002_auditevent"),
            migrations.swappable_dependency(settings.AUTH_USER_MODEL)]
    for app, name, last in (
        ("auth", "django.contrib.auth", "0012_alter_user_first_name_max_length"),
        ("admin", "django.contrib.admin", "0003_logentry_add_action_flag_choices"),
        ("contenttypes", "django.contrib.contenttypes", "0002_remove_content_type_name"),
    ):
        # An app whose migrations are turned off (MIGRATION_MODULES, Django's own test
        # runner) has its tables made by syncdb before any migration runs.
        if global_apps.is_installed(name) and MigrationLoader.migrations_module(app)[0]:
            deps.append((app, last))
    return deps


class Migration(migrations.Migration):
    dependencies = _dependencies()
    operations = [
        # Backwards: a no-op. Tracking stays; audit.disable_tracking() stops it.
        migrations.RunPython(track, migrations.RunPython.noop, elidable=False),
    ]
