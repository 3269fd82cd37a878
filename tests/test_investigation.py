"""Investigation functions of sql/0008_investigation.sql: a table however it is
written, keys by value, clear errors instead of empty answers, index-driven reads.

Data comes through tracked tables as the application role (values as their
text, as capture records them from step 6 on); events in the typed form that
capture wrote before step 6 are inserted by the superuser.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from pgtest import printed
from psycopg import errors


@pytest.fixture
def app(db: Any, roles: dict[str, str]) -> psycopg.Connection:
    conn = db.connect(roles["app"])
    yield conn
    conn.close()


@pytest.fixture
def reader(db: Any, roles: dict[str, str]) -> psycopg.Connection:
    conn = db.connect(roles["reader"])
    yield conn
    conn.close()


def history(reader: psycopg.Connection, table: str, key: Any) -> list[tuple[str, Any]]:
    return reader.execute(
        "SELECT action, row_key FROM audit.row_history(%s, %s::jsonb)", [table, json.dumps(key)]
    ).fetchall()


def _schema(db: Any, roles: dict[str, str], name: str) -> None:
    with db.connect() as su:
        su.execute(f"CREATE SCHEMA {name} AUTHORIZATION {roles['app']}")
        su.execute(f"GRANT USAGE ON SCHEMA {name} TO PUBLIC")


def test_a_table_is_found_however_it_is_written(
    db: Any, roles: dict[str, str], app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute('CREATE TABLE "Item" (id int PRIMARY KEY, v text)')
    _schema(db, roles, "sales")
    app.execute("CREATE TABLE sales.item (id int PRIMARY KEY, v text)")
    app.execute("SELECT audit.enable_tracking('\"Item\"')")
    app.execute("SELECT audit.enable_tracking('sales.item')")
    app.execute("INSERT INTO \"Item\" VALUES (1, 'a')")
    app.execute("INSERT INTO sales.item VALUES (1, 'b')")
    db_name = reader.info.dbname
    spellings = ('"Item"', 'public."Item"', '"public"."Item"', f'{db_name}.public."Item"')
    for name in spellings:
        # As events name it: each part quoted where an identifier needs it.
        assert reader.execute("SELECT audit.resolve_table(%s)", [name]).fetchone() == (
            'public."Item"',
        ), name
        assert history(reader, name, {"id": 1}) == [("INSERT", printed({"id": 1}))], name
    for name in ("item", "sales.item", "SALES.ITEM", " sales.item "):
        assert reader.execute("SELECT audit.resolve_table(%s)", [name]).fetchone() == (
            "sales.item",
        ), name
    # The regclass forms of the contract: resolved with the caller's search_path.
    assert reader.execute(
        "SELECT action FROM audit.row_history(target => 'sales.item'::regclass, "
        "row_key => '{\"id\": 1}')"
    ).fetchall() == [("INSERT",)]
    # The views: through the function of the same name, or resolve_table.
    assert reader.execute(
        "SELECT column_name, new_text FROM audit.column_changes('item') ORDER BY 1"
    ).fetchall() == [("id", "1"), ("v", "b")]
    assert reader.execute(
        "SELECT count(*) FROM audit.column_changes "
        "WHERE table_name = audit.resolve_table('\"Item\"')"
    ).fetchone() == (2,)


def test_unknown_untracked_and_ambiguous_tables_are_errors_with_hints(
    db: Any, roles: dict[str, str], app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE shop_order (id int PRIMARY KEY)")
    app.execute("CREATE TABLE plain (id int PRIMARY KEY)")
    app.execute("SELECT audit.enable_tracking('shop_order')")
    with pytest.raises(errors.UndefinedTable, match="shop_ordr does not exist") as e:
        reader.execute("SELECT * FROM audit.row_history('shop_ordr', '{\"id\": 1}')")
    assert "public.shop_order" in (e.value.diag.message_hint or "")
    # Unquoted names fold to lower case, as in SQL; quoted ones do not.
    assert reader.execute("SELECT audit.resolve_table('public.Shop_Order ')").fetchone() == (
        "public.shop_order",
    )
    with pytest.raises(errors.UndefinedTable) as e:
        reader.execute("SELECT audit.resolve_table('\"Shop_Order\"')")
    assert "Did you mean public.shop_order?" in (e.value.diag.message_hint or "")
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="plain is not tracked") as e:
        reader.execute("SELECT * FROM audit.last_change('plain', '{\"id\": 1}', 'id')")
    assert "enable_tracking" in (e.value.diag.message_hint or "")
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match="not tracked"):
        reader.execute("SELECT audit.row_as_of('plain'::regclass, '{\"id\": 1}', now())")
    with pytest.raises(errors.InvalidParameterValue, match="not a table name"):
        reader.execute("SELECT audit.resolve_table('a.b.c.d')")
    _schema(db, roles, "other")
    app.execute("CREATE TABLE other.shop_order (id int PRIMARY KEY)")
    app.execute("SELECT audit.enable_tracking('other.shop_order')")
    with pytest.raises(errors.AmbiguousAlias, match="other.shop_order, public.shop_order"):
        reader.execute("SELECT audit.resolve_table('shop_order')")


def test_a_dropped_table_keeps_its_history(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE gone (id int PRIMARY KEY, v text)")
    app.execute("SELECT audit.enable_tracking('gone')")
    app.execute("INSERT INTO gone VALUES (7, 'x')")
    app.execute("SELECT audit.disable_tracking('gone')")
    app.execute("DROP TABLE gone")
    assert history(reader, "gone", {"id": 7}) == [("INSERT", printed({"id": 7}))]
    assert history(reader, "gone", {"id": "7"}) == [("INSERT", printed({"id": 7}))]
    assert reader.execute(
        "SELECT new_value FROM audit.last_change('gone', '{\"id\": 7}', 'v')"
    ).fetchall() == [("x",)]


def test_keys_match_by_value_whatever_json_type_the_caller_used(
    db: Any, app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE price (id numeric(10,2) PRIMARY KEY, amount numeric(30,10))")
    app.execute("INSERT INTO price VALUES (1, 12345678901234567890.1234567891)")
    app.execute("SELECT audit.enable_tracking('price')")
    with db.connect() as su:  # the INSERT as capture recorded it before step 6: typed JSON
        su.execute(
            "INSERT INTO audit.event (action, table_name, row_key, new_values) "
            "VALUES ('INSERT', 'public.price', '{\"id\": 1.00}', "
            "'{\"id\": 1.00, \"amount\": 12345678901234567890.1234567891}')"
        )
        before_update = su.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]
    app.execute("UPDATE price SET amount = 12.50")  # captured: each value's text output
    for key in ({"id": 1}, {"id": "1"}, {"id": 1.0}, {"id": "1.00"}, {"id": "1.000"}):
        assert [a for a, _ in history(reader, "price", key)] == ["INSERT", "UPDATE"], key
    assert reader.execute(
        "SELECT old_value, new_value FROM audit.last_change('price', '{\"id\": 1}', 'amount')"
    ).fetchone() == ("12345678901234567890.1234567891", "12.5000000000")
    # Replayed from the typed INSERT, every digit of its numbers kept.
    assert reader.execute(
        "SELECT audit.row_as_of('price', '{\"id\": \"1\"}', %s)::text", [before_update]
    ).fetchone() == ('{"id": 1.00, "amount": 12345678901234567890.1234567891}',)
    assert reader.execute(
        "SELECT audit.key_forms('public.price', '{\"id\": 42}')::text"
    ).fetchone() == ('{"{\\"id\\": \\"42.00\\"}","{\\"id\\": 42.00}"}',)
    with pytest.raises(errors.InvalidParameterValue, match="not a valid numeric"):
        reader.execute("SELECT * FROM audit.row_history('price', '{\"id\": \"one\"}')")
    with pytest.raises(errors.InvalidParameterValue, match=r"its primary key is \(id\)") as e:
        reader.execute("SELECT * FROM audit.row_history('price', '{\"ID\": 1}')")
    assert '{"id": "..."}' in (e.value.diag.message_hint or "")
    for bad in ("[1]", "{}", "42"):
        with pytest.raises(errors.InvalidParameterValue, match="JSON object"):
            reader.execute("SELECT * FROM audit.row_history('price', %s::jsonb)", [bad])


def test_composite_and_text_keys_match_in_both_forms(
    db: Any, app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TYPE colour AS ENUM ('red', 'blue')")
    app.execute(
        "CREATE TABLE stock (shop int, sku text, tint colour, n int, PRIMARY KEY (shop, sku, tint))"
    )
    app.execute("INSERT INTO stock VALUES (3, 'MUG-01', 'red', 1)")
    app.execute("SELECT audit.enable_tracking('stock')")
    with db.connect() as su:  # the INSERT as capture recorded it before step 6: typed JSON
        su.execute(
            "INSERT INTO audit.event (action, table_name, row_key, new_values) "
            "VALUES ('INSERT', 'public.stock', "
            "'{\"shop\": 3, \"sku\": \"MUG-01\", \"tint\": \"red\"}', "
            "'{\"shop\": 3, \"sku\": \"MUG-01\", \"tint\": \"red\", \"n\": 1}')"
        )
    app.execute("UPDATE stock SET n = 2")  # captured: {"shop": "3", ...}
    for key in (
        {"shop": 3, "sku": "MUG-01", "tint": "red"},
        {"shop": "3", "sku": "MUG-01", "tint": "red"},
        {"shop": "03", "sku": "MUG-01", "tint": "red"},
    ):
        assert [a for a, _ in history(reader, "stock", key)] == ["INSERT", "UPDATE"], key
    assert history(reader, "stock", {"shop": 3, "sku": "mug-01", "tint": "red"}) == []


def test_keys_match_as_their_output_function_prints_them_not_as_a_cast_to_text(
    db: Any, app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    """Capture prints values with their type's output function: t for true
    (true::text is 'true'), 10.0.0.1 for an inet (::text adds /32), char(4)
    padded (::text trims it). A caller's key must find them, and the typed
    form of an older event too."""
    app.execute(
        "CREATE TABLE tag (on_sale bool, addr inet, code char(4), n int, "
        "PRIMARY KEY (on_sale, addr, code))"
    )
    app.execute("INSERT INTO tag VALUES (true, '10.0.0.1', 'ab', 1)")
    app.execute("SELECT audit.enable_tracking('tag')")
    with db.connect() as su:  # the INSERT as capture recorded it before step 6: typed JSON
        su.execute(
            "INSERT INTO audit.event (action, table_name, row_key, new_values) "
            "SELECT 'INSERT', 'public.tag', to_jsonb(k), to_jsonb(t) FROM tag t, "
            "LATERAL (SELECT t.on_sale, t.addr, t.code) k"
        )
    app.execute("UPDATE tag SET n = 2")
    assert reader.execute(
        "SELECT row_key FROM audit.event WHERE table_name = 'public.tag' AND action = 'UPDATE'"
    ).fetchone() == ({"on_sale": "t", "addr": "10.0.0.1", "code": "ab  "},)
    for key in (
        {"on_sale": True, "addr": "10.0.0.1", "code": "ab"},
        {"on_sale": "true", "addr": "10.0.0.1/32", "code": "ab  "},
        {"on_sale": "t", "addr": "10.0.0.1", "code": "ab"},
    ):
        assert [a for a, _ in history(reader, "tag", key)] == ["INSERT", "UPDATE"], key
        assert reader.execute(
            "SELECT new_value FROM audit.last_change('tag', %s::jsonb, 'n')", [json.dumps(key)]
        ).fetchone() == ("2",), key


def test_last_change_refuses_columns_the_table_does_not_have_or_excludes(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE item (id int PRIMARY KEY, name text, qty int, token text)")
    app.execute("SELECT audit.enable_tracking('item', '{token}')")
    app.execute("INSERT INTO item VALUES (1, 'pen', 3, 't')")
    with pytest.raises(errors.UndefinedColumn, match="no column 'amonut'") as e:
        reader.execute("SELECT * FROM audit.last_change('public.item', '{\"id\": 1}', 'amonut')")
    assert e.value.diag.message_hint == "Its columns: id, name, qty, token."
    excluded = "token of public.item is excluded"
    with pytest.raises(errors.ObjectNotInPrerequisiteState, match=excluded):
        reader.execute("SELECT * FROM audit.last_change('item', '{\"id\": 1}', 'token')")
    # A key that has no events is an honest empty answer.
    assert reader.execute(
        "SELECT * FROM audit.last_change('item', '{\"id\": 2}', 'qty')"
    ).fetchall() == []


def test_history_follows_recorded_old_row_keys(
    db: Any, app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    """Events as capture writes them from step 6 on: text values, old_row_key."""
    app.execute("CREATE TABLE person (id int PRIMARY KEY, name text)")
    app.execute("SELECT audit.enable_tracking('person')")
    with db.connect() as su:
        su.execute(
            "INSERT INTO audit.event (occurred_at, action, table_name, row_key, old_row_key, "
            "old_values, new_values) VALUES "
            "(now() - interval '3 min', 'INSERT', 'public.person', '{\"id\": \"1\"}', NULL, NULL, "
            "'{\"id\": \"1\", \"name\": \"a\"}'), "
            "(now() - interval '2 min', 'UPDATE', 'public.person', '{\"id\": \"5\"}', "
            "'{\"id\": \"1\"}', '{\"id\": \"1\"}', '{\"id\": \"5\"}'), "
            "(now() - interval '1 min', 'UPDATE', 'public.person', '{\"id\": \"5\"}', NULL, "
            "'{\"name\": \"a\"}', '{\"name\": \"b\"}')"
        )
    assert [a for a, _ in history(reader, "person", {"id": 1})] == ["INSERT", "UPDATE"]
    assert [a for a, _ in history(reader, "person", {"id": 5})] == ["UPDATE", "UPDATE"]
    assert reader.execute(
        "SELECT new_value, action FROM audit.last_change('person', '{\"id\": 5}', 'name')"
    ).fetchall() == [("b", "UPDATE")]
    # last_change walks back to the INSERT under the old key.
    assert reader.execute(
        "SELECT audit.row_as_of('person', '{\"id\": 5}', now())"
    ).fetchone() == ({"id": "5", "name": "b"},)
    assert reader.execute(
        "SELECT audit.row_as_of('person', '{\"id\": 1}', now())"
    ).fetchone() == (None,)
    assert reader.execute(
        "SELECT audit.row_as_of('person', '{\"id\": 1}', now() - interval '150 s')"
    ).fetchone() == ({"id": "1", "name": "a"},)


def test_reversed_periods_and_thresholds_below_one_are_refused(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE item (id int PRIMARY KEY)")
    app.execute("SELECT audit.enable_tracking('item')")
    for call, pattern in [
        ("audit.failed_login_bursts(threshold => -1)", "threshold must be 1 or more"),
        ("audit.failed_login_bursts(threshold => 0)", "threshold must be 1 or more"),
        ("audit.failed_login_bursts(\"window\" => '-5 minutes')", "window must be a positive"),
        ("audit.failed_login_bursts(\"window\" => '0')", "window must be a positive"),
        (
            "audit.failed_login_bursts(since => now(), \"until\" => now() - interval '1 day')",
            "reversed",
        ),
        ("audit.column_changes('item', since => now(), \"until\" => '2000-01-01')", "reversed"),
    ]:
        with pytest.raises(errors.InvalidParameterValue, match=pattern):
            reader.execute(f"SELECT * FROM {call}")
    assert reader.execute("SELECT count(*) FROM audit.recent_failed_login_bursts").fetchone() == (
        0,
    )


def _function_plans(conn: psycopg.Connection, query: str) -> list[str]:
    """The plans of every statement a query runs inside functions (auto_explain)."""
    plans: list[str] = []
    conn.add_notice_handler(lambda d: plans.append(d.message_primary or ""))
    conn.execute("LOAD 'auto_explain'")
    conn.execute("SET auto_explain.log_min_duration = 0")
    conn.execute("SET auto_explain.log_nested_statements = on")
    conn.execute("SET auto_explain.log_level = notice")
    conn.execute(query).fetchall()
    conn.execute("SET auto_explain.log_min_duration = -1")
    return [p for p in plans if "Query Text" in p]


def test_investigations_read_rows_through_row_ref_on_a_large_log(db: Any) -> None:
    """100k events of 5,000 rows: a row's events come from event_row_ref_idx,
    never from a sequential scan of the log."""
    with db.connect() as su:
        su.execute("CREATE TABLE public.shop_order (id int PRIMARY KEY, qty int)")
        su.execute("SELECT audit.enable_tracking('public.shop_order')")
        su.execute(
            "INSERT INTO audit.event (occurred_at, action, table_name, row_key, old_row_key, "
            "old_values, new_values) "
            "SELECT now() - make_interval(secs => 100000 - g), "
            "CASE WHEN g <= 5000 THEN 'INSERT' ELSE 'UPDATE' END, 'public.shop_order', "
            "jsonb_build_object('id', (g % 5000)::text), NULL, "
            "CASE WHEN g > 5000 THEN jsonb_build_object('qty', (g - 1)::text) END, "
            "jsonb_build_object('qty', g::text) FROM generate_series(1, 100000) g"
        )
        su.execute("ANALYZE audit.event")
        busy = {
            r[0].removeprefix("audit.")
            for r in su.execute("SELECT DISTINCT tableoid::regclass::text FROM audit.event")
        }
        for query in (
            "SELECT * FROM audit.last_change('shop_order', '{\"id\": 42}', 'qty')",
            "SELECT audit.row_as_of('shop_order', '{\"id\": 42}', now() - interval '1 hour')",
            "SELECT * FROM audit.column_changes('shop_order', '{\"id\": 42}', "
            "now() - interval '1 day')",
        ):
            plans = _function_plans(su, query)
            lookups = [p for p in plans if "audit.row_ref(e.table_name, e.row_key)" in p]
            assert lookups, (query, plans)
            for plan in lookups:
                assert "event_row_ref_idx" in plan or "row_ref_idx" in plan, plan
            for plan in plans:
                for part in busy:
                    assert f"Seq Scan on {part} " not in plan, plan
