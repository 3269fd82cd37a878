"""Hostile headers leave the request working and the event safely stored."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from django.test import Client
from django.test.utils import override_settings
from djtest import product_events

from django_bridge.client import client_ip, parse_address

pytestmark = pytest.mark.django_db(transaction=True)


def _create(client: Client, **extra: Any) -> dict[str, Any]:
    name = "bad-" + uuid.uuid4().hex[:10]
    response = client.get(f"/w/create/?name={name}", **extra)
    assert response.status_code == 200
    (event,) = product_events(name)
    return event


def test_nul_bytes_are_stripped(client: Client) -> None:
    event = _create(client, HTTP_USER_AGENT="agent\x00with\x00nuls", REMOTE_ADDR="192.0.2.1")
    assert event["user_agent"] == "agentwithnuls"
    assert event["ip"] == "192.0.2.1"


def test_invalid_utf8_and_lone_surrogates(client: Client) -> None:
    # WSGI headers arrive as latin-1 decoded text; bytes and surrogates are the worst case.
    agent = b"\xff\xfe bad \xc3(".decode("utf-8", "surrogateescape")
    event = _create(client, HTTP_USER_AGENT=agent)
    assert "bad" in event["user_agent"]
    event = _create(client, HTTP_USER_AGENT=b"raw \xff bytes")
    assert "raw" in event["user_agent"]


def test_64kb_user_agent_is_bounded(client: Client) -> None:
    event = _create(client, HTTP_USER_AGENT="A" * 65536)
    assert event["user_agent"] == "A" * 512


@pytest.mark.parametrize("garbage", ["", "999.1.1.1", "'; DROP TABLE x; --", "::g", "\x00",
                                     "1.2.3.4.5", "x" * 10000])
def test_garbage_remote_addr(client: Client, garbage: str) -> None:
    event = _create(client, REMOTE_ADDR=garbage)
    assert event["ip"] is None


@override_settings(PG_AUDIT_TRUSTED_PROXIES=["10.0.0.0/8"])
@pytest.mark.parametrize(("xff", "expected"), [
    ("6.6.6.6, 198.51.100.3", "198.51.100.3"),  # spoofed leftmost entry ignored
    ("198.51.100.3, 10.1.1.1", "198.51.100.3"),  # inner trusted proxy skipped
    ("garbage, 10.1.1.1", None),                 # malformed before any untrusted hop
    ("[2001:db8::5]:443", "2001:db8::5"),
    (",,,", None),
])
def test_forwarded_for_behind_trusted_cidrs(client: Client, xff: str, expected: str | None) -> None:
    event = _create(client, REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=xff)
    assert event["ip"] == expected


@override_settings(PG_AUDIT_TRUSTED_PROXIES=["10.0.0.0/8"])
def test_forwarded_for_from_an_untrusted_peer_is_ignored(client: Client) -> None:
    event = _create(client, REMOTE_ADDR="203.0.113.66", HTTP_X_FORWARDED_FOR="10.9.9.9")
    assert event["ip"] == "203.0.113.66"


def test_client_ip_counts_hops_from_the_right() -> None:
    meta = {"REMOTE_ADDR": "10.0.0.2", "HTTP_X_FORWARDED_FOR": "1.1.1.1, 2.2.2.2, 3.3.3.3"}
    assert client_ip(meta, 1) == "3.3.3.3"
    assert client_ip(meta, 2) == "2.2.2.2"
    assert client_ip(meta, 9) == "1.1.1.1"
    assert client_ip(meta, None) == "10.0.0.2"
    assert parse_address("1.2.3.4:8080") is not None
