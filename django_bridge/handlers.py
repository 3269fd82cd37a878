"""Signal receivers: the execute wrapper on every connection, and auth events.

LOGIN and LOGOUT are written in the request's own transaction. LOGIN_FAILED
must survive a rollback of that transaction (the view may raise after the
signal, ATOMIC_REQUESTS then rolls everything back): inside an atomic block
it is written on a separate short-lived connection that commits at once.
"""

from __future__ import annotations

import json
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import DEFAULT_DB_ALIAS, connections, router
from django.db.backends.signals import connection_created

from .context import LIMITS, ContextValues, actor_of, clean, current
from .sending import CONTEXT_SQL, install_wrapper

USERNAME_LIMIT = 150

LOG_SQL = (
    "SELECT audit.log_event(action => %s, actor_id => %s, actor_name => %s, detail => %s::jsonb)"
)


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    install_wrapper(connection)


def _request_values(request: Any) -> ContextValues:
    ctx = current()
    if ctx is not None:
        return ctx.values()
    if request is None:
        return ContextValues()
    from .middleware import request_context

    return request_context(request).values()


def _alias() -> str:
    return router.db_for_write(get_user_model()) or DEFAULT_DB_ALIAS


def log_auth_event(
    action: str, values: ContextValues, actor: tuple[str, str], detail: dict[str, Any] | None,
    durable: bool = False,
) -> None:
    alias = _alias()
    connection = connections[alias]
    if connection.vendor != "postgresql":
        return
    context = [*values]
    context[0], context[1] = actor  # the event's actor is the context's actor too
    params = [action, actor[0] or None, actor[1] or None,
              json.dumps(detail) if detail is not None else None]
    if durable and connection.in_atomic_block:
        side = connections.create_connection(alias)
        try:
            side.ensure_connection()
            side.set_autocommit(False)
            with side.cursor() as cursor:
                cursor.execute(CONTEXT_SQL, context)
                cursor.execute(LOG_SQL, params)
            side.commit()
        finally:
            side.close()
        return
    from django.db import transaction

    with transaction.atomic(using=alias), connection.cursor() as cursor:
        cursor.execute(CONTEXT_SQL, context)
        cursor.execute(LOG_SQL, params)
    # The settings now hold this event's actor: the next write sends its own.
    connection.pg_audit_sent = None


def _on_login(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    log_auth_event("LOGIN", _request_values(request), actor_of(user), None)


def _on_logout(sender: Any, request: Any, user: Any, **kwargs: Any) -> None:
    if user is None:  # logging out a session that was not logged in
        return
    log_auth_event("LOGOUT", _request_values(request), actor_of(user), None)


def _on_login_failed(sender: Any, credentials: dict[str, Any], request: Any = None,
                     **kwargs: Any) -> None:
    field = getattr(get_user_model(), "USERNAME_FIELD", "username")
    attempted = credentials.get(field, credentials.get("username"))
    # Only the user name: Django already masks the password in credentials,
    # and nothing else the caller passed is recorded.
    detail = {"username": clean(attempted, USERNAME_LIMIT) if attempted is not None else None}
    log_auth_event("LOGIN_FAILED", _request_values(request), ("", ""), detail, durable=True)


def connect() -> None:
    connection_created.connect(_on_connection_created, dispatch_uid="pg_audit_wrapper")
    user_logged_in.connect(_on_login, dispatch_uid="pg_audit_login")
    user_logged_out.connect(_on_logout, dispatch_uid="pg_audit_logout")
    user_login_failed.connect(_on_login_failed, dispatch_uid="pg_audit_login_failed")
    # Connections opened before the app was ready (rare) get the wrapper too.
    for conn in connections.all(initialized_only=True):
        install_wrapper(conn)


__all__ = ["LIMITS", "connect", "log_auth_event"]
