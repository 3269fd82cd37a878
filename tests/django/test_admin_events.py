"""Admin additions, changes and deletions become ADMIN_* events; grants are answerable."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth.models import Group
from django.test import Client
from djtest import fetch_events
from shop.models import Product

pytestmark = pytest.mark.django_db(transaction=True)

ADDR = {"REMOTE_ADDR": "192.0.2.10", "HTTP_USER_AGENT": "AdminBrowser/1"}


@pytest.fixture
def root(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", "root-pw-1")


@pytest.fixture
def admin_client(client: Client, root: Any) -> Client:
    assert client.post("/login/", {"username": "root", "password": "root-pw-1"},
                       **ADDR).status_code == 302
    return client


def _content_type_id(model: Any) -> int:
    from django.contrib.contenttypes.models import ContentType

    return ContentType.objects.get_for_model(model).pk


def _admin_events(since: int) -> list[dict[str, Any]]:
    return fetch_events("id > %s AND action LIKE 'ADMIN\\_%%'", [since])


def test_create_change_delete_through_the_admin(admin_client: Client, root: Any,
                                                last_event_id: int) -> None:
    response = admin_client.post("/admin/shop/product/add/",
                                 {"name": "Lamp", "price": "10", "secret_note": "s3cret"}, **ADDR)
    assert response.status_code == 302
    product = Product.objects.get(name="Lamp")
    response = admin_client.post(f"/admin/shop/product/{product.pk}/change/",
                                 {"name": "Lamp", "price": "12", "secret_note": "s3cret"}, **ADDR)
    assert response.status_code == 302
    response = admin_client.post(f"/admin/shop/product/{product.pk}/delete/", {"post": "yes"},
                                 **ADDR)
    assert response.status_code == 302

    create, change, delete = _admin_events(last_event_id)
    assert [e["action"] for e in (create, change, delete)] == [
        "ADMIN_CREATE", "ADMIN_UPDATE", "ADMIN_DELETE"]
    for event in (create, change, delete):
        assert (event["actor_id"], event["actor_name"]) == (str(root.pk), "root")
        assert (event["ip"], event["user_agent"]) == ("192.0.2.10", "AdminBrowser/1")
        assert event["detail"]["object_id"] == str(product.pk)
        assert event["detail"]["object_repr"] == "Lamp"
        assert event["detail"]["content_type_id"] == str(_content_type_id(Product))
    assert create["detail"]["change_message"] == [{"added": {}}]
    assert change["detail"]["change_message"] == [{"changed": {"fields": ["Price"]}}]
    # The data events of the same requests carry the same request ids.
    data = fetch_events("id > %s AND table_name = 'public.shop_product'", [last_event_id])
    assert [e["action"] for e in data] == ["INSERT", "UPDATE", "DELETE"]
    assert [e["request_id"] for e in data] == [create["request_id"], change["request_id"],
                                               delete["request_id"]]
    assert all("secret_note" not in (e["new_values"] or {}) | (e["old_values"] or {})
               for e in data)


def test_who_granted_superuser_to_whom(admin_client: Client, root: Any, alice: Any,
                                       last_event_id: int) -> None:
    group = Group.objects.create(name="editors")
    form = {"username": "alice", "is_active": "on", "is_staff": "on", "is_superuser": "on",
            "groups": [str(group.pk)], "last_login_0": "", "last_login_1": "",
            "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00",
            "first_name": "", "last_name": "", "email": "alice@example.com"}
    response = admin_client.post(f"/admin/auth/user/{alice.pk}/change/", form, **ADDR)
    assert response.status_code == 302, response.content[:2000]

    # The question an auditor asks, in SQL.
    rows = fetch_events(
        "id > %s AND table_name = 'public.auth_user' AND action = 'UPDATE' "
        "AND (new_values->>'is_superuser')::boolean", [last_event_id])
    (grant,) = rows
    assert grant["row_key"] == {"id": str(alice.pk)}
    assert grant["old_values"]["is_superuser"] == "f"
    assert (grant["actor_id"], grant["actor_name"], grant["ip"]) == (str(root.pk), "root",
                                                                     "192.0.2.10")
    assert "password" not in grant["new_values"] and "password" not in grant["old_values"]
    (membership,) = fetch_events(
        "id > %s AND table_name = 'public.auth_user_groups' AND action = 'INSERT'",
        [last_event_id])
    assert membership["new_values"]["group_id"] == str(group.pk)
    assert membership["actor_name"] == "root"
    (admin_event,) = _admin_events(last_event_id)
    assert admin_event["detail"]["content_type_id"] == str(_content_type_id(alice))
    assert admin_event["request_id"] == grant["request_id"]


def test_password_change_writes_no_hash(admin_client: Client, alice: Any,
                                        last_event_id: int) -> None:
    alice.set_password("a-new-password-1")
    alice.save()
    assert fetch_events("id > %s AND table_name = 'public.auth_user'", [last_event_id]) == []


def test_login_updates_last_login_without_a_data_event(client: Client, alice: Any,
                                                       last_event_id: int) -> None:
    client.post("/login/", {"username": "alice", "password": "alice-pw-1"}, **ADDR)
    assert [e["action"] for e in fetch_events("id > %s", [last_event_id])] == ["LOGIN"]


def test_a_plain_text_change_message_is_kept_as_a_json_string(root: Any,
                                                              last_event_id: int) -> None:
    from django.contrib.admin.models import CHANGE, LogEntry
    from django.contrib.contenttypes.models import ContentType

    LogEntry.objects.create(user=root, content_type=ContentType.objects.get_for_model(Product),
                            object_id="7", object_repr="x" * 200, action_flag=CHANGE,
                            change_message="Changed by a script, not JSON {")
    (event,) = _admin_events(last_event_id)
    assert event["action"] == "ADMIN_UPDATE"
    assert event["detail"]["change_message"] == "Changed by a script, not JSON {"
    assert event["actor_id"] == str(root.pk)


def test_admin_verbs_cannot_be_forged_through_log_event(last_event_id: int) -> None:
    from django.db import connection

    with pytest.raises(Exception, match="reserved"), connection.cursor() as cursor:
        cursor.execute("SELECT audit.log_event(action => 'ADMIN_DELETE')")
    assert _admin_events(last_event_id) == []
