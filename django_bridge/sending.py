"""Sending the audit context with the first write of each transaction.

One execute wrapper sits on every PostgreSQL connection (added when the
connection is created) and does nothing unless a context is set (request
middleware or audit_context). With a context, a statement that can write is
preceded by five "SET LOCAL audit.<name> = <value>" (transaction-local; the
driver quotes the values, as it binds any parameter on the client):

- in the same round trip, "SET LOCAL ...; <statement>" as one simple query,
  which PostgreSQL runs as one transaction in autocommit mode, when the driver
  binds parameters on the client (psycopg 3's default ClientCursor, and
  psycopg2) and Django is not recording the SQL text;
- otherwise (server-side binding, executemany, or DEBUG / CaptureQueriesContext
  / assertNumQueries recording queries) as a round trip of its own first, on a
  client-binding cursor of the driver's connection (never through Django's, so
  it is not logged nor counted), opening the transaction itself ("BEGIN; SET
  LOCAL ...") and ending it after the statement when the connection is in
  autocommit mode.

SET LOCAL rather than SELECT set_config(..., true): the same transaction-local
settings, but a utility statement that the server neither plans nor executes
as a query; five SET LOCAL cost the server less than one SELECT of five
set_config() calls (docs/django.md, "Cost").

So the SQL text that Django logs and counts is the application's statement
alone: user names, addresses and user agents never reach connection.queries,
the django.db.backends logger or the debug toolbar.

Reads are left alone: no statement is added to a plain SELECT. Within a
transaction the context is sent again only when it changed (a user who logged
in mid-request) or when the savepoint it was sent in has ended (a rolled-back
savepoint takes its settings with it).
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from typing import Any

from .context import AuditContext, ContextValues, current

_WRITE = re.compile(r"\s*(?:INSERT|UPDATE|DELETE|MERGE|TRUNCATE|CALL|DO|WITH)\b", re.IGNORECASE)
_LOCKING = re.compile(r"\bFOR\s+(?:NO\s+KEY\s+)?(?:UPDATE|SHARE)\b", re.IGNORECASE)

# libpq transaction status
_IDLE, _INTRANS, _INERROR = 0, 2, 3

NAMES = ("actor_id", "actor_name", "ip", "user_agent", "request_id")
# Parameters bound on the client only (see context_cursor): SET takes no $1.
CONTEXT_SQL = "; ".join(f"SET LOCAL audit.{name} = %s" for name in NAMES)
_NAMED_SQL = "; ".join(f"SET LOCAL audit.{name} = %(_pg_audit_{name})s" for name in NAMES)


def is_write(sql: str) -> bool:
    """Statements that may write: DML, CALL, DO, WITH (data-modifying CTEs), and
    locking reads (select_for_update: a write follows)."""
    if _WRITE.match(sql):
        return True
    return "FOR" in sql and _LOCKING.search(sql) is not None


def _status(connection: Any) -> int:
    raw = connection.connection
    if raw is None:
        return _IDLE
    pgconn = getattr(raw, "pgconn", None)  # psycopg 3: the libpq int, no wrapper objects
    return int(pgconn.transaction_status if pgconn is not None else raw.info.transaction_status)


def _psycopg3(cursor: Any) -> bool:
    psycopg = sys.modules.get("psycopg")  # imported by Django when it is the driver
    return psycopg is not None and isinstance(cursor, psycopg.Cursor)


def context_cursor(raw: Any) -> Any:
    """A cursor of the driver's connection that binds on the client, for CONTEXT_SQL."""
    psycopg = sys.modules.get("psycopg")
    if psycopg is not None and isinstance(raw, psycopg.Connection):
        return psycopg.ClientCursor(raw)
    return raw.cursor()  # psycopg2 binds on the client


def _binds_on_client(cursor: Any) -> bool:
    """psycopg 3's ClientCursor and psycopg2's cursor put the parameters in the text,
    so one query string can carry two statements."""
    if _psycopg3(cursor):
        return isinstance(cursor, sys.modules["psycopg"].ClientCursor)
    return True  # psycopg2, the other driver of Django's postgresql backend


def audit_execute_wrapper(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any]
) -> Any:
    ctx = current()
    if ctx is None or ctx.busy or not isinstance(sql, str):
        return execute(sql, params, many, context)
    connection = context["connection"]
    if not is_write(sql):
        if _status(connection) == _IDLE:
            # A new transaction begins with this read: what was sent is gone.
            connection.pg_audit_sent = None
        return execute(sql, params, many, context)
    ctx.busy = True  # reading request.user may query; those queries pass straight through
    try:
        values = ctx.values()
    finally:
        ctx.busy = False
    savepoints = tuple(connection.savepoint_ids)
    status = _status(connection)
    if status == _INERROR:
        return execute(sql, params, many, context)
    if status == _INTRANS:
        last = getattr(connection, "pg_audit_sent", None)
        if last is not None and last[1] == values and savepoints[: len(last[0])] == last[0]:
            return execute(sql, params, many, context)
    driver_cursor = context["cursor"].cursor  # Django's CursorWrapper wraps the driver's
    if not many and not connection.queries_logged and _binds_on_client(driver_cursor):
        result = _send_combined(execute, sql, params, context, values)
        if _psycopg3(driver_cursor):
            # psycopg 3 keeps each statement's result (psycopg2 the last): skip the SETs'
            for _ in NAMES:
                driver_cursor.nextset()
    else:
        result = _send_apart(execute, sql, params, many, context, values, status)
    if _status(connection) == _INTRANS:
        # Kept on the connection, not the context: a nested context that sends
        # or clears in between makes the outer one send again.
        connection.pg_audit_sent = (savepoints, values)
        ctx.sent.add(connection)
    else:
        connection.pg_audit_sent = None
    return result


def _send_combined(
    execute: Callable[..., Any], sql: str, params: Any, context: dict[str, Any],
    values: ContextValues,
) -> Any:
    if isinstance(params, dict):
        named = {f"_pg_audit_{n}": v for n, v in zip(NAMES, values, strict=True)}
        return execute(f"{_NAMED_SQL}; {sql}", {**params, **named}, False, context)
    if params is None:
        # Without parameters the statement's % signs are literal; with ours they
        # would be placeholders.
        sql = sql.replace("%", "%%")
        params = ()
    return execute(f"{CONTEXT_SQL}; {sql}", [*values, *params], False, context)


def _send_apart(
    execute: Callable[..., Any], sql: Any, params: Any, many: bool, context: dict[str, Any],
    values: ContextValues, status: int,
) -> Any:
    connection = context["connection"]
    with context_cursor(connection.connection) as cursor:
        own = status == _IDLE and connection.get_autocommit()
        try:
            cursor.execute(f"BEGIN; {CONTEXT_SQL}" if own else CONTEXT_SQL, list(values))
            result = execute(sql, params, many, context)
        except BaseException:
            if own:
                cursor.execute("ROLLBACK")
            raise
        if own:
            cursor.execute("COMMIT")
    return result


def clear_leftovers(ctx: AuditContext) -> None:
    """Clears the settings from transactions that outlive the context (a test's
    outer atomic block, a job's caller's transaction), so nothing that runs after
    the request or job in the same transaction is attributed to it."""
    for connection in list(ctx.sent):
        connection.pg_audit_sent = None
        try:
            if connection.connection is not None and _status(connection) == _INTRANS:
                with context_cursor(connection.connection) as cursor:
                    cursor.execute(CONTEXT_SQL, [""] * len(NAMES))
        except Exception:  # noqa: BLE001 - a broken connection has no context left to clear
            pass
    ctx.sent.clear()


def install_wrapper(connection: Any) -> None:
    wrappers = connection.execute_wrappers
    if connection.vendor == "postgresql" and audit_execute_wrapper not in wrappers:
        wrappers.append(audit_execute_wrapper)
