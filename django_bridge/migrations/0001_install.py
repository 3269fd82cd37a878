"""Installs (or upgrades) the audit schema: the same sql/ files as psql -f sql/install.sql."""

from __future__ import annotations

from django.db import migrations

from django_bridge.install import install_schema, refuse_uninstall


class Migration(migrations.Migration):
    initial = True
    dependencies: list[tuple[str, str]] = []
    operations = [
        migrations.RunPython(install_schema, refuse_uninstall, elidable=False),
    ]
