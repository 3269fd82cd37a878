"""LOGIN, LOGOUT and LOGIN_FAILED through the real auth views, with the request's context."""

from __future__ import annotations

import json
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from django.test.utils import override_settings
from djtest import fetch_events

pytestmark = pytest.mark.django_db(transaction=True)


def _events(since: int, action: str | None = None) -> list[dict[str, Any]]:
    if action:
        return fetch_events("id > %s AND action = %s", [since, action])
    return fetch_events("id > %s AND table_name IS NULL", [since])


def _login(client: Client, username: str, password: str, **extra: Any) -> Any:
    extra.setdefault("REMOTE_ADDR", "203.0.113.9")
    return client.post("/login/", {"username": username, "password": password}, **extra)


def test_login_then_logout(client: Client, alice: Any, last_event_id: int) -> None:
    response = _login(client, "alice", "alice-pw-1", HTTP_USER_AGENT="Firefox/140")
    assert response.status_code == 302
    assert client.post("/logout/", REMOTE_ADDR="203.0.113.9").status_code in (200, 302)
    login, logout = _events(last_event_id)
    assert (login["action"], login["outcome"]) == ("LOGIN", "success")
    assert (login["actor_id"], login["actor_name"]) == (str(alice.pk), "alice")
    assert (login["ip"], login["user_agent"]) == ("203.0.113.9", "Firefox/140")
    assert login["request_id"]
    assert (logout["action"], logout["actor_name"], logout["ip"]) == ("LOGOUT", "alice",
                                                                     "203.0.113.9")
    assert logout["request_id"] != login["request_id"]


def test_failed_login_is_anonymous_with_the_attempted_name_and_never_the_password(
    client: Client, alice: Any, last_event_id: int
) -> None:
    response = _login(client, "alice", "wrong-password-xyz", HTTP_USER_AGENT="curl/8")
    assert response.status_code == 200  # the form again
    (event,) = _events(last_event_id)
    assert (event["action"], event["outcome"]) == ("LOGIN_FAILED", "failure")
    assert event["actor_id"] is None and event["actor_name"] is None
    assert event["detail"] == {"username": "alice"}
    assert (event["ip"], event["user_agent"]) == ("203.0.113.9", "curl/8")
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM audit.event WHERE id > %s AND "
                       "(detail::text LIKE '%%wrong-password%%' OR row(audit.event.*)::text "
                       "LIKE '%%wrong-password%%')", [last_event_id])
        assert cursor.fetchone()[0] == 0


def test_failed_login_for_unknown_user(client: Client, last_event_id: int) -> None:
    _login(client, "nobody-here", "x")
    (event,) = _events(last_event_id)
    assert event["action"] == "LOGIN_FAILED"
    assert event["detail"] == {"username": "nobody-here"}


def test_attempted_user_name_is_bounded_and_cleaned(client: Client, last_event_id: int) -> None:
    _login(client, "evil\x00name" + "x" * 5000, "x")
    events = _events(last_event_id, "LOGIN_FAILED")
    # Django's form may refuse the NUL before authenticating; if it did
    # authenticate, the name is cleaned and bounded.
    for event in events:
        assert "\x00" not in event["detail"]["username"]
        assert len(event["detail"]["username"]) <= 150


def test_failed_login_survives_the_rollback_of_the_request_transaction(
    client: Client, alice: Any, last_event_id: int
) -> None:
    # The view authenticates, then fails: ATOMIC_REQUESTS rolls its transaction back.
    client.raise_request_exception = False
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        response = client.post("/w/fail-login/", {"username": "alice", "password": "bad"},
                               REMOTE_ADDR="203.0.113.77")
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    assert response.status_code == 500
    (event,) = _events(last_event_id, "LOGIN_FAILED")
    assert (event["ip"], event["detail"]) == ("203.0.113.77", {"username": "alice"})


def test_failed_login_in_a_job_is_written_when_the_job_ends(alice: Any,
                                                             last_event_id: int) -> None:
    from django.contrib.auth import authenticate
    from django.db import transaction

    from django_bridge.context import audit_context

    with audit_context(ip="203.0.113.78"):
        with pytest.raises(RuntimeError), transaction.atomic():
            assert authenticate(None, username="alice", password="bad") is None
            raise RuntimeError("the job failed after the attempt")
        assert _events(last_event_id, "LOGIN_FAILED") == []  # kept until the job ends
    (event,) = _events(last_event_id, "LOGIN_FAILED")
    assert event["ip"] == "203.0.113.78"


@pytest.mark.parametrize("request_object", [None, object(), {"META": "not a request"}])
def test_failed_login_whose_request_is_not_an_http_request(
    request_object: Any, alice: Any, last_event_id: int
) -> None:
    # GraphQL resolvers and custom backends pass objects of their own (Django's own
    # test_login_failed passes one); the attempt is recorded without request data.
    from django.contrib.auth import authenticate

    assert authenticate(request_object, username="alice", password="bad") is None
    (event,) = _events(last_event_id, "LOGIN_FAILED")
    assert (event["ip"], event["detail"]) == (None, {"username": "alice"})


def test_failed_login_through_the_view_under_atomic_requests(
    client: Client, alice: Any, last_event_id: int
) -> None:
    connection.settings_dict["ATOMIC_REQUESTS"] = True
    try:
        _login(client, "alice", "bad")
    finally:
        connection.settings_dict["ATOMIC_REQUESTS"] = False
    assert len(_events(last_event_id, "LOGIN_FAILED")) == 1


def test_detail_is_json(client: Client, last_event_id: int) -> None:
    _login(client, 'quote"and\\backslash', "x")
    with connection.cursor() as cursor:
        cursor.execute("SELECT jsonb_typeof(detail), detail->>'username' FROM audit.event "
                       "WHERE id > %s AND action = 'LOGIN_FAILED'", [last_event_id])
        assert cursor.fetchone() == ("object", 'quote"and\\backslash')
    assert json.loads(json.dumps(_events(last_event_id)[0]["detail"]))


@override_settings(PG_AUDIT_TRUSTED_PROXIES=1)
def test_login_behind_one_trusted_proxy_takes_the_right_hop(
    client: Client, alice: Any, last_event_id: int
) -> None:
    _login(client, "alice", "alice-pw-1", REMOTE_ADDR="10.0.0.2",
           HTTP_X_FORWARDED_FOR="1.2.3.4, 198.51.100.20")
    (event,) = _events(last_event_id, "LOGIN")
    assert event["ip"] == "198.51.100.20"  # not the spoofable leftmost 1.2.3.4


def test_untrusted_forwarded_for_is_ignored(client: Client, alice: Any,
                                            last_event_id: int) -> None:
    with override_settings(PG_AUDIT_TRUSTED_PROXIES=None):
        _login(client, "alice", "alice-pw-1", REMOTE_ADDR="192.0.2.50",
               HTTP_X_FORWARDED_FOR="6.6.6.6")
    (event,) = _events(last_event_id, "LOGIN")
    assert event["ip"] == "192.0.2.50"


def test_garbage_address_stores_null_ip_and_the_login_works(
    client: Client, alice: Any, last_event_id: int
) -> None:
    response = _login(client, "alice", "alice-pw-1", REMOTE_ADDR="not-an-ip\x00<script>")
    assert response.status_code == 302
    (event,) = _events(last_event_id, "LOGIN")
    assert event["ip"] is None
    assert "\x00" not in event["detail"]["ip_raw"]


def test_a_login_inside_a_transaction_leaves_no_actor_for_its_later_writes(
    client: Client, alice: Any, last_event_id: int
) -> None:
    import uuid

    from django.db import transaction
    from djtest import product_events
    from shop.models import Product

    name = uuid.uuid4().hex
    with transaction.atomic():  # a test's or a script's transaction, no request context
        client.force_login(alice)
        Product.objects.create(name=name)
    (event,) = product_events(name)
    assert event["actor_id"] is None and event["actor_name"] is None
    assert [e["action"] for e in _events(last_event_id)] == ["LOGIN"]
