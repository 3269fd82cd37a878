"""Threat 1: code the application (or any role) can define runs with the log's rights.

Casts, operators, functions, policies and overloads that a role defines must
never run as audit_appender or audit_owner (the write path), nor in a reader's
or a DBA's investigation. Each defining role here (app, reader, stranger; an
audit_owner member may create no function at all) makes types with hostile
casts to json, jsonb and text;
each cast function records who ran it in a spy table anyone can write, then
tries to grant itself the log, disable the append-only trigger, forge and
delete events and SET ROLE audit_owner, recording what worked. The casts must
never run at all, the log must record the values as PostgreSQL prints them
(not what a cast says), and nothing may be gained (attack_support.watch).
"""

from __future__ import annotations

from typing import Any

import psycopg
import pytest
from attack_support import (
    ATTACKERS,
    AUDIT_ROLES,
    GUARDED,
    NO_RIGHTS,
    assert_refused,
    attempt,
    connect_as,
    last_event_id,
    own_schema,
    watch,
)
from pgtest import Database

from pg_audit_schema.errors import PgAuditError
from pg_audit_schema.installer import install, installed_version

# The spy table any role may write (made by the superuser: an audit_owner
# member may not GRANT anything), and, owned by the defining role, what a cast
# function runs (as whoever runs the cast).
SPY_TABLE = """
CREATE TABLE public.spy (who text, sess text, what text);
GRANT INSERT, SELECT ON public.spy TO PUBLIC;
"""
SPY = """
CREATE FUNCTION public.hostile(label text) RETURNS void LANGUAGE plpgsql AS $f$
DECLARE
    stmt text;
BEGIN
    INSERT INTO public.spy VALUES (current_user, session_user, label);
    FOREACH stmt IN ARRAY ARRAY[
        format('GRANT audit_owner TO %I', session_user),
        format('GRANT audit_appender TO %I', session_user),
        format('GRANT INSERT, UPDATE, DELETE, TRUNCATE ON audit.event TO %I', session_user),
        format('GRANT EXECUTE ON FUNCTION audit.append_event(text, text, text, jsonb, text, text, '
               'jsonb, jsonb, jsonb) TO %I', session_user),
        'ALTER TABLE audit.event DISABLE TRIGGER audit_append_only',
        'INSERT INTO audit.event (action) VALUES (''FORGED'')',
        'SELECT audit.append_event(''INSERT'', NULL, NULL, NULL, NULL, ''public.acct'')',
        'DELETE FROM audit.event',
        'SET ROLE audit_owner'] LOOP
        BEGIN
            EXECUTE stmt;
            INSERT INTO public.spy VALUES (current_user, session_user, 'succeeded: ' || stmt);
        EXCEPTION WHEN OTHERS THEN
            NULL;
        END;
    END LOOP;
END
$f$;
-- A domain check runs as whoever writes (a DBA included: PostgreSQL's own
-- rule), so it only records who that was.
CREATE FUNCTION public.allowed(v anyelement) RETURNS boolean LANGUAGE plpgsql AS $f$
BEGIN
    INSERT INTO public.spy VALUES (current_user, session_user, 'domain check');
    RETURN true;
END
$f$;
"""

# App-defined types of every kind a column can have, and a cast from each to
# json, jsonb and text whose function lies about the value (and is hostile).
TYPES = """
CREATE TYPE public.mood AS ENUM ('sad', 'ok', 'happy');
CREATE TYPE public.mood_range AS RANGE (subtype = public.mood);
CREATE DOMAIN public.checked_mood AS public.mood CHECK (public.allowed(VALUE));
CREATE TYPE public.pair AS (n int, m public.mood);
"""
SOURCES = ["public.mood", "public.mood_range", "public.checked_mood", "public.pair",
           "public.mood[]"]
TARGETS = {"json": "'\"forged\"'::json", "jsonb": "'\"forged\"'::jsonb", "text": "'forged'"}


def casts(targets: list[str], implicit: bool = False) -> str:
    out = []
    for i, source in enumerate(SOURCES):
        for target in targets:
            fn = f"public.cast_{i}_{target}"
            out.append(
                f"CREATE FUNCTION {fn}(v {source}) RETURNS {target} LANGUAGE plpgsql AS $f$ "
                f"BEGIN PERFORM public.hostile('cast {source} to {target}'); "
                f"RETURN {TARGETS[target]}; END $f$;\n"
                f"CREATE CAST ({source} AS {target}) WITH FUNCTION {fn}({source})"
                f"{' AS IMPLICIT' if implicit else ''};\n")
    return "".join(out)


ROW = "(1, 'sad', '[sad,happy)', 'ok', '(7,happy)', '{sad,happy}', 'sad')"
PRINTED = {"id": "1", "m": "sad", "r": "[sad,happy)", "d": "ok", "p": "(7,happy)",
           "a": "{sad,happy}", "late": "sad"}


@pytest.fixture(autouse=True)
def _spy_table(fresh: Database) -> None:
    with fresh.connect() as conn:
        conn.execute(SPY_TABLE)


def hstore_type(conn: psycopg.Connection) -> str:
    """hstore's type, qualified by the schema the installer put it in."""
    row = conn.execute(
        "SELECT format('%I.hstore', n.nspname) FROM pg_extension e "
        "JOIN pg_namespace n ON n.oid = e.extnamespace WHERE e.extname = 'hstore'").fetchone()
    assert row
    return str(row[0])


def spy(db: Database) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return conn.execute("SELECT who, sess, what FROM public.spy").fetchall()


def assert_no_code_ran_as_someone_else(db: Database) -> None:
    """Casts never ran; any other hostile code (a domain check, a policy) ran
    only as the session's own role, never as an audit role."""
    rows = spy(db)
    assert [r for r in rows if r[2].startswith(("cast", "succeeded"))] == [], rows
    assert [r for r in rows if r[0] != r[1] or r[0] in AUDIT_ROLES] == [], rows


def writers(definer: str) -> list[str]:
    """Who writes the tracked table: its owner, the defining role, a DBA."""
    return sorted({"app", definer, "superuser"})


# An audit_owner member may not create functions at all (the guard refuses
# CREATE FUNCTION to it): test_an_audit_owner_member_may_define_no_code.
DEFINERS = ("app", "reader", "stranger")


@pytest.mark.parametrize("definer", DEFINERS)
def test_casts_of_app_defined_types_never_run_when_a_tracked_table_is_written(
    fresh: Database, roles: dict[str, str], definer: str
) -> None:
    with watch(fresh, roles[definer]), watch(fresh, roles["app"]) as w:
        with fresh.connect(roles[definer]) as conn:
            conn.execute(SPY + TYPES + casts(["json", "jsonb"]))
        with fresh.connect(roles["app"]) as conn:
            conn.execute(
                "CREATE TABLE public.acct (id int PRIMARY KEY, m public.mood, "
                "r public.mood_range, d public.checked_mood, p public.pair, a public.mood[])")
            conn.execute("GRANT ALL ON public.acct TO PUBLIC")
            conn.execute("SELECT audit.enable_tracking('public.acct')")
            # A column and more casts (to text, implicit too) after tracking began.
            conn.execute("ALTER TABLE public.acct ADD COLUMN late public.mood")
        with fresh.connect(roles[definer]) as conn:
            conn.execute(casts(["text"], implicit=True))
        for who in writers(definer):
            with connect_as(fresh, roles, who) as conn:
                conn.execute(f"INSERT INTO public.acct VALUES {ROW}")
                conn.execute("UPDATE public.acct SET m = 'happy', r = '[ok,happy]', d = 'sad', "
                             "p = '(8,ok)', a = '{ok}', late = 'ok'")
                conn.execute("UPDATE public.acct SET id = 2")
                conn.execute("DELETE FROM public.acct")
    assert_no_code_ran_as_someone_else(fresh)
    inserts = [e for e in w.new_events if e["action"] == "INSERT"]
    assert [e["new_values"] for e in inserts] == [PRINTED] * len(writers(definer))
    updates = [e for e in w.new_events if e["action"] == "UPDATE"]
    assert updates[0]["new_values"] == {"m": "happy", "r": "[ok,happy]", "d": "sad",
                                        "p": "(8,ok)", "a": "{ok}", "late": "ok"}
    assert updates[1]["old_row_key"] == {"id": "1"} and updates[1]["row_key"] == {"id": "2"}
    assert "forged" not in str(w.new_events)


def test_an_audit_owner_member_may_define_no_code(
    fresh: Database, roles: dict[str, str]
) -> None:
    with watch(fresh, roles["ownermember"]), fresh.connect(roles["ownermember"]) as conn:
        fn = ("CREATE FUNCTION public.to_json(v public.mood) RETURNS json LANGUAGE sql "
              "AS $f$ SELECT '1'::json $f$")
        conn.execute("CREATE TYPE public.mood AS ENUM ('sad')")
        for statement in [SPY, fn, "SET ROLE audit_owner; " + fn]:
            assert_refused(attempt(conn, statement), GUARDED, statement[:60])
        conn.execute("RESET ROLE")
    assert spy(fresh) == []


def test_casts_of_the_tracked_tables_row_type_never_run(
    fresh: Database, roles: dict[str, str]
) -> None:
    # Only the table's owner owns its row type; hstore's type is usable by all.
    with watch(fresh, roles["app"]) as w, fresh.connect(roles["app"]) as conn:
        conn.execute(SPY)
        conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, note text)")
        conn.execute("SELECT audit.enable_tracking('public.acct')")
        hstore = hstore_type(conn)
        for i, (target, value) in enumerate([
            ("json", TARGETS["json"]), ("jsonb", TARGETS["jsonb"]), ("text", "'forged'"),
            (hstore, f"'note=>forged'::{hstore}")]):
            conn.execute(
                f"CREATE FUNCTION public.row_cast_{i}(v public.acct) RETURNS {target} "
                f"LANGUAGE plpgsql AS $f$ BEGIN PERFORM public.hostile('cast row to {target}'); "
                f"RETURN {value}; END $f$")
            conn.execute(f"CREATE CAST (public.acct AS {target}) WITH FUNCTION "
                         f"public.row_cast_{i}(public.acct) AS IMPLICIT")
        conn.execute("INSERT INTO public.acct VALUES (1, 'real')")
        conn.execute("UPDATE public.acct SET note = 'real too'")
        conn.execute("DELETE FROM public.acct")
    assert_no_code_ran_as_someone_else(fresh)
    assert [(e["action"], e["new_values"] or e["old_values"]) for e in w.new_events][1:] == [
        ("INSERT", {"id": "1", "note": "real"}), ("UPDATE", {"note": "real too"}),
        ("DELETE", {"id": "1", "note": "real too"})]


HSTORE_OVERLOADS = """
CREATE FUNCTION {s}.hstore(r record) RETURNS {h} LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload hstore(record)'); RETURN 'id=>666'; END $f$;
CREATE FUNCTION {s}.slice(a {h}, k text[]) RETURNS {h} LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload slice'); RETURN 'id=>666'; END $f$;
CREATE FUNCTION {s}.delete(a {h}, k text[]) RETURNS {h} LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload delete'); RETURN a; END $f$;
CREATE FUNCTION {s}.akeys(a {h}) RETURNS text[] LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload akeys'); RETURN '{{}}'; END $f$;
CREATE FUNCTION {s}.hstore_to_jsonb(a {h}) RETURNS jsonb LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload hstore_to_jsonb'); RETURN '{{"forged": 1}}'; END $f$;
CREATE FUNCTION {s}.hminus(a {h}, b {h}) RETURNS {h} LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload -'); RETURN a; END $f$;
CREATE FUNCTION {s}.heq(a {h}, b {h}) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload ='); RETURN true; END $f$;
CREATE FUNCTION {s}.tne(a text, b text) RETURNS boolean LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload text <>'); RETURN false; END $f$;
CREATE FUNCTION {s}.current_setting(a text, b boolean) RETURNS text LANGUAGE plpgsql AS
  $f$ BEGIN PERFORM public.hostile('overload current_setting'); RETURN 'forged'; END $f$;
CREATE OPERATOR {s}.- (LEFTARG = {h}, RIGHTARG = {h}, FUNCTION = {s}.hminus);
CREATE OPERATOR {s}.= (LEFTARG = {h}, RIGHTARG = {h}, FUNCTION = {s}.heq);
CREATE OPERATOR {s}.<> (LEFTARG = {h}, RIGHTARG = {h}, FUNCTION = {s}.heq);
CREATE OPERATOR {s}.<> (LEFTARG = text, RIGHTARG = text, FUNCTION = {s}.tne);
"""


@pytest.mark.parametrize("definer", DEFINERS)
def test_overloads_of_hstore_functions_and_operators_in_writable_schemas_never_run(
    fresh: Database, roles: dict[str, str], definer: str
) -> None:
    with watch(fresh, roles[definer]), watch(fresh, roles["app"]) as w:
        with fresh.connect(roles[definer]) as conn:
            conn.execute(SPY)
            conn.execute("CREATE SCHEMA evil")
            conn.execute("GRANT USAGE ON SCHEMA evil TO PUBLIC")
            for schema in ("public", "evil"):
                conn.execute(HSTORE_OVERLOADS.format(s=schema, h=hstore_type(conn)))
        with fresh.connect(roles["app"]) as conn:
            conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, note text)")
            conn.execute("GRANT ALL ON public.acct TO PUBLIC")
            conn.execute("SELECT audit.enable_tracking('public.acct')")
        for who in writers(definer):
            with connect_as(fresh, roles, who) as conn:
                conn.execute("SET search_path = evil, public, pg_catalog")
                with conn.transaction():
                    conn.execute("SET LOCAL audit.actor_id = 'u1'")
                    conn.execute("INSERT INTO acct VALUES (1, 'a')")
                    conn.execute("UPDATE acct SET note = 'b'")
                    conn.execute("DELETE FROM acct")
    assert [r for r in spy(fresh) if r[0] in AUDIT_ROLES or r[1] != r[0]] == []
    assert [r for r in spy(fresh) if r[2].startswith("overload")] == []
    assert [(e["action"], e["row_key"], e["actor_id"]) for e in w.new_events
            if e["action"] in ("INSERT", "UPDATE", "DELETE")] == [
        ("INSERT", {"id": "1"}, "u1"), ("UPDATE", {"id": "1"}, "u1"),
        ("DELETE", {"id": "1"}, "u1")] * len(writers(definer))
    assert "forged" not in str(w.new_events)


# Code the application puts where a reader or a DBA might run it: a policy and
# a domain check on the tracked table, a view named like Django's content
# types, a primary key of an app-defined type, operators for it.
READER_BAIT = """
CREATE TABLE public.acct (id public.checked_mood PRIMARY KEY, note text);
CREATE FUNCTION public.bait_eq(a public.mood, b public.mood) RETURNS boolean LANGUAGE plpgsql
  AS $f$ BEGIN PERFORM public.hostile('operator'); RETURN a::text = b::text; END $f$;
CREATE OPERATOR public.= (LEFTARG = public.mood, RIGHTARG = public.mood, FUNCTION = public.bait_eq);
CREATE FUNCTION public.bait_policy() RETURNS boolean LANGUAGE plpgsql
  AS $f$ BEGIN PERFORM public.hostile('policy'); RETURN true; END $f$;
ALTER TABLE public.acct ENABLE ROW LEVEL SECURITY;
CREATE POLICY everyone ON public.acct USING (public.bait_policy())
  WITH CHECK (public.bait_policy());
CREATE VIEW public.django_content_type AS
  SELECT 1 AS id, 'shop' AS app_label, 'order' AS model WHERE public.bait_policy();
SELECT audit.enable_tracking('public.acct');
INSERT INTO public.acct VALUES ('sad', 'a');
UPDATE public.acct SET note = 'b';
UPDATE public.acct SET id = 'happy';
"""


@pytest.mark.parametrize("investigator", ["reader", "superuser"])
def test_investigating_a_table_with_app_defined_keys_runs_no_app_code(
    fresh: Database, roles: dict[str, str], investigator: str
) -> None:
    start = last_event_id(fresh)
    with fresh.connect(roles["app"]) as conn:
        conn.execute(SPY + TYPES + casts(["json", "jsonb", "text"], implicit=True) + READER_BAIT)
    with fresh.connect() as conn:
        conn.execute("TRUNCATE public.spy")  # the app's own writes ran its policy as the app
    with watch(fresh, roles["reader"]), connect_as(fresh, roles, investigator) as conn:
        views = [r[0] for r in conn.execute(
            "SELECT c.oid::regclass::text FROM pg_class c "
            "WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind = 'v'").fetchall()]
        for view in views:
            conn.execute(f"SELECT * FROM {view}").fetchall()
        history = conn.execute(
            "SELECT action, row_key FROM audit.row_history('public.acct', "
            "'{\"id\": \"sad\"}') WHERE id > %s", [start]).fetchall()
        for call in [
            "SELECT audit.row_history('acct'::regclass, '{\"id\": \"sad\"}')",
            "SELECT * FROM audit.last_change('public.acct', '{\"id\": \"happy\"}', 'note')",
            "SELECT audit.row_as_of('public.acct', '{\"id\": \"happy\"}', now())",
            "SELECT * FROM audit.column_changes('public.acct', '{\"id\": \"happy\"}', "
            "'-infinity', 'infinity')",
            "SELECT audit.key_forms('public.acct', '{\"id\": \"sad\"}')",
            "SELECT * FROM audit.tracked_table",
            "SELECT audit.resolve_table('acct')",
        ]:
            conn.execute(call).fetchall()
    assert spy(fresh) == []
    assert [a for a, _ in history] == ["INSERT", "UPDATE", "UPDATE"]


def trigger_functions(db: Database) -> list[str]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute(
            "SELECT p.oid::regprocedure::text FROM pg_proc p "
            "WHERE p.pronamespace = 'audit'::regnamespace AND p.prorettype = 'trigger'::regtype "
            "ORDER BY 1").fetchall()]


# The attacker's own tables, with columns of app-defined types: one named like
# Django's admin log (admin_log_event refuses other names), one with a column
# "relation" naming the tracked table (check_tracking reads NEW.relation).
SCRATCH = """
CREATE TABLE {s}.scratch (id int PRIMARY KEY, relation oid, m public.mood, p public.pair);
CREATE TABLE {s}.django_admin_log (id int PRIMARY KEY, action_time timestamptz DEFAULT now(),
    object_id text, object_repr text, action_flag smallint, change_message text,
    content_type_id int, user_id int, relation oid, m public.mood, p public.pair);
"""
HOSTILE_ARGUMENTS = ["", "'public.acct'", "'{1}', '{id}', '{}', '{}'",
                     "'x''); DELETE FROM audit.event; --'"]
SHAPES = ["AFTER INSERT ON {t} REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT",
          "AFTER INSERT ON {t} FOR EACH ROW",
          "AFTER INSERT OR UPDATE OR DELETE ON {t} FOR EACH ROW"]
ROWS = {"scratch": "(id, relation, m, p) VALUES (1, 'public.acct'::regclass, 'sad', '(1,ok)')",
        "django_admin_log": "(id, relation, m, p, action_flag, user_id) "
                            "VALUES (1, 'public.acct'::regclass, 'sad', '(1,ok)', 1, 7)"}


def attach_every_trigger_function(
    db: Database, roles: dict[str, str], attacker: str, functions: list[str]
) -> list[str]:
    """Attaches each trigger function, in every shape, with hostile arguments,
    to the attacker's own tables, then writes them. Returns what was accepted
    (the deferred check included: each attempt commits)."""
    accepted = []
    schema = f"own_{attacker}"
    own_schema(db, roles[attacker], schema)
    with db.connect(roles[attacker]) as conn:
        conn.execute(SCRATCH.format(s=schema))
        for table, row in ROWS.items():
            for fn in functions:
                name = fn.removeprefix("audit.").removesuffix("()")
                reserved = {"capture": "audit_capture_insert",
                            "admin_log_event": "audit_admin_log"}.get(name, "audit_x")
                for trigger in (reserved, f"z_{name}"):
                    for shape in SHAPES:
                        for args in HOSTILE_ARGUMENTS:
                            statement = (f"CREATE TRIGGER {trigger} "
                                         + shape.format(t=f"{schema}.{table}")
                                         + f" EXECUTE FUNCTION {fn.removesuffix('()')}({args})")
                            if attempt(conn, statement) is None:
                                accepted.append(statement)
                                attempt(conn, f"INSERT INTO {schema}.{table} {row}")
                                attempt(conn, f"DELETE FROM {schema}.{table}")
                                attempt(conn, f"DROP TRIGGER {trigger} ON {schema}.{table}")
    return accepted


def acct(db: Database, roles: dict[str, str]) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, note text)")
        conn.execute("SELECT audit.enable_tracking('public.acct')")


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_every_audit_trigger_function_on_the_attackers_own_table_names_only_that_table(
    fresh: Database, roles: dict[str, str], attacker: str
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute(SPY + TYPES + casts(["json", "jsonb", "text"]))
    acct(fresh, roles)
    functions = trigger_functions(fresh)
    assert {"audit.capture()", "audit.admin_log_event()", "audit.check_tracking()",
            "audit.refuse_change()"} <= set(functions)
    with watch(fresh, roles[attacker]) as w:
        accepted = attach_every_trigger_function(fresh, roles, attacker, functions)
    own = {f"own_{attacker}.scratch", f"own_{attacker}.django_admin_log"}
    assert [e for e in w.new_events if e["table_name"] not in own] == []
    assert {e["action"] for e in w.new_events} <= {"ADMIN_CREATE"}
    # ADMIN_* only from the table named django_admin_log, by the trigger
    # enable_admin_log makes: named audit_admin_log, AFTER INSERT FOR EACH ROW.
    admin = [s for s in accepted if "admin_log_event" in s]
    assert all(s.startswith(f"CREATE TRIGGER audit_admin_log AFTER INSERT ON own_{attacker}."
                            "django_admin_log FOR EACH ROW") for s in admin), admin
    if attacker == "app":
        assert {e["table_name"] for e in w.new_events} == {"own_app.django_admin_log"}
    if attacker in ("reader", "stranger"):
        assert [s for s in accepted if "capture" in s or "admin_log_event" in s] == []
    assert_no_code_ran_as_someone_else(fresh)


EVENT_TRIGGER_ONLY = r"can only be called in (an|a sql_drop) event trigger"


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_the_tracking_functions_anyone_may_call_record_only_what_the_catalog_says(
    fresh: Database, roles: dict[str, str], attacker: str
) -> None:
    acct(fresh, roles)
    with fresh.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.other (id int PRIMARY KEY)")
    with watch(fresh, roles[attacker]) as w, fresh.connect(roles[attacker]) as conn:
        for call in ["SELECT audit.sync_tracking('public.acct')",
                     "SELECT audit.sync_tracking('public.other')",
                     "SELECT audit.record_tracking('public.other')",
                     "SELECT audit.sync_tracking('audit.event')",
                     "SELECT audit.record_ddl('ddl_command_end', 'DROP TABLE')",
                     "SELECT audit.record_ddl('sql_drop', 'DROP TABLE')",
                     "INSERT INTO audit.tracking_check (relation) VALUES ('public.acct'::regclass)",
                     "DELETE FROM audit.tracking WHERE relation = 'public.acct'::regclass",
                     "SELECT audit.install_capture('public.other', '{}')",
                     "SELECT audit.enable_tracking('public.other')"]:
            error = attempt(conn, call)
            if error is not None:
                assert_refused(error, NO_RIGHTS + "|" + EVENT_TRIGGER_ONLY, call)
            elif attacker != "app":
                assert "install_capture" not in call and "enable_tracking" not in call, call
    # The owner made capture triggers: that is tracking, recorded as such.
    assert [(e["action"], e["table_name"]) for e in w.new_events] == (
        [("TRACKING_ENABLED", "public.other")] if attacker == "app" else [])


def test_record_ddl_called_from_app_code_inside_ddl_records_only_real_commands(
    fresh: Database, roles: dict[str, str]
) -> None:
    # An app function evaluated while a DDL command runs (a USING expression, a
    # query of CREATE TABLE AS) is inside the event trigger's view of that
    # command: calling record_ddl there may record, at most, what happened.
    acct(fresh, roles)
    with fresh.connect(roles["app"]) as conn:
        conn.execute("INSERT INTO public.acct VALUES (1, 'a')")
        conn.execute(
            "CREATE FUNCTION public.meddle(v text) RETURNS text LANGUAGE plpgsql AS $f$ BEGIN "
            "PERFORM audit.record_ddl('ddl_command_end', 'DROP TABLE'); "
            "BEGIN PERFORM audit.record_ddl('sql_drop', 'DROP TABLE'); "
            "EXCEPTION WHEN OTHERS THEN NULL; END; RETURN v; END $f$")
        with watch(fresh, roles["app"]) as w:
            for statement in ["ALTER TABLE public.acct ALTER COLUMN note TYPE varchar(10) "
                              "USING public.meddle(note)",
                              "CREATE TABLE public.made AS SELECT public.meddle('x') AS v"]:
                error = attempt(conn, statement)
                if error is not None:
                    assert_refused(error, EVENT_TRIGGER_ONLY, statement)
    recorded = {(e["action"], e["table_name"], e["detail"].get("command_tag"))
                for e in w.new_events}
    assert recorded == {("DDL", "public.acct", "ALTER TABLE")}


ADMIN_LOG = """
CREATE TABLE public.django_admin_log (id int PRIMARY KEY, action_time timestamptz DEFAULT now(),
    object_id text, object_repr text, action_flag smallint, change_message text,
    content_type_id int, user_id int);
SELECT audit.enable_admin_log('public.django_admin_log');
"""


def test_a_cast_from_the_admin_logs_row_type_to_hstore_changes_no_admin_event(
    fresh: Database, roles: dict[str, str]
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute(ADMIN_LOG)
        conn.execute(f"CREATE CAST (public.django_admin_log AS {hstore_type(conn)}) "
                     "WITH INOUT AS IMPLICIT")
        with watch(fresh, roles["app"]) as w:
            error = attempt(
                conn, "INSERT INTO public.django_admin_log (id, object_id, object_repr, "
                      "action_flag, change_message, content_type_id, user_id) "
                      "VALUES (1, '5', 'Order 5', 2, '[]', 3, 7)")
    assert error is None, f"the admin's save failed: {error}"
    assert [(e["action"], e["actor_id"], e["detail"]["object_id"]) for e in w.new_events] == [
        ("ADMIN_UPDATE", "7", "5")]


def test_the_installer_refuses_hstore_where_another_role_could_create_overloads(
    empty_db: Database,
) -> None:
    # Capture names hstore's functions; an overload beside them (in public,
    # which pg_database_owner, or PUBLIC on 15, may create in) would be picked.
    with empty_db.connect() as conn:
        conn.execute("CREATE EXTENSION hstore SCHEMA public")
        with pytest.raises(PgAuditError, match=r"the hstore extension is in schema public, "
                                               r"where \S+ can create objects"):
            install(conn)
        assert installed_version(conn) is None


def hstore_moved_then_installed(db: Database, usage: str | None) -> psycopg.Connection:
    conn = db.connect()
    conn.execute("CREATE SCHEMA extensions")
    if usage:
        conn.execute(f"GRANT USAGE ON SCHEMA extensions TO {usage}")
    conn.execute("CREATE EXTENSION hstore SCHEMA extensions")
    install(conn)
    assert conn.execute("SELECT proconfig FROM pg_proc WHERE oid = 'audit.capture'::regproc"
                        ).fetchone() == (["search_path=pg_catalog, extensions, pg_temp"],)
    conn.execute("CREATE TABLE public.t (id int PRIMARY KEY, v text)")
    conn.execute("SELECT audit.enable_tracking('public.t')")
    return conn


def test_hstore_in_a_schema_only_superusers_create_in_is_used_where_it_is(
    empty_db: Database,
) -> None:
    with hstore_moved_then_installed(empty_db, "PUBLIC") as conn:
        conn.execute("INSERT INTO public.t VALUES (1, 'a')")
        assert conn.execute("SELECT new_values FROM audit.event WHERE action = 'INSERT'"
                            ).fetchall() == [({"id": "1", "v": "a"},)]


def test_hstore_moved_as_the_installers_hint_says_captures(empty_db: Database) -> None:
    with hstore_moved_then_installed(empty_db, None) as conn:
        error = attempt(conn, "INSERT INTO public.t VALUES (1, 'a')")
    assert error is None, error
