"""audit_context() for commands, jobs and the shell; makemigrations sees every trigger."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.core.management import call_command
from django.db import connection, transaction
from djtest import product_events
from shop.models import Product

from django_bridge.context import audit_context, current

pytestmark = pytest.mark.django_db(transaction=True)


def test_job_context_with_a_user_and_a_reason(alice: Any) -> None:
    name = uuid.uuid4().hex
    with audit_context(actor=alice, reason="nightly price sync") as values:
        Product.objects.create(name=name)
    (event,) = product_events(name)
    assert (event["actor_id"], event["actor_name"]) == (str(alice.pk), "alice")
    assert event["user_agent"] == "nightly price sync"
    assert event["request_id"] == values.request_id and len(values.request_id) == 32
    assert current() is None


def test_actor_as_a_name_and_nesting() -> None:
    outer, inner, after = (uuid.uuid4().hex for _ in range(3))
    with audit_context(actor="cron", request_id="job-1"), transaction.atomic():
        Product.objects.create(name=outer)
        with audit_context(actor="someone-else", request_id="job-2"):
            Product.objects.create(name=inner)
        Product.objects.create(name=after)
    assert [(e["actor_name"], e["request_id"]) for n in (outer, inner, after)
            for e in product_events(n)] == [("cron", "job-1"), ("someone-else", "job-2"),
                                            ("cron", "job-1")]


def test_nothing_left_in_a_transaction_that_outlives_the_context() -> None:
    name = uuid.uuid4().hex
    with transaction.atomic():
        with audit_context(actor="job"):
            Product.objects.create(name=name + "-in")
        Product.objects.create(name=name + "-out")
        with connection.cursor() as cursor:
            cursor.execute("SELECT current_setting('audit.actor_name', true)")
            assert cursor.fetchone()[0] == ""
    assert product_events(name + "-out")[0]["actor_name"] is None


def test_makemigrations_is_clean() -> None:
    call_command("makemigrations", "--check", "--dry-run", verbosity=0)


def test_a_transaction_that_begins_with_a_read_gets_the_context_again() -> None:
    name = uuid.uuid4().hex
    with audit_context(actor="job", request_id="job-read-first"):
        with transaction.atomic():
            Product.objects.create(name=name + "-1")
        with transaction.atomic():
            list(Product.objects.all()[:1])
            Product.objects.create(name=name + "-2")
    assert [product_events(name + s)[0]["request_id"] for s in ("-1", "-2")] == [
        "job-read-first", "job-read-first"]


@pytest.mark.parametrize("atomic", [False, True])
def test_executemany_sends_the_context_as_its_own_statement(atomic: bool) -> None:
    name = uuid.uuid4().hex
    with audit_context(actor="batch", request_id=f"many-{name}"):
        with transaction.atomic() if atomic else _nothing(), connection.cursor() as cursor:
            cursor.executemany(
                "INSERT INTO shop_product (name, price, secret_note) VALUES (%s, 1, '')",
                [[f"{name}-{i}"] for i in range(3)])
    events = [e for i in range(3) for e in product_events(f"{name}-{i}")]
    assert [(e["actor_name"], e["request_id"]) for e in events] == [("batch", f"many-{name}")] * 3


def _nothing() -> Any:
    import contextlib

    return contextlib.nullcontext()
