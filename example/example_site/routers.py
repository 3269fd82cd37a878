"""Reads of the audit log go through the reader login, everything else through the app's."""

from __future__ import annotations

from typing import Any


class AuditReaderRouter:
    def db_for_read(self, model: type[Any], **hints: Any) -> str | None:
        return "audit" if model._meta.label == "django_bridge.AuditEvent" else None

    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        # Nothing is created through the reader login.
        return None if db == "default" else False
