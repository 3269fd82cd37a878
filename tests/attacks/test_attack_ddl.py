"""Threat 4: DDL that changes or hides tracked data.

Every DDL a table's owner (the app) can run that changes or hides a tracked
table's data leaves a DDL event (or TRACKING_*) carrying the statement, or is
refused; a superuser's is recorded the same way (detected, not blocked);
other roles may not run it at all. Excluded columns stay out of the log
through renames, whatever the names become.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from attack_support import (
    GUARDED,
    NO_RIGHTS,
    as_recorded,
    assert_refused,
    attempt,
    connect_as,
    watch,
)
from pgtest import Database

SECRET = "S3CRET-4f1b"  # typed into the excluded column; must never reach the log


@pytest.fixture
def acct(fresh: Database, roles: dict[str, str]) -> Database:
    """public.acct, tracked with secret excluded, holding one row."""
    with fresh.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, qty int, secret text, "
                     "note text)")
        conn.execute("SELECT audit.enable_tracking('public.acct', '{secret}')")
        conn.execute("INSERT INTO public.acct VALUES (1, 10, %s, 'n')", [SECRET])
    return fresh


def ddl_events(events: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    return [(e["action"], e["table_name"], (e["detail"] or {}).get("command_tag"),
             (e["detail"] or {}).get("statement")) for e in events]


def run(conn: psycopg.Connection, statement: str) -> None:
    conn.execute(statement)


# Each: what the owner runs, and the events it must leave (action, table,
# command tag), each carrying the statement.
RECORDED = {
    "alter_type_using": (
        "ALTER TABLE public.acct ALTER COLUMN qty TYPE bigint USING qty * 100",
        [("DDL", "public.acct", "ALTER TABLE")]),
    "set_unlogged": (
        "ALTER TABLE public.acct SET UNLOGGED",
        [("DDL", "public.acct", "ALTER TABLE")]),
    "drop_column": (
        "ALTER TABLE public.acct DROP COLUMN note",
        [("DDL", "public.acct", "ALTER TABLE")]),
    "add_column_with_default": (
        "ALTER TABLE public.acct ADD COLUMN flag int DEFAULT 7",
        [("DDL", "public.acct", "ALTER TABLE")]),
    "drop_table": (
        "DROP TABLE public.acct",
        [("DDL", "public.acct", "DROP TABLE")]),
    "drop_owned": (
        "DROP OWNED BY CURRENT_USER",
        [("DDL", "public.acct", "DROP OWNED")]),
    "rename_table": (
        "ALTER TABLE public.acct RENAME TO acct_old",
        [("DDL", "public.acct_old", "ALTER TABLE")]),
    "set_schema": (
        "CREATE SCHEMA IF NOT EXISTS elsewhere; ALTER TABLE public.acct SET SCHEMA elsewhere",
        [("DDL", "elsewhere.acct", "ALTER TABLE")]),
    "truncate": (
        "TRUNCATE public.acct",
        [("TRUNCATE", "public.acct", None)]),
}


@pytest.mark.parametrize("who", ["app", "superuser"])
@pytest.mark.parametrize("case", sorted(RECORDED))
def test_ddl_that_changes_or_hides_tracked_data_is_recorded_with_its_statement(
    acct: Database, roles: dict[str, str], case: str, who: str
) -> None:
    statement, expected = RECORDED[case]
    if who == "superuser" and case == "drop_owned":
        statement = f"DROP OWNED BY {roles['app']}"
    attacker = who if who == "superuser" else roles[who]
    with watch(acct, attacker) as w, connect_as(acct, roles, who) as conn:
        run(conn, statement)
    found = [e for e in ddl_events(w.new_events) if e[0] != "TRACKING_DISABLED"]
    assert [e[:3] for e in found][: len(expected)] == expected
    last_statement = statement.split("; ")[-1]
    assert all(e[3] in (as_recorded(statement), as_recorded(last_statement))
               for e in found if e[0] == "DDL"), found
    assert SECRET not in str(w.new_events)
    if case in ("rename_table", "set_schema"):
        assert w.new_events[0]["detail"]["previous_name"] == "public.acct"


@pytest.mark.parametrize("attacker", ["reader", "stranger", "ownermember"])
def test_other_roles_may_run_none_of_it(
    acct: Database, roles: dict[str, str], attacker: str
) -> None:
    with watch(acct, roles[attacker]) as w, acct.connect(roles[attacker]) as conn:
        for case, (statement, _) in sorted(RECORDED.items()):
            if case in ("drop_owned", "set_schema", "truncate"):
                continue
            assert_refused(attempt(conn, statement), NO_RIGHTS, statement)
        for statement in [
            "ALTER TABLE public.acct DROP CONSTRAINT acct_pkey",
            "CREATE TABLE public.kid () INHERITS (public.acct)",
            "ALTER TABLE public.acct RENAME COLUMN secret TO notes",
        ]:
            assert_refused(attempt(conn, statement), NO_RIGHTS, statement)
    assert w.new_events == []


def test_the_rename_swap_is_recorded_step_by_step(acct: Database, roles: dict[str, str]) -> None:
    # Rename the tracked table away, put an untracked one in its place, drop
    # the original: the rename and the drop are events, the newcomer is not
    # tracked (audit.tracked_table says so).
    with watch(acct, roles["app"]) as w, acct.connect(roles["app"]) as conn:
        with conn.transaction():
            conn.execute("ALTER TABLE public.acct RENAME TO acct_gone")
            conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, qty int, secret text, "
                         "note text)")
            conn.execute("INSERT INTO public.acct SELECT * FROM public.acct_gone")
            conn.execute("UPDATE public.acct SET qty = 999")
            conn.execute("DROP TABLE public.acct_gone")
        tracked = conn.execute("SELECT table_name FROM audit.tracked_table "
                               "WHERE table_name LIKE 'public.acct%'").fetchall()
    assert tracked == []
    # The drop names the table as the log knew it when the transaction began
    # (the rename is brought up to date at COMMIT); its object is the renamed one.
    assert [e[:4] for e in ddl_events(w.new_events)] == [
        ("DDL", "public.acct_gone", "ALTER TABLE", "ALTER TABLE public.acct RENAME TO acct_gone"),
        ("DDL", "public.acct", "DROP TABLE", "DROP TABLE public.acct_gone")]
    assert w.new_events[1]["detail"]["object_identity"] == "public.acct_gone"


def test_drop_schema_cascade_records_each_tracked_table(
    fresh: Database, roles: dict[str, str]
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute("CREATE SCHEMA shop")
        for table in ("a", "b"):
            conn.execute(f"CREATE TABLE shop.{table} (id int PRIMARY KEY)")
            conn.execute(f"SELECT audit.enable_tracking('shop.{table}')")
        conn.execute("CREATE TABLE shop.untracked (id int PRIMARY KEY)")
        with watch(fresh, roles["app"]) as w:
            conn.execute("DROP SCHEMA shop CASCADE")
    assert sorted(e[:4] for e in ddl_events(w.new_events)) == [
        ("DDL", "shop.a", "DROP SCHEMA", "DROP SCHEMA shop CASCADE"),
        ("DDL", "shop.b", "DROP SCHEMA", "DROP SCHEMA shop CASCADE")]


PARTITIONED = """
CREATE TABLE public.m (id int PRIMARY KEY, v text, secret text) PARTITION BY RANGE (id);
CREATE TABLE public.m1 PARTITION OF public.m FOR VALUES FROM (0) TO (100);
SELECT audit.enable_tracking('public.m', '{secret}');
"""


def capture_trigger_count(conn: psycopg.Connection, table: str) -> int:
    row = conn.execute("SELECT count(*) FROM pg_trigger WHERE tgrelid = %s::regclass "
                       "AND tgfoid = 'audit.capture'::regproc AND tgenabled = 'A'",
                       [table]).fetchone()
    return int(row[0]) if row else 0


@pytest.mark.parametrize("who", ["app", "superuser"])
def test_partitions_created_or_attached_later_are_tracked_in_the_same_command(
    fresh: Database, roles: dict[str, str], who: str
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute(PARTITIONED)
        conn.execute("CREATE TABLE public.m3 (id int PRIMARY KEY, v text, secret text)")
        conn.execute(f"INSERT INTO public.m3 VALUES (250, 'was there', '{SECRET}')")
    attacker = who if who == "superuser" else roles[who]
    with watch(fresh, attacker) as w, connect_as(fresh, roles, who) as conn:
        with conn.transaction():
            conn.execute("CREATE TABLE public.m2 PARTITION OF public.m "
                         "FOR VALUES FROM (100) TO (200)")
            assert capture_trigger_count(conn, "public.m2") == 4  # before COMMIT
            conn.execute("ALTER TABLE public.m ATTACH PARTITION public.m3 "
                         "FOR VALUES FROM (200) TO (300)")
            assert capture_trigger_count(conn, "public.m3") == 4
            conn.execute("CREATE TABLE public.m4 PARTITION OF public.m "
                         "FOR VALUES FROM (300) TO (400) PARTITION BY RANGE (id)")
            conn.execute("CREATE TABLE public.m41 PARTITION OF public.m4 "
                         "FOR VALUES FROM (300) TO (350)")
            assert capture_trigger_count(conn, "public.m41") == 4
        for part, key in (("m2", 101), ("m3", 201), ("m41", 301)):
            conn.execute(f"INSERT INTO public.{part} VALUES (%s, 'x', %s)", [key, SECRET])
            conn.execute(f"UPDATE public.{part} SET v = 'y' WHERE id = %s", [key])
    data = [(e["action"], e["table_name"], e["row_key"]) for e in w.new_events
            if e["action"] in ("INSERT", "UPDATE")]
    assert data == [(a, "public.m", {"id": str(k)}) for k in (101, 201, 301)
                    for a in ("INSERT", "UPDATE")]
    attach = [e for e in ddl_events(w.new_events) if e[3] and "ATTACH" in e[3]]
    assert attach and attach[0][:3] == ("DDL", "public.m", "ALTER TABLE")
    assert SECRET not in str(w.new_events)


@pytest.mark.parametrize("concurrently", [False, True])
def test_a_detached_partition_is_recorded_and_stays_tracked_on_its_own(
    fresh: Database, roles: dict[str, str], concurrently: bool
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute(PARTITIONED)
        conn.execute("INSERT INTO public.m VALUES (1, 'a', 's')")
        with watch(fresh, roles["app"]) as w:
            detach = ("ALTER TABLE public.m DETACH PARTITION public.m1"
                      + (" CONCURRENTLY" if concurrently else ""))
            conn.execute(detach)
            conn.execute("UPDATE public.m1 SET v = 'after' WHERE id = 1")
            conn.execute("DELETE FROM public.m1")
    assert [e[:3] for e in ddl_events(w.new_events)] == [
        ("DDL", "public.m", "ALTER TABLE"), ("TRACKING_ENABLED", "public.m1", None),
        ("UPDATE", "public.m1", None), ("DELETE", "public.m1", None)]
    assert ddl_events(w.new_events)[0][3] == detach


@pytest.mark.parametrize("statement", [
    "CREATE TABLE public.kid () INHERITS (public.acct)",
    "CREATE TABLE public.other (id int PRIMARY KEY, qty int, secret text, note text); "
    "ALTER TABLE public.other INHERIT public.acct",
    "CREATE TABLE public.parent (id int, qty int, secret text, note text); "
    "ALTER TABLE public.acct INHERIT public.parent",
    "CREATE TABLE public.parent2 (id int); "
    "CREATE TABLE public.kid2 (id int PRIMARY KEY, qty int, secret text, note text) "
    "INHERITS (public.parent2, public.acct)",
])
def test_inheritance_children_of_tracked_tables_are_refused(
    acct: Database, roles: dict[str, str], statement: str
) -> None:
    with watch(acct, roles["app"]) as w, acct.connect(roles["app"]) as conn:
        error = attempt(conn, statement)
    assert_refused(error, r"^pg-audit: \S+ may not change inheritance between .+: "
                          r"audit objects and capture triggers are guarded$", statement)
    assert w.new_events == []


def test_a_superusers_inheritance_child_of_a_tracked_table_is_recorded(
    acct: Database, roles: dict[str, str]
) -> None:
    with watch(acct, "superuser") as w, acct.connect() as conn:
        error = attempt(conn, "CREATE TABLE public.kid () INHERITS (public.acct)")
    # A superuser's child is allowed and recorded (docs/security.md).
    assert error is None
    assert [e[:2] for e in ddl_events(w.new_events)] == [("DDL", "public.acct")]


@pytest.mark.parametrize("statement", [
    "ALTER TABLE public.acct DROP CONSTRAINT acct_pkey, ADD PRIMARY KEY (qty)",
    "ALTER TABLE public.acct DROP CONSTRAINT acct_pkey",
    "ALTER TABLE public.acct DROP CONSTRAINT acct_pkey CASCADE; "
    "ALTER TABLE public.acct ADD PRIMARY KEY (id, qty)",
    "CREATE UNIQUE INDEX acct_qty ON public.acct (qty); ALTER TABLE public.acct "
    "DROP CONSTRAINT acct_pkey, ADD CONSTRAINT acct_pkey PRIMARY KEY USING INDEX acct_qty",
])
def test_a_primary_key_swap_is_refused(acct: Database, roles: dict[str, str],
                                       statement: str) -> None:
    with watch(acct, roles["app"]) as w, acct.connect(roles["app"]) as conn:
        error = attempt(conn, statement)
        assert_refused(error, r"^pg-audit: \S+ may not change the primary key of tracked "
                              r"table public\.acct: audit objects and capture triggers are "
                              r"guarded$", statement)
    assert w.new_events == []


def test_a_superusers_primary_key_swap_is_recorded_and_capture_follows_the_new_key(
    acct: Database, roles: dict[str, str]
) -> None:
    with watch(acct, "superuser") as w, acct.connect() as conn:
        conn.execute("ALTER TABLE public.acct DROP CONSTRAINT acct_pkey, ADD PRIMARY KEY (qty)")
        conn.execute("UPDATE public.acct SET note = 'after'")
    # One DDL event for the statement, one for the capture triggers the guard
    # made again for the new key, then the update under its new key.
    assert {e[:4] for e in ddl_events(w.new_events)[:-1]} == {
        ("DDL", "public.acct", "ALTER TABLE",
         "ALTER TABLE public.acct DROP CONSTRAINT acct_pkey, ADD PRIMARY KEY (qty)")}
    assert w.new_events[-1]["action"] == "UPDATE"
    assert w.new_events[-1]["row_key"] == {"qty": "10"}


# Renames of the excluded column (a Django field rename does this), alone, in
# a chain, and swapped with another column's name: its values never reach the
# log, in values or in statement text.
RENAMES = {
    "rename": ["ALTER TABLE public.acct RENAME COLUMN secret TO notes_{n}"],
    "chain": ["ALTER TABLE public.acct RENAME COLUMN secret TO a_{n}",
              "ALTER TABLE public.acct RENAME COLUMN a_{n} TO b_{n}"],
    "swap": ["ALTER TABLE public.acct RENAME COLUMN secret TO tmp_{n}",
             "ALTER TABLE public.acct RENAME COLUMN note TO secret",
             "ALTER TABLE public.acct RENAME COLUMN tmp_{n} TO note"],
    "in_one_transaction": ["BEGIN; ALTER TABLE public.acct RENAME COLUMN secret TO c_{n}; "
                           "ALTER TABLE public.acct RENAME COLUMN note TO secret; COMMIT"],
}


@pytest.mark.parametrize("who", ["app", "superuser"])
@pytest.mark.parametrize("case", sorted(RENAMES))
def test_an_excluded_column_stays_out_of_the_log_through_renames(
    acct: Database, roles: dict[str, str], case: str, who: str
) -> None:
    attacker = who if who == "superuser" else roles[who]
    with watch(acct, attacker) as w, connect_as(acct, roles, who) as conn:
        for statement in RENAMES[case]:
            conn.execute(statement.format(n=1))
        name = conn.execute(
            "SELECT attname FROM pg_attribute WHERE attrelid = 'public.acct'::regclass "
            "AND attnum = 3").fetchone()
        assert name
        column = psycopg.sql.Identifier(name[0])
        # Written with and without application context, through literals and
        # parameters, in INSERT, UPDATE and DELETE.
        conn.execute(psycopg.sql.SQL("INSERT INTO public.acct (id, qty, {}) VALUES (2, 1, '{}')")
                     .format(column, psycopg.sql.SQL(SECRET)))
        conn.execute(psycopg.sql.SQL("UPDATE public.acct SET {} = %s, qty = qty + 1")
                     .format(column), [SECRET + "-2"])
        with conn.transaction():
            conn.execute("SELECT set_config('audit.actor_id', '42', true)")
            conn.execute(psycopg.sql.SQL("UPDATE public.acct SET {} = %s, qty = qty + 1")
                         .format(column), [SECRET + "-3"])
        conn.execute("DELETE FROM public.acct")
    assert SECRET not in str(w.new_events)
    assert [e["action"] for e in w.new_events if e["action"] != "DDL"] == [
        "INSERT", "UPDATE", "UPDATE", "UPDATE", "UPDATE", "DELETE", "DELETE"]
    assert {e["detail"]["command_tag"] for e in w.new_events if e["action"] == "DDL"} == {
        "ALTER TABLE"}


TYPE_DDL = {
    "enum_rename_value": ("CREATE TYPE public.state AS ENUM ('unpaid', 'paid')", "'unpaid'",
                          "ALTER TYPE public.state RENAME VALUE 'unpaid' TO 'paid_in_cash'",
                          "paid_in_cash"),
    "composite_drop_attribute": ("CREATE TYPE public.state AS (code int, label text)",
                                 "'(1,unpaid)'", "ALTER TYPE public.state DROP ATTRIBUTE label",
                                 "(1)"),
}


@pytest.mark.parametrize("case", sorted(TYPE_DDL))
def test_ddl_of_a_type_used_by_a_tracked_table_is_recorded(
    fresh: Database, roles: dict[str, str], case: str
) -> None:
    create, value, alter, after = TYPE_DDL[case]
    with fresh.connect(roles["app"]) as conn:
        conn.execute(create)
        conn.execute("CREATE TABLE public.invoice (id int PRIMARY KEY, state public.state)")
        conn.execute("SELECT audit.enable_tracking('public.invoice')")
        conn.execute(f"INSERT INTO public.invoice VALUES (1, {value})")
        with watch(fresh, roles["app"]) as w:
            conn.execute(alter)
        assert conn.execute("SELECT format('%s', state) FROM public.invoice").fetchone() == (
            after,)
    assert [e[:2] for e in ddl_events(w.new_events)] == [("DDL", "public.invoice")]


@pytest.mark.parametrize("kind", ["TYPE", "DOMAIN"])
def test_dropping_a_type_that_drops_a_tracked_column_is_recorded(
    fresh: Database, roles: dict[str, str], kind: str
) -> None:
    create = ("CREATE TYPE public.c AS ENUM ('red')" if kind == "TYPE"
              else "CREATE DOMAIN public.c AS text")
    with fresh.connect(roles["app"]) as conn:
        conn.execute(create)
        conn.execute("CREATE TABLE public.paint (id int PRIMARY KEY, c public.c, v text)")
        conn.execute("SELECT audit.enable_tracking('public.paint')")
        conn.execute("INSERT INTO public.paint VALUES (1, 'red', 'x')")
        with watch(fresh, roles["app"]) as w:
            error = attempt(conn, f"DROP {kind} public.c CASCADE")
    assert error is None  # the type's owner may drop it; the column goes on record
    assert [e[:2] for e in ddl_events(w.new_events)] == [("DDL", "public.paint")]


def test_attaching_a_tracked_table_under_an_untracked_parent_is_refused_or_recorded(
    acct: Database, roles: dict[str, str]
) -> None:
    with acct.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.hide (id int PRIMARY KEY, qty int, secret text, "
                     "note text) PARTITION BY RANGE (id)")
        with watch(acct, roles["app"]) as w:
            error = attempt(conn, "ALTER TABLE public.hide ATTACH PARTITION public.acct "
                                  "FOR VALUES FROM (0) TO (1000)")
            if error is None:
                conn.execute("UPDATE public.hide SET qty = 0")
                conn.execute("DELETE FROM public.hide")
    assert_refused(error, GUARDED)  # docs/security.md: refused, nothing written
    assert w.new_events == []


def test_an_unquoted_value_of_an_excluded_column_never_reaches_the_statement_text(
    fresh: Database, roles: dict[str, str]
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.staff (id int PRIMARY KEY, name text, pin int, "
                     "salary numeric, vip boolean)")
        conn.execute("SELECT audit.enable_tracking('public.staff', '{pin,salary,vip}')")
        with watch(fresh, roles["app"]) as w:
            conn.execute("INSERT INTO public.staff VALUES (1, 'ann', 424242, 98765.43, true)")
            conn.execute("UPDATE public.staff SET name = 'bob', pin = 171717 WHERE id = 1")
            conn.execute("UPDATE public.staff SET name = 'cy', vip = FALSE WHERE id = 1")
    text = str(w.new_events)
    assert "424242" not in text and "98765.43" not in text and "171717" not in text, text
    statements = [e["detail"]["statement"] for e in w.new_events]
    assert not any(re.search(r"(?i)\b(true|false)\b", s) for s in statements), statements
    assert statements[-1] == "UPDATE public.staff SET name = ?, vip = ? WHERE id = ?"


def test_a_secret_never_reaches_the_log_through_another_tables_statement_text(
    acct: Database, roles: dict[str, str]
) -> None:
    with acct.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.plain (id int PRIMARY KEY, v text)")
        conn.execute("SELECT audit.enable_tracking('public.plain')")
        with watch(acct, roles["app"]) as w:
            conn.execute(f"UPDATE public.acct SET secret = '{SECRET}-multi', qty = 11; "
                         "INSERT INTO public.plain VALUES (1, 'x')")
    assert [e["action"] for e in w.new_events] == ["UPDATE", "INSERT"]
    assert SECRET not in str(w.new_events)
