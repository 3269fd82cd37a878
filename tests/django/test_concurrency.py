"""Many users at once over reused connections: every event carries its own request's context."""

from __future__ import annotations

import asyncio
import threading
import uuid
from typing import Any

import pytest
from django.db import connections
from django.test import AsyncClient, Client
from djtest import fetch_events

pytestmark = pytest.mark.django_db(transaction=True)

USERS = 6


@pytest.fixture
def users(django_user_model: Any) -> list[Any]:
    return [django_user_model.objects.create_user(f"user{i}", password="pw") for i in range(USERS)]


def _check(tag: str, expected: dict[str, tuple[str, str]]) -> None:
    events = fetch_events("table_name = 'public.shop_product' AND action = 'INSERT' "
                          "AND new_values->>'name' LIKE %s", [tag + "%"])
    assert len(events) == len(expected)
    seen_requests = set()
    for event in events:
        name = event["new_values"]["name"]
        username, ip = expected[name]
        assert (event["actor_name"], event["ip"]) == (username, ip), name
        seen_requests.add(event["request_id"])
    assert len(seen_requests) == len(expected)


def test_threads_with_reused_connections(users: list[Any]) -> None:
    tag = "t-" + uuid.uuid4().hex[:8]
    expected: dict[str, tuple[str, str]] = {}
    errors: list[BaseException] = []
    lock = threading.Lock()

    def worker(t: int) -> None:
        try:
            clients = [Client() for _ in users]
            for client, user in zip(clients, users, strict=True):
                client.force_login(user)
            for i in range(8):
                # Each thread walks through all users: one connection, many identities.
                u = (t + i) % USERS
                name = f"{tag}-{t}-{i}"
                ip = f"198.51.100.{t * 10 + i}"
                with lock:
                    expected[name] = (users[u].username, ip)
                response = clients[u].get(f"/w/create/?name={name}", REMOTE_ADDR=ip)
                assert response.status_code == 200
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)
        finally:
            connections.close_all()

    threads = [threading.Thread(target=worker, args=(t,)) for t in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    _check(tag, expected)


def test_async_requests_interleaved(users: list[Any]) -> None:
    tag = "a-" + uuid.uuid4().hex[:8]
    clients = []
    for user in users:
        client = AsyncClient()
        client.force_login(user)
        clients.append(client)
    expected = {f"{tag}-{u}-{i}": (users[u].username, "127.0.0.1")
                for u in range(USERS) for i in range(4)}

    async def run() -> None:
        from asgiref.sync import sync_to_async

        try:
            await asyncio.gather(*(
                clients[int(name.split("-")[2])].get(f"/w/async/?name={name}",
                                                     headers={"user-agent": name})
                for name in expected))
        finally:
            await sync_to_async(connections.close_all)()

    asyncio.run(run())
    _check(tag, expected)
    for event in fetch_events("new_values->>'name' LIKE %s", [tag + "%"]):
        assert event["user_agent"] == event["new_values"]["name"]
