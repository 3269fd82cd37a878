"""An app whose label sorts before django_bridge, with a tracked model: its
migration, as makemigrations writes it, has no dependency on the bridge."""

from __future__ import annotations

from django.db import models

from django_bridge.tracking import tracked


class Profile(models.Model):
    nickname = models.CharField(max_length=50)

    class Meta:
        triggers = tracked()
