"""Declarative tracking (django_bridge.tracking) is enable_tracking, trigger for trigger."""

from __future__ import annotations

from typing import Any

import pytest
from django.db import connection
from djtest import fetch_events
from shop.models import Product

from django_bridge.tracking import AuditCapture, array_literal, tracked
from pg_audit_schema.errors import PgAuditError

pytestmark = pytest.mark.django_db

COMPARED = ("action", "actor_id", "actor_name", "ip", "user_agent", "request_id", "row_key",
            "old_values", "new_values", "detail")


def _triggerdefs(table: str) -> list[tuple[str, str, str]]:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT tgname, replace(pg_get_triggerdef(oid), %s, 'T'), tgenabled::text "
            "FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname LIKE 'audit%%' ORDER BY 1",
            [table, table])
        return cursor.fetchall()


def test_triggers_are_those_of_enable_tracking() -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE public.twin (LIKE public.shop_product INCLUDING ALL)")
        cursor.execute("SELECT audit.enable_tracking('public.twin', '{secret_note}')")
    assert _triggerdefs("public.twin") == _triggerdefs("public.shop_product")
    assert len(_triggerdefs("public.shop_product")) == 4
    with connection.cursor() as cursor:
        cursor.execute("SELECT table_name, excluded_columns, enabled_always FROM "
                       "audit.tracked_table WHERE table_name IN ('public.twin', "
                       "'public.shop_product') ORDER BY 1")
        assert cursor.fetchall() == [("public.shop_product", ["secret_note"], True),
                                     ("public.twin", ["secret_note"], True)]


def test_events_are_identical(alice: Any) -> None:
    from django_bridge.context import audit_context

    with connection.cursor() as cursor:
        cursor.execute("CREATE TABLE public.twin (LIKE public.shop_product INCLUDING ALL)")
        cursor.execute("SELECT audit.enable_tracking('public.twin', '{secret_note}')")
    with audit_context(actor=alice, reason="twin test", request_id="twin-req"), \
            connection.cursor() as cursor:
        for table in ("shop_product", "twin"):
            cursor.execute(f"INSERT INTO public.{table} (id, name, price, secret_note) "
                           "VALUES (424242, 'a', 1, 'hidden'), (424243, 'b', 2, 'hidden')")
            cursor.execute(f"UPDATE public.{table} SET price = price + 1, secret_note = 'x'")
            cursor.execute(f"UPDATE public.{table} SET secret_note = 'only excluded'")
            cursor.execute(f"DELETE FROM public.{table} WHERE id = 424242")
    events = {t: [tuple(e[k] for k in COMPARED) for e in fetch_events(
        "request_id = 'twin-req' AND table_name = %s", [f"public.{t}"])]
        for t in ("shop_product", "twin")}
    assert len(events["twin"]) == 5
    assert events["shop_product"] == events["twin"]
    assert all(e[1] == str(alice.pk) and e[4] == "twin test" for e in events["twin"])


def test_the_guard_accepts_the_migration_sql_of_a_non_superuser_owner(roles: Any) -> None:
    app = roles["app"]
    with connection.cursor() as cursor:
        cursor.execute(f'ALTER TABLE public.shop_product OWNER TO "{app}"')
        cursor.execute(f'SET SESSION AUTHORIZATION "{app}"')
        try:
            for trigger in tracked(exclude=["secret_note"]):
                compiled = trigger.compile(Product)
                cursor.execute(compiled.uninstall_sql)
                cursor.execute(compiled.install_sql)
            # A capture trigger dropped by hand is refused by the check that runs
            # at commit (made to run at once here: the test never commits).
            cursor.execute("SAVEPOINT refused")
            cursor.execute("SET CONSTRAINTS audit.audit_check_tracking IMMEDIATE")
            with pytest.raises(Exception, match="guarded"):
                cursor.execute("DROP TRIGGER audit_capture_insert ON public.shop_product")
            cursor.execute("ROLLBACK TO SAVEPOINT refused")
        finally:
            cursor.execute("RESET SESSION AUTHORIZATION")
    assert len(_triggerdefs("public.shop_product")) == 4


def test_bad_declarations_fail_at_once() -> None:
    with pytest.raises(ValueError, match="operation"):
        AuditCapture(operation="upsert")
    with pytest.raises(ValueError, match="string"):
        tracked(exclude="secret_note")  # type: ignore[arg-type]
    with pytest.raises(PgAuditError, match="no field"):
        AuditCapture(operation="insert", exclude=["nope"]).compile(Product)
    with pytest.raises(PgAuditError, match="primary key"):
        AuditCapture(operation="insert", exclude=["id"]).compile(Product)
    assert array_literal(["b", "a", "b", "with space"]) == '{a,b,"with space"}'
