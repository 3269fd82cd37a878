"""Threat 6: the guard standing in the way of legitimate use.

Roles that have nothing to do with the audit schema create, alter and drop
their own tables, triggers, functions, casts, partitions and inheritance
trees; another application's triggers live in the same database; the table's
owner adds triggers of its own to a tracked table; a Django migration renames
fields and changes column types of a tracked table. All of it must work (a
refusal fails the test), and changes to tracked tables are recorded.
"""

from __future__ import annotations

import pytest
from attack_support import as_recorded, watch
from pgtest import Database

OWN_OBJECTS = """
CREATE SCHEMA other_app;
CREATE TABLE other_app.s (id int PRIMARY KEY, v text);
CREATE FUNCTION other_app.up() RETURNS trigger LANGUAGE plpgsql
  AS $$BEGIN NEW.v := upper(NEW.v); RETURN NEW; END$$;
CREATE TRIGGER st BEFORE INSERT OR UPDATE ON other_app.s FOR EACH ROW
  EXECUTE FUNCTION other_app.up();
CREATE TRIGGER st_stmt AFTER INSERT ON other_app.s REFERENCING NEW TABLE AS audit_new
  FOR EACH STATEMENT EXECUTE FUNCTION other_app.up();
CREATE OR REPLACE TRIGGER st BEFORE INSERT ON other_app.s FOR EACH ROW
  WHEN (NEW.id > 0) EXECUTE FUNCTION other_app.up();
ALTER TRIGGER st ON other_app.s RENAME TO st2;
ALTER TABLE other_app.s DISABLE TRIGGER ALL;
ALTER TABLE other_app.s ENABLE ALWAYS TRIGGER st2;
ALTER TABLE other_app.s ENABLE TRIGGER ALL;
INSERT INTO other_app.s VALUES (1, 'x');
CREATE TYPE other_app.e AS ENUM ('a');
CREATE FUNCTION other_app.ej(other_app.e) RETURNS json LANGUAGE sql AS $$SELECT '1'::json$$;
CREATE CAST (other_app.e AS json) WITH FUNCTION other_app.ej(other_app.e);
ALTER TABLE other_app.s RENAME COLUMN v TO w;
ALTER TABLE other_app.s ALTER COLUMN w TYPE varchar(10) USING upper(w);
ALTER TABLE other_app.s ADD COLUMN e other_app.e;
ALTER TABLE other_app.s DROP CONSTRAINT s_pkey, ADD PRIMARY KEY (w);
CREATE TABLE other_app.p (id int PRIMARY KEY) PARTITION BY RANGE (id);
CREATE TABLE other_app.p1 PARTITION OF other_app.p FOR VALUES FROM (0) TO (10);
CREATE TABLE other_app.p2 (id int NOT NULL, w varchar(10) NOT NULL, e other_app.e);
CREATE TABLE other_app.p3 (id int PRIMARY KEY);
ALTER TABLE other_app.p ATTACH PARTITION other_app.p3 FOR VALUES FROM (10) TO (20);
ALTER TABLE other_app.p DETACH PARTITION other_app.p3;
CREATE TABLE other_app.ch () INHERITS (other_app.s);
ALTER TABLE other_app.p2 INHERIT other_app.s;
CREATE VIEW other_app.v AS SELECT * FROM other_app.s;
CREATE RULE r AS ON INSERT TO other_app.v DO INSTEAD INSERT INTO other_app.s VALUES (NEW.id, NEW.w);
ALTER TABLE other_app.s SET UNLOGGED;
ALTER TABLE other_app.s SET SCHEMA public;
COMMENT ON TABLE public.s IS 'mine';
DROP RULE r ON other_app.v;
DROP TRIGGER st2 ON public.s;
DROP CAST (other_app.e AS json);
DROP TABLE other_app.ch, other_app.p2;
DROP TABLE public.s CASCADE;
DROP SCHEMA other_app CASCADE;
"""


@pytest.mark.parametrize("who", ["stranger", "reader", "app"])
def test_roles_outside_the_audit_schema_manage_their_own_objects_freely(
    fresh: Database, roles: dict[str, str], who: str
) -> None:
    with watch(fresh, roles[who]) as w, fresh.connect(roles[who]) as conn:
        for statement in OWN_OBJECTS.strip().split(";\n"):
            conn.execute(statement)  # any refusal fails the test
    assert w.new_events == []


def test_another_applications_triggers_work_beside_a_tracked_table(
    fresh: Database, roles: dict[str, str]
) -> None:
    # A second application (the stranger) keeps its own audit-like triggers on
    # its own tables, with transition tables named like ours; the app adds its
    # own triggers to its tracked table (an updated_at stamp, as
    # django-pgtrigger makes them), renames, disables and drops them.
    with fresh.connect(roles["stranger"]) as conn:
        conn.execute("CREATE TABLE public.theirs (id int PRIMARY KEY, v text)")
        conn.execute("CREATE TABLE public.their_log (at timestamptz DEFAULT now(), n int)")
        conn.execute("CREATE FUNCTION public.their_log_fn() RETURNS trigger LANGUAGE plpgsql "
                     "AS $$BEGIN INSERT INTO public.their_log (n) SELECT count(*) FROM audit_new; "
                     "RETURN NULL; END$$")
        conn.execute("CREATE TRIGGER their_capture AFTER INSERT ON public.theirs "
                     "REFERENCING NEW TABLE AS audit_new FOR EACH STATEMENT "
                     "EXECUTE FUNCTION public.their_log_fn()")
    with watch(fresh, roles["app"]) as w:
        with fresh.connect(roles["app"]) as conn:
            conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, v text, "
                         "updated_at timestamptz)")
            conn.execute("SELECT audit.enable_tracking('public.acct')")
            conn.execute("CREATE FUNCTION public.stamp() RETURNS trigger LANGUAGE plpgsql "
                         "AS $$BEGIN NEW.updated_at := '2024-01-01'; RETURN NEW; END$$")
            conn.execute("CREATE TRIGGER pgtrigger_stamp_1a2b3 BEFORE INSERT OR UPDATE "
                         "ON public.acct FOR EACH ROW EXECUTE FUNCTION public.stamp()")
            conn.execute("INSERT INTO public.acct (id, v) VALUES (1, 'a')")
            conn.execute("ALTER TRIGGER pgtrigger_stamp_1a2b3 ON public.acct "
                         "RENAME TO pgtrigger_stamp_4c5d6")
            conn.execute("ALTER TABLE public.acct DISABLE TRIGGER pgtrigger_stamp_4c5d6")
            conn.execute("ALTER TABLE public.acct ENABLE TRIGGER pgtrigger_stamp_4c5d6")
            conn.execute("DROP TRIGGER pgtrigger_stamp_4c5d6 ON public.acct")
            conn.execute("UPDATE public.acct SET v = 'b'")
        with fresh.connect(roles["stranger"]) as conn:
            conn.execute("INSERT INTO public.theirs VALUES (1, 'x'), (2, 'y')")
            assert conn.execute("SELECT n FROM public.their_log").fetchall() == [(2,)]
            conn.execute("DROP TRIGGER their_capture ON public.theirs")
    data = [(e["action"], e["new_values"]) for e in w.new_events
            if e["action"] in ("INSERT", "UPDATE")]
    assert data == [("INSERT", {"id": "1", "v": "a", "updated_at": "2024-01-01 00:00:00+00"}),
                    ("UPDATE", {"v": "b"})]


# What Django's schema editor runs for a migration that renames a field,
# changes a field's type (int to bigint, as DEFAULT_AUTO_FIELD does to a key
# too) and alters an excluded field, in one transaction.
MIGRATION = [
    'ALTER TABLE "shop_order" RENAME COLUMN "qty" TO "quantity"',
    'ALTER TABLE "shop_order" ALTER COLUMN "quantity" TYPE bigint USING "quantity"::bigint',
    'ALTER TABLE "shop_order" ALTER COLUMN "id" TYPE bigint USING "id"::bigint',
    'ALTER SEQUENCE IF EXISTS "shop_order_id_seq" AS bigint',
    'ALTER TABLE "shop_order" RENAME COLUMN "card_token" TO "payment_token"',
    'ALTER TABLE "shop_order" ALTER COLUMN "payment_token" TYPE varchar(200)',
    'ALTER TABLE "shop_order" ADD COLUMN "note" text DEFAULT \'\' NOT NULL',
    'ALTER TABLE "shop_order" ALTER COLUMN "note" DROP DEFAULT',
]


@pytest.mark.parametrize("with_context", [False, True])
def test_a_django_migration_that_renames_fields_and_changes_types_is_allowed_and_recorded(
    fresh: Database, roles: dict[str, str], with_context: bool
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute('CREATE TABLE "shop_order" ("id" integer GENERATED BY DEFAULT AS IDENTITY '
                     'PRIMARY KEY, "qty" integer NOT NULL, "card_token" varchar(64))')
        conn.execute("SELECT audit.enable_tracking('shop_order', '{card_token}')")
        conn.execute("INSERT INTO shop_order (qty, card_token) VALUES (2, 'tok_live_1')")
        with watch(fresh, roles["app"]) as w:
            with conn.transaction():
                if with_context:
                    conn.execute("SELECT set_config('audit.actor_id', 'migrate', true)")
                for statement in MIGRATION:
                    conn.execute(statement)  # any refusal fails the test
            conn.execute("UPDATE shop_order SET quantity = 3, payment_token = 'tok_live_2'")
    ddl = [e for e in w.new_events if e["action"] == "DDL"]
    # Every constant of a recorded statement is withheld.
    assert {e["detail"]["statement"] for e in ddl} >= {
        as_recorded(s) for s in MIGRATION if "SEQUENCE" not in s}
    assert {e["table_name"] for e in ddl} == {"public.shop_order"}
    assert [(e["action"], e["row_key"], e["new_values"]) for e in w.new_events
            if e["action"] != "DDL"] == [("UPDATE", {"id": "1"}, {"quantity": "3"})]
    assert "tok_live" not in str(w.new_events)


def test_renaming_the_key_column_is_allowed_and_capture_follows_it(
    fresh: Database, roles: dict[str, str]
) -> None:
    with fresh.connect(roles["app"]) as conn:
        conn.execute("CREATE TABLE public.acct (id int PRIMARY KEY, v text)")
        conn.execute("SELECT audit.enable_tracking('public.acct')")
        conn.execute("INSERT INTO public.acct VALUES (1, 'a')")
        with watch(fresh, roles["app"]) as w:
            conn.execute("ALTER TABLE public.acct RENAME COLUMN id TO acct_id")
            conn.execute("UPDATE public.acct SET v = 'b'")
    assert [(e["action"], e["row_key"]) for e in w.new_events if e["action"] != "DDL"] == [
        ("UPDATE", {"acct_id": "1"})]
