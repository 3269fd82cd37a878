"""manage.py check: each misconfiguration reported with its id."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.conf import settings
from django.core.checks import run_checks
from django.db import connection
from django.test.utils import override_settings

from django_bridge import middleware
from django_bridge.checks import MIDDLEWARE


def _ids(**kwargs: Any) -> set[str]:
    return {m.id for m in run_checks(**kwargs) if m.id and m.id.startswith("pg_audit")}


def test_the_test_project_is_clean_without_database_checks() -> None:
    assert _ids() == set()


def test_middleware_missing() -> None:
    with override_settings(MIDDLEWARE=[m for m in settings.MIDDLEWARE if m != MIDDLEWARE]):
        assert "pg_audit.W002" in _ids()


def test_middleware_after_session_and_auth() -> None:
    others = [m for m in settings.MIDDLEWARE if m != MIDDLEWARE]
    with override_settings(MIDDLEWARE=[*others, MIDDLEWARE]):
        assert "pg_audit.W003" in _ids()
    with override_settings(MIDDLEWARE=[MIDDLEWARE, *settings.MIDDLEWARE]):
        assert "pg_audit.W004" in _ids()


def test_bad_trusted_proxies_setting() -> None:
    with override_settings(PG_AUDIT_TRUSTED_PROXIES=["not-a-network"]):
        assert "pg_audit.E031" in _ids()


@pytest.fixture
def seen_forwarded() -> Iterator[None]:
    middleware.forwarded_seen_untrusted = False
    yield
    middleware.forwarded_seen_untrusted = False


@pytest.mark.django_db
def test_forwarded_for_seen_without_trusted_proxies(client: Any, seen_forwarded: None) -> None:
    with override_settings(PG_AUDIT_TRUSTED_PROXIES=None):
        assert "pg_audit.W030" not in _ids()
        client.get("/", HTTP_X_FORWARDED_FOR="1.2.3.4")
        assert "pg_audit.W030" in _ids()
    assert "pg_audit.W030" not in _ids()  # trusted proxies configured now


@pytest.mark.django_db
def test_superuser_connection_is_reported() -> None:
    assert "pg_audit.W020" in _ids(databases=["default"])


@pytest.mark.django_db
def test_schema_state_and_role_membership(django_db_blocker: Any) -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE ROLE pgaudit_check_owner NOLOGIN IN ROLE audit_owner")
        cursor.execute("CREATE ROLE pgaudit_check_plain NOLOGIN IN ROLE audit_writer")
        try:
            # session_user is what the check reads; SET SESSION AUTHORIZATION changes it.
            cursor.execute("SET SESSION AUTHORIZATION pgaudit_check_owner")
            ids = _ids(databases=["default"])
            assert "pg_audit.W021" in ids and "pg_audit.W020" not in ids
            cursor.execute("SET SESSION AUTHORIZATION pgaudit_check_plain")
            ids = _ids(databases=["default"])
            assert not ids & {"pg_audit.W020", "pg_audit.W021", "pg_audit.W010",
                              "pg_audit.W011"}, ids
        finally:
            cursor.execute("RESET SESSION AUTHORIZATION")
        cursor.execute("SAVEPOINT older")
        cursor.execute("ALTER TABLE audit.schema_version DISABLE TRIGGER USER")
        cursor.execute("DELETE FROM audit.schema_version WHERE version > 1")
        assert "pg_audit.W011" in _ids(databases=["default"])
        cursor.execute("ROLLBACK TO SAVEPOINT older")
        cursor.execute("SAVEPOINT gone")
        cursor.execute("ALTER TABLE audit.schema_version RENAME TO schema_version_x")
        assert "pg_audit.W010" in _ids(databases=["default"])
        cursor.execute("ROLLBACK TO SAVEPOINT gone")
        cursor.execute("DROP ROLE pgaudit_check_owner")
        cursor.execute("DROP ROLE pgaudit_check_plain")


class _BridgeNowhere:
    def allow_migrate(self, db: str, app_label: str, **hints: Any) -> bool | None:
        return False if app_label == "django_bridge" else None


def test_no_database_for_the_schema() -> None:
    with override_settings(DATABASE_ROUTERS=[_BridgeNowhere()]):
        assert "pg_audit.E002" in _ids()
    assert "pg_audit.E002" not in _ids()


def test_a_tracked_model_in_the_admin_without_the_audit_trail_button() -> None:
    from django.contrib import admin
    from shop.models import Order

    original = admin.site._registry[Order]
    admin.site._registry[Order] = admin.ModelAdmin(Order, admin.site)
    try:
        assert "pg_audit.I040" in _ids()
    finally:
        admin.site._registry[Order] = original
    assert "pg_audit.I040" not in _ids()
