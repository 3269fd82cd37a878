"""The viewer as auditors use it: what changed at a glance, who (or which database role),
exact values, every event of one object or one request, and time ranges to the minute."""

from __future__ import annotations

import datetime
import re
import uuid
from decimal import Decimal
from typing import Any

import pytest
from django.db import connection
from django.urls import reverse
from django.utils import timezone
from shop.models import Product

from django_bridge.admin import AuditEventAdmin
from django_bridge.display import summary, to_json
from django_bridge.models import AuditEvent

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_bridge_auditevent_changelist"
CHANGE = "admin:django_bridge_auditevent_change"
EXPORT = "admin:django_bridge_auditevent_export"
LONG = "12345678901234567890.1234567891"


@pytest.fixture
def superuser(client: Any, django_user_model: Any) -> Any:
    user = django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1")
    client.force_login(user)
    return user


def _table(columns: str = "id int PRIMARY KEY, name text, price numeric") -> str:
    table = f"public.hist_{uuid.uuid4().hex[:10]}"
    with connection.cursor() as c:
        c.execute(f"CREATE TABLE {table} ({columns})")
        c.execute("SELECT audit.enable_tracking(target => %s::regclass)", [table])
    return table


def _page(client: Any, **params: str) -> tuple[list[AuditEvent], str]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list), response.content.decode()


def test_numbers_are_shown_exactly_as_recorded(client: Any, superuser: Any) -> None:
    table = _table()
    with connection.cursor() as c:
        c.execute(f"INSERT INTO {table} VALUES (1, 'mug', 12.50)")
        c.execute(f"UPDATE {table} SET price = {LONG} WHERE id = 1")
    insert, update = AuditEvent.objects.filter(table_name=table).exclude(
        action="TRACKING_ENABLED").order_by("id")
    # Text (new capture) or a JSON number read as Decimal (older events), never a float.
    assert str(insert.new_values["price"]) == "12.50"
    assert str(update.new_values["price"]) == LONG
    _, page = _page(client, table=table)
    assert f"price: 12.50 \u2192 {LONG}" in page and "price=12.50" in page
    detail = client.get(reverse(CHANGE, args=[update.id])).content.decode()
    assert f'<span class="audit-value">{LONG}</span>' in detail
    assert '<span class="audit-value">12.50</span>' in detail
    export = client.get(reverse(EXPORT), {"table": table})
    body = b"".join(export.streaming_content).decode()
    assert LONG in body and "12.50" in body and "12.5," not in body and "12.5}" not in body


def test_values_in_both_recorded_forms() -> None:
    # New capture: every value as PostgreSQL's text (JSON strings), NULL as null;
    # older events: typed JSON. Both read the same way.
    for old, new in ((Decimal("12.50"), Decimal("13.00")), ("12.50", "13.00")):
        event = AuditEvent(action="UPDATE", table_name="public.t", row_key={"id": "1"},
                           old_values={"price": old, "note": None},
                           new_values={"price": new, "note": ""})
        assert summary(event) == 'price: 12.50 \u2192 13.00, note: null \u2192 ""'
    assert to_json({"a": Decimal(LONG), "b": ["x", None, True]}) == (
        f'{{"a": {LONG}, "b": ["x", null, true]}}')


def test_a_change_without_application_user_names_the_database_role(client: Any,
                                                                   superuser: Any) -> None:
    table = _table()
    with connection.cursor() as c:  # as a DBA in psql: no context at all
        c.execute(f"INSERT INTO {table} VALUES (7, 'lamp', 3)")
        c.execute("SELECT session_user")
        (role,) = c.fetchone()
    events, page = _page(client, table=table, action="INSERT")
    assert len(events) == 1
    assert re.search(rf'class="audit-role"[^>]*>{re.escape(role)} <small>\(db role\)</small>',
                     page)
    assert "id=7" in page and "name=lamp" in page


def test_every_event_of_one_object_from_its_admin_page(client: Any, superuser: Any) -> None:
    product = Product.objects.create(name="Kettle", price=30)
    other = Product.objects.create(name="Toaster", price=20)
    Product.objects.filter(pk=product.pk).update(price=35)
    Product.objects.filter(pk=other.pk).update(price=25)
    page = client.get(reverse("admin:shop_product_change", args=[product.pk])).content.decode()
    link = re.search(r'<a href="([^"]+)" class="audit-trail-link">Audit trail</a>', page)
    assert link, page[:3000]
    response = client.get(link.group(1).replace("&amp;", "&"))
    assert response.status_code == 200
    events = list(response.context["cl"].result_list)
    assert [e.action for e in events] == ["UPDATE", "INSERT"]
    assert all(str(e.row_key["id"]) == str(product.pk) for e in events)
    # From an event: the same row and the same request, one click each.
    detail = client.get(reverse(CHANGE, args=[events[0].id])).content.decode()
    assert "Every event of this row" in detail


def test_the_row_filter_follows_a_key_change(client: Any, superuser: Any) -> None:
    table = _table()
    with connection.cursor() as c:
        c.execute(f"INSERT INTO {table} VALUES (1, 'a', 1)")
        c.execute(f"UPDATE {table} SET id = 2 WHERE id = 1")
        c.execute(f"UPDATE {table} SET name = 'b' WHERE id = 2")
    events, _ = _page(client, table=table, row='{"id": "2"}')
    # Newest first: the rename and the key change that gave the row its key (what
    # audit.row_history returns; the events under the earlier key are that key's).
    assert [e.action for e in events] == ["UPDATE", "UPDATE"]
    assert events[1].old_values == {"id": 1} or events[1].old_values == {"id": "1"}
    bad, _ = _page(client, table=table, row="not json")
    assert bad == []
    response = client.get(reverse(CHANGELIST), {"table": "public.never_tracked",
                                                "row": '{"id": "1"}'})
    assert list(response.context["cl"].result_list) == []
    assert any("never tracked" in str(m) or "public.never_tracked" in str(m)
               for m in response.context["messages"])
    with connection.cursor() as c:  # a dropped table keeps its events
        c.execute("SELECT audit.disable_tracking(target => %s::regclass)", [table])
        c.execute(f"DROP TABLE {table}")
    gone, _ = _page(client, table=table, row='{"id": "2"}')
    assert [e.action for e in gone] == ["UPDATE", "UPDATE"]


def test_everything_of_one_request(client: Any, superuser: Any) -> None:
    table = _table()
    with connection.cursor() as c:
        c.execute("SELECT audit.set_context(actor_id => '5', actor_name => 'eve', "
                  "request_id => 'req-one-42')")
        c.execute(f"INSERT INTO {table} VALUES (1, 'a', 1), (2, 'b', 2)")
        c.execute("SELECT audit.log_event(action => 'EXPORT_REPORT')")
    events, page = _page(client, request="req-one-42")
    assert [e.action for e in events] == ["EXPORT_REPORT", "INSERT", "INSERT"]
    # The request's link bounds the read to an hour either side of the event (no index
    # on request_id: the BRIN index on occurred_at and the partitions do the work).
    link = re.search(r'href="\?(request=req-one-42&amp;occurred_from=[^"]+)"', page)
    assert link, page[-3000:]
    response = client.get(reverse(CHANGELIST) + "?" + link.group(1).replace("&amp;", "&"))
    assert [e.action for e in response.context["cl"].result_list] == [
        "EXPORT_REPORT", "INSERT", "INSERT"]


def test_time_range_to_the_minute(client: Any, superuser: Any) -> None:
    table = _table()
    with connection.cursor() as c:
        c.execute(f"INSERT INTO {table} VALUES (1, 'a', 1)")
    (event,) = AuditEvent.objects.filter(table_name=table, action="INSERT")
    at = timezone.localtime(event.occurred_at)
    minute = at.strftime("%Y-%m-%dT%H:%M")
    assert _page(client, table=table, action="INSERT", occurred_from=minute,
                 occurred_to=minute)[0] == [event]
    later = (at + datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M")
    assert _page(client, table=table, occurred_from=later)[0] == []
    earlier = (at - datetime.timedelta(minutes=1)).strftime("%Y-%m-%dT%H:%M:%S")
    assert _page(client, table=table, action="INSERT", occurred_to=earlier)[0] == []


def test_the_statement_of_a_change_without_context_and_admin_content_types(
    client: Any, superuser: Any
) -> None:
    with connection.cursor() as c:
        c.execute("SELECT audit.log_event(action => 'NIGHTLY_FIX', detail => %s::jsonb)",
                  ['{"statement": "UPDATE shop_product SET price = 0 WHERE id = 3"}'])
    event = AuditEvent.objects.filter(action="NIGHTLY_FIX").latest("id")
    page = client.get(reverse(CHANGE, args=[event.id])).content.decode()
    assert '<pre class="audit-json">UPDATE shop_product SET price = 0 WHERE id = 3</pre>' in page

    from django.contrib.admin.models import CHANGE as FLAG
    from django.contrib.admin.models import LogEntry
    from django.contrib.contenttypes.models import ContentType

    LogEntry.objects.create(user=superuser, object_id="3", object_repr="Lamp", action_flag=FLAG,
                            content_type=ContentType.objects.get_for_model(Product))
    admin_event = AuditEvent.objects.filter(action="ADMIN_UPDATE").latest("id")
    admin_event.detail.pop("content_type", None)  # newer events carry only the id
    from django.contrib import admin

    assert AuditEventAdmin(AuditEvent, admin.site).what_changed(admin_event) == "shop.product Lamp"
