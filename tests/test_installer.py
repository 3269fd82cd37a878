"""The installers: idempotent, equivalent, usable without a superuser, and what they build
is commented, hardened and ENABLE ALWAYS (discovered from the catalogs, so later steps
are held to the same rules)."""

from __future__ import annotations

import subprocess
from pathlib import Path
from typing import TYPE_CHECKING, Any

import psycopg
import pytest
from psycopg import sql

from pg_audit_schema.embedded import temporary_server
from pg_audit_schema.installer import install, installed_version, latest_version

if TYPE_CHECKING:
    from pgtest import Database, PgServer

ROOT = Path(__file__).resolve().parent.parent


def psql_install(server: PgServer, dbname: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [server.tool("psql"), "-X", "-v", "ON_ERROR_STOP=1",
         "-f", str(ROOT / "sql" / "install.sql")],
        check=True, capture_output=True, text=True, env=server.libpq_env(dbname),
    )


def seed_events(db: Database, roles: dict[str, str]) -> None:
    with db.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.account (id int PRIMARY KEY, name text)")
        conn.execute("SELECT audit.enable_tracking('public.account')")
        conn.execute("INSERT INTO account VALUES (1, 'a'), (2, 'b')")
        conn.execute("SELECT audit.log_event(action => 'LOGIN', actor_id => '1')")


def all_events(db: Database) -> list[Any]:
    with db.connect() as conn:
        return conn.execute("SELECT to_jsonb(e) FROM audit.event e ORDER BY id").fetchall()


def versions(db: Database) -> list[Any]:
    with db.connect() as conn:
        return conn.execute("SELECT version, name, applied_at FROM audit.schema_version "
                            "ORDER BY version").fetchall()


def test_python_install_again_changes_nothing_and_keeps_events(
    db: Database, roles: dict[str, str]
) -> None:
    seed_events(db, roles)
    before, steps = all_events(db), versions(db)
    with db.connect() as conn:
        assert install(conn) == []
        assert install(conn) == []
        assert installed_version(conn) == latest_version()
    assert all_events(db) == before and len(before) == 4
    assert versions(db) == steps


def test_psql_install_again_changes_nothing_and_keeps_events(
    db: Database, roles: dict[str, str], pg_server: PgServer
) -> None:
    seed_events(db, roles)
    before, steps = all_events(db), versions(db)
    for _ in range(2):
        out = psql_install(pg_server, db.name)
        assert f"pg-audit schema at version {latest_version()}" in out.stdout
    assert all_events(db) == before
    assert versions(db) == steps
    # Still guarded and capturing after a reinstall.
    with db.connect(roles["app"]) as conn:
        conn.execute("INSERT INTO account VALUES (3, 'c')")
    assert len(all_events(db)) == len(before) + 1


CATALOG_SNAPSHOT = """
SELECT 'relation', c.relname::text, c.relkind::text, pg_get_userbyid(c.relowner)::text,
       c.relacl::text, obj_description(c.oid, 'pg_class'),
       CASE WHEN c.relkind IN ('i', 'I') THEN pg_get_indexdef(c.oid) END
FROM pg_class c WHERE c.relnamespace = 'audit'::regnamespace
UNION ALL
SELECT 'column', a.attrelid::regclass::text, a.attname::text, format_type(a.atttypid, a.atttypmod),
       pg_get_expr(d.adbin, d.adrelid), col_description(a.attrelid, a.attnum), a.attnum::text
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid
LEFT JOIN pg_attrdef d ON d.adrelid = a.attrelid AND d.adnum = a.attnum
WHERE c.relnamespace = 'audit'::regnamespace AND a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'function', p.oid::regprocedure::text, md5(p.prosrc), p.proconfig::text,
       p.prosecdef::text || p.provolatile::text || pg_get_userbyid(p.proowner)::text,
       p.proacl::text, obj_description(p.oid, 'pg_proc')
FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace
UNION ALL
SELECT 'trigger', t.tgrelid::regclass::text, t.tgname::text, t.tgenabled::text,
       t.tgfoid::regprocedure::text, encode(t.tgargs, 'escape'),
       obj_description(t.oid, 'pg_trigger')
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'audit'::regnamespace
UNION ALL
SELECT 'event trigger', e.evtname::text, e.evtevent::text, e.evtenabled::text,
       e.evtfoid::regprocedure::text, e.evttags::text, obj_description(e.oid, 'pg_event_trigger')
FROM pg_event_trigger e
UNION ALL
SELECT 'schema', n.nspname::text, pg_get_userbyid(n.nspowner)::text, n.nspacl::text,
       obj_description(n.oid, 'pg_namespace'), NULL, NULL
FROM pg_namespace n WHERE n.nspname = 'audit'
UNION ALL
SELECT 'step', version::text, name, NULL, NULL, NULL, NULL FROM audit.schema_version
"""


def catalog(conn: psycopg.Connection) -> list[tuple[Any, ...]]:
    return sorted(conn.execute(CATALOG_SNAPSHOT).fetchall(), key=repr)


def test_psql_and_python_installs_build_the_same_schema(
    empty_db: Database, pg_server: PgServer
) -> None:
    psql_install(pg_server, empty_db.name)
    with empty_db.connect() as conn:
        by_psql = catalog(conn)
        assert installed_version(conn) == latest_version()
    other = f"{empty_db.name}_py"
    with pg_server.connect() as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(other)))
    try:
        with pg_server.connect(other) as conn:
            install(conn)
            assert installed_version(conn) == latest_version()
            by_python = catalog(conn)
    finally:
        with pg_server.connect() as conn:
            conn.execute(sql.SQL("DROP DATABASE {} WITH (FORCE)").format(sql.Identifier(other)))
    assert len(by_psql) > 50
    assert by_psql == by_python


def test_database_owner_with_createrole_installs_with_one_warning_naming_the_missing_guards(
    pg_server: PgServer,
) -> None:
    # A fresh cluster, as on a managed service: the roles do not exist yet and the
    # installer is a database owner with CREATEROLE, not a superuser.
    if pg_server.bindir is None:
        pytest.skip("needs local server binaries for a second, fresh cluster")
    with temporary_server(Path(pg_server.bindir), port=55433) as server:
        with psycopg.connect(server.dsn(), autocommit=True) as su:
            su.execute("CREATE ROLE dbowner LOGIN CREATEROLE")
            su.execute("CREATE DATABASE managed OWNER dbowner")
        with psycopg.connect(server.dsn("managed", "dbowner"), autocommit=True) as conn:
            notices: list[tuple[str | None, str | None]] = []
            # A Diagnostic lives only as long as the callback: copy what we need.
            conn.add_notice_handler(
                lambda d: notices.append((d.severity_nonlocalized, d.message_primary)))
            install(conn)
            warnings = [m or "" for sev, m in notices if sev == "WARNING"]
            assert len(warnings) == 1, notices
            assert "guards are missing" in warnings[0]
            for guard in ("audit_guard_ddl_end", "audit_guard_drop", "audit_guard_ddl_start"):
                assert guard in warnings[0]
            assert installed_version(conn) == latest_version()
            notices.clear()
            assert install(conn) == []  # again: nothing to do, same single warning
            assert len([m for sev, m in notices if sev == "WARNING"]) == 1
            conn.execute("CREATE TABLE public.t (id int PRIMARY KEY)")
            conn.execute("SELECT audit.enable_tracking('public.t')")
            conn.execute("INSERT INTO public.t VALUES (1)")
            with psycopg.connect(server.dsn("managed"), autocommit=True) as su:
                assert su.execute("SELECT action FROM audit.event ORDER BY id").fetchall() == [
                    ("TRACKING_ENABLED",), ("INSERT",)]
            # The installer cannot act as the log's owner or appender any more (on
            # PostgreSQL 16+ it keeps the ADMIN option CREATEROLE gives a role's
            # creator, which neither inherits nor allows SET ROLE), only as a writer.
            assert conn.execute(
                "SELECT pg_has_role('audit_owner', 'USAGE'), "
                "pg_has_role('audit_appender', 'USAGE'), "
                "pg_has_role('audit_writer', 'USAGE')").fetchone() == (False, False, True)
            if conn.info.server_version >= 160000:
                assert conn.execute(
                    "SELECT pg_has_role('audit_owner', 'SET'), pg_has_role('audit_appender', 'SET')"
                ).fetchone() == (False, False)
            with pytest.raises(psycopg.errors.InsufficientPrivilege, match="permission denied"):
                conn.execute("DELETE FROM audit.event")


UNCOMMENTED = """
SELECT 'relation ' || c.oid::regclass::text
FROM pg_class c
WHERE c.relnamespace = 'audit'::regnamespace
  AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'i', 'I', 'f')
  -- Indexes of partitions are attached to a commented index of the log.
  AND NOT (c.relkind = 'i' AND c.relispartition)
  AND obj_description(c.oid, 'pg_class') IS NULL
UNION ALL
SELECT 'column audit.event.' || a.attname
FROM pg_attribute a
WHERE a.attrelid = 'audit.event'::regclass AND a.attnum > 0 AND NOT a.attisdropped
  AND col_description(a.attrelid, a.attnum) IS NULL
UNION ALL
SELECT 'function ' || p.oid::regprocedure::text
FROM pg_proc p
WHERE p.pronamespace = 'audit'::regnamespace AND obj_description(p.oid, 'pg_proc') IS NULL
  -- hstore's own functions, when pg-audit installed it in schema audit
  AND NOT EXISTS (SELECT FROM pg_depend d WHERE d.classid = 'pg_proc'::regclass
                  AND d.objid = p.oid AND d.deptype = 'e')
UNION ALL
SELECT 'trigger ' || t.tgname || ' on ' || t.tgrelid::regclass::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
WHERE c.relnamespace = 'audit'::regnamespace AND NOT t.tgisinternal
  AND obj_description(t.oid, 'pg_trigger') IS NULL
UNION ALL
SELECT 'event trigger ' || e.evtname FROM pg_event_trigger e
WHERE e.evtname LIKE 'audit\\_%' AND obj_description(e.oid, 'pg_event_trigger') IS NULL
UNION ALL
SELECT 'schema audit' WHERE obj_description('audit'::regnamespace, 'pg_namespace') IS NULL
"""


def test_every_object_of_the_schema_has_a_comment(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("SELECT audit.create_partitions(6)")
        missing = [r[0] for r in conn.execute(UNCOMMENTED).fetchall()]
    assert missing == [], "\n".join(missing)


def test_definer_functions_pin_search_path_and_are_closed_to_public(db: Database) -> None:
    with db.connect() as conn:
        definers = conn.execute(
            "SELECT p.oid::regprocedure::text, p.proconfig, "
            "has_function_privilege('public', p.oid, 'EXECUTE') "
            "FROM pg_proc p WHERE p.pronamespace = 'audit'::regnamespace AND p.prosecdef"
        ).fetchall()
    assert len(definers) >= 4
    for name, config, public in definers:
        # capture() and admin_log_event() also name hstore's schema, one only
        # superusers and audit_owner can create in (checked by the installer).
        paths = [c for c in config or [] if c.startswith("search_path=")]
        assert paths in (["search_path=pg_catalog, pg_temp"],
                         ["search_path=pg_catalog, audit, pg_temp"]), name
        assert not public or name == "audit.record_ddl(text,text)", f"PUBLIC may execute {name}"


def test_every_trigger_on_audit_tables_fires_always(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("SELECT audit.create_partitions(6)")
        states = conn.execute(
            "SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled FROM pg_trigger t "
            "JOIN pg_class c ON c.oid = t.tgrelid WHERE c.relnamespace = 'audit'::regnamespace "
            "AND NOT t.tgisinternal"
        ).fetchall()
        log_tables = conn.execute(
            "SELECT 'audit.event' UNION ALL SELECT inhrelid::regclass::text FROM pg_inherits "
            "WHERE inhparent = 'audit.event'::regclass"
        ).fetchall()
        events = conn.execute(
            "SELECT evtname, evtenabled FROM pg_event_trigger WHERE evtname LIKE 'audit\\_%'"
        ).fetchall()
    # audit_notify alone is off by default (it serialises commits; 0003_reporting.sql).
    assert [s for s in states if s[2] != "A" and s[1] != "audit_notify"] == []
    for (table,) in log_tables:
        assert {name for t, name, _ in states if t == table} >= {
            "audit_append_only", "audit_no_truncate"}, table
    assert len(events) >= 2 and all(state == "A" for _, state in events)


def test_new_partitions_are_protected_like_the_first(db: Database) -> None:
    with db.connect() as conn:
        created = [r[0] for r in conn.execute("SELECT audit.create_partitions(6)::text").fetchall()]
        assert len(created) == 3  # the install made this month and three ahead
        assert conn.execute("SELECT audit.create_partitions(6)").fetchall() == []
        for part in created:
            assert conn.execute(
                "SELECT array_agg(tgname::text ORDER BY tgname) FROM pg_trigger "
                "WHERE tgrelid = %s::regclass AND tgenabled = 'A'", [part]
            ).fetchone() == (["audit_append_only", "audit_no_truncate"],)
            # An event far enough ahead lands in the new partition, and stays.
            conn.execute("SET session_replication_role = replica")
            month = part.removeprefix("audit.event_").replace("_", "-")
            conn.execute("INSERT INTO audit.event (action, occurred_at) VALUES ('FUTURE', %s)",
                         [f"{month}-15"])
            assert conn.execute(f"SELECT count(*) FROM {part}").fetchone() == (1,)
            for statement in (f"UPDATE {part} SET action = 'X'", f"DELETE FROM {part}",
                              f"TRUNCATE {part}"):
                with pytest.raises(psycopg.errors.InsufficientPrivilege, match="append-only"):
                    conn.execute(statement)
            conn.execute("RESET session_replication_role")


def test_application_login_reinstalling_a_current_schema_gains_nothing(
    db: Database, roles: dict[str, str]
) -> None:
    """Django's migrate as the app role after a DBA's install: no step, no audit_owner."""
    with db.connect() as conn:
        conn.execute(sql.SQL("ALTER ROLE {} CREATEROLE").format(sql.Identifier(roles["app"])))
    try:
        with db.connect(roles["app"]) as conn:
            assert install(conn) == []
            assert installed_version(conn) == latest_version()
            member = conn.execute(
                "SELECT pg_has_role(current_user, 'audit_owner', 'MEMBER')"
            ).fetchone()
            assert member == (False,)
    finally:
        with db.connect() as conn:
            conn.execute(
                sql.SQL("ALTER ROLE {} NOCREATEROLE").format(sql.Identifier(roles["app"]))
            )


def test_a_failed_install_without_psycopg_keeps_its_message() -> None:
    """A psycopg2 Django project has no psycopg 3: django_bridge.install's connection
    raises PgAuditError with the server's message, which must reach the user as it is
    (it once met ``exc.diag``, which only psycopg's errors have)."""
    script = """
import sys
sys.modules["psycopg"] = None  # as if not installed
from pg_audit_schema.errors import PgAuditError
from pg_audit_schema.installer import install

class Refusing:
    def execute(self, sql):
        raise PgAuditError("installing the audit schema failed: permission denied for x")
    def transaction(self):
        import contextlib
        return contextlib.nullcontext()

try:
    install(Refusing())
except PgAuditError as exc:
    print(exc)
"""
    import sys

    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                         cwd=ROOT, check=False)
    assert out.stdout.strip() == (
        "installing the audit schema failed: permission denied for x"
    ), out.stderr
