"""Threat 3: capture switched off or bent by the table's owner (or anyone else).

A tracked table keeps its four capture triggers, well formed and ENABLE
ALWAYS, or none, and either is recorded: dropping one by hand is refused at
COMMIT by the deferred check audit.audit_check_tracking (at once under SET
CONSTRAINTS ... IMMEDIATE), disabling, renaming or replacing one is refused at
once, and dropping all four is recorded as TRACKING_DISABLED. After every
refused attack the triggers are intact and the next write is captured.
"""

from __future__ import annotations

import psycopg
import pytest
from attack_support import (
    ATTACKERS,
    GUARDED,
    NO_RIGHTS,
    assert_refused,
    attempt,
    watch,
)
from pgtest import Database

OPS = ("insert", "update", "delete", "truncate")
FOUR = [(f"audit_capture_{op}", "A") for op in ("delete", "insert", "truncate", "update")]
UPDATE_ON = ("AFTER UPDATE ON public.acct "
             "REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new")
DELETE_ON = "AFTER DELETE ON public.acct REFERENCING OLD TABLE AS audit_old"
RIGHT_ARGS = "'{1}', '{id}', '{3}', '{secret}'"


@pytest.fixture
def acct(fresh: Database, roles: dict[str, str]) -> Database:
    """public.acct, the app's, tracked with secret excluded, writable by anyone."""
    with fresh.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, note text, secret text)")
        conn.execute("GRANT ALL ON public.acct TO PUBLIC")
        conn.execute("SELECT audit.enable_tracking('public.acct', '{secret}')")
        conn.execute("CREATE FUNCTION public.nothing() RETURNS trigger LANGUAGE plpgsql "
                     "AS 'BEGIN RETURN NULL; END'")
    return fresh


def capture_triggers(db: Database) -> list[tuple[str, str]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT tgname::text, tgenabled::text FROM pg_trigger "
            "WHERE tgrelid = 'public.acct'::regclass AND tgfoid = 'audit.capture'::regproc "
            "ORDER BY 1").fetchall()


ONE_AT_A_TIME = (
    [f"DROP TRIGGER audit_capture_{op} ON public.acct" for op in OPS]
    + [f"ALTER TABLE public.acct DISABLE TRIGGER audit_capture_{op}" for op in OPS]
    + ["ALTER TABLE public.acct DISABLE TRIGGER ALL",
       "ALTER TABLE public.acct DISABLE TRIGGER USER",
       "ALTER TABLE public.acct ENABLE TRIGGER audit_capture_update",
       "ALTER TABLE public.acct ENABLE REPLICA TRIGGER audit_capture_insert",
       "ALTER TRIGGER audit_capture_delete ON public.acct RENAME TO audit_capture_gone",
       "ALTER TRIGGER audit_capture_delete ON public.acct RENAME TO harmless",
       # Replaced: another function, other exclusions (every column), a WHEN,
       # row level, no transition table.
       f"CREATE OR REPLACE TRIGGER audit_capture_update {UPDATE_ON} "
       "FOR EACH STATEMENT EXECUTE FUNCTION public.nothing()",
       f"CREATE OR REPLACE TRIGGER audit_capture_update {UPDATE_ON} "
       "FOR EACH STATEMENT EXECUTE FUNCTION audit.capture('{1}', '{id}', '{2,3}', '{note,secret}')",
       "CREATE OR REPLACE TRIGGER audit_capture_update AFTER UPDATE ON public.acct FOR EACH ROW "
       "WHEN (false) EXECUTE FUNCTION audit.capture(" + RIGHT_ARGS + ")",
       "CREATE OR REPLACE TRIGGER audit_capture_insert AFTER INSERT ON public.acct "
       "FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(" + RIGHT_ARGS + ")",
       "CREATE OR REPLACE TRIGGER audit_capture_insert AFTER INSERT ON public.acct "
       "REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT "
       "EXECUTE FUNCTION audit.capture('{}')",
       # A second capture trigger under another name, or with a WHEN.
       "CREATE TRIGGER audit_capture_extra AFTER INSERT ON public.acct "
       "REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT "
       "EXECUTE FUNCTION audit.capture(" + RIGHT_ARGS + ")",
       "CREATE TRIGGER zz_capture AFTER UPDATE ON public.acct FOR EACH ROW WHEN (OLD.id < 0) "
       "EXECUTE FUNCTION audit.capture(" + RIGHT_ARGS + ")",
       # The setting earlier versions trusted.
       "SELECT set_config('audit.untracking', 'public.acct'::regclass::oid::text, true); "
       "DROP TRIGGER audit_capture_update ON public.acct",
       "SET LOCAL audit.untracking = 'public.acct'; "
       "ALTER TABLE public.acct DISABLE TRIGGER audit_capture_update",
       "DROP FUNCTION audit.capture() CASCADE",
       "ALTER FUNCTION audit.capture() RENAME TO capture_off",
       "ALTER EXTENSION hstore UPDATE",
       "DROP EXTENSION hstore CASCADE",
       "SET session_replication_role = replica"]
)


def write_is_captured(db: Database, roles: dict[str, str], key: int) -> None:
    with db.connect() as conn:
        before = conn.execute("SELECT max(id) FROM audit.event").fetchone()
        assert before is not None
    with db.connect(roles["app"]) as conn:
        conn.execute("INSERT INTO public.acct VALUES (%s, 'after', 's')", [key])
    with db.connect() as conn:
        assert conn.execute(
            "SELECT action, row_key FROM audit.event WHERE id > %s", [before[0]]
        ).fetchall() == [("INSERT", {"id": str(key)})]


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_capture_triggers_cannot_be_dropped_disabled_renamed_or_replaced_one_at_a_time(
    acct: Database, roles: dict[str, str], attacker: str
) -> None:
    with watch(acct, roles[attacker]) as w, acct.connect(roles[attacker]) as conn:
        for statement in ONE_AT_A_TIME:
            error = attempt(conn, statement)
            if attacker == "app" and "audit.capture()" not in statement \
                    and "hstore" not in statement and "replication" not in statement:
                assert_refused(error, GUARDED, statement)
            else:
                assert_refused(error, NO_RIGHTS + "|" + GUARDED
                               + r"|^permission denied to set parameter", statement)
            assert capture_triggers(acct) == FOUR, statement
    assert w.new_events == []
    write_is_captured(acct, roles, 100)


def test_a_dropped_capture_trigger_is_refused_at_once_under_set_constraints_immediate(
    acct: Database, roles: dict[str, str]
) -> None:
    with watch(acct, roles["app"]), acct.connect(roles["app"]) as conn:
        for constraint in ("ALL", "audit.audit_check_tracking"):
            with conn.transaction():
                conn.execute(f"SET CONSTRAINTS {constraint} IMMEDIATE")
                # The DROP itself fails, not the COMMIT.
                with pytest.raises(psycopg.errors.InsufficientPrivilege) as caught:
                    conn.execute("DROP TRIGGER audit_capture_delete ON public.acct")
                assert_refused(caught.value, GUARDED)
                raise psycopg.Rollback()
    assert capture_triggers(acct) == FOUR


@pytest.mark.parametrize("who", ["app", "superuser"])
def test_dropping_all_four_is_recorded_as_tracking_disabled(
    acct: Database, roles: dict[str, str], who: str
) -> None:
    drops = "; ".join(f"DROP TRIGGER audit_capture_{op} ON public.acct" for op in OPS)
    with watch(acct, roles[who] if who != "superuser" else who) as w, \
            (acct.connect(roles[who]) if who != "superuser" else acct.connect()) as conn:
        with conn.transaction():
            conn.execute(drops)
            conn.execute("INSERT INTO public.acct VALUES (1, 'unseen', 's')")
    assert capture_triggers(acct) == []
    assert [(e["action"], e["table_name"]) for e in w.new_events] == [
        ("TRACKING_DISABLED", "public.acct")]


def test_a_superusers_disabled_capture_trigger_is_recorded(
    acct: Database, roles: dict[str, str]
) -> None:
    # Detected rather than blocked: the commit-time check records it, and the
    # table stays listed with enabled_always false, so that status warns.
    with watch(acct, "superuser") as w, acct.connect() as conn:
        conn.execute("ALTER TABLE public.acct DISABLE TRIGGER audit_capture_delete")
        conn.execute("DELETE FROM public.acct")
        listed = conn.execute("SELECT enabled_always FROM audit.tracked_table "
                              "WHERE table_name = 'public.acct'").fetchall()
    assert listed == [(False,)]
    assert [(e["action"], e["detail"].get("incomplete")) for e in w.new_events] == [
        ("DDL", None), ("TRACKING_DISABLED", True)]
    assert w.new_events[0]["detail"]["statement"] == (
        "ALTER TABLE public.acct DISABLE TRIGGER audit_capture_delete")
    assert w.new_events[1]["detail"]["capture_triggers"]["audit_capture_delete"] == "D"


def test_replica_mode_skips_no_capture_trigger(acct: Database, roles: dict[str, str]) -> None:
    with watch(acct, "superuser") as w, acct.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        conn.execute("INSERT INTO public.acct VALUES (1, 'replica', 's')")
        conn.execute("UPDATE public.acct SET note = 'still replica'")
        conn.execute("DELETE FROM public.acct")
    assert [e["action"] for e in w.new_events] == ["INSERT", "UPDATE", "DELETE"]


@pytest.mark.parametrize("recreate", ids=["by_hand", "by_enable_tracking"], argvalues=[
    "CREATE TRIGGER audit_capture_delete " + DELETE_ON
    + " FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(" + RIGHT_ARGS + "); "
    "ALTER TABLE acct ENABLE ALWAYS TRIGGER audit_capture_delete",
    "SELECT audit.enable_tracking('acct', '{secret}')",
])
def test_a_capture_trigger_dropped_and_made_again_in_one_transaction_leaves_a_trace(
    acct: Database, roles: dict[str, str], recreate: str
) -> None:
    with acct.connect(roles["app"]) as conn:
        conn.execute("INSERT INTO public.acct VALUES (1, 'a', 's'), (2, 'b', 's')")
        with watch(acct, roles["app"]) as w:
            with conn.transaction():
                conn.execute("DROP TRIGGER audit_capture_delete ON acct")
                conn.execute("DELETE FROM acct WHERE id = 1")
                conn.execute(recreate)
    assert capture_triggers(acct) == FOUR
    # The DELETE in between was not captured: the gap is recorded as capture
    # switched off and on again (docs/security.md).
    recreated = [(e["action"], e["table_name"]) for e in w.new_events
                 if (e["detail"] or {}).get("recreated") is True]
    assert recreated == [("TRACKING_DISABLED", "public.acct"),
                         ("TRACKING_ENABLED", "public.acct")], w.new_events


def test_a_tracked_temporary_table_leaves_no_stale_tracking_behind(
    fresh: Database, roles: dict[str, str]
) -> None:
    with watch(fresh, roles["app"]), fresh.connect(roles["app"]) as conn:
        conn.execute("CREATE TEMPORARY TABLE scratch (id int PRIMARY KEY)")
        error = attempt(conn, "SELECT audit.enable_tracking('scratch')")
        if error is None:
            conn.execute("INSERT INTO scratch VALUES (1)")
    with fresh.connect() as conn:
        stale = conn.execute("SELECT table_name FROM audit.tracked_table "
                             "WHERE table_name LIKE 'pg\\_temp%'").fetchall()
    assert stale == []


WRITES = [
    "INSERT INTO public.acct VALUES (1, 'a', 's'), (2, 'b', 's')",
    "INSERT INTO public.acct VALUES (1, 'upserted', 's') "
    "ON CONFLICT (id) DO UPDATE SET note = EXCLUDED.note",
    "WITH moved AS (UPDATE public.acct SET note = 'cte' WHERE id = 2 RETURNING id) "
    "DELETE FROM public.acct WHERE id IN (SELECT id - 1 FROM moved)",
    "MERGE INTO public.acct a USING (VALUES (2, 'merged'), (3, 'new')) s(id, note) "
    "ON a.id = s.id WHEN MATCHED THEN UPDATE SET note = s.note "
    "WHEN NOT MATCHED THEN INSERT VALUES (s.id, s.note, 's')",
    "UPDATE public.acct a SET note = s.note FROM (VALUES (3, 'from')) s(id, note) "
    "WHERE a.id = s.id",
    "DELETE FROM public.acct a USING (VALUES (3)) s(id) WHERE a.id = s.id",
]


def test_every_way_of_writing_a_tracked_table_is_captured(
    acct: Database, roles: dict[str, str]
) -> None:
    with watch(acct, roles["app"]) as w, acct.connect(roles["app"]) as conn:
        for statement in WRITES:
            conn.execute(statement)
        with conn.cursor().copy("COPY public.acct FROM STDIN") as copy:
            copy.write_row((4, "copied", "s"))
    assert [(e["action"], e["row_key"]["id"]) for e in w.new_events] == [
        ("INSERT", "1"), ("INSERT", "2"), ("UPDATE", "1"), ("UPDATE", "2"), ("DELETE", "1"),
        ("UPDATE", "2"), ("INSERT", "3"), ("UPDATE", "3"), ("DELETE", "3"), ("INSERT", "4")]
