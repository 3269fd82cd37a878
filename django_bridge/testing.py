"""Helpers for the test suites of projects that use the bridge.

    from django_bridge.testing import capture_audit_events

    with capture_audit_events() as events:
        self.client.post("/login/", {"username": "ann", "password": "wrong"})
    assert [e.action for e in events] == ["LOGIN_FAILED"]

Only the events written inside the block are seen, so what other tests left
(TransactionTestCase's flush records a TRUNCATE per tracked table, committed
tests their events, --keepdb runs all of it) never leaks into an assertion.
The test database's login must be able to read audit.event (a superuser, or
GRANT audit_reader).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from django.db import connections
from django.db.models import QuerySet

from .models import AuditEvent
from .routing import event_database


class CapturedEvents:
    """The events written since the block began, oldest first (read when asked)."""

    def __init__(self, using: str, after: int) -> None:
        self.using = using
        self.after = after

    @property
    def queryset(self) -> QuerySet[AuditEvent]:
        return AuditEvent.objects.using(self.using).filter(id__gt=self.after).order_by("id")

    def __iter__(self) -> Iterator[AuditEvent]:
        return iter(self.queryset)

    def __len__(self) -> int:
        return self.queryset.count()


@contextmanager
def capture_audit_events(using: str | None = None) -> Iterator[CapturedEvents]:
    alias = using or event_database()
    if alias is None:
        raise LookupError("pg-audit: no PostgreSQL database holds the audit schema")
    with connections[alias].cursor() as cursor:
        cursor.execute("SELECT coalesce(max(id), 0) FROM audit.event")
        (after,) = cursor.fetchone()
    yield CapturedEvents(alias, int(after))
