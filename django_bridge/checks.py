"""System checks (manage.py check): ids pg_audit.E*/W*, each with a hint."""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core import checks
from django.core.exceptions import ImproperlyConfigured
from django.db import connections

MIDDLEWARE = "django_bridge.middleware.AuditContextMiddleware"
# Middleware that may write before the view runs; ours must come first so
# those writes are attributed.
EARLIER_THAN = (
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.middleware.transaction",
)


@checks.register()
def check_settings(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    from .routing import allows_schema, schema_databases

    messages: list[checks.CheckMessage] = []
    for alias in connections:
        if connections[alias].vendor != "postgresql" and allows_schema(alias):
            messages.append(checks.Error(
                f"database {alias!r} is not PostgreSQL ({connections[alias].vendor}) but the "
                "routers let django_bridge migrate there",
                hint="pg-audit records events with PostgreSQL triggers; use "
                     "django.db.backends.postgresql, or make your router's allow_migrate() "
                     "return False for app 'django_bridge' on this database.",
                id="pg_audit.E001"))
    if not schema_databases():
        messages.append(checks.Error(
            "no PostgreSQL database holds the audit schema: events have nowhere to go",
            hint="Add a django.db.backends.postgresql database and let django_bridge "
                 "migrate there (DATABASE_ROUTERS allow_migrate).",
            id="pg_audit.E002"))
    middleware = list(getattr(settings, "MIDDLEWARE", None) or [])
    if MIDDLEWARE not in middleware:
        messages.append(checks.Warning(
            f"{MIDDLEWARE} is not in MIDDLEWARE: events carry no user, IP or request id",
            hint=f"Add {MIDDLEWARE!r} near the top of MIDDLEWARE, before SessionMiddleware.",
            id="pg_audit.W002"))
    else:
        if middleware.count(MIDDLEWARE) > 1:
            messages.append(checks.Warning(
                f"{MIDDLEWARE} is listed more than once", hint="Keep one entry.",
                id="pg_audit.W004"))
        ours = middleware.index(MIDDLEWARE)
        before = [m for m in middleware[:ours] if m.startswith(EARLIER_THAN)]
        if before:
            messages.append(checks.Warning(
                f"{MIDDLEWARE} comes after {', '.join(before)}: their writes carry no context",
                hint=f"Move {MIDDLEWARE!r} before {before[0]!r}.", id="pg_audit.W003"))
    from . import client
    from . import middleware as mw

    try:
        trusted = client.trusted_proxies()
    except ImproperlyConfigured as exc:
        messages.append(checks.Error(
            str(exc), hint="A hop count (e.g. 1) or a list of CIDRs (e.g. ['10.0.0.0/8']).",
            id="pg_audit.E031"))
        trusted = None
    if mw.forwarded_seen_untrusted and trusted is None:
        messages.append(checks.Warning(
            "requests carry X-Forwarded-For but PG_AUDIT_TRUSTED_PROXIES is not set: "
            "every event records the proxy's address",
            hint="Set PG_AUDIT_TRUSTED_PROXIES to the number of proxies in front of the app, "
                 "or to their CIDRs; leave it unset if clients reach the app directly.",
            id="pg_audit.W030"))
    return messages


@checks.register(checks.Tags.database)
def check_database(app_configs: Any = None, databases: Any = None,
                   **kwargs: Any) -> list[checks.CheckMessage]:
    from pg_audit_schema.installer import latest_version

    messages: list[checks.CheckMessage] = []
    from .routing import schema_databases

    homes = schema_databases()
    for alias in databases or []:
        if alias not in homes:
            continue
        connection = connections[alias]
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = session_user), "
                "EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = 'audit_owner') "
                "AND pg_catalog.pg_has_role(session_user, 'audit_owner', 'MEMBER'), "
                "to_regclass('audit.schema_version') IS NOT NULL")
            superuser, owner_member, installed = cursor.fetchone()
            version = None
            if installed:
                cursor.execute("SELECT max(version) FROM audit.schema_version")
                version = cursor.fetchone()[0]
        if version is None:
            messages.append(checks.Warning(
                f"the audit schema is not installed in database {alias!r}",
                hint="Run: python manage.py migrate django_bridge", id="pg_audit.W010"))
        elif version < latest_version():
            messages.append(checks.Warning(
                f"the audit schema in {alias!r} is at version {version}, the code expects "
                f"{latest_version()}",
                hint="Run: python manage.py migrate django_bridge (as a superuser for the "
                     "guards)", id="pg_audit.W011"))
        if superuser:
            messages.append(checks.Warning(
                f"database {alias!r} connects as a superuser: the audit log's immutability "
                "does not hold against this application",
                hint="Connect as a login role that is a member of audit_writer only; keep the "
                     "superuser for migrate.", id="pg_audit.W020"))
        elif owner_member:
            messages.append(checks.Warning(
                f"database {alias!r} connects as a member of audit_owner: immutability then "
                "rests on triggers alone",
                hint="REVOKE audit_owner FROM the application's login role; grant audit_writer.",
                id="pg_audit.W021"))
    return messages


@checks.register(checks.Tags.admin)
def check_history_buttons(app_configs: Any = None, **kwargs: Any) -> list[checks.CheckMessage]:
    """A tracked model in the admin without the Audit trail button is easy to miss."""
    from django.apps import apps
    from django.contrib import admin

    if not apps.is_installed("django.contrib.admin"):  # .admin below needs its site
        return []
    from .admin import AuditHistoryMixin
    from .tracking import AuditCapture

    messages: list[checks.CheckMessage] = []
    for model in apps.get_models():
        if not any(isinstance(t, AuditCapture) for t in getattr(model._meta, "triggers", ())):
            continue
        model_admin = admin.site._registry.get(model)  # get_model_admin() is Django 5+
        if model_admin is not None and not isinstance(model_admin, AuditHistoryMixin):
            messages.append(checks.Info(
                f"{model._meta.label} is tracked, but its admin page has no Audit trail button",
                hint="Add django_bridge.admin.AuditHistoryMixin to the bases of "
                     f"{type(model_admin).__name__}, or silence pg_audit.I040.",
                obj=type(model_admin), id="pg_audit.I040"))
    return messages
