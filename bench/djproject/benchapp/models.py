"""The one model every library tracks: four columns, like the SQL level's tables."""

from __future__ import annotations

import os

from django.db import models

LIBRARY = os.environ.get("BENCH_LIBRARY", "none")


def _bridge_triggers() -> list[object]:
    """The bridge's declarative tracking (Meta.triggers), when it has one."""
    try:
        from django_bridge.tracking import tracked
    except ImportError:
        return []
    return list(tracked())


class Item(models.Model):
    qty = models.IntegerField()
    name = models.CharField(max_length=100)
    updated_at = models.DateTimeField()

    class Meta:
        app_label = "benchapp"
        if LIBRARY == "django_bridge":
            triggers = _bridge_triggers()


if LIBRARY == "pghistory":
    import pghistory

    # The docs' @pghistory.track() records inserts and updates; deletes are added
    # so that every workload is captured, as for the other libraries.
    Item = pghistory.track(  # type: ignore[misc]
        pghistory.InsertEvent(), pghistory.UpdateEvent(), pghistory.DeleteEvent()
    )(Item)
elif LIBRARY == "auditlog":
    from auditlog.registry import auditlog

    auditlog.register(Item)
