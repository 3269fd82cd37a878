"""Signal receivers: the execute wrapper on every connection, and auth events.

LOGIN and LOGOUT are written in the request's own transaction. LOGIN_FAILED
must survive a rollback of that transaction (the view may raise after the
signal, ATOMIC_REQUESTS then rolls everything back) and must never wait for a
second connection from the pool or proxy that the request already holds a
connection of: inside an atomic block it is kept on the request's (or job's)
context and written when the request or job ends, on the same connection,
after the view's transaction is over. A transaction still open then (a test's
outer atomic block, a caller's transaction) holds it like any other write.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.signals import user_logged_in, user_logged_out, user_login_failed
from django.db import connections
from django.db.backends.signals import connection_created

from .context import LIMITS, AuditContext, ContextValues, actor_of, clean, current
from .routing import event_database
from .sending import CONTEXT_SQL, NAMES, context_cursor, install_wrapper

logger = logging.getLogger("django_bridge")

USERNAME_LIMIT = 150

LOG_SQL = (
    "SELECT audit.log_event(action => %s, actor_id => %s, actor_name => %s, detail => %s::jsonb)"
)


SAVED_SQL = "SELECT " + ", ".join(
    f"coalesce(pg_catalog.current_setting('audit.{name}', true), '')" for name in NAMES)


def _on_connection_created(sender: Any, connection: Any, **kwargs: Any) -> None:
    install_wrapper(connection)


def _request_values(request: Any) -> ContextValues:
    ctx = current()
    if ctx is not None:
        return ctx.values()
    # Custom backends, GraphQL resolvers and tests pass None or objects of their own.
    if not isinstance(getattr(request, "META", None), Mapping):
        return ContextValues()
    from .middleware import request_context

    return request_context(request).values()


def log_auth_event(
    action: str, values: ContextValues, actor: tuple[str, str], detail: dict[str, Any] | None,
    durable: bool = False,
) -> None:
    alias = event_database()
    if alias is None:
        logger.error("pg-audit: no PostgreSQL database holds the audit schema (check "
                     "pg_audit.E002); %s event not recorded: %s", action, detail or "")
        return
    context = [*values]
    context[0], context[1] = actor  # the event's actor is the context's actor too
    event = (alias, context, [action, actor[0] or None, actor[1] or None,
                              json.dumps(detail) if detail is not None else None])
    ctx = current()
    if durable and ctx is not None and connections[alias].in_atomic_block:
        ctx.pending.append(event)
        return
    _write(*event)


def _write(alias: str, context: list[str], params: list[Any]) -> None:
    """One auth event, on the driver's cursor: like the context (sending.py), the bridge's
    own statements are never recorded by Django, so a project's query counts and SQL logs
    around authenticate() stay its own."""
    connection = connections[alias]
    connection.ensure_connection()
    with context_cursor(connection.connection) as cursor:
        if connection.get_autocommit():
            cursor.execute("BEGIN")
            try:
                _log(cursor, context, params)
            except BaseException:
                cursor.execute("ROLLBACK")
                raise
            cursor.execute("COMMIT")
        else:
            # Inside the caller's transaction: a savepoint keeps a failure from aborting
            # it, and the settings found there are put back, so a later write of the same
            # transaction is not attributed to this event's actor.
            cursor.execute("SAVEPOINT pg_audit_event")
            try:
                cursor.execute(SAVED_SQL)
                saved = list(cursor.fetchone())
                _log(cursor, context, params)
                cursor.execute(CONTEXT_SQL, saved)
            except BaseException:
                cursor.execute("ROLLBACK TO SAVEPOINT pg_audit_event")
                raise
            finally:
                cursor.execute("RELEASE SAVEPOINT pg_audit_event")
    connection.pg_audit_sent = None  # the next write sends its own context


def _log(cursor: Any, context: list[str], params: list[Any]) -> None:
    cursor.execute(CONTEXT_SQL, context)
    cursor.execute(LOG_SQL, params)


def flush_pending(ctx: AuditContext) -> None:
    """Writes the events kept until the request or job ended (see the module's doc)."""
    while ctx.pending:
        alias, context, params = ctx.pending.pop(0)
        try:
            _write(alias, context, params)
        except Exception:
            # The response must still go out; the event is in the log file at least.
            logger.exception("pg-audit: %s event could not be recorded: %s", params[0],
                             params[3])


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
