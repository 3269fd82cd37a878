"""What the context costs on the wire: the messages the driver sends, read from libpq's trace.

The context is five SET LOCAL (no query for the server to plan), in the write's
own round trip when the driver binds on the client; otherwise one round trip of
its own that also opens the transaction. The trace is libpq's own record of the
protocol messages (psycopg 3 exposes it; psycopg2 does not).
"""

from __future__ import annotations

import tempfile
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from django.db import connection
from django.db.backends.postgresql.psycopg_any import is_psycopg3
from django.test.utils import CaptureQueriesContext
from djtest import fetch_events, product_events
from shop.models import Product

from django_bridge.context import audit_context

pytestmark = pytest.mark.django_db(transaction=True)

AGENT = "Agent 'quoted' \\ back-slashed é"


def _name() -> str:
    return "s-" + uuid.uuid4().hex[:10]


def _sent(conn: Any, work: Callable[[], Any]) -> list[str]:
    """The Query and Parse messages the client sent while work ran (one per round trip here)."""
    from psycopg import pq

    conn.ensure_connection()
    pgconn = conn.connection.pgconn
    with tempfile.TemporaryFile("w+") as trace:
        pgconn.trace(trace.fileno())
        pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS | pq.Trace.REGRESS_MODE)
        try:
            work()
        finally:
            pgconn.untrace()
        trace.seek(0)
        lines = trace.read().splitlines()
    return [line.split("\t", 3)[3].strip() for line in lines
            if line.startswith("F\t") and line.split("\t")[2] in ("Query", "Parse")]


needs_trace = pytest.mark.skipif(not is_psycopg3, reason="libpq trace through psycopg 3 only")


@needs_trace
def test_an_autocommit_write_is_one_round_trip_of_set_local_and_the_statement() -> None:
    name = _name()
    with audit_context(actor="job-1", reason=AGENT):
        sent = _sent(connection, lambda: Product.objects.create(name=name))
    (query,) = sent
    assert query.count("SET LOCAL audit.") == 5 and "set_config" not in query, query
    assert query.index("SET LOCAL audit.request_id") < query.index("INSERT INTO"), query
    (event,) = product_events(name)
    assert (event["actor_name"], event["user_agent"]) == ("job-1", AGENT)


@needs_trace
def test_while_django_records_sql_the_settings_open_the_transaction_in_one_round_trip() -> None:
    name = _name()
    with audit_context(actor="job-2", reason=AGENT), CaptureQueriesContext(connection) as seen:
        sent = _sent(connection, lambda: Product.objects.create(name=name))
    assert len(seen.captured_queries) == 1  # Django records its own statement only
    begin, insert, commit = sent
    assert begin.startswith('"BEGIN; SET LOCAL audit.actor_id = '), begin
    assert "INSERT INTO" in insert and "audit." not in insert, insert
    assert commit == '"COMMIT"', commit
    (event,) = product_events(name)
    assert (event["actor_name"], event["user_agent"]) == ("job-2", AGENT)


@contextmanager
def _server_side_binding() -> Iterator[Any]:
    from django.db.backends.postgresql.base import DatabaseWrapper

    settings = {**connection.settings_dict,
                "OPTIONS": {**connection.settings_dict["OPTIONS"], "server_side_binding": True}}
    conn = DatabaseWrapper(settings, alias="server_side_binding")
    try:
        yield conn
    finally:
        conn.close()


@pytest.mark.skipif(not is_psycopg3, reason="server_side_binding is psycopg 3's")
@pytest.mark.parametrize("atomic", [False, True])
def test_server_side_binding_gets_the_context_on_a_client_binding_cursor(atomic: bool) -> None:
    import psycopg

    name = _name()
    with _server_side_binding() as conn, audit_context(actor="job-3", reason=AGENT):
        conn.ensure_connection()
        assert not isinstance(conn.connection.cursor(), psycopg.ClientCursor)  # binds on the server
        if atomic:
            conn.set_autocommit(False)
        with conn.cursor() as cursor:
            cursor.execute("INSERT INTO shop_product (name, price, secret_note) VALUES (%s, 1, '')",
                           [name])
        if atomic:
            conn.commit()
    (event,) = product_events(name)
    assert (event["actor_name"], event["user_agent"]) == ("job-3", AGENT)


@pytest.mark.skipif(not is_psycopg3, reason="server_side_binding is psycopg 3's")
@pytest.mark.parametrize("atomic", [False, True])
def test_server_side_binding_records_auth_events(atomic: bool) -> None:
    from django.contrib.auth import authenticate
    from django.db import connections, transaction

    attempted = "nobody-" + uuid.uuid4().hex[:8]
    default = connections["default"]
    with _server_side_binding() as conn:
        connections["default"] = conn
        try:
            # in an atomic block the event is written when the context ends
            with audit_context(actor="job-4", reason=AGENT):
                with transaction.atomic() if atomic else _nothing():
                    assert authenticate(username=attempted, password="wrong") is None
        finally:
            connections["default"] = default
    (event,) = fetch_events("action = 'LOGIN_FAILED' AND detail->>'username' = %s", [attempted])
    assert event["user_agent"] == AGENT


@contextmanager
def _nothing() -> Iterator[None]:
    yield


@pytest.mark.parametrize("recorded", [False, True])
def test_values_arrive_as_given_whatever_they_hold(recorded: bool) -> None:
    # On both drivers: the SET LOCAL values are quoted by the driver, never by us.
    name = _name()
    actor = "o'brien \\x27; SET LOCAL audit.actor_id = '1'; -- %s %(x)s $1 ü"
    with audit_context(actor=actor, actor_id="7';--", reason=AGENT):
        with CaptureQueriesContext(connection) if recorded else _nothing():
            Product.objects.create(name=name)
    (event,) = product_events(name)
    assert (event["actor_id"], event["actor_name"], event["user_agent"]) == (
        "7';--", actor, AGENT)
