"""Install, upgrade and inspect the pg-audit schema; the SQL lives in ``sql/``."""

from __future__ import annotations

from .errors import NotInstalled, PgAuditError, SchemaOutdated
from .installer import Step, available_steps, install, installed_version, latest_version

__all__ = [
    "NotInstalled",
    "PgAuditError",
    "SchemaOutdated",
    "Step",
    "available_steps",
    "install",
    "installed_version",
    "latest_version",
]
