"""Threat 2: forged database verbs.

INSERT, UPDATE, DELETE, TRUNCATE, TRACKING_*, ADMIN_*, DDL and RETENTION are
written by the database alone, each by the code path it describes and naming
the table it happened to. Here every role tries to write them through
log_event, through capture triggers with forged arguments on a scratch table,
and through admin_log_event on tables that are not the admin log.
(Trigger functions attached in every shape: test_attack_app_code; a member of
audit_owner calling append_event: test_attack_owner_member.)
"""

from __future__ import annotations

import pytest
from attack_support import (
    ATTACKERS,
    GUARDED,
    NO_RIGHTS,
    assert_refused,
    attempt,
    own_schema,
    watch,
)
from pgtest import Database

RESERVED = ["INSERT", "UPDATE", "DELETE", "TRUNCATE", "DDL", "RETENTION", "TRACKING_ENABLED",
            "TRACKING_DISABLED", "TRACKING_PAUSED", "ADMIN_CREATE", "ADMIN_UPDATE",
            "ADMIN_DELETE", "ADMIN_ACTION", "ADMIN_"]
# Look-alikes that must not pass as another verb either: refused as malformed.
LOOK_ALIKES = ["insert", " INSERT", "INSERT ", "INSERT\n", "Admin_CREATE", "ADMIN-CREATE",
               "TRACKING ENABLED", "DDL;", "İNSERT", "\u200bINSERT"]


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_log_event_refuses_every_verb_the_database_writes(
    fresh: Database, roles: dict[str, str], attacker: str
) -> None:
    with watch(fresh, roles[attacker]) as w, fresh.connect(roles[attacker]) as conn:
        for verb in RESERVED + LOOK_ALIKES:
            error = attempt(conn, "SELECT audit.log_event(action => %s, actor_id => '1', "
                                  "detail => '{\"table_name\": \"public.acct\"}')", [verb])
            if attacker == "app":
                assert_refused(error, r"^pg-audit: action .* is reserved for events recorded by "
                               r"the database itself$|^pg-audit: action must be an upper-case verb",
                               repr(verb))
            else:
                assert_refused(error, NO_RIGHTS, repr(verb))
    assert w.new_events == []


def scratch_and_target(db: Database, roles: dict[str, str], owner: str) -> None:
    """The app's tracked table public.acct, and the attacker's own untracked
    scratch table in schema own_<owner>."""
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, note text, secret text)")
        conn.execute("SELECT audit.enable_tracking('public.acct', '{secret}')")
    own_schema(db, roles[owner], f"own_{owner}")
    with db.connect(roles[owner]) as conn:
        conn.execute(f"CREATE TABLE own_{owner}.scratch (id int PRIMARY KEY, note text, "
                     "secret text)")


# Capture triggers on the scratch table whose arguments name another table, a
# key that is not the scratch table's, or exclusions that differ: the guard
# accepts only the arguments audit.enable_tracking would give.
FORGED_CAPTURE = [
    "audit.capture('{}', 'public.acct')",
    "audit.capture('{}')",
    "audit.capture('{1}', '{id}', '{}', '{}', 'public.acct')",
    "audit.capture('{2}', '{note}', '{}', '{}')",
    "audit.capture('{1}', '{id}', '{3}', '{note}')",
    "audit.capture('{1}', '{id}', '{}', '{}')",  # right, but alone: refused at commit
]
TRIGGERS = {"insert": "AFTER INSERT ON {t} REFERENCING NEW TABLE AS audit_new",
            "update": "AFTER UPDATE ON {t} REFERENCING OLD TABLE AS audit_old "
                      "NEW TABLE AS audit_new",
            "delete": "AFTER DELETE ON {t} REFERENCING OLD TABLE AS audit_old",
            "truncate": "AFTER TRUNCATE ON {t}"}
ENABLE_ALWAYS = ", ".join(f"ENABLE ALWAYS TRIGGER audit_capture_{op}" for op in TRIGGERS)


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_capture_triggers_with_forged_arguments_on_a_scratch_table_are_refused(
    fresh: Database, roles: dict[str, str], attacker: str
) -> None:
    scratch_and_target(fresh, roles, attacker)
    table = f"own_{attacker}.scratch"
    with watch(fresh, roles[attacker]) as w, fresh.connect(roles[attacker]) as conn:
        for call in FORGED_CAPTURE:
            for op, shape in TRIGGERS.items():
                statement = (f"CREATE TRIGGER audit_capture_{op} {shape.format(t=table)} "
                             f"FOR EACH STATEMENT EXECUTE FUNCTION {call}")
                error = attempt(conn, statement)
                assert_refused(error, NO_RIGHTS if attacker != "app"
                               else GUARDED, statement)
            # All four at once, then a write: still refused, nothing recorded.
            four = "; ".join(
                f"CREATE TRIGGER audit_capture_{op} {shape.format(t=table)} "
                f"FOR EACH STATEMENT EXECUTE FUNCTION {call}" for op, shape in TRIGGERS.items())
            error = attempt(conn, four + f"; ALTER TABLE {table} {ENABLE_ALWAYS}; "
                                         f"INSERT INTO {table} VALUES (1, 'forged', 'x')")
            if call == FORGED_CAPTURE[-1] and attacker == "app":
                # The arguments enable_tracking gives: that is tracking the
                # scratch table, and it is recorded as such, under its own name.
                assert error is None
            else:
                assert_refused(error, NO_RIGHTS if attacker != "app"
                               else GUARDED, call)
    assert {(e["action"], e["table_name"]) for e in w.new_events} <= {
        ("TRACKING_ENABLED", table), ("INSERT", table)}
    assert [e for e in w.new_events if e["table_name"] == "public.acct"] == []


def test_a_superusers_capture_triggers_name_the_table_they_fire_on_whatever_the_arguments(
    fresh: Database, roles: dict[str, str]
) -> None:
    # Detected rather than blocked: a superuser may make any trigger, but no
    # argument makes an event name another table.
    scratch_and_target(fresh, roles, "app")
    table = "own_app.scratch"
    with watch(fresh, "superuser") as w, fresh.connect() as conn:
        with conn.transaction():
            for op, shape in TRIGGERS.items():
                conn.execute(f"CREATE TRIGGER audit_capture_{op} {shape.format(t=table)} "
                             "FOR EACH STATEMENT EXECUTE FUNCTION "
                             "audit.capture('{}', 'public.acct')")
            conn.execute(f"ALTER TABLE {table} {ENABLE_ALWAYS}")
        conn.execute(f"INSERT INTO {table} VALUES (1, 'forged', 'x')")
        conn.execute(f"UPDATE {table} SET note = 'forged again'")
        conn.execute(f"TRUNCATE {table}")
    assert {e["table_name"] for e in w.new_events} == {table}
    assert [e["action"] for e in w.new_events] == [
        "TRACKING_ENABLED", "INSERT", "UPDATE", "TRUNCATE"]


@pytest.mark.parametrize("argument", ["'not {an array'", "'{1}', '{id}', '{x}', '{}'",
                                      "'{1}', '{id}', '{}', '{unclosed'"])
def test_capture_triggers_whose_arguments_do_not_parse_break_no_readers_view(
    fresh: Database, roles: dict[str, str], argument: str,
    capsys: pytest.CaptureFixture[str],
) -> None:
    # A superuser may make any trigger (and a managed install has no guard):
    # arguments that are not the arrays capture reads make the triggers
    # malformed, listed as such, never an error in audit.tracked_table or in
    # pg-audit status for every other table.
    from pg_audit_schema.cli import main

    scratch_and_target(fresh, roles, "app")
    with fresh.connect() as conn, conn.transaction():
        for op, shape in TRIGGERS.items():
            conn.execute(f"CREATE TRIGGER audit_capture_{op} "
                         f"{shape.format(t='own_app.scratch')} "
                         f"FOR EACH STATEMENT EXECUTE FUNCTION audit.capture({argument})")
    with fresh.connect(roles["reader"]) as conn:
        listed = dict(conn.execute(
            "SELECT table_name, excluded_columns FROM audit.tracked_table").fetchall())
    assert listed.get("public.acct") == ["secret"]
    capsys.readouterr()
    assert main(["--dsn", fresh.conninfo(roles["reader"]), "status"]) == 0
    out = capsys.readouterr().out
    assert "public.acct" in out
    # The guard reads them too: the owner's DDL on that table gets the guard's
    # one-line refusal (the triggers are not capture's), not a parse error.
    with fresh.connect(roles["app"]) as conn:
        error = attempt(conn, "ALTER TABLE own_app.scratch ADD COLUMN extra int")
    assert_refused(error, GUARDED, "ALTER TABLE own_app.scratch ADD COLUMN extra int")


@pytest.mark.parametrize("attacker", ATTACKERS)
def test_admin_log_event_on_a_table_not_named_django_admin_log_is_refused(
    fresh: Database, roles: dict[str, str], attacker: str
) -> None:
    own_schema(fresh, roles[attacker], f"own_{attacker}")
    with fresh.connect(roles[attacker]) as conn:
        conn.execute(f"CREATE TABLE own_{attacker}.admin_log (id int PRIMARY KEY, "
                     "action_flag smallint, user_id int, object_id text, object_repr text, "
                     "change_message text, content_type_id int)")
        conn.execute(f"CREATE VIEW own_{attacker}.django_admin_log AS "
                     f"SELECT * FROM own_{attacker}.admin_log")
    with watch(fresh, roles[attacker]) as w, fresh.connect(roles[attacker]) as conn:
        for statement in [
            f"CREATE TRIGGER audit_admin_log AFTER INSERT ON own_{attacker}.admin_log "
            "FOR EACH ROW EXECUTE FUNCTION audit.admin_log_event()",
            f"SELECT audit.enable_admin_log('own_{attacker}.admin_log')",
            f"SELECT audit.enable_admin_log('own_{attacker}.django_admin_log')",
            f"CREATE TRIGGER audit_admin_log INSTEAD OF INSERT ON own_{attacker}.django_admin_log "
            "FOR EACH ROW EXECUTE FUNCTION audit.admin_log_event()",
        ]:
            error = attempt(conn, statement)
            assert_refused(error, NO_RIGHTS + "|" + GUARDED
                           + r"|^pg-audit: \S+ is not named django_admin_log$"
                           + r'|^"django_admin_log" is a view$', statement)
        attempt(conn, f"INSERT INTO own_{attacker}.admin_log VALUES (1, 1, 7, '1', 'x', '', 1)")
    assert w.new_events == []


def test_admin_events_from_a_django_admin_log_in_another_schema_name_that_table(
    fresh: Database, roles: dict[str, str]
) -> None:
    # Only audit_writer may run admin_log_event (an audit_owner member may not).
    attacker = "app"
    schema = f"own_{attacker}"
    with fresh.connect(roles[attacker]) as conn:
        conn.execute(f"CREATE SCHEMA {schema}")
        conn.execute(f"CREATE TABLE {schema}.django_admin_log (id int PRIMARY KEY, "
                     "action_time timestamptz DEFAULT now(), object_id text, object_repr text, "
                     "action_flag smallint, change_message text, content_type_id int, "
                     "user_id int)")
        with watch(fresh, roles[attacker]) as w:
            conn.execute(f"SELECT audit.enable_admin_log('{schema}.django_admin_log')")
            conn.execute(f"INSERT INTO {schema}.django_admin_log (id, object_id, object_repr, "
                         "action_flag, change_message, content_type_id, user_id) "
                         "VALUES (1, '1', 'x', 3, '[]', 1, 7)")
    assert [(e["action"], e["table_name"], e["actor_id"]) for e in w.new_events] == [
        ("ADMIN_DELETE", f"{schema}.django_admin_log", "7")]


def test_two_tables_never_share_the_name_their_events_carry(
    fresh: Database, roles: dict[str, str]
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute('CREATE TABLE public."x.y" (id int PRIMARY KEY, note text)')
        conn.execute("SELECT audit.enable_tracking('public.\"x.y\"')")
        conn.execute('CREATE SCHEMA "public.x"')
        conn.execute('CREATE TABLE "public.x".y (id int PRIMARY KEY, note text)')
        with watch(fresh, roles["app"]) as w:
            # Tracking the look-alike is refused, or its events carry another name.
            error = attempt(conn, "SELECT audit.enable_tracking('\"public.x\".y')")
            conn.execute('INSERT INTO public."x.y" VALUES (1, \'real\')')
            if error is None:
                conn.execute('INSERT INTO "public.x".y VALUES (1, \'forged\')')
    names = {}
    for e in w.new_events:
        if e["action"] == "INSERT":
            names.setdefault(e["table_name"], []).append(e["new_values"]["note"])
    assert all(len(notes) == 1 for notes in names.values()), names
