"""Projects' own test suites with the bridge: isolated events, --nomigrations, the helper."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from django.test import Client
from djtest import fetch_events

from pg_audit_schema.installer import latest_version

HERE = Path(__file__).parent


@pytest.mark.django_db  # one transaction around the test, as TestCase does
def test_a_failed_login_in_a_test_transaction_leaves_with_it(client: Client, alice: Any,
                                                              last_event_id: int) -> None:
    assert client.post("/login/", {"username": "alice", "password": "bad"}).status_code == 200
    (event,) = fetch_events("id > %s AND action = 'LOGIN_FAILED'", [last_event_id])
    with connection.cursor() as cursor:
        cursor.execute("SELECT txid::text = pg_catalog.pg_current_xact_id()::text "
                       "FROM audit.event WHERE id = %s", [event["id"]])
        # Written in the test's own transaction: rolled back with it, never piling up.
        assert cursor.fetchone()[0] is True


def test_nomigrations_installs_what_the_migrations_would(pg_server: Any, empty_db: Any) -> None:
    script = (
        "import django; django.setup()\n"
        "from django.core.management import call_command\n"
        "call_command('migrate', run_syncdb=True, verbosity=0)\n"
        "from django.contrib.auth import get_user_model\n"
        "from django.test import Client\n"
        "get_user_model().objects.create_user('dora', password='dora-pw-1')\n"
        "c = Client(REMOTE_ADDR='192.0.2.71')\n"
        "assert c.post('/login/', {'username': 'dora', 'password': 'x'}).status_code == 200\n"
        "assert c.post('/login/', {'username': 'dora', 'password': 'dora-pw-1'}).status_code "
        "== 302\n"
        "assert c.get('/w/create/?name=nomig').status_code == 200\n"
    )
    env = {**os.environ, "PG_AUDIT_DJANGO_DSN": pg_server.conninfo(empty_db.name),
           "DJANGO_SETTINGS_MODULE": "testproject.settings_nomigrations",
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent)])}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True,
                            text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-3000:]
    with empty_db.connect() as conn:
        (version,) = conn.execute("SELECT max(version) FROM audit.schema_version").fetchone()
        tracked = {t for (t,) in conn.execute("SELECT table_name FROM audit.tracked_table")}
        events = conn.execute("SELECT action, actor_name, host(ip), table_name FROM audit.event "
                              "WHERE action <> 'TRACKING_ENABLED' ORDER BY id").fetchall()
    assert version == latest_version()
    assert {"public.auth_user", "public.shop_product", "public.accounts_profile"} <= tracked
    assert ("LOGIN_FAILED", None, "192.0.2.71", None) in events
    assert ("LOGIN", "dora", "192.0.2.71", None) in events
    assert ("INSERT", "dora", "192.0.2.71", "public.shop_product") in events


@pytest.mark.django_db(transaction=True)
def test_capture_audit_events_sees_only_the_blocks_events(client: Client, alice: Any) -> None:
    from shop.models import Product

    from django_bridge.testing import capture_audit_events

    Product.objects.create(name="before the block")  # as a previous test would leave
    with connection.cursor() as cursor:  # as TransactionTestCase's flush does
        cursor.execute("TRUNCATE shop_order")
    with capture_audit_events() as events:
        client.post("/login/", {"username": "alice", "password": "bad"})
        Product.objects.create(name="inside")
    assert [(e.action, e.table_name) for e in events] == [
        ("LOGIN_FAILED", None), ("INSERT", "public.shop_product")]
    assert len(events) == 2
