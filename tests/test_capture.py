"""Capture semantics of audit.enable_tracking, as CONTRACT.md states them."""

from __future__ import annotations

import subprocess
from typing import Any

import psycopg
import psycopg.sql
import pytest
from pgtest import Database, printed, reset_public_schema

# One database for the module, the public schema emptied before each test, and
# every helper reading only the events written since: CREATE DATABASE per test
# was most of this file's run time.
_since = [0]


@pytest.fixture(scope="module")
def db(module_db: Database) -> Database:
    return module_db


@pytest.fixture(autouse=True)
def _fresh_public_schema(db: Database, roles: dict[str, str]) -> None:
    _since[0] = reset_public_schema(db, roles)


def events(db: Database, action: str | None = None) -> list[dict[str, Any]]:
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT to_jsonb(e) FROM audit.event e WHERE (%s::text IS NULL OR action = %s) "
            "AND id > %s ORDER BY id",
            [action, action, _since[0]],
        ).fetchall()
    return [r[0] for r in rows]


def data_events(db: Database) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT action, table_name, row_key, old_values, new_values FROM audit.event "
            "WHERE action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE') AND id > %s ORDER BY id",
            [_since[0]],
        ).fetchall()


@pytest.fixture
def app(db: Database, roles: dict[str, str]) -> psycopg.Connection:
    """The application's connection, owning public.account (tracked, secret excluded)."""
    conn = db.connect(roles["app"])
    conn.execute("CREATE TABLE public.account (id int PRIMARY KEY, name text, secret text, n int)")
    conn.execute("SELECT audit.enable_tracking('public.account', exclude_columns => '{secret}')")
    return conn


def test_each_row_of_insert_update_delete_is_one_event(
    db: Database, app: psycopg.Connection
) -> None:
    app.execute("INSERT INTO account VALUES "
                "(1, 'a', 's1', 1), (2, 'b', 's2', 2), (3, 'c', 's3', 3)")
    app.execute("UPDATE account SET n = n + 10 WHERE id <= 2")
    app.execute("DELETE FROM account WHERE id = 3")
    assert data_events(db) == [
        ("INSERT", "public.account",
         printed({"id": 1}), None, printed({"id": 1, "name": "a", "n": 1})),
        ("INSERT", "public.account",
         printed({"id": 2}), None, printed({"id": 2, "name": "b", "n": 2})),
        ("INSERT", "public.account",
         printed({"id": 3}), None, printed({"id": 3, "name": "c", "n": 3})),
        ("UPDATE", "public.account", printed({"id": 1}), printed({"n": 1}), printed({"n": 11})),
        ("UPDATE", "public.account", printed({"id": 2}), printed({"n": 2}), printed({"n": 12})),
        ("DELETE", "public.account",
         printed({"id": 3}), printed({"id": 3, "name": "c", "n": 3}), None),
    ]


def test_update_that_changes_nothing_or_only_excluded_columns_writes_no_event(
    db: Database, app: psycopg.Connection
) -> None:
    app.execute("INSERT INTO account VALUES (1, 'a', 's1', 1), (2, NULL, 's2', NULL)")
    app.execute("UPDATE account SET name = name, n = n")  # NULL = NULL counts as unchanged too
    app.execute("UPDATE account SET secret = 'rotated'")
    app.execute("UPDATE account SET n = n WHERE id = 99")
    assert [e[0] for e in data_events(db)] == ["INSERT", "INSERT"]


def test_excluded_columns_never_reach_the_log(db: Database, app: psycopg.Connection) -> None:
    app.execute("INSERT INTO account VALUES (1, 'a', 'hunter2', 1)")
    app.execute("UPDATE account SET secret = 'hunter3', name = 'b'")
    app.execute("DELETE FROM account")
    with db.connect() as conn:
        (dump,) = conn.execute("SELECT string_agg(to_jsonb(e)::text, ' ') FROM audit.event e "
                               "WHERE id > %s", [_since[0]]).fetchone()
    assert "hunter" not in dump
    for _, _, key, old, new in data_events(db):
        assert "secret" not in {**key, **(old or {}), **(new or {})}
    assert [e[0] for e in data_events(db)] == ["INSERT", "UPDATE", "DELETE"]


def test_row_key_is_the_composite_primary_key(db: Database, roles: dict[str, str]) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.line (order_id int, pos int, sku text, "
                     "PRIMARY KEY (pos, order_id))")
        conn.execute("SELECT audit.enable_tracking('public.line')")
        conn.execute("INSERT INTO line VALUES (7, 1, 'x'), (7, 2, 'y')")
        conn.execute("UPDATE line SET sku = 'z' WHERE pos = 2")
    assert [(e[0], e[2]) for e in data_events(db)] == [
        ("INSERT", printed({"order_id": 7, "pos": 1})),
        ("INSERT", printed({"order_id": 7, "pos": 2})),
        ("UPDATE", printed({"order_id": 7, "pos": 2})),
    ]


def test_key_change_is_one_update_with_the_new_key_and_the_old_key_in_old_values(
    db: Database, app: psycopg.Connection
) -> None:
    app.execute("INSERT INTO account VALUES (1, 'a', 's', 1)")
    app.execute("UPDATE account SET id = 5, name = 'e'")
    assert data_events(db)[1:] == [
        ("UPDATE", "public.account",
         printed({"id": 5}), printed({"id": 1, "name": "a"}), printed({"id": 5, "name": "e"})),
    ]


def test_key_swap_in_one_statement_pairs_each_old_row_with_its_own_new_row(
    db: Database, roles: dict[str, str]
) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.slot (id int PRIMARY KEY DEFERRABLE, label text)")
        conn.execute("SELECT audit.enable_tracking('public.slot')")
        conn.execute("INSERT INTO slot VALUES (1, 'one'), (2, 'two')")
        conn.execute("UPDATE slot SET id = 3 - id")
        conn.execute("INSERT INTO slot SELECT g, 'r' || g FROM generate_series(3, 1002) g")
        # Many rows swap keys and change a column tied to the old key.
        conn.execute("UPDATE slot SET id = 1005 - id, label = label || '>' || (1005 - id) "
                     "WHERE id >= 3")
    updates = [e for e in data_events(db) if e[0] == "UPDATE"]
    assert updates[:2] == [
        ("UPDATE", "public.slot", printed({"id": 2}), printed({"id": 1}), printed({"id": 2})),
        ("UPDATE", "public.slot", printed({"id": 1}), printed({"id": 2}), printed({"id": 1})),
    ]
    bulk = updates[2:]
    assert len(bulk) == 1000
    for _, _, key, old, new in bulk:
        assert key == {"id": new["id"]}
        assert int(new["id"]) == 1005 - int(old["id"])
        assert old["label"] == f"r{old['id']}"
        assert new["label"] == f"r{old['id']}>{new['id']}"


def test_truncate_is_one_event(db: Database, app: psycopg.Connection) -> None:
    app.execute("INSERT INTO account VALUES (1, 'a', 's', 1)")
    app.execute("TRUNCATE account")
    assert data_events(db)[-1] == ("TRUNCATE", "public.account", None, None, None)


def test_rolled_back_changes_leave_no_events(db: Database, app: psycopg.Connection) -> None:
    with pytest.raises(ZeroDivisionError):
        with app.transaction():
            app.execute("INSERT INTO account VALUES (1, 'a', 's', 1)")
            raise ZeroDivisionError
    with app.transaction():
        app.execute("INSERT INTO account VALUES (2, 'b', 's', 2)")
        with pytest.raises(ZeroDivisionError):
            with app.transaction():  # a savepoint
                app.execute("UPDATE account SET n = 20")
                app.execute("DELETE FROM account")
                raise ZeroDivisionError
    assert [e[2] for e in data_events(db)] == [printed({"id": 2})]


def test_a_change_and_its_event_commit_together(
    db: Database, app: psycopg.Connection, roles: dict[str, str]
) -> None:
    with app.transaction():
        app.execute("INSERT INTO account VALUES (1, 'a', 's', 1)")
        assert len(data_events(db)) == 0  # read on another connection
    assert len(data_events(db)) == 1
    # A change that fails at commit (deferred constraint) takes its event with it.
    app.execute("CREATE TABLE public.unique_later "
                "(id int PRIMARY KEY DEFERRABLE INITIALLY DEFERRED)")
    app.execute("SELECT audit.enable_tracking('public.unique_later')")
    with pytest.raises(psycopg.errors.UniqueViolation):
        with app.transaction():
            app.execute("INSERT INTO unique_later VALUES (1), (1)")
    assert [e[1] for e in data_events(db)] == ["public.account"]


def test_enabling_twice_is_harmless(db: Database, app: psycopg.Connection) -> None:
    def triggers() -> list[tuple[Any, ...]]:
        return app.execute("SELECT oid, tgname, tgenabled, tgargs FROM pg_trigger "
                           "WHERE tgrelid = 'account'::regclass ORDER BY tgname").fetchall()
    before = triggers()
    app.execute("SELECT audit.enable_tracking('public.account', exclude_columns => '{secret}')")
    assert triggers() == before and len(before) == 4
    enabled = events(db, "TRACKING_ENABLED")
    assert [e["detail"] for e in enabled] == [{"exclude_columns": ["secret"]}]
    app.execute("INSERT INTO account VALUES (1, 'a', 's', 1)")
    assert len(data_events(db)) == 1


def test_disable_then_enable_captures_again(db: Database, app: psycopg.Connection) -> None:
    app.execute("SELECT audit.disable_tracking('public.account')")
    app.execute("SELECT audit.disable_tracking('public.account')")  # twice: one event
    app.execute("INSERT INTO account VALUES (1, 'unseen', 's', 1)")
    app.execute("SELECT audit.enable_tracking('public.account', exclude_columns => '{secret, n}')")
    app.execute("INSERT INTO account VALUES (2, 'seen', 's', 2)")
    assert [(e["action"], e["new_values"]) for e in events(db)] == [
        ("TRACKING_ENABLED", None),
        ("TRACKING_DISABLED", None),
        ("TRACKING_ENABLED", None),
        ("INSERT", printed({"id": 2, "name": "seen"})),
    ]
    assert events(db, "TRACKING_ENABLED")[-1]["detail"] == {"exclude_columns": ["n", "secret"]}


@pytest.mark.parametrize(
    ("ddl", "exclude", "sqlstate", "message"),
    [
        ("CREATE TABLE public.t (a int, b text)", "{}", "42P16",
         "pg-audit: public.t has no primary key"),
        ("CREATE TABLE public.t (a int PRIMARY KEY, b text)", "{a}", "22023",
         "pg-audit: primary key column a of public.t cannot be excluded"),
        ("CREATE TABLE public.t (a int PRIMARY KEY, b text)", "{b,nope}", "42703",
         "pg-audit: public.t has no column nope"),
        ("CREATE VIEW public.t AS SELECT 1 AS a", "{}", "42809",
         "pg-audit: public.t is not a table"),
    ],
)
def test_enable_tracking_refuses_what_it_cannot_capture(
    db: Database, roles: dict[str, str], ddl: str, exclude: str, sqlstate: str, message: str
) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute(ddl)
        with pytest.raises(psycopg.Error) as caught:
            conn.execute("SELECT audit.enable_tracking('public.t', exclude_columns => %s)",
                         [exclude])
        assert caught.value.sqlstate == sqlstate
        assert caught.value.diag.message_primary == message
    assert events(db) == []


def test_only_the_table_owner_may_enable_tracking(db: Database, roles: dict[str, str]) -> None:
    with db.connect() as conn:
        conn.execute("CREATE TABLE public.t (a int PRIMARY KEY)")
        conn.execute(f"GRANT ALL ON public.t TO {roles['app']}")
    with db.connect(roles["app"]) as conn:
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match="only the owner of public.t may change its tracking"):
            conn.execute("SELECT audit.enable_tracking('public.t')")
    assert events(db) == []


def test_changes_made_in_psql_are_captured(
    db: Database, app: psycopg.Connection, pg_server: Any, roles: dict[str, str]
) -> None:
    script = (
        "INSERT INTO account VALUES (1, 'a', 's', 1);\n"
        "UPDATE account SET name = 'b';\n"
        "DELETE FROM account;\n"
    )
    subprocess.run(
        [pg_server.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1"],
        input=script, text=True, check=True, capture_output=True,
        env=pg_server.libpq_env(db.name, roles["app"]),
    )
    rows = [(e["action"], e["db_role"], e["application_name"]) for e in events(db)[1:]]
    assert rows == [(a, roles["app"], "psql") for a in ("INSERT", "UPDATE", "DELETE")]


def test_multi_row_statements_of_every_kind(db: Database, app: psycopg.Connection) -> None:
    app.execute("INSERT INTO account SELECT g, 'n' || g, 's', g FROM generate_series(1, 500) g")
    app.execute("UPDATE account a SET n = a.n * 2 FROM generate_series(1, 500, 2) g WHERE a.id = g")
    app.execute("INSERT INTO account VALUES (1, 'x', 's', 1), (999, 'y', 's', 9) "
                "ON CONFLICT (id) DO UPDATE SET name = excluded.name")
    app.execute("MERGE INTO account a USING (VALUES (2), (1000)) v(id) ON a.id = v.id "
                "WHEN MATCHED THEN DELETE WHEN NOT MATCHED THEN INSERT VALUES (v.id, 'm', 's', 0)")
    app.execute("WITH gone AS (DELETE FROM account WHERE id > 490 AND id <= 500 RETURNING id) "
                "UPDATE account SET name = 'cte' WHERE id = 3")
    counts: dict[str, int] = {}
    for action, *_ in data_events(db):
        counts[action] = counts.get(action, 0) + 1
    assert counts == {"INSERT": 500 + 1 + 1, "UPDATE": 250 + 1 + 1, "DELETE": 1 + 10}
    upsert = [e for e in data_events(db) if e[0] == "UPDATE" and e[2] == printed({"id": 1})][-1]
    assert upsert[3:] == ({"name": "n1"}, {"name": "x"})


def test_partitioned_table_changes_through_the_parent_are_captured(
    db: Database, roles: dict[str, str]
) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.sale (id int, region text, amount int, "
                     "PRIMARY KEY (id, region)) PARTITION BY LIST (region)")
        conn.execute("CREATE TABLE public.sale_eu PARTITION OF sale FOR VALUES IN ('eu')")
        conn.execute("CREATE TABLE public.sale_us PARTITION OF sale FOR VALUES IN ('us')")
        conn.execute("SELECT audit.enable_tracking('public.sale')")
        conn.execute("INSERT INTO sale VALUES (1, 'eu', 10), (2, 'us', 20), (3, 'eu', 30)")
        # Row movement between partitions is an UPDATE of the parent, paired.
        conn.execute("UPDATE sale SET region = 'us', amount = amount + 1 WHERE id IN (1, 3)")
        conn.execute("DELETE FROM sale WHERE id = 2")
    updates = [e for e in data_events(db) if e[0] == "UPDATE"]
    assert sorted(updates, key=lambda e: e[2]["id"]) == [
        ("UPDATE", "public.sale", printed({"id": 1, "region": "us"}),
         printed({"region": "eu", "amount": 10}), printed({"region": "us", "amount": 11})),
        ("UPDATE", "public.sale", printed({"id": 3, "region": "us"}),
         printed({"region": "eu", "amount": 30}), printed({"region": "us", "amount": 31})),
    ]
    assert [e[0] for e in data_events(db)].count("INSERT") == 3
    assert data_events(db)[-1][:3] == ("DELETE", "public.sale", printed({"id": 2, "region": "us"}))


def test_partitioned_table_changes_through_a_partition_are_captured_once(
    db: Database, roles: dict[str, str]
) -> None:
    # Statement-level triggers of the parent do not fire for a statement naming a
    # partition, so the partitions carry their own, recorded under the parent.
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.sale (id int, region text, n int, "
                     "PRIMARY KEY (id, region)) PARTITION BY LIST (region)")
        conn.execute("CREATE TABLE public.sale_eu PARTITION OF sale FOR VALUES IN ('eu') "
                     "PARTITION BY RANGE (id)")
        conn.execute("CREATE TABLE public.sale_eu_low PARTITION OF sale_eu "
                     "FOR VALUES FROM (0) TO (100)")
        conn.execute("SELECT audit.enable_tracking('public.sale', exclude_columns => '{n}')")
        conn.execute("SELECT audit.enable_tracking('public.sale', exclude_columns => '{n}')")
        conn.execute("INSERT INTO sale_eu_low VALUES (1, 'eu', 0)")
        conn.execute("UPDATE sale_eu SET n = 5, id = 2")
        conn.execute("INSERT INTO sale VALUES (3, 'eu', 0)")
        conn.execute("DELETE FROM sale_eu_low WHERE id = 3")
        conn.execute("TRUNCATE sale_eu_low")
        refused = "pg-audit: .* may not change"
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refused):
            conn.execute("DROP TRIGGER audit_capture_insert ON sale_eu_low")
        with pytest.raises(psycopg.errors.InsufficientPrivilege, match=refused):
            conn.execute("ALTER TABLE sale_eu DISABLE TRIGGER audit_capture_update")
        assert conn.execute("SELECT table_name, excluded_columns FROM audit.tracked_table"
                            ).fetchall() == [("public.sale", ["n"])]
    assert data_events(db) == [
        ("INSERT", "public.sale",
         printed({"id": 1, "region": "eu"}), None, printed({"id": 1, "region": "eu"})),
        ("UPDATE", "public.sale",
         printed({"id": 2, "region": "eu"}), printed({"id": 1}), printed({"id": 2})),
        ("INSERT", "public.sale",
         printed({"id": 3, "region": "eu"}), None, printed({"id": 3, "region": "eu"})),
        ("DELETE", "public.sale",
         printed({"id": 3, "region": "eu"}), printed({"id": 3, "region": "eu"}), None),
        ("TRUNCATE", "public.sale", None, None, None),
    ]
    assert len(events(db, "TRACKING_ENABLED")) == 1
    with db.connect(roles["app"]) as conn:
        conn.execute("SELECT audit.disable_tracking('public.sale')")
        assert conn.execute("SELECT count(*) FROM pg_trigger WHERE tgname LIKE 'audit\\_capture%'"
                            ).fetchone() == (0,)


def test_row_history_follows_a_row_through_its_key_change(
    db: Database, roles: dict[str, str]
) -> None:
    # A table name no other test of this module's database has used.
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE public.person (id int PRIMARY KEY, name text)")
        app.execute("SELECT audit.enable_tracking('public.person')")
        app.execute("INSERT INTO person VALUES (1, 'a'), (2, 'b')")
        app.execute("UPDATE person SET name = 'a2' WHERE id = 1")
        app.execute("UPDATE person SET id = 5 WHERE id = 1")
        app.execute("UPDATE person SET name = 'a3' WHERE id = 5")
        app.execute("DELETE FROM person WHERE id = 5")
    with db.connect(roles["reader"]) as reader:
        old_key = reader.execute(
            "SELECT action, row_key FROM audit.row_history(target => 'public.person', "
            "row_key => '{\"id\": \"1\"}')"
        ).fetchall()
        new_key = reader.execute(
            "SELECT action, row_key FROM audit.row_history(target => 'public.person', "
            "row_key => '{\"id\": \"5\"}')"
        ).fetchall()
    # Under its old key: its life up to and including the key change.
    assert old_key == [("INSERT", printed({"id": 1})), ("UPDATE", printed({"id": 1})),
                       ("UPDATE", printed({"id": 5}))]
    # Under its new key: from the key change on (earlier events carry the old key).
    assert new_key == [("UPDATE", printed({"id": 5})), ("UPDATE", printed({"id": 5})),
                       ("DELETE", printed({"id": 5}))]


def test_columns_named_like_capture_internals_or_with_quotes_and_commas_are_captured(
    db: Database, roles: dict[str, str]
) -> None:
    names = ["o", "n", "r", "s", "d", "p", "e", "excluded", "non_key", "tbl", "ctx", "extra",
             "same", "key", "value", "action", "row_key", "We\"ird, {col}"]
    cols = ", ".join(psycopg.sql.Identifier(c).as_string(None) for c in names)
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.clash (id int PRIMARY KEY, "
                     + ", ".join(f"{psycopg.sql.Identifier(c).as_string(None)} text" for c in names)
                     + ")")
        conn.execute("SELECT audit.enable_tracking('public.clash', exclude_columns => %s)",
                     [["We\"ird, {col}", "extra"]])
        conn.execute("SELECT audit.enable_tracking('public.clash', exclude_columns => %s)",
                     [["extra", "We\"ird, {col}"]])
        conn.execute(f"INSERT INTO clash (id, {cols}) VALUES (1, "
                     + ", ".join(["'v'"] * len(names)) + ")")
        conn.execute(f"UPDATE clash SET ({cols}) = ROW(" + ", ".join(["'w'"] * len(names)) + ")")
        conn.execute("DELETE FROM clash")
    kept = {c: "v" for c in names if c not in ("extra", "We\"ird, {col}")}
    rows = data_events(db)
    assert [r[0] for r in rows] == ["INSERT", "UPDATE", "DELETE"]
    assert rows[0][4] == printed({"id": 1, **kept})
    assert rows[1][3] == kept and rows[1][4] == {c: "w" for c in kept}
    assert len(events(db, "TRACKING_ENABLED")) == 1


def test_rows_dropped_on_their_way_to_another_partition_are_not_mispaired(
    db: Database, roles: dict[str, str]
) -> None:
    # A BEFORE INSERT trigger on the target partition drops some moved rows, so
    # the old images outnumber the new: positions no longer pair. Each row must
    # then be recorded as what it became, never paired with another row's image.
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.sale (id int, region text, amount int, "
                     "PRIMARY KEY (id, region)) PARTITION BY LIST (region)")
        conn.execute("CREATE TABLE public.sale_eu PARTITION OF sale FOR VALUES IN ('eu')")
        conn.execute("CREATE TABLE public.sale_us PARTITION OF sale FOR VALUES IN ('us')")
        conn.execute("CREATE FUNCTION public.drop_odd() RETURNS trigger LANGUAGE plpgsql AS "
                     "$$BEGIN IF NEW.id % 2 = 1 THEN RETURN NULL; END IF; RETURN NEW; END$$")
        conn.execute("CREATE TRIGGER drop_odd BEFORE INSERT ON sale_us FOR EACH ROW "
                     "EXECUTE FUNCTION drop_odd()")
        conn.execute("INSERT INTO sale SELECT g, 'eu', g FROM generate_series(1, 4) g")
        conn.execute("SELECT audit.enable_tracking('public.sale')")
        conn.execute("UPDATE sale SET region = 'us', amount = amount * 10")
        assert conn.execute("SELECT id, amount FROM sale ORDER BY id").fetchall() == [
            (2, 20), (4, 40)]
    recorded = sorted(data_events(db), key=lambda e: (e[0], e[2]["id"]))
    assert recorded == [
        ("DELETE", "public.sale", printed({"id": i, "region": "eu"}),
         printed({"id": i, "region": "eu", "amount": i}), None) for i in (1, 2, 3, 4)
    ] + [
        ("INSERT", "public.sale", printed({"id": i, "region": "us"}), None,
         printed({"id": i, "region": "us", "amount": 10 * i})) for i in (2, 4)
    ]
    assert all(e["detail"]["unpaired_update"] is True for e in events(db)
               if e["action"] != "TRACKING_ENABLED")


def test_a_partition_added_later_is_tracked_in_the_same_command(
    db: Database, roles: dict[str, str]
) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.sale (id int, region text, PRIMARY KEY (id, region)) "
                     "PARTITION BY LIST (region)")
        conn.execute("SELECT audit.enable_tracking('public.sale')")
        conn.execute("CREATE TABLE public.sale_eu PARTITION OF sale FOR VALUES IN ('eu')")
        conn.execute("INSERT INTO sale VALUES (1, 'eu')")  # through the parent
        conn.execute("INSERT INTO sale_eu VALUES (2, 'eu')")  # the DDL guard tracked sale_eu
        conn.execute("SELECT audit.enable_tracking('public.sale')")  # nothing left to do
    assert [(e[0], e[2]) for e in data_events(db)] == [
        ("INSERT", printed({"id": 1, "region": "eu"})),
        ("INSERT", printed({"id": 2, "region": "eu"}))]
    assert len(events(db, "TRACKING_ENABLED")) == 1


def test_replica_mode_does_not_skip_capture(db: Database, app: psycopg.Connection) -> None:
    with db.connect() as su:
        su.execute("SET session_replication_role = replica")
        su.execute("INSERT INTO public.account VALUES (1, 'replayed', 's', 1)")
    assert [(e[0], e[2]) for e in data_events(db)] == [("INSERT", printed({"id": 1}))]


def test_copy_and_foreign_key_cascades_are_captured(db: Database, roles: dict[str, str]) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.parent (id int PRIMARY KEY)")
        conn.execute("CREATE TABLE public.child (id int PRIMARY KEY, parent_id int "
                     "REFERENCES parent ON UPDATE CASCADE ON DELETE CASCADE)")
        conn.execute("SELECT audit.enable_tracking('public.parent')")
        conn.execute("SELECT audit.enable_tracking('public.child')")
        with conn.cursor().copy("COPY parent (id) FROM STDIN") as copy:
            for i in (1, 2):
                copy.write_row([i])
        conn.execute("INSERT INTO child VALUES (10, 1), (20, 2)")
        conn.execute("UPDATE parent SET id = 3 WHERE id = 1")
        conn.execute("DELETE FROM parent WHERE id = 2")
    assert [(e[0], e[1], e[2]) for e in data_events(db)] == [
        ("INSERT", "public.parent", printed({"id": 1})),
        ("INSERT", "public.parent", printed({"id": 2})),
        ("INSERT", "public.child", printed({"id": 10})),
        ("INSERT", "public.child", printed({"id": 20})),
        ("UPDATE", "public.parent", printed({"id": 3})),
        ("UPDATE", "public.child", printed({"id": 10})),
        ("DELETE", "public.parent", printed({"id": 2})),
        ("DELETE", "public.child", printed({"id": 20})),
    ]


def test_writes_by_any_role_are_captured_without_rights_on_the_audit_schema(
    db: Database, app: psycopg.Connection, roles: dict[str, str]
) -> None:
    app.execute(f"GRANT SELECT, INSERT, UPDATE, DELETE ON account TO {roles['stranger']}")
    with db.connect(roles["stranger"]) as conn:
        conn.execute("INSERT INTO public.account VALUES (1, 'a', 's', 1)")
        conn.execute("UPDATE public.account SET n = 2")
        conn.execute("DELETE FROM public.account")
    assert [e["db_role"] for e in events(db) if e["action"] != "TRACKING_ENABLED"] == [
        roles["stranger"]] * 3
