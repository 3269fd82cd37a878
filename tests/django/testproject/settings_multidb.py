"""The test project with SQLite as the default database and the audited PostgreSQL as a
second one (PG_AUDIT_DJANGO_DSN); the router keeps auth, admin and sessions on SQLite and
sends the shop and the bridge to PostgreSQL."""

from __future__ import annotations

import os

from .settings import *  # noqa: F403
from .settings import DATABASES as _BASE

DATABASES = {
    "default": {"ENGINE": "django.db.backends.sqlite3",
                "NAME": os.environ.get("PG_AUDIT_SQLITE", ":memory:")},
    "audit": {**_BASE["default"], "CONN_MAX_AGE": 0},
}
DATABASE_ROUTERS = ["testproject.settings_multidb.AuditedRouter"]

AUDITED = {"shop", "accounts", "django_bridge"}


class AuditedRouter:
    def _db(self, model: object) -> str | None:
        return "audit" if model._meta.app_label in AUDITED else None  # type: ignore[attr-defined]

    db_for_read = db_for_write = lambda self, model, **hints: self._db(model)  # noqa: E731

    def allow_relation(self, a: object, b: object, **hints: object) -> bool | None:
        return None

    def allow_migrate(self, db: str, app_label: str, **hints: object) -> bool:
        return (db == "audit") == (app_label in AUDITED)
