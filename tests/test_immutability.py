"""Nobody but a superuser can change, remove or forge a row of audit.event.

Every attack runs as each test role (the application login that owns a tracked
table, the reader, a member of audit_owner, a stranger) and, where it must be
blocked even then, as the superuser. Each must fail with a clear error, and the
log must be exactly as it was afterwards.
"""

from __future__ import annotations

import re
from typing import Any

import psycopg
import pytest
from pgtest import Database, reset_public_schema
from psycopg import sql

DENIED = "42501"
# The privilege system answers for roles without rights on the object.
NO_PRIVILEGE = (r"permission denied for (table|schema|relation|function)|must be owner of"
                r"|permission denied to drop objects")
APPEND_ONLY = (r"^pg-audit: (UPDATE|DELETE|TRUNCATE) on audit\.event\w* is not allowed: "
               r"the audit log is append-only$")
GUARDED = r"^pg-audit: \S+ may not change .+: audit objects and capture triggers are guarded$"


# One database for the module, the public schema emptied before each test:
# CREATE DATABASE per test was most of this file's run time. Attacks compare the
# whole log before and after, so earlier tests' events do not matter.
_since = [0]


@pytest.fixture(scope="module")
def db(module_db: Database) -> Database:
    return module_db


@pytest.fixture(autouse=True)
def _fresh_public_schema(db: Database, roles: dict[str, str]) -> None:
    with db.connect() as conn:
        conn.execute("DROP SCHEMA IF EXISTS evil CASCADE")
    _since[0] = reset_public_schema(db, roles)


def snapshot(db: Database) -> list[Any]:
    with db.connect() as conn:
        return conn.execute("SELECT to_jsonb(e) FROM audit.event e ORDER BY id").fetchall()


def current_partition(db: Database) -> str:
    with db.connect() as conn:
        row = conn.execute(
            "SELECT format('audit.%I', 'event_' || to_char(now(), 'YYYY_MM'))"
        ).fetchone()
    assert row
    return str(row[0])


@pytest.fixture
def logged(db: Database, roles: dict[str, str]) -> Database:
    """A database with events in a monthly partition and in the default partition."""
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.account (id int PRIMARY KEY, name text)")
        conn.execute("SELECT audit.enable_tracking('public.account')")
        conn.execute("INSERT INTO public.account VALUES (1, 'alice'), (2, 'bob')")
        conn.execute("UPDATE public.account SET name = 'carol' WHERE id = 2")
        conn.execute("SELECT audit.log_event(action => 'LOGIN', actor_id => '7')")
    with db.connect() as conn:
        # Superusers may insert; an old timestamp lands in the default partition,
        # so row triggers there have a row to fire on.
        conn.execute(
            "INSERT INTO audit.event (action, occurred_at) VALUES ('LEGACY', '2000-01-01')"
        )
        assert conn.execute("SELECT count(*) > 0 FROM audit.event_default").fetchone() == (True,)
    return db


def refused(conn: psycopg.Connection, statement: str, pattern: str, sqlstate: str = DENIED) -> None:
    with pytest.raises(psycopg.Error) as caught:
        with conn.transaction():
            conn.execute(statement)
    error = caught.value
    message = error.diag.message_primary or ""
    assert error.sqlstate == sqlstate, f"{statement!r}: {error.sqlstate} {message}"
    assert re.search(pattern, message), f"{statement!r}: {message}"


def attack_all_roles(
    db: Database, roles: dict[str, str], statements: list[str], owner_pattern: str
) -> None:
    """Run each statement as every test role; the audit_owner member meets owner_pattern."""
    before = snapshot(db)
    for short in ("app", "reader", "stranger", "ownermember"):
        with db.connect(roles[short]) as conn:
            for statement in statements:
                refused(conn, statement, owner_pattern if short == "ownermember" else NO_PRIVILEGE)
    assert snapshot(db) == before


def partitions(db: Database) -> list[str]:
    return ["audit.event", "audit.event_default", current_partition(db)]


def test_update_and_delete_of_the_log_and_its_partitions_fail_for_every_role(
    logged: Database, roles: dict[str, str]
) -> None:
    statements = []
    for table in partitions(logged):
        statements += [f"UPDATE {table} SET action = 'FORGED'", f"DELETE FROM {table}"]
    attack_all_roles(logged, roles, statements, APPEND_ONLY)


def test_truncate_of_the_log_and_its_partitions_fails_for_every_role(
    logged: Database, roles: dict[str, str]
) -> None:
    statements = [f"TRUNCATE {table}" for table in partitions(logged)]
    statements.append("TRUNCATE audit.event_default, audit.event CASCADE")
    attack_all_roles(logged, roles, statements, APPEND_ONLY)


def test_superuser_update_delete_truncate_hit_the_append_only_triggers(logged: Database) -> None:
    before = snapshot(logged)
    with logged.connect() as conn:
        for table in partitions(logged):
            refused(conn, f"UPDATE {table} SET action = 'FORGED'", APPEND_ONLY)
            refused(conn, f"DELETE FROM {table}", APPEND_ONLY)
            refused(conn, f"TRUNCATE {table}", APPEND_ONLY)
        refused(conn, "UPDATE audit.schema_version SET version = 99", r"append-only")
    assert snapshot(logged) == before


def test_replica_session_role_skips_no_append_only_trigger(logged: Database) -> None:
    before = snapshot(logged)
    with logged.connect() as conn:
        conn.execute("SET session_replication_role = replica")
        for table in partitions(logged):
            refused(conn, f"UPDATE {table} SET action = 'FORGED'", APPEND_ONLY)
            refused(conn, f"DELETE FROM {table}", APPEND_ONLY)
            refused(conn, f"TRUNCATE {table}", APPEND_ONLY)
    assert snapshot(logged) == before


def test_non_superusers_cannot_switch_to_replica_mode(
    logged: Database, roles: dict[str, str]
) -> None:
    for short in ("app", "reader", "stranger", "ownermember"):
        with logged.connect(roles[short]) as conn:
            refused(conn, "SET session_replication_role = replica",
                    r'permission denied to set parameter "session_replication_role"')


def test_forged_direct_insert_fails_for_roles_without_ownership(
    logged: Database, roles: dict[str, str]
) -> None:
    before = snapshot(logged)
    for short in ("app", "reader", "stranger"):
        with logged.connect(roles[short]) as conn:
            for table in partitions(logged):
                refused(conn, f"INSERT INTO {table} (action, occurred_at) VALUES ('LOGIN', now())",
                        NO_PRIVILEGE)
            refused(conn, "INSERT INTO audit.schema_version (version, name) VALUES (99, 'x')",
                    NO_PRIVILEGE)
    assert snapshot(logged) == before


def test_member_of_audit_owner_can_neither_insert_events_nor_move_their_ids(
    logged: Database, roles: dict[str, str]
) -> None:
    # Appending is audit_appender's alone (no members); the owner gave up INSERT
    # on the log and its partitions and setval on the id sequence.
    with logged.connect(roles["ownermember"]) as conn:
        conn.execute("SET ROLE audit_owner")
        for statement in ("INSERT INTO audit.event (action) VALUES ('FORGED')",
                          "INSERT INTO audit.event_default (action) VALUES ('FORGED')",
                          "SELECT setval('audit.event_id_seq', 1)"):
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute(statement)
    with logged.connect() as conn:
        assert conn.execute("SELECT count(*) FROM audit.event WHERE action = 'FORGED'"
                            ).fetchone() == (0,)


def test_member_of_audit_owner_cannot_hand_out_rights_on_the_log(
    logged: Database, roles: dict[str, str]
) -> None:
    app = roles["app"]
    with logged.connect(roles["ownermember"]) as conn:
        for statement in [
            f"GRANT INSERT ON audit.event TO {app}",
            f"GRANT UPDATE ON audit.event_default TO {app}",
            "GRANT EXECUTE ON FUNCTION audit.append_event(text, text, text, jsonb, text, text, "
            f"jsonb, jsonb, jsonb) TO {app}",
            "ALTER DEFAULT PRIVILEGES IN SCHEMA audit GRANT INSERT ON TABLES TO PUBLIC",
            "REVOKE SELECT ON audit.event FROM audit_reader",
        ]:
            refused(conn, statement, r"^pg-audit: \S+ may not change privileges with ")
    with logged.connect() as conn:
        assert conn.execute(
            "SELECT has_table_privilege(%s, 'audit.event', 'INSERT'), "
            "has_function_privilege(%s, 'audit.append_event(text, text, text, jsonb, text, text, "
            "jsonb, jsonb, jsonb)', 'EXECUTE'), "
            "has_table_privilege('audit_reader', 'audit.event', 'SELECT')", [app, app]
        ).fetchone() == (False, False, True)


def test_disabling_the_append_only_triggers_fails(logged: Database, roles: dict[str, str]) -> None:
    part = current_partition(logged)
    statements = [
        "ALTER TABLE audit.event DISABLE TRIGGER audit_append_only",
        "ALTER TABLE audit.event DISABLE TRIGGER ALL",
        "ALTER TABLE audit.event DISABLE TRIGGER USER",
        f"ALTER TABLE {part} DISABLE TRIGGER audit_no_truncate",
        "ALTER TABLE audit.event_default ENABLE REPLICA TRIGGER audit_append_only",
        "ALTER TABLE audit.event_default ENABLE TRIGGER audit_no_truncate",
    ]
    attack_all_roles(logged, roles, statements, GUARDED)
    with logged.connect() as conn:
        states = conn.execute(
            "SELECT DISTINCT tgenabled FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid "
            "WHERE c.relnamespace = 'audit'::regnamespace AND t.tgname <> 'audit_notify'"
        ).fetchall()
    assert states == [("A",)]  # audit_notify is off by default (sql/0003_reporting.sql)


def test_dropping_log_tables_triggers_and_functions_fails(
    logged: Database, roles: dict[str, str]
) -> None:
    part = current_partition(logged)
    statements = [
        "DROP TABLE audit.event CASCADE",
        "DROP TABLE audit.event_default",
        f"DROP TABLE {part}",
        f"ALTER TABLE audit.event DETACH PARTITION {part}",
        "DROP TRIGGER audit_append_only ON audit.event",
        "DROP TRIGGER audit_no_truncate ON audit.event_default",
        "DROP FUNCTION audit.refuse_change() CASCADE",
        "DROP SCHEMA audit CASCADE",
        # Cascading to the event triggers would switch the guard off mid-command.
        "DROP FUNCTION audit.guard_ddl() CASCADE",
        "DROP OWNED BY audit_owner CASCADE",
    ]
    attack_all_roles(logged, roles, statements, GUARDED)


def test_rules_on_the_log_are_refused(logged: Database, roles: dict[str, str]) -> None:
    statements = [
        "CREATE RULE hide AS ON UPDATE TO audit.event_default DO INSTEAD NOTHING",
        "CREATE RULE hide AS ON DELETE TO audit.event_default DO INSTEAD NOTHING",
        "CREATE RULE hide AS ON INSERT TO audit.event_default DO INSTEAD NOTHING",
        # A BEFORE trigger returning NULL would drop events as silently as a rule.
        "CREATE TRIGGER hide BEFORE INSERT ON audit.event_default FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
        "CREATE TRIGGER hide BEFORE INSERT ON audit.event FOR EACH ROW "
        "EXECUTE FUNCTION suppress_redundant_updates_trigger()",
    ]
    attack_all_roles(logged, roles, statements, GUARDED)


def test_replacing_or_altering_the_definer_functions_fails(
    logged: Database, roles: dict[str, str]
) -> None:
    statements = [
        "CREATE OR REPLACE FUNCTION audit.capture() RETURNS trigger LANGUAGE plpgsql "
        "AS 'BEGIN RETURN NULL; END'",
        "CREATE OR REPLACE FUNCTION audit.log_event(action text, actor_id text DEFAULT NULL, "
        "actor_name text DEFAULT NULL, detail jsonb DEFAULT NULL, outcome text DEFAULT NULL) "
        "RETURNS bigint LANGUAGE sql AS 'SELECT 0::bigint'",
        "CREATE OR REPLACE FUNCTION audit.refuse_change() RETURNS trigger LANGUAGE plpgsql "
        "AS 'BEGIN RETURN OLD; END'",
        "ALTER FUNCTION audit.log_event(text, text, text, jsonb, text) RESET search_path",
        "ALTER FUNCTION audit.capture() SECURITY INVOKER",
        "CREATE FUNCTION audit.sneak() RETURNS int LANGUAGE sql AS 'SELECT 1'",
        # A replaced guard would be the one to judge its own replacement.
        "CREATE OR REPLACE FUNCTION audit.guard_ddl() RETURNS event_trigger LANGUAGE plpgsql "
        "AS 'BEGIN END'",
        "ALTER FUNCTION audit.guard_ddl() RENAME TO unguard",
        "ALTER SCHEMA audit RENAME TO hidden",
    ]
    # Creating in schema audit needs CREATE on it: a privilege error, not ownership.
    attack_all_roles(logged, roles, statements, GUARDED)
    with logged.connect() as conn:
        assert conn.execute(
            "SELECT prosecdef, proconfig FROM pg_proc WHERE oid = 'audit.capture'::regproc"
        ).fetchone() == (True, ["search_path=pg_catalog, audit, pg_temp"])


def test_writer_functions_are_closed_to_public_and_the_reader(
    logged: Database, roles: dict[str, str]
) -> None:
    calls = [
        "SELECT audit.log_event(action => 'LOGIN')",
        "SELECT audit.set_context(actor_id => '1')",
        "SELECT audit.append_event('LOGIN', NULL, NULL, NULL, NULL)",
        "SELECT audit.append_event('TRACKING_DISABLED', NULL, NULL, NULL, NULL, 'public.account')",
        "SELECT audit.create_partitions(6)",
        "SELECT audit.protect_table('public.account')",
        "SELECT audit.enable_tracking('public.account')",
        "SELECT audit.disable_tracking('public.account')",
        "SELECT audit.record_tracking('public.account')",
    ]
    before = snapshot(logged)
    for short in ("reader", "stranger"):
        with logged.connect(roles[short]) as conn:
            for call in calls:
                refused(conn, call, NO_PRIVILEGE)
    with logged.connect(roles["app"]) as conn:
        # The writer may log and set context, never write arbitrary events or DDL.
        for call in calls[2:6]:
            refused(conn, call, r"^permission denied for function "
                                r"(append_event|create_partitions|protect_table)$")
    with logged.connect(roles["app"]) as conn:
        # It records only what the catalog says: here, that nothing is tracked.
        conn.execute("SELECT audit.record_tracking('audit.schema_version')")
    assert snapshot(logged) == before
    with logged.connect() as conn:
        public_exec = conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = 'audit'::regnamespace "
            "AND has_function_privilege('public', p.oid, 'EXECUTE') "
            "AND (p.prosecdef "
            "     OR p.proname IN ('set_context', 'enable_tracking', 'disable_tracking'))"
        ).fetchall()
    # The DDL guard runs as whoever issues DDL and calls record_ddl, which records
    # only what the event trigger's own view of the command says (tested below).
    assert public_exec == [("audit.record_ddl(text,text)",)]


def test_trigger_functions_cannot_be_called_directly(
    logged: Database, roles: dict[str, str]
) -> None:
    with logged.connect(roles["app"]) as conn:
        refused(conn, "SELECT audit.capture()", r"trigger functions can only be called as triggers",
                sqlstate="0A000")


EVIL_SCHEMA = """
CREATE SCHEMA evil;
CREATE FUNCTION evil.boom(text, text) RETURNS boolean LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE FUNCTION evil.boom1(text) RETURNS integer LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE FUNCTION evil.left(text, integer) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE FUNCTION evil.nullif(text, text) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE FUNCTION evil.current_setting(text, boolean) RETURNS text LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE FUNCTION evil.to_jsonb(anyelement) RETURNS jsonb LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE FUNCTION evil.octet_length(text) RETURNS integer LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE FUNCTION evil.nextval(regclass) RETURNS bigint LANGUAGE plpgsql AS
  $$BEGIN RAISE EXCEPTION 'evil code ran as %', current_user; END$$;
CREATE OPERATOR evil.= (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.boom);
CREATE OPERATOR evil.~ (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.boom);
CREATE OPERATOR evil.~~ (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.boom);
CREATE OPERATOR evil.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = evil.boom);
"""


def test_search_path_tricks_do_not_reach_the_definer_functions(
    db: Database, roles: dict[str, str]
) -> None:
    with db.connect() as conn:
        conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
            sql.Identifier(db.name), sql.Identifier(roles["app"])))
    with db.connect(roles["app"]) as conn:
        conn.execute(EVIL_SCHEMA)
        conn.execute("CREATE TABLE public.account (id int PRIMARY KEY, name text)")
        conn.execute("SELECT audit.enable_tracking('public.account', '{}')")
        conn.execute("SET search_path = evil, pg_catalog, public")
        # pg_temp first is the classic attack on definer functions.
        conn.execute("CREATE FUNCTION pg_temp.left(text, integer) RETURNS text LANGUAGE sql "
                     "AS $$SELECT 'temp code ran'$$")
        with conn.transaction():
            conn.execute("SELECT set_config('search_path', "
                         "'pg_temp, evil, pg_catalog, public', true)")
            conn.execute("SELECT audit.set_context(actor_id => 'u1', actor_name => 'Ann', "
                         "ip => 'bad ip')")
            conn.execute("SELECT audit.log_event(action => 'LOGIN', actor_name => 'Ann', "
                         "detail => '{\"a\": 1}')")
            conn.execute("INSERT INTO account VALUES (1, 'a'), (2, 'b')")
            conn.execute("UPDATE account SET name = 'c' WHERE id = 1")
            conn.execute("DELETE FROM account WHERE id = 2")
            conn.execute("TRUNCATE account")
    with db.connect() as conn:
        rows = conn.execute(
            "SELECT action, actor_id, actor_name, detail FROM audit.event "
            "WHERE action <> 'TRACKING_ENABLED' AND id > %s ORDER BY id", [_since[0]]
        ).fetchall()
    assert rows == [
        ("LOGIN", "u1", "Ann", {"a": 1, "ip_raw": "bad ip"}),
        ("INSERT", "u1", "Ann", {"ip_raw": "bad ip"}),
        ("INSERT", "u1", "Ann", {"ip_raw": "bad ip"}),
        ("UPDATE", "u1", "Ann", {"ip_raw": "bad ip"}),
        ("DELETE", "u1", "Ann", {"ip_raw": "bad ip"}),
        ("TRUNCATE", "u1", "Ann", {"ip_raw": "bad ip"}),
    ]


# --- the capture triggers of a tracked table, as its owner -----------------


@pytest.fixture
def tracked(db: Database, roles: dict[str, str]) -> Database:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.account (id int PRIMARY KEY, name text)")
        conn.execute("SELECT audit.enable_tracking('public.account')")
    return db


def capture_triggers(db: Database) -> list[tuple[str, str, str]]:
    with db.connect() as conn:
        return conn.execute(
            "SELECT tgname::text, tgenabled::text, tgfoid::regproc::text FROM pg_trigger "
            "WHERE tgrelid = 'public.account'::regclass ORDER BY 1"
        ).fetchall()


FOUR_TRIGGERS = [
    (f"audit_capture_{op}", "A", "audit.capture")
    for op in ("delete", "insert", "truncate", "update")
]


def test_table_owner_cannot_disable_or_drop_capture_triggers(
    tracked: Database, roles: dict[str, str]
) -> None:
    assert capture_triggers(tracked) == FOUR_TRIGGERS
    with tracked.connect(roles["app"]) as conn:
        for statement in [
            "ALTER TABLE public.account DISABLE TRIGGER audit_capture_update",
            "ALTER TABLE public.account DISABLE TRIGGER ALL",
            "ALTER TABLE public.account DISABLE TRIGGER USER",
            "ALTER TABLE public.account ENABLE REPLICA TRIGGER audit_capture_insert",
            "ALTER TABLE public.account ENABLE TRIGGER audit_capture_delete",
            "DROP TRIGGER audit_capture_delete ON public.account",
            "DROP TRIGGER audit_capture_truncate ON public.account",
            # Without its primary key every event's row_key would be {}.
            "ALTER TABLE public.account DROP CONSTRAINT account_pkey",
        ]:
            refused(conn, statement, GUARDED)
    assert capture_triggers(tracked) == FOUR_TRIGGERS


def test_table_owner_cannot_rename_or_replace_capture_triggers(
    tracked: Database, roles: dict[str, str]
) -> None:
    with tracked.connect(roles["app"]) as conn:
        conn.execute("CREATE FUNCTION public.nothing() RETURNS trigger LANGUAGE plpgsql "
                     "AS 'BEGIN RETURN NULL; END'")
        for statement in [
            # A renamed trigger could then be dropped under a name nobody guards.
            "ALTER TRIGGER audit_capture_update ON public.account RENAME TO harmless",
            "CREATE OR REPLACE TRIGGER audit_capture_update AFTER UPDATE ON public.account "
            "FOR EACH STATEMENT EXECUTE FUNCTION public.nothing()",
            # Same function, every column excluded: the log would go blind.
            "CREATE OR REPLACE TRIGGER audit_capture_update AFTER UPDATE ON public.account "
            "REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit.capture('{name}')",
            # A second capture under another name forges events for the table.
            "CREATE TRIGGER other AFTER INSERT ON public.account "
            "REFERENCING NEW TABLE AS audit_new "
            "FOR EACH STATEMENT EXECUTE FUNCTION audit.capture('{}')",
        ]:
            refused(conn, statement, GUARDED)
    assert capture_triggers(tracked) == FOUR_TRIGGERS


def test_disable_tracking_is_the_way_out_and_is_recorded(
    tracked: Database, roles: dict[str, str]
) -> None:
    with tracked.connect(roles["app"]) as conn:
        conn.execute("SELECT audit.disable_tracking('public.account')")
        conn.execute("INSERT INTO public.account VALUES (1, 'untracked')")
    assert capture_triggers(tracked) == []
    with tracked.connect() as conn:
        assert conn.execute(
            "SELECT action, table_name, db_role FROM audit.event WHERE id > %s ORDER BY id",
            [_since[0]]
        ).fetchall() == [
            ("TRACKING_ENABLED", "public.account", roles["app"]),
            ("TRACKING_DISABLED", "public.account", roles["app"]),
        ]


def test_the_setting_earlier_versions_trusted_opens_nothing(
    tracked: Database, roles: dict[str, str]
) -> None:
    # Earlier versions let capture triggers change while audit.untracking named
    # the table, a setting any session may set. Now the commit-time check reads
    # the triggers themselves: a table keeps all four or none, and either is recorded.
    with tracked.connect(roles["app"]) as conn:
        refused(conn, "SELECT set_config('audit.untracking', "
                      "'public.account'::regclass::oid::text, true); "
                      "DROP TRIGGER audit_capture_update ON public.account", GUARDED)
    assert capture_triggers(tracked) == FOUR_TRIGGERS


def test_other_roles_cannot_touch_capture_triggers(
    tracked: Database, roles: dict[str, str]
) -> None:
    for short in ("reader", "stranger", "ownermember"):
        with tracked.connect(roles[short]) as conn:
            for statement in [
                "ALTER TABLE public.account DISABLE TRIGGER audit_capture_update",
                "DROP TRIGGER audit_capture_delete ON public.account",
                "SELECT audit.disable_tracking('public.account')",
            ]:
                refused(conn, statement, NO_PRIVILEGE + "|^pg-audit: only the owner of")
    assert capture_triggers(tracked) == FOUR_TRIGGERS
