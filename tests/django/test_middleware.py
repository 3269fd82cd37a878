"""Every way a request writes carries the request's context; nothing outlives it."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import AsyncClient
from djtest import fetch_events, product_events

pytestmark = pytest.mark.django_db(transaction=True)

UA = "Mozilla/5.0 (pg-audit tests)"


def _name() -> str:
    return "p-" + uuid.uuid4().hex[:10]


def _get(client: Any, path: str, **extra: Any) -> Any:
    extra.setdefault("REMOTE_ADDR", "198.51.100.7")
    extra.setdefault("HTTP_USER_AGENT", UA)
    return client.get(path, **extra)


def _assert_context(events: list[dict[str, Any]], user: Any | None,
                    ip: str = "198.51.100.7") -> str:
    assert events, "no event recorded"
    request_ids = {e["request_id"] for e in events}
    assert len(request_ids) == 1 and None not in request_ids, request_ids
    for event in events:
        assert event["ip"] == ip
        assert event["user_agent"] == UA
        assert event["actor_id"] == (str(user.pk) if user else None)
        assert event["actor_name"] == (user.username if user else None)
    return request_ids.pop()


def test_autocommit_write_carries_user_ip_agent_and_request_id(client: Any, alice: Any) -> None:
    client.force_login(alice)
    name = _name()
    assert _get(client, f"/w/create/?name={name}").status_code == 200
    events = product_events(name)
    assert [e["action"] for e in events] == ["INSERT"]
    _assert_context(events, alice)
    assert "secret_note" not in events[0]["new_values"]


def test_anonymous_write_has_no_actor_but_the_rest_of_the_context(client: Any) -> None:
    name = _name()
    _get(client, f"/w/create/?name={name}")
    _assert_context(product_events(name), None)


def test_atomic_requests(client: Any, alice: Any) -> None:
    client.force_login(alice)
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        name = _name()
        _get(client, f"/w/create/?name={name}")
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    _assert_context(product_events(name), alice)


def test_atomic_requests_rolled_back_leaves_nothing(client: Any, alice: Any) -> None:
    client.raise_request_exception = False
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        name = _name()
        assert _get(client, f"/w/fail/?name={name}").status_code == 500
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    assert product_events(name) == []


def test_savepoint_rollback_does_not_lose_the_context(client: Any, alice: Any) -> None:
    client.force_login(alice)
    name = _name()
    _get(client, f"/w/savepoint/?name={name}")
    assert product_events(name + "-rolled-back") == []
    _assert_context(product_events(name + "-kept"), alice)


def test_raw_cursor_with_and_without_parameters(client: Any, alice: Any) -> None:
    client.force_login(alice)
    name = _name()
    assert _get(client, f"/w/cursor/?name={name}").status_code == 200
    _assert_context(product_events(name), alice)


def test_bulk_create(client: Any, alice: Any) -> None:
    client.force_login(alice)
    name = _name()
    _get(client, f"/w/bulk/?name={name}")
    events = [e for i in range(3) for e in product_events(f"{name}-{i}")]
    assert len(events) == 3
    _assert_context(events, alice)


def test_queryset_update(client: Any, alice: Any, bob: Any) -> None:
    client.force_login(bob)
    name = _name()
    _get(client, f"/w/bulk/?name={name}")
    client.force_login(alice)
    assert _get(client, f"/w/update/?name={name}").content == b"3"
    updates = fetch_events("table_name = 'public.shop_product' AND action = 'UPDATE' "
                           "AND new_values->>'price' = '99' AND row_key->>'id' IN "
                           "(SELECT row_key->>'id' FROM audit.event WHERE new_values->>'name' "
                           "LIKE %s)", [name + "-%"])
    assert len(updates) == 3
    _assert_context(updates, alice)


def test_select_for_update_then_write(client: Any, alice: Any) -> None:
    client.force_login(alice)
    name = _name()
    _get(client, f"/w/create/?name={name}")
    _get(client, f"/w/lock/?name={name}")
    orders = fetch_events("table_name = 'public.shop_order' AND new_values->>'product_id' = "
                          "(SELECT row_key->>'id' FROM audit.event WHERE new_values->>'name' = %s "
                          "LIMIT 1)", [name])
    assert [e["action"] for e in orders] == ["INSERT"]
    _assert_context(orders, alice)


def test_user_set_late_in_the_view_is_carried_by_later_writes(client: Any, alice: Any) -> None:
    name = _name()
    _get(client, f"/w/late-user/?name={name}&as=alice")
    (before,) = product_events(name + "-before")
    (after,) = product_events(name + "-after")
    assert before["actor_id"] is None
    assert (after["actor_id"], after["actor_name"]) == (str(alice.pk), "alice")
    assert before["request_id"] == after["request_id"]


def test_async_view(alice: Any) -> None:
    from asgiref.sync import async_to_sync

    client = AsyncClient()
    client.force_login(alice)
    name = _name()
    response = async_to_sync(client.get)(f"/w/async/?name={name}", headers={"user-agent": UA})
    assert response.status_code == 200
    # The ASGI test client's address is its scope's client, 127.0.0.1.
    _assert_context(product_events(name), alice, ip="127.0.0.1")


def test_no_context_left_after_the_response(client: Any, alice: Any) -> None:
    client.force_login(alice)
    _get(client, f"/w/create/?name={_name()}")
    name = _name()
    # The same thread and connection, outside any request: no context.
    from shop.models import Product

    Product.objects.create(name=name)
    (event,) = product_events(name)
    assert (event["actor_id"], event["ip"], event["user_agent"], event["request_id"]) == (
        None, None, None, None)
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('audit.request_id', true)")
        assert cursor.fetchone()[0] in (None, "")


def test_reads_get_no_extra_statement(client: Any, alice: Any) -> None:
    from shop.models import Product

    from django_bridge.context import audit_context

    sqls: list[str] = []

    def record(execute: Any, sql: str, params: Any, many: bool, context: Any) -> Any:
        sqls.append(sql)  # inside our wrapper: sees exactly what is sent
        return execute(sql, params, many, context)

    with audit_context(actor=alice), connection.execute_wrapper(record):
        list(Product.objects.all())
        Product.objects.create(name=_name())
    reads = [s for s in sqls if "shop_product" in s and "INSERT" not in s]
    writes = [s for s in sqls if "INSERT" in s]
    assert reads and not any("audit." in s for s in reads), sqls
    # The context travels in the write's own round trip.
    assert len(writes) == 1 and "SET LOCAL audit.actor_id" in writes[0], sqls


@pytest.mark.django_db  # one outer transaction around the whole test, as TestCase does
def test_no_context_left_in_a_transaction_that_outlives_the_request(client: Any,
                                                                     alice: Any) -> None:
    from django_bridge.context import current

    client.force_login(alice)
    _get(client, f"/w/create/?name={_name()}")
    assert current() is None
    with connection.cursor() as cursor:
        cursor.execute("SELECT current_setting('audit.actor_id', true), "
                       "current_setting('audit.request_id', true)")
        assert cursor.fetchone() == ("", "")


def test_middleware_after_authentication_still_sees_the_user(client: Any, alice: Any) -> None:
    from django.conf import settings
    from django.test.utils import override_settings

    from django_bridge.checks import MIDDLEWARE

    late = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE] + [MIDDLEWARE]
    with override_settings(MIDDLEWARE=late):
        client.force_login(alice)
        name = _name()
        _get(client, f"/w/create/?name={name}")
    _assert_context(product_events(name), alice)


def test_request_id_from_a_configured_header_is_cleaned(client: Any) -> None:
    from django.test.utils import override_settings

    name = _name()
    with override_settings(PG_AUDIT_REQUEST_ID_HEADER="HTTP_X_REQUEST_ID"):
        _get(client, f"/w/create/?name={name}", HTTP_X_REQUEST_ID="req\x00-" + "9" * 500)
    (event,) = product_events(name)
    assert event["request_id"] == ("req-" + "9" * 500)[:128]
