"""The SQL text Django logs and counts is the application's own: no user data, no extra query.

connection.queries, CaptureQueriesContext, assertNumQueries, the
django.db.backends logger and the debug toolbar all read what Django records;
the context goes on the driver's cursor instead, so it is never recorded.
"""

from __future__ import annotations

import logging
import uuid
from typing import Any

import pytest
from django.db import connection, transaction
from django.test import Client
from django.test.utils import CaptureQueriesContext
from djtest import product_events
from shop.models import Product

from django_bridge.context import audit_context

pytestmark = pytest.mark.django_db(transaction=True)

AGENT = "Agent-7c1f (secret marker)"


def _user_data_in(statements: list[str], *markers: str) -> list[str]:
    return [s for s in statements
            if "set_config" in s or "audit." in s or any(m in s for m in markers)]


def test_a_request_logs_only_its_own_statements(client: Client, alice: Any) -> None:
    client.force_login(alice)
    name = "logged-" + uuid.uuid4().hex[:8]
    with CaptureQueriesContext(connection) as queries:
        assert client.get(f"/w/create/?name={name}", HTTP_USER_AGENT=AGENT,
                          REMOTE_ADDR="198.51.100.99").status_code == 200
    statements = [q["sql"] for q in queries.captured_queries]
    assert any(s.startswith("INSERT INTO") and "shop_product" in s for s in statements)
    assert _user_data_in(statements, AGENT, "198.51.100.99", "alice") == [], statements
    (event,) = product_events(name)  # and the context still arrived
    assert (event["actor_name"], event["ip"], event["user_agent"]) == (
        "alice", "198.51.100.99", AGENT)


@pytest.mark.parametrize("atomic", [False, True])
def test_the_sql_logger_and_query_counts_are_those_without_the_bridge(
    atomic: bool, caplog: pytest.LogCaptureFixture
) -> None:
    def create(name: str) -> list[str]:
        with CaptureQueriesContext(connection) as queries:
            with transaction.atomic() if atomic else _nothing():
                Product.objects.create(name=name)
        return [q["sql"] for q in queries.captured_queries]

    plain = create("plain-" + uuid.uuid4().hex[:8])
    name = "ctx-" + uuid.uuid4().hex[:8]
    with caplog.at_level(logging.DEBUG, logger="django.db.backends"), \
            audit_context(actor="job-runner-5f", reason=AGENT):
        audited = create(name)
    assert len(audited) == len(plain)
    assert _user_data_in(audited, AGENT, "job-runner-5f") == [], audited
    logged = [r.getMessage() for r in caplog.records if r.name == "django.db.backends"]
    assert logged and not any("set_config" in m or "audit." in m or AGENT in m
                              for m in logged), logged
    (event,) = product_events(name)
    assert (event["actor_name"], event["user_agent"]) == ("job-runner-5f", AGENT)


def test_a_failed_statement_rolls_back_the_context_it_opened() -> None:
    from django.db import IntegrityError

    product = Product.objects.create(name="dup-" + uuid.uuid4().hex[:8])
    with audit_context(actor="job"), CaptureQueriesContext(connection):
        with pytest.raises(IntegrityError):
            Product.objects.create(id=product.id, name="again")
        assert connection.connection.info.transaction_status == 0  # idle: nothing left open
        Product.objects.create(name="after-" + uuid.uuid4().hex[:8])


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()


@pytest.mark.django_db  # inside a test transaction, as Django's own auth tests count queries
def test_a_failed_login_adds_no_query_to_the_count(last_event_id: int) -> None:
    from django.contrib.auth import authenticate
    from djtest import fetch_events

    with CaptureQueriesContext(connection) as queries:
        assert authenticate(password="no user name") is None
    assert queries.captured_queries == []
    (event,) = fetch_events("id > %s AND action = 'LOGIN_FAILED'", [last_event_id])
    assert event["detail"] == {"username": None}
