"""One error hierarchy for everything pg_audit_schema raises on purpose."""

from __future__ import annotations


class PgAuditError(Exception):
    """An expected failure, reported to users as one line; the cause is chained."""


class NotInstalled(PgAuditError):
    """The audit schema is missing from the database."""


class SchemaOutdated(PgAuditError):
    """The database holds an older schema version than this code ships."""
