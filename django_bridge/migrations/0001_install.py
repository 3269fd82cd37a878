"""Installs (or upgrades) the audit schema: the same sql/ files as psql -f sql/install.sql.

It runs before every migration that adds a capture trigger (run_before), so a
model's capture triggers always find the schema, whatever the app's label and
whatever dependencies makemigrations wrote. Only those: a project that adopts
pg-audit applied its apps' earlier migrations long before this one.
"""

from __future__ import annotations

from django.db import migrations

from django_bridge.install import capture_migrations, install_schema, refuse_uninstall


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    run_before = capture_migrations()
    operations = [
        migrations.RunPython(install_schema, refuse_uninstall, elidable=False),
    ]
