"""Reporting views and investigation functions of sql/0003_reporting.sql, against a real server.

Data comes through the real writers (tracked tables, audit.log_event) as the
application role; only where a test needs events in the past does the
superuser insert them directly.
"""

from __future__ import annotations

import json
from typing import Any

import psycopg
import pytest
from pgtest import printed
from psycopg import errors, sql

VIEWS = ["auth_events", "recent_failed_login_bursts", "privilege_changes", "column_changes"]

DJANGO_AUTH_TABLES = """
CREATE TABLE public.auth_user (id int PRIMARY KEY, username text, password text,
                               is_superuser bool NOT NULL DEFAULT false,
                               is_staff bool NOT NULL DEFAULT false, last_login timestamptz);
CREATE TABLE public.auth_user_groups (id int PRIMARY KEY, user_id int, group_id int);
CREATE TABLE public.auth_user_user_permissions (id int PRIMARY KEY, user_id int, permission_id int);
CREATE TABLE public.auth_group_permissions (id int PRIMARY KEY, group_id int, permission_id int);
SELECT audit.enable_tracking('public.auth_user', '{password}');
SELECT audit.enable_tracking('public.auth_user_groups');
SELECT audit.enable_tracking('public.auth_user_user_permissions');
SELECT audit.enable_tracking('public.auth_group_permissions');
"""


def as_actor(
    conn: psycopg.Connection,
    statements: str,
    actor: str = "7",
    name: str = "alice",
    ip: str = "192.0.2.10",
) -> None:
    """Run statements in one transaction with the application context set."""
    with conn.transaction():
        conn.execute(
            "SELECT audit.set_context(actor_id => %s, actor_name => %s, ip => %s)",
            [actor, name, ip],
        )
        conn.execute(statements)


def now(conn: psycopg.Connection) -> Any:
    return conn.execute("SELECT clock_timestamp()").fetchone()[0]  # type: ignore[index]


def test_reader_reads_every_view_and_function_but_writes_nothing(
    db: Any, app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE t (id int PRIMARY KEY, v text)")
    app.execute("SELECT audit.enable_tracking('t')")
    app.execute("INSERT INTO t VALUES (1, 'a')")
    for view in VIEWS:
        reader.execute(sql.SQL("SELECT * FROM audit.{}").format(sql.Identifier(view))).fetchall()
    reader.execute("SELECT * FROM audit.failed_login_bursts(threshold => 1)").fetchall()
    assert reader.execute("SELECT * FROM audit.last_change('t', '{\"id\": 1}', 'v')").fetchone()
    assert reader.execute("SELECT audit.row_as_of('t', '{\"id\": 1}', now())").fetchone() == (
        printed({"id": 1, "v": "a"}),
    )
    for attempt in [
        "INSERT INTO audit.event (action) VALUES ('LOGIN')",
        "UPDATE audit.event SET action = 'X'",
        "DELETE FROM audit.event",
        "SELECT audit.log_event('LOGIN')",
        "SELECT audit.enable_tracking('t')",
        "SELECT audit.append_event('LOGIN', NULL, NULL, NULL, NULL)",
    ]:
        with pytest.raises(errors.InsufficientPrivilege):
            reader.execute(attempt)
    for view in VIEWS:
        # auth_events is a simple (updatable) view: refused for privilege; the others
        # cannot be written through at all.
        with pytest.raises((errors.InsufficientPrivilege, errors.ObjectNotInPrerequisiteState)):
            reader.execute(sql.SQL("DELETE FROM audit.{}").format(sql.Identifier(view)))
    with pytest.raises(errors.InsufficientPrivilege):
        reader.execute("DELETE FROM audit.auth_events")


def test_stranger_is_refused_the_views_and_functions(db: Any, roles: dict[str, str]) -> None:
    with db.connect(roles["stranger"]) as conn:
        for view in VIEWS:
            with pytest.raises(errors.InsufficientPrivilege):
                conn.execute(sql.SQL("SELECT * FROM audit.{}").format(sql.Identifier(view)))
        with pytest.raises(errors.InsufficientPrivilege):
            conn.execute("SELECT * FROM audit.failed_login_bursts()")


def test_auth_events_show_outcome_user_and_address(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    as_actor(app, "SELECT audit.log_event('LOGIN')")
    as_actor(
        app,
        "SELECT audit.log_event('LOGIN_FAILED', detail => '{\"username\": \"mallory\"}')",
        actor="",
        name="",
        ip="198.51.100.9",
    )
    as_actor(app, "SELECT audit.log_event('LOGOUT')")
    as_actor(app, "SELECT audit.log_event('EXPORT_REPORT')")
    rows = reader.execute(
        "SELECT action, outcome, actor_id, user_name, host(ip) FROM audit.auth_events "
        "ORDER BY event_id"
    ).fetchall()
    assert rows == [
        ("LOGIN", "success", "7", "alice", "192.0.2.10"),
        ("LOGIN_FAILED", "failure", None, "mallory", "198.51.100.9"),
        ("LOGOUT", "success", "7", "alice", "192.0.2.10"),
    ]


def _failures(db: Any, rows: list[tuple[str, str, str]]) -> None:
    """Failed logins in the past: (user name, address, age as an interval)."""
    with db.connect() as su:
        su.execute(
            "INSERT INTO audit.event (occurred_at, action, outcome, ip, detail) "
            "SELECT now() - age::interval, 'LOGIN_FAILED', 'failure', ip::inet, "
            "jsonb_build_object('username', u) FROM unnest(%s::text[], %s::text[], %s::text[]) "
            "AS r(u, ip, age)",
            [[r[0] for r in rows], [r[1] for r in rows], [r[2] for r in rows]],
        )


def test_failed_login_bursts_count_failures_within_one_window(
    db: Any, reader: psycopg.Connection
) -> None:
    rows = [("bob", "203.0.113.1", f"{m} minutes") for m in (50, 49, 47, 45, 41)]  # 5 in 9 min
    rows += [("carol", "203.0.113.2", f"{m} minutes") for m in (100, 80, 60, 40, 20, 1)]  # spread
    # One address trying five names within two minutes: a burst by address, not by user.
    rows += [(f"user{i}", "198.51.100.7", f"{30 - i} seconds") for i in range(5)]
    rows += [("dave", "203.0.113.3", f"{h} hours {m} minutes") for h in (30,) for m in range(6)]
    _failures(db, rows)
    got = reader.execute(
        "SELECT subject_kind, subject, max_in_window, failures, other_subjects "
        "FROM audit.recent_failed_login_bursts"
    ).fetchall()
    assert sorted(got) == [
        ("ip", "198.51.100.7", 5, 5, [f"user{i}" for i in range(5)]),
        ("ip", "203.0.113.1", 5, 5, ["bob"]),
        ("user", "bob", 5, 5, ["203.0.113.1"]),
    ]
    # A wider window catches carol; an older start catches dave (30 hours ago).
    wide = reader.execute(
        "SELECT subject FROM audit.failed_login_bursts(threshold => 5, \"window\" => '2 hours') "
        "WHERE subject_kind = 'user'"
    ).fetchall()
    assert sorted(wide) == [("bob",), ("carol",)]
    old = reader.execute(
        "SELECT subject FROM audit.failed_login_bursts(since => now() - interval '2 days', "
        "\"until\" => now() - interval '1 day') WHERE subject_kind = 'user'"
    ).fetchall()
    assert old == [("dave",)]
    assert reader.execute(
        "SELECT count(*) FROM audit.failed_login_bursts(threshold => 7)"
    ).fetchone() == (0,)


def test_privilege_changes_name_who_granted_what_to_whom_from_where(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute(DJANGO_AUTH_TABLES)
    as_actor(
        app,
        "INSERT INTO auth_user (id, username, password) VALUES (1, 'admin', 'h'), "
        "(2, 'bob', 'h'); INSERT INTO auth_user (id, username, is_staff) VALUES (3, 'eve', true)",
    )
    as_actor(app, "UPDATE auth_user SET is_superuser = true WHERE id = 2")
    as_actor(app, "UPDATE auth_user SET last_login = now()")  # not a privilege
    as_actor(app, "UPDATE auth_user SET is_staff = false WHERE id = 3", ip="198.51.100.1")
    as_actor(app, "INSERT INTO auth_user_groups VALUES (10, 2, 5)")
    as_actor(app, "DELETE FROM auth_user_groups WHERE id = 10")
    as_actor(app, "INSERT INTO auth_user_user_permissions VALUES (20, 2, 44)")
    as_actor(app, "INSERT INTO auth_group_permissions VALUES (30, 5, 45)")
    rows = reader.execute(
        "SELECT privilege, change, grantee_kind, grantee_id, object_id, actor_name, host(ip) "
        "FROM audit.privilege_changes ORDER BY event_id, privilege"
    ).fetchall()
    assert rows == [
        ("staff", "granted", "user", "3", None, "alice", "192.0.2.10"),
        ("superuser", "granted", "user", "2", None, "alice", "192.0.2.10"),
        ("staff", "revoked", "user", "3", None, "alice", "198.51.100.1"),
        ("group", "granted", "user", "2", "5", "alice", "192.0.2.10"),
        ("group", "revoked", "user", "2", "5", "alice", "192.0.2.10"),
        ("permission", "granted", "user", "2", "44", "alice", "192.0.2.10"),
        ("permission", "granted", "group", "5", "45", "alice", "192.0.2.10"),
    ]
    # Deleting a superuser takes the privilege away too.
    as_actor(app, "DELETE FROM auth_user WHERE id = 2")
    assert reader.execute(
        "SELECT privilege, change FROM audit.privilege_changes WHERE action = 'DELETE' "
        "AND table_name = 'public.auth_user'"
    ).fetchall() == [("superuser", "revoked")]


def test_privilege_changes_is_empty_without_django(reader: psycopg.Connection) -> None:
    assert reader.execute("SELECT count(*) FROM audit.privilege_changes").fetchone() == (0,)


def test_column_changes_give_one_row_per_changed_column(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE item (id int PRIMARY KEY, name text, qty int, token text)")
    app.execute("SELECT audit.enable_tracking('item', '{token}')")
    as_actor(app, "INSERT INTO item VALUES (1, 'pen', 3, 'secret')")
    as_actor(app, "UPDATE item SET qty = 4, token = 'other'")
    as_actor(app, "UPDATE item SET id = 2, name = 'ink'", name="bob")
    as_actor(app, "DELETE FROM item")
    rows = reader.execute(
        "SELECT action, row_key, column_name, old_text, new_text, actor_name "
        "FROM audit.column_changes ORDER BY event_id, column_name"
    ).fetchall()
    assert rows == [
        ("INSERT", printed({"id": 1}), "id", None, "1", "alice"),
        ("INSERT", printed({"id": 1}), "name", None, "pen", "alice"),
        ("INSERT", printed({"id": 1}), "qty", None, "3", "alice"),
        ("UPDATE", printed({"id": 1}), "qty", "3", "4", "alice"),
        ("UPDATE", printed({"id": 2}), "id", "1", "2", "bob"),
        ("UPDATE", printed({"id": 2}), "name", "pen", "ink", "bob"),
        ("DELETE", printed({"id": 2}), "id", "2", None, "alice"),
        ("DELETE", printed({"id": 2}), "name", "ink", None, "alice"),
        ("DELETE", printed({"id": 2}), "qty", "4", None, "alice"),
    ]
    assert "secret" not in json.dumps(
        reader.execute("SELECT json_agg(c) FROM audit.column_changes c").fetchone()[0]
    )  # type: ignore[index]


def test_last_change_names_who_changed_a_column_across_key_changes(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE item (id int PRIMARY KEY, name text, qty int)")
    app.execute("SELECT audit.enable_tracking('item')")
    as_actor(app, "INSERT INTO item VALUES (1, 'pen', 3)", name="alice")
    as_actor(app, "UPDATE item SET qty = 9", name="bob", ip="198.51.100.2")
    as_actor(app, "UPDATE item SET id = 5", name="carol")
    as_actor(app, "UPDATE item SET name = 'ink'", name="dave")

    # An older row that once had key 5, deleted before the rename, must not answer.
    def last(col: str) -> Any:
        return reader.execute(
            "SELECT action, old_value, new_value, actor_name, host(ip) "
            "FROM audit.last_change(target => 'item', row_key => '{\"id\": 5}', column_name => %s)",
            [col],
        ).fetchall()

    assert last("qty") == [("UPDATE", "3", "9", "bob", "198.51.100.2")]
    assert last("name") == [("UPDATE", "pen", "ink", "dave", "192.0.2.10")]
    assert last("id") == [("UPDATE", "1", "5", "carol", "192.0.2.10")]
    with pytest.raises(errors.UndefinedColumn, match="no column 'nosuchcolumn'"):
        last("nosuchcolumn")
    assert (
        reader.execute("SELECT * FROM audit.last_change('item', '{\"id\": 99}', 'qty')").fetchall()
        == []
    )


def test_row_as_of_replays_the_row_through_updates_key_changes_deletes_and_truncate(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE item (id int PRIMARY KEY, name text, qty int, token text)")
    app.execute("SELECT audit.enable_tracking('item', '{token}')")
    t0 = now(app)
    as_actor(app, "INSERT INTO item VALUES (5, 'old five', 1, 't')")
    as_actor(app, "DELETE FROM item WHERE id = 5")
    as_actor(app, "INSERT INTO item VALUES (1, 'pen', 3, 't')")
    t1 = now(app)
    as_actor(app, "UPDATE item SET qty = 4")
    t2 = now(app)
    as_actor(app, "UPDATE item SET id = 5, name = 'ink'")
    t3 = now(app)
    as_actor(app, "UPDATE item SET qty = 7")
    t4 = now(app)
    as_actor(app, "DELETE FROM item")
    t5 = now(app)
    as_actor(app, "INSERT INTO item VALUES (5, 'again', 0, 't')")
    t6 = now(app)
    as_actor(app, "TRUNCATE item")
    t7 = now(app)

    def at(key: int, when: Any) -> Any:
        return reader.execute(
            "SELECT audit.row_as_of(target => 'item', row_key => %s, \"at\" => %s)",
            [json.dumps({"id": key}), when],
        ).fetchone()[0]  # type: ignore[index]

    assert at(1, t0) is None
    assert at(1, t1) == printed({"id": 1, "name": "pen", "qty": 3})
    assert at(1, t2) == printed({"id": 1, "name": "pen", "qty": 4})
    assert at(1, t3) is None  # renamed to 5
    assert at(5, t1) is None  # the old five was deleted
    assert at(5, t3) == printed({"id": 5, "name": "ink", "qty": 4})
    assert at(5, t4) == printed({"id": 5, "name": "ink", "qty": 7})
    assert at(5, t5) is None
    assert at(5, t6) == printed({"id": 5, "name": "again", "qty": 0})
    assert at(5, t7) is None


def test_row_as_of_without_the_insert_knows_key_and_changed_columns(
    app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    app.execute("CREATE TABLE item (id int PRIMARY KEY, name text, qty int)")
    app.execute("INSERT INTO item VALUES (1, 'pen', 3)")
    app.execute("SELECT audit.enable_tracking('item')")
    as_actor(app, "UPDATE item SET qty = 4")
    assert reader.execute("SELECT audit.row_as_of('item', '{\"id\": 1}', now())").fetchone() == (
        printed({"id": 1, "qty": 4}),
    )


def test_notify_is_off_by_default_and_when_on_announces_committed_writes_only(
    db: Any, app: psycopg.Connection, reader: psycopg.Connection
) -> None:
    def state() -> tuple[str]:
        with db.connect() as su:
            return su.execute(  # type: ignore[return-value]
                "SELECT tgenabled FROM pg_trigger WHERE tgrelid = 'audit.event'::regclass "
                "AND tgname = 'audit_notify'"
            ).fetchone()

    assert state() == ("D",), "off by default: notifying serialises commits"
    with db.connect() as su:
        su.execute("ALTER TABLE audit.event ENABLE ALWAYS TRIGGER audit_notify")
    assert state() == ("A",)
    app.execute("CREATE TABLE item (id int PRIMARY KEY, qty int)")
    app.execute("SELECT audit.enable_tracking('item')")
    reader.execute("LISTEN audit_event")
    with app.transaction():  # one notice per transaction, however many statements and rows
        app.execute("INSERT INTO item SELECT g, 0 FROM generate_series(1, 3) g")
        app.execute("INSERT INTO item VALUES (4, 0)")
    assert len(list(reader.notifies(timeout=2.0, stop_after=1))) == 1
    assert list(reader.notifies(timeout=0.3)) == []
    with pytest.raises(errors.DivisionByZero), app.transaction():
        app.execute("INSERT INTO item VALUES (9, 1)")
        app.execute("SELECT 1/0")
    assert list(reader.notifies(timeout=0.5)) == [], "a rolled-back write announced nothing"
    app.execute("SELECT audit.log_event('LOGIN', actor_id => '1')")
    assert len(list(reader.notifies(timeout=2.0, stop_after=1))) == 1


def _scans(conn: psycopg.Connection, query: str, busy: set[str]) -> list[tuple[str, str]]:
    """(node type, index of audit.event it uses) for each scan of a partition holding rows."""
    plan = conn.execute("EXPLAIN (FORMAT JSON) " + query).fetchone()[0]  # type: ignore[index]
    out: list[tuple[str, str]] = []

    def walk(node: dict[str, Any]) -> None:
        if node.get("Relation Name") in busy or (
            "Index Name" in node and node.get("Node Type") == "Bitmap Index Scan"
        ):
            index = node.get("Index Name")
            if index:
                parent = conn.execute(
                    "SELECT coalesce((SELECT inhparent::regclass::text FROM pg_inherits "
                    "WHERE inhrelid = ('audit.' || quote_ident(%s))::regclass), %s)",
                    [index, index],
                ).fetchone()[0]  # type: ignore[index]
                index = parent.removeprefix("audit.")
            out.append((node["Node Type"], index or ""))
        for child in node.get("Plans", []):
            walk(child)

    walk(plan[0]["Plan"])
    return out


def test_reporting_reads_are_index_driven_on_a_large_log(db: Any, app: psycopg.Connection) -> None:
    """200k filler events with a few hundred of each rare kind: the views must
    reach the rare rows through the partial indexes, not by reading the log."""
    with db.connect() as su:
        su.execute(
            "INSERT INTO audit.event (occurred_at, action, outcome, actor_id, actor_name, ip, "
            "table_name, row_key, old_values, new_values, detail) "
            "SELECT now() - make_interval(secs => g), a, "
            "CASE a WHEN 'LOGIN_FAILED' THEN 'failure' WHEN 'LOGIN' THEN 'success' END, "
            "(g % 500)::text, 'user' || g % 500, ('10.0.' || g % 200 || '.1')::inet, t, "
            "CASE WHEN t IS NOT NULL THEN jsonb_build_object('id', g % 5000) END, "
            "CASE WHEN a = 'UPDATE' THEN jsonb_build_object('qty', g) END, "
            "CASE WHEN a <> 'DELETE' AND t IS NOT NULL THEN jsonb_build_object('qty', g + 1) END, "
            "CASE WHEN a = 'LOGIN_FAILED' THEN jsonb_build_object('username', 'u' || g % 50) END "
            "FROM generate_series(1, 200000) g CROSS JOIN LATERAL (SELECT "
            "CASE WHEN g % 1000 = 0 THEN 'LOGIN_FAILED' WHEN g % 1000 = 1 THEN 'LOGIN' "
            "WHEN g % 1000 = 2 THEN 'INSERT' ELSE 'UPDATE' END AS a, "
            "CASE WHEN g % 1000 = 2 THEN 'public.auth_user_groups' "
            "WHEN g % 1000 IN (0, 1) THEN NULL "
            "WHEN g % 7 = 0 THEN 'public.auth_user' ELSE 'public.shop_order' END AS t) x"
        )
        su.execute("ANALYZE audit.event")
        busy = {
            r[0]
            for r in su.execute(
                "SELECT DISTINCT tableoid::regclass::text FROM audit.event"
            ).fetchall()
        }
        busy = {b.removeprefix("audit.") for b in busy}
        day = "occurred_at >= now() - interval '1 day'"
        expected = [
            (f"SELECT * FROM audit.auth_events WHERE {day}", "event_auth_idx"),
            (
                "SELECT * FROM audit.auth_events ORDER BY occurred_at DESC LIMIT 100",
                "event_auth_idx",
            ),
            # The query inside audit.failed_login_bursts() (a function's plan is not shown).
            (
                "SELECT 1 FROM audit.event WHERE action IN ('LOGIN', 'LOGOUT', 'LOGIN_FAILED') "
                f"AND outcome = 'failure' AND {day}",
                "event_auth_idx",
            ),
            # One rare verb: the action index.
            ("SELECT * FROM audit.event WHERE action = 'TRUNCATE' "
             "AND table_name = 'public.shop_order'", "event_action_idx"),
            # Privilege-bearing events only (not auth_user's last_login updates).
            (f"SELECT * FROM audit.privilege_changes WHERE {day}", "event_privilege_idx"),
            (
                "SELECT * FROM audit.privilege_changes ORDER BY occurred_at DESC LIMIT 100",
                "event_privilege_idx",
            ),
            # The row lookup of audit.column_changes(table, key) and row_history.
            (
                "SELECT * FROM audit.column_changes WHERE audit.row_ref(table_name, row_key) = "
                "audit.row_ref('public.shop_order', '{\"id\": 42}') "
                "AND table_name = 'public.shop_order' AND row_key = '{\"id\": 42}'",
                "event_row_ref_idx",
            ),
        ]
        for query, index in expected:
            scans = _scans(su, query, busy)
            assert scans, query
            assert all(kind != "Seq Scan" for kind, _ in scans), (query, scans)
            assert index in {i for _, i in scans}, (query, scans)
