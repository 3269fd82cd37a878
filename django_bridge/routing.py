"""Which database holds the audit schema, as the project's routers say.

One answer for everything the bridge does: the install migration, the checks,
the auth events and the admin viewer. A database holds the schema when it is
PostgreSQL and the routers allow django_bridge to migrate there (with no
router: every PostgreSQL database).
"""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connections, router


def is_postgres(alias: str | None) -> bool:
    return alias is not None and alias in connections and (
        connections[alias].vendor == "postgresql")


def allows_schema(alias: str) -> bool:
    return router.allow_migrate(alias, "django_bridge", model_name="auditevent") is not False


def schema_databases() -> list[str]:
    """The aliases whose database holds (or will hold, after migrate) the audit schema."""
    return [alias for alias in connections if is_postgres(alias) and allows_schema(alias)]


def event_database() -> str | None:
    """Where LOGIN, LOGOUT and LOGIN_FAILED are written: the user table's database when it
    holds the schema, else the database the routers give AuditEvent, else the first that
    holds the schema; None when no database does (pg_audit.E002 says so)."""
    from .models import AuditEvent

    homes = schema_databases()
    for alias in (router.db_for_write(get_user_model()), router.db_for_write(AuditEvent)):
        if alias in homes:
            return alias
    return homes[0] if homes else None


def viewer_database() -> str | None:
    """Where the admin viewer reads: the routers' db_for_read for AuditEvent when it is
    PostgreSQL (a reader-only login may be routed there), else event_database()."""
    from .models import AuditEvent

    alias = router.db_for_read(AuditEvent)
    return alias if is_postgres(alias) else event_database()
