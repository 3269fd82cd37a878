"""The deployment the docs ask for: the application connects as an audit_writer member."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from djtest import fetch_events, product_events

pytestmark = pytest.mark.django_db  # one transaction: the grants vanish with it


@pytest.fixture
def as_app(roles: dict[str, str]) -> Any:
    app = roles["app"]
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT audit_writer TO "{app}"')
        cursor.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{app}"')
        cursor.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{app}"')
        cursor.execute(f'SET SESSION AUTHORIZATION "{app}"')
    yield app
    with connection.cursor() as cursor:
        cursor.execute("RESET SESSION AUTHORIZATION")


def test_requests_as_the_app_role_record_everything(last_event_id: int, alice: Any,
                                                    as_app: str) -> None:
    client = Client()
    assert client.post("/login/", {"username": "alice", "password": "alice-pw-1"},
                       REMOTE_ADDR="192.0.2.33").status_code == 302
    name = uuid.uuid4().hex
    assert client.get(f"/w/create/?name={name}", REMOTE_ADDR="192.0.2.33").status_code == 200
    with connection.cursor() as cursor:
        cursor.execute("SELECT session_user")
        assert cursor.fetchone()[0] == as_app
        # The app role cannot read the log (the auditor's role can).
        cursor.execute("SAVEPOINT denied")
        with pytest.raises(Exception, match="permission denied"):
            cursor.execute("SELECT count(*) FROM audit.event")
        cursor.execute("ROLLBACK TO SAVEPOINT denied")
        cursor.execute("RESET SESSION AUTHORIZATION")
    (insert,) = product_events(name)
    (login,) = fetch_events("id > %s AND action = 'LOGIN'", [last_event_id])
    for event in (insert, login):
        assert (event["db_role"], event["actor_name"], event["ip"]) == (as_app, "alice",
                                                                         "192.0.2.33")
