"""Installs (or upgrades) the audit schema: the same sql/ files as psql -f sql/install.sql.

It runs before the first migration of every app with a tracked() model
(run_before), so a model's capture triggers always find the schema, whatever
the app's label and whatever dependencies makemigrations wrote.
"""

from __future__ import annotations

from django.db import migrations

from django_bridge.install import install_schema, refuse_uninstall, tracked_apps


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    run_before = tracked_apps()
    operations = [
        migrations.RunPython(install_schema, refuse_uninstall, elidable=False),
    ]
