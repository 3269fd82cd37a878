"""What every attack of tests/attacks checks, before and after.

An attack runs inside ``watch(db, attacker)``. On leaving it, three things must
hold whatever the attack did or tried:

- the attacker gained nothing: its memberships, role attributes and every
  privilege it has on the objects of schema audit (tables, sequences,
  functions, the schema) are as they were (``has_table_privilege``,
  ``has_function_privilege``, ``pg_has_role``, ...);
- the log is unchanged except for appended events: every row of audit.event,
  audit.seal, audit.retired and audit.schema_version that existed before is
  still there, byte for byte, and in the same order;
- schema audit itself is unchanged: owners, privileges, function bodies and
  settings, triggers and their enabled state, policies, rules, the event
  triggers, and who is a member of the audit roles.

The attack's own test then checks the trace it must leave: the refusal, or the
event that records it (``Watch.new_events``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import psycopg
from pgtest import Database, reset_public_schema
from psycopg import sql

AUDIT_ROLES = ("audit_owner", "audit_appender", "audit_writer", "audit_reader")
# The test roles (conftest.ROLE_GRANTS), by the short names tests use.
ATTACKERS = ("app", "reader", "stranger", "ownermember")

# Everything an attacker could have gained on the log: memberships, role
# attributes, and each privilege on each object of schema audit. %(r)s is the
# attacker.
PRIVILEGES = """
SELECT 'member of ' || r.rolname, pg_has_role(%(r)s, r.oid, 'MEMBER')::text
       || pg_has_role(%(r)s, r.oid, 'USAGE')::text
FROM pg_roles r WHERE r.rolname = ANY (%(audit_roles)s) OR r.rolsuper
UNION ALL
SELECT 'attributes', concat_ws(',', rolsuper, rolcreaterole, rolcreatedb, rolbypassrls,
                               rolreplication, rolcanlogin)
FROM pg_roles WHERE rolname = %(r)s
UNION ALL
SELECT 'schema audit', has_schema_privilege(%(r)s, 'audit', 'CREATE')::text
       || has_schema_privilege(%(r)s, 'audit', 'USAGE')::text
UNION ALL
SELECT 'table ' || c.oid::regclass::text,
       concat_ws(',', has_table_privilege(%(r)s, c.oid, 'SELECT'),
                 has_table_privilege(%(r)s, c.oid, 'INSERT'),
                 has_table_privilege(%(r)s, c.oid, 'UPDATE'),
                 has_table_privilege(%(r)s, c.oid, 'DELETE'),
                 has_table_privilege(%(r)s, c.oid, 'TRUNCATE'),
                 has_table_privilege(%(r)s, c.oid, 'TRIGGER'),
                 has_table_privilege(%(r)s, c.oid, 'REFERENCES'),
                 pg_has_role(%(r)s, c.relowner, 'USAGE'))
FROM pg_class c
WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind IN ('r', 'p', 'v', 'm', 'f')
UNION ALL
SELECT 'sequence ' || c.oid::regclass::text,
       concat_ws(',', has_sequence_privilege(%(r)s, c.oid, 'USAGE'),
                 has_sequence_privilege(%(r)s, c.oid, 'SELECT'),
                 has_sequence_privilege(%(r)s, c.oid, 'UPDATE'))
FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace AND c.relkind = 'S'
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text,
       has_function_privilege(%(r)s, p.oid, 'EXECUTE')::text
       || pg_has_role(%(r)s, p.proowner, 'USAGE')::text
FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace
"""

# Schema audit as the catalogs describe it, and who belongs to the audit roles.
AUDIT_CATALOG = """
SELECT 'schema', n.nspname::text, pg_get_userbyid(n.nspowner)::text, n.nspacl::text, NULL
FROM pg_namespace n WHERE n.nspname = 'audit'
UNION ALL
SELECT 'relation', c.oid::regclass::text, pg_get_userbyid(c.relowner)::text, c.relacl::text,
       concat_ws(',', c.relkind, c.relpersistence, c.relrowsecurity, c.relforcerowsecurity,
                 c.relispartition, pg_get_expr(c.relpartbound, c.oid))
FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace
UNION ALL
SELECT 'function', p.oid::regprocedure::text, pg_get_userbyid(p.proowner)::text, p.proacl::text,
       concat_ws(',', p.prosecdef, p.proconfig::text, md5(p.prosrc), p.provolatile)
FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace
UNION ALL
SELECT 'trigger', t.tgrelid::regclass::text || ' ' || t.tgname, t.tgenabled::text,
       t.tgfoid::regprocedure::text, encode(t.tgargs, 'hex')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'audit'::regnamespace
UNION ALL
SELECT 'policy', p.polrelid::regclass::text || ' ' || p.polname, NULL, NULL, NULL
FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
WHERE c.relnamespace = 'audit'::regnamespace
UNION ALL
SELECT 'rule', r.ev_class::regclass::text || ' ' || r.rulename, NULL, NULL, NULL
FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
WHERE c.relnamespace = 'audit'::regnamespace
UNION ALL
SELECT 'event trigger', e.evtname::text, e.evtenabled::text, e.evtfoid::regprocedure::text,
       e.evttags::text
FROM pg_event_trigger e
UNION ALL
SELECT 'membership', r.rolname::text, pg_get_userbyid(m.member)::text, m.admin_option::text, NULL
FROM pg_auth_members m JOIN pg_roles r ON r.oid = m.roleid
WHERE r.rolname = ANY (%(audit_roles)s)
UNION ALL
SELECT 'audit role attributes', rolname::text, rolcanlogin::text, rolsuper::text, NULL
FROM pg_roles WHERE rolname = ANY (%(audit_roles)s)
"""

# The append-only tables, row by row (a row's text and a hash keep this small
# when a test writes megabyte values).
LOG_ROWS = """
SELECT 'event', id, md5(e::text) FROM audit.event e
UNION ALL SELECT 'seal', s.batch, md5(s::text) FROM audit.seal s
UNION ALL SELECT 'retired', NULL, md5(r::text) FROM audit.retired r
UNION ALL SELECT 'schema_version', v.version, md5(v::text) FROM audit.schema_version v
"""


def privileges(db: Database, role: str) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return sorted(conn.execute(PRIVILEGES, {"r": role, "audit_roles": list(AUDIT_ROLES)})
                      .fetchall(), key=repr)


def audit_catalog(db: Database) -> list[tuple[Any, ...]]:
    with db.connect() as conn:
        return sorted(conn.execute(AUDIT_CATALOG, {"audit_roles": list(AUDIT_ROLES)}).fetchall(),
                      key=repr)


def log_rows(db: Database) -> dict[str, list[tuple[Any, ...]]]:
    with db.connect() as conn:
        rows = conn.execute(LOG_ROWS).fetchall()
    out: dict[str, list[tuple[Any, ...]]] = {}
    for table, key, digest in rows:
        out.setdefault(table, []).append((key, digest))
    for table in out:
        if table != "retired":
            out[table].sort(key=lambda r: r[0])
    return out


def events_after(db: Database, last_id: int) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute(
            "SELECT to_jsonb(e) - 'tx_started_at' FROM audit.event e WHERE id > %s ORDER BY id",
            [last_id]).fetchall()]


def last_event_id(db: Database) -> int:
    with db.connect() as conn:
        row = conn.execute("SELECT coalesce(max(id), 0) FROM audit.event").fetchone()
    return int(row[0]) if row else 0


@dataclass
class Watch:
    db: Database
    attacker: str  # the role name, or "superuser"
    last_id: int
    new_events: list[dict[str, Any]] = field(default_factory=list)

    def events(self, action: str | None = None) -> list[dict[str, Any]]:
        """The events appended so far (while the watch is still open, too)."""
        found = events_after(self.db, self.last_id)
        return [e for e in found if action is None or e["action"] == action]


@contextmanager
def watch(db: Database, attacker: str, *, audit_schema_may_change: bool = False) -> Iterator[Watch]:
    """Runs an attack; on leaving, checks that ``attacker`` (a role name, or
    ``superuser``) gained no privilege, that the log lost or changed no row,
    and that schema audit is as it was."""
    role = None if attacker == "superuser" else attacker
    privs = privileges(db, role) if role else None
    catalog = audit_catalog(db)
    rows = log_rows(db)
    w = Watch(db, attacker, last_event_id(db))
    yield w
    w.new_events = events_after(db, w.last_id)
    after = log_rows(db)
    for table, before in rows.items():
        if table == "retired":
            assert set(before) <= set(after.get(table, [])), f"a row of audit.{table} changed"
        else:
            assert after.get(table, [])[: len(before)] == before, (
                f"audit.{table} lost or changed a row during the attack by {attacker}")
    if role:
        assert privileges(db, role) == privs, f"{attacker} gained a privilege on the log"
    if not audit_schema_may_change:
        changed = set(audit_catalog(db)) ^ set(catalog)
        assert not changed, f"schema audit changed during the attack by {attacker}: {changed}"


def attempt(conn: psycopg.Connection, statement: str | sql.Composable,
            params: Any = None) -> psycopg.Error | None:
    """Runs one statement in its own transaction (so a deferred check runs at
    its COMMIT); returns the error, or None when it succeeded."""
    try:
        with conn.transaction():
            conn.execute(statement, params)
    except psycopg.Error as error:
        return error
    return None


GUARDED = r"^pg-audit: \S+ may not change .+: audit objects and capture triggers are guarded$"
# What the privilege system answers a role without rights on an object.
NO_RIGHTS = (r"^(permission denied for (table|schema|relation|function|procedure|sequence|database)"
             r"|permission denied to (drop objects|grant role|set role|create)"
             r"|must be (the )?owner of|must be a member of|must have admin option"
             r"|must be able to SET ROLE|pg-audit: only the owner of)")


def assert_refused(error: psycopg.Error | None, pattern: str = GUARDED,
                   what: str = "the attack") -> None:
    assert error is not None, f"{what} succeeded"
    message = error.diag.message_primary or str(error)
    assert re.search(pattern, message), f"{what}: unexpected error {error.sqlstate}: {message}"


def grant_create_on_database(db: Database, *roles: str) -> None:
    with db.connect() as conn:
        for role in roles:
            conn.execute(sql.SQL("GRANT CREATE ON DATABASE {} TO {}").format(
                sql.Identifier(db.name), sql.Identifier(role)))


def fresh_schemas(db: Database, roles: dict[str, str]) -> int:
    """Drops every schema a test made and empties public; returns the newest event id."""
    with db.connect() as conn:
        extra = conn.execute(
            "SELECT nspname FROM pg_namespace WHERE nspname NOT IN ('public', 'audit', "
            "'information_schema') AND nspname !~ '^pg_' AND nspname NOT IN "
            "(SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace)"
        ).fetchall()
        for (name,) in extra:
            conn.execute(sql.SQL("DROP SCHEMA {} CASCADE").format(sql.Identifier(name)))
    return reset_public_schema(db, roles)


def own_schema(db: Database, role: str, name: str) -> None:
    """A schema owned by role, made by the superuser (an audit_owner member may
    not create schemas: one could be handed to audit_owner)."""
    with db.connect() as conn:
        conn.execute(sql.SQL("CREATE SCHEMA {} AUTHORIZATION {}").format(
            sql.Identifier(name), sql.Identifier(role)))


def as_recorded(statement: str) -> str:
    """A simple statement as events record it: quoted literals and numbers withheld as ?."""
    statement = re.sub(r"'(?:[^']|'')*'", "?", statement)
    return re.sub(r"(?<![\w$])\d+(?:\.\d*)?", "?", statement)


def connect_as(db: Database, roles: dict[str, str], who: str) -> psycopg.Connection:
    """A connection as a test role by short name, or as the superuser."""
    return db.connect() if who == "superuser" else db.connect(roles[who])
