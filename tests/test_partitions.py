"""Monthly partitions: inserts in any month succeed, maintenance moves strays honestly."""

from __future__ import annotations

import psycopg
import pytest

from pg_audit_schema.cli_retention import main as cli
from pg_audit_schema.retention import maintain
from pg_audit_schema.seal import seal, verify

MONTHS = [
    "2019-02-28 23:59:59.999999+00",
    "2024-03-05 12:00:00+00",
    "2024-03-31 10:00:00+00",
    "2035-07-01 00:00:00+00",
]


def _insert_at(conn: psycopg.Connection, when: str, action: str = "STRAY") -> int:
    return conn.execute(
        "INSERT INTO audit.event (action, occurred_at, detail) VALUES (%s, %s, %s) RETURNING id",
        [action, when, f'{{"when": "{when}"}}'],
    ).fetchone()[0]


def _canonical(conn: psycopg.Connection) -> dict[int, str]:
    return dict(conn.execute("SELECT id, audit.event_canonical(e) FROM audit.event e").fetchall())


def _partition_of(conn: psycopg.Connection, event_id: int) -> str:
    return conn.execute(
        "SELECT tableoid::regclass::text FROM audit.event WHERE id = %s", [event_id]
    ).fetchone()[0]


def test_inserts_in_any_month_succeed_and_land_in_the_default(db):
    with db.connect() as conn:
        ids = [_insert_at(conn, when) for when in MONTHS]
        now_id = conn.execute("SELECT audit.log_event('NOW')").fetchone()[0]
        assert {_partition_of(conn, i) for i in ids} == {"audit.event_default"}
        assert _partition_of(conn, now_id).startswith("audit.event_20")


def test_maintain_moves_strays_unchanged_into_their_months(db):
    with db.connect() as conn:
        ids = [_insert_at(conn, when) for when in MONTHS]
        conn.execute("SELECT audit.log_event('NOW')")
        seal(conn)
        before = _canonical(conn)
        done = maintain(conn)
        assert ("moved_strays", "audit.event_2024_03", 2) in done
        assert {p for op, p, _ in done if op == "moved_strays"} == {
            "audit.event_2019_02",
            "audit.event_2024_03",
            "audit.event_2035_07",
        }
        assert conn.execute("SELECT count(*) FROM audit.event_default").fetchone()[0] == 0
        assert [_partition_of(conn, i) for i in ids] == [
            "audit.event_2019_02",
            "audit.event_2024_03",
            "audit.event_2024_03",
            "audit.event_2035_07",
        ]
        after = _canonical(conn)
        assert {k: after[k] for k in before} == before  # same ids, times, txids, values
        moved = conn.execute(
            "SELECT detail FROM audit.event WHERE action = 'RETENTION'"
        ).fetchone()[0]
        assert moved["operation"] == "move_strays"
        assert verify(conn).ok  # seals taken before the move still hold


def test_maintain_is_idempotent(db):
    with db.connect() as conn:
        _insert_at(conn, MONTHS[1])
        assert maintain(conn)
        assert maintain(conn) == []
        assert (
            conn.execute("SELECT count(*) FROM audit.event WHERE action = 'RETENTION'").fetchone()[
                0
            ]
            == 1
        )


def test_maintain_creates_partitions_ahead(db):
    with db.connect() as conn:
        done = maintain(conn, months_ahead=6)
        created = [p for op, p, _ in done if op == "created"]
        assert len(created) == 3  # the install made this month and 3 ahead
        assert (
            conn.execute(
                "SELECT count(*) FROM audit.event_partition WHERE range_from >= "
                "date_trunc('month', now())"
            ).fetchone()[0]
            == 7
        )


def test_every_partition_and_the_default_stay_append_only_after_maintenance(db, roles):
    with db.connect() as conn:
        _insert_at(conn, MONTHS[1])
        maintain(conn)
        rows = conn.execute(
            "SELECT p.partition::text, "
            "  (SELECT string_agg(tgname || ':' || tgenabled::text, ',' ORDER BY tgname) "
            "   FROM pg_trigger "
            "   WHERE tgrelid = p.partition AND tgname LIKE 'audit\\_%%') "
            "FROM audit.event_partition p"
        ).fetchall()
        for name, triggers in rows:
            assert triggers == "audit_append_only:A,audit_no_truncate:A", name
        _insert_at(conn, MONTHS[0])  # a row trigger needs a row to refuse
        for statement in [
            "DELETE FROM audit.event_default",
            "TRUNCATE audit.event_default",
            "DELETE FROM audit.event_2024_03",
            "UPDATE audit.event SET action = 'X'",
        ]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                conn.execute(statement)


def test_a_granted_maintenance_login_works_inside_the_ddl_guard(db, roles):
    with db.connect() as conn:
        _insert_at(conn, MONTHS[1])
        conn.execute(f'GRANT EXECUTE ON FUNCTION audit.maintain(integer) TO "{roles["reader"]}"')
    with db.connect(roles["reader"]) as ops:
        assert ("moved_strays", "audit.event_2024_03", 1) in [
            tuple(r) for r in ops.execute("SELECT * FROM audit.maintain()")
        ]


def test_others_cannot_run_maintenance_or_remove_partitions(db, roles):
    with db.connect(roles["app"]) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT audit.maintain()")
        for statement in [
            "ALTER TABLE audit.event DETACH PARTITION audit.event_default",
            "DROP TABLE audit.event_default",
        ]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                app.execute(statement)
    with db.connect(roles["ownermember"]) as member:
        # Holds audit_owner's privileges, so only the DDL guard stands in the way.
        part = member.execute(
            "SELECT partition::text FROM audit.event_partition WHERE NOT is_default "
            "ORDER BY range_from DESC LIMIT 1"
        ).fetchone()[0]
        for statement in [f"ALTER TABLE audit.event DETACH PARTITION {part}", f"DROP TABLE {part}"]:
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="guarded"):
                member.execute(statement)
    with db.connect(roles["reader"]) as reader:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT audit.maintain()")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT audit.create_partitions()")


def test_time_queries_touch_only_their_partition(db):
    with db.connect() as conn:
        plan = "\n".join(
            r[0]
            for r in conn.execute(
                "EXPLAIN SELECT * FROM audit.event WHERE occurred_at >= date_trunc('month', now()) "
                "AND occurred_at < date_trunc('month', now()) + interval '1 day'"
            )
        )
        assert plan.count("on event_") == 1 or "Subplans Removed" in plan, plan


def test_cli_maintain(db, capsys):
    with db.connect() as conn:
        _insert_at(conn, MONTHS[0])
    assert cli(["--dsn", db.conninfo(), "maintain"]) == 0
    assert "moved_strays audit.event_2019_02 (1 events)" in capsys.readouterr().out
