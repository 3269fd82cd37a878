-- sql/0006_trust_boundary.sql: the trust boundary and capture at the floor
-- (issues 9 and 10).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.
--
-- What changes, and why:
--   * audit_appender, a NOLOGIN role with no members that may only append to
--     the log, owns every SECURITY DEFINER function on the write path. None of
--     them evaluates code the application can define: capture reads a row
--     through hstore(record), which prints each column with its type's output
--     function (C code only a superuser can install), never through casts the
--     owner of a type can add (to_jsonb would call an application's cast to
--     json, as the log's owner). Values are recorded as PostgreSQL prints them.
--   * audit_owner keeps the tables and the maintenance functions, loses INSERT
--     on the log and setval on its sequence, and runs nothing on the hot path.
--   * Capture triggers carry the key and excluded columns by number and name,
--     so an exclusion follows its column through a rename, and record the table
--     they fire on (or its partition root) by its live name: no argument can
--     make an event name another table.
--   * audit.tracking records what tracking each table has; audit.sync_tracking()
--     writes TRACKING_* events from the catalog, so no path to the capture
--     triggers (enable_tracking, raw DDL, a dropped table) changes them unseen.
--     The DDL guard refuses capture triggers that are malformed or disabled,
--     checks at commit that a table has all four or none, refuses primary-key
--     changes and inheritance children of tracked tables, tracks new partitions,
--     and records DDL of tracked tables as DDL events with the statement.
--   * Events written without application context carry the statement text.

-- ---------------------------------------------------------------------------
-- hstore: installed in schema audit, or used where a superuser put it
-- ---------------------------------------------------------------------------

-- Capture reads rows with hstore. When the database has none, it goes into
-- schema audit, where nobody but superusers and audit_owner can create objects;
-- sql/finish.sql checks, at every install, that hstore's schema is such a one
-- and points capture at it.
CREATE EXTENSION IF NOT EXISTS hstore SCHEMA audit;

SET LOCAL ROLE audit_owner;

-- ---------------------------------------------------------------------------
-- The log: a column, row lookups, privileges
-- ---------------------------------------------------------------------------

-- The key a row had before an UPDATE that changed it (NULL when the key stayed),
-- so the history of a row that changed its key is found through an index.
ALTER TABLE audit.event ADD COLUMN old_row_key jsonb;
COMMENT ON COLUMN audit.event.old_row_key IS
    'for an UPDATE that changed the primary key, the key before it (row_key holds the new one); NULL otherwise';

-- Rows are found by a 64-bit hash of table and key: an index on it costs an
-- insert a fraction of the (table_name, row_key) btree it replaces, whose jsonb
-- comparisons were the largest single cost of a captured row (docs/benchmarks.md);
-- step 0008 moves the readers over and drops that btree.
-- No SET clause: a function with one is never inlined, and the planner must see
-- the builtin expression to match the indexes. It names pg_catalog objects only.
CREATE FUNCTION audit.row_ref(table_name text, key jsonb) RETURNS bigint
LANGUAGE sql IMMUTABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.jsonb_hash_extended(key, pg_catalog.hashtextextended(table_name, 0)) $$;
COMMENT ON FUNCTION audit.row_ref(text, jsonb) IS
    'pg-audit: 64-bit hash of a table name and a row key; find a row''s events with audit.row_ref(e.table_name, e.row_key) = audit.row_ref(tbl, key) AND e.table_name = tbl AND e.row_key = key';
GRANT EXECUTE ON FUNCTION audit.row_ref(text, jsonb) TO PUBLIC;

-- The index set is lean because every index costs every captured statement
-- (docs/benchmarks.md measures each): a single-row INSERT into the log pays to
-- open and prepare each index, a partial one included, whether or not the row
-- goes into it. So: table and row in one index (also the table filter of
-- viewers), the rare verbs (logins, TRUNCATE, TRACKING_*, DDL, ADMIN_*,
-- RETENTION) in one partial index, and no index on request_id (a request's
-- events are seconds apart: find them by request_id and a time window, through
-- the BRIN index on occurred_at). Two partial indexes of step 3 stay, each
-- costing a single-row event about 0.5-2 us: event_auth_idx, because the newest
-- authentication events of three verbs cannot come from (action, occurred_at)
-- in time order (2.5 s at 10 million events instead of 0.3 ms), and
-- event_privilege_idx, without which the privilege report reads every auth_user
-- event (each login's last_login update: 0.6 s instead of 0.3 ms).
CREATE INDEX event_row_ref_idx ON audit.event (table_name, audit.row_ref(table_name, row_key));
COMMENT ON INDEX audit.event_row_ref_idx IS
    'pg-audit: events of one table, and of one row (audit.row_history, audit.last_change, table filters)';
CREATE INDEX event_old_row_ref_idx ON audit.event (table_name, audit.row_ref(table_name, old_row_key))
    WHERE old_row_key IS NOT NULL;
COMMENT ON INDEX audit.event_old_row_ref_idx IS 'pg-audit: updates that moved a row away from a key';
CREATE INDEX event_action_idx ON audit.event (action, occurred_at)
    WHERE action NOT IN ('INSERT', 'UPDATE', 'DELETE');
COMMENT ON INDEX audit.event_action_idx IS
    'pg-audit: the rare verbs by time: logins, TRUNCATE, TRACKING_*, DDL, ADMIN_*, RETENTION, application events';
DROP INDEX audit.event_truncate_idx, audit.event_request_idx;

-- Appending is audit_appender's alone. The owner keeps what maintenance needs
-- (ALTER, DETACH, DROP, and the append-only triggers stop UPDATE, DELETE and
-- TRUNCATE) but can no longer insert a forged event or move the id sequence;
-- the DDL guard stops it from granting either back.
GRANT USAGE ON SCHEMA audit TO audit_appender;
GRANT INSERT, SELECT (id) ON audit.event TO audit_appender;  -- id: log_event returns it
GRANT USAGE ON SEQUENCE audit.event_id_seq TO audit_appender;
GRANT EXECUTE ON FUNCTION audit.current_context() TO audit_appender;
REVOKE UPDATE ON SEQUENCE audit.event_id_seq FROM audit_owner;

-- protect_table also takes INSERT away from the owner on each partition, where
-- a direct insert would bypass the parent's privileges.
CREATE OR REPLACE FUNCTION audit.protect_table(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Partitions inherit audit_append_only from the partitioned log (a clone);
    -- TRUNCATE triggers are not cloned, so each partition gets its own.
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = target AND tgname = 'audit_append_only') THEN
        EXECUTE format('CREATE TRIGGER audit_append_only BEFORE UPDATE OR DELETE ON %s '
                       'FOR EACH ROW EXECUTE FUNCTION audit.refuse_change()', target);
    END IF;
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid = target AND tgname = 'audit_no_truncate') THEN
        EXECUTE format('CREATE TRIGGER audit_no_truncate BEFORE TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit.refuse_change()', target);
    END IF;
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_append_only, '
                   'ENABLE ALWAYS TRIGGER audit_no_truncate', target);
    EXECUTE format('COMMENT ON TRIGGER audit_append_only ON %s IS %L', target,
                   'pg-audit: refuses UPDATE and DELETE (append-only, ENABLE ALWAYS)');
    EXECUTE format('COMMENT ON TRIGGER audit_no_truncate ON %s IS %L', target,
                   'pg-audit: refuses TRUNCATE (append-only, ENABLE ALWAYS)');
    IF (SELECT relnamespace = 'audit'::regnamespace AND relname ~ '^event' FROM pg_class WHERE oid = target) THEN
        EXECUTE format('REVOKE INSERT ON %s FROM audit_owner', target);
    END IF;
END
$$;

DO $revoke$
DECLARE
    part regclass;
BEGIN
    FOR part IN SELECT relid FROM pg_catalog.pg_partition_tree('audit.event') LOOP
        EXECUTE pg_catalog.format('REVOKE INSERT ON %s FROM audit_owner', part);
    END LOOP;
END
$revoke$;

-- ---------------------------------------------------------------------------
-- Which tables are tracked, and how
-- ---------------------------------------------------------------------------

-- Events name a table schema.table with each part quoted where it needs to be,
-- as PostgreSQL quotes identifiers: unquoted, a schema "a.b" with table c and a
-- schema a with table "b.c" were both a.b.c.
CREATE OR REPLACE FUNCTION audit.table_name(target regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = target
$$;
COMMENT ON FUNCTION audit.table_name(regclass) IS
    'pg-audit: a table as audit.event.table_name spells it: schema.table, each part quoted only where an identifier needs it';

-- One row per relation that carries capture triggers (a tracked table and each
-- of its partitions), written only by audit.sync_tracking() from the catalog:
-- the state the last TRACKING_* event described.
CREATE TABLE audit.tracking (
    relation          regclass    PRIMARY KEY,              -- table or partition with capture triggers
    tracked_table     regclass    NOT NULL,                 -- the table its events name (its partition root)
    table_name        text        NOT NULL,                 -- tracked_table as last recorded, schema.table
    key_columns       text[]      NOT NULL,                 -- primary key, by name ...
    key_attnums       int2[]      NOT NULL,                 -- ... and number
    excluded_columns  text[]      NOT NULL,                 -- never logged, by name ...
    excluded_attnums  int2[]      NOT NULL,                 -- ... and number (follows renames)
    capture_triggers  oid[]       NOT NULL,                 -- the triggers recorded, so re-made ones are seen
    recorded_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp()
);
COMMENT ON TABLE audit.tracking IS
    'pg-audit: tables and partitions whose changes are captured, with key and excluded columns, as the last TRACKING_* event recorded them; written by audit.sync_tracking() only';
COMMENT ON INDEX audit.tracking_pkey IS 'pg-audit: one row per relation';
GRANT SELECT ON audit.tracking TO audit_reader, audit_writer;
GRANT SELECT, INSERT, UPDATE, DELETE ON audit.tracking TO audit_appender;

-- Relations whose capture triggers changed in this transaction, checked at
-- commit by audit.check_tracking(): all four or none, and recorded.
CREATE TABLE audit.tracking_check (
    relation  oid  NOT NULL,
    txid      xid8 NOT NULL DEFAULT pg_catalog.pg_current_xact_id()
);
COMMENT ON TABLE audit.tracking_check IS
    'pg-audit: relations whose capture triggers changed in an open transaction; emptied at commit by the deferred trigger audit_check_tracking';
GRANT SELECT, INSERT, DELETE ON audit.tracking_check TO audit_appender;

-- The capture trigger arguments of a relation for its current primary key and
-- the given excluded columns: numbers and names, each as an array literal.
-- Also what the DDL guard compares a new capture trigger with.
CREATE FUNCTION audit.capture_arguments(target regclass, excluded text[]) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT ARRAY[
        coalesce(array_agg(a.attnum ORDER BY a.attnum) FILTER (WHERE k.key), '{}')::text,
        coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE k.key), '{}')::text,
        coalesce(array_agg(a.attnum ORDER BY a.attnum) FILTER (WHERE a.attname = ANY (excluded)), '{}')::text,
        coalesce(array_agg(a.attname::text ORDER BY a.attnum) FILTER (WHERE a.attname = ANY (excluded)), '{}')::text]
    FROM pg_attribute a
    CROSS JOIN LATERAL (SELECT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = a.attrelid AND i.indisprimary
                                                           AND a.attnum = ANY (i.indkey)) AS key) k
    WHERE a.attrelid = target AND a.attnum > 0 AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION audit.capture_arguments(regclass, text[]) IS
    'pg-audit: the arguments of a relation''s capture triggers: key column numbers, key names, excluded column numbers, excluded names';
GRANT EXECUTE ON FUNCTION audit.capture_arguments(regclass, text[]) TO PUBLIC;

-- A table as the events name it: a partition by its root.
CREATE FUNCTION audit.tracked_root(target regclass) RETURNS regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce(pg_partition_root(target), target) $$;
COMMENT ON FUNCTION audit.tracked_root(regclass) IS 'pg-audit: the table whose events a relation''s changes are: its partition root, or itself';
GRANT EXECUTE ON FUNCTION audit.tracked_root(regclass) TO PUBLIC;

-- The statement text an event without application context carries: the first
-- 2,000 characters of the client's query with every constant replaced by ?, as
-- pg_stat_statements shows queries. The values a statement wrote are in the
-- event's columns; in its text they could be an excluded column's, of this
-- table or of another statement of the same query string.
-- Three regular expressions, each in one pass over the text:
--   1. wraps in \x02...\x03 every token that is kept or withheld as a whole:
--      quoted identifiers, comments and $n parameters (kept); quoted strings
--      (an unterminated one to the end), E'' strings and dollar quotes (the
--      rest of the text: rare in statements that change rows, and their
--      escapes and tags need more than one pass can read); words holding a
--      digit (t1 is kept, 42, 1.5e3 and 0x1F are numbers);
--   2. replaces the wrapped constants (those starting with a quote, a digit,
--      E' or $ and no digit) by ?;
--   3. replaces the words TRUE and FALSE by ?.
-- Control characters \x02 and \x03 of the query itself become spaces first.
-- Plain SQL with no SET clause, so the caller's query inlines it; names are
-- qualified, so no search_path can change it. Cost: about 5 us for a short
-- statement, under 0.5 ms at the 2,000-character bound (docs/benchmarks.md).
CREATE FUNCTION audit.statement_text() RETURNS text
LANGUAGE sql VOLATILE
AS $$
SELECT pg_catalog.translate(
    pg_catalog.regexp_replace(
        pg_catalog.regexp_replace(
            pg_catalog.regexp_replace(
                pg_catalog.translate(pg_catalog.left(pg_catalog.current_query(), 2000), E'\x02\x03', '  '),
                '"(?:[^"]|"")*"|--[^\n]*|/\*(?:[^*]|\*+[^*/])*\*+/|\$[0-9]+'
                '|''(?:[^'']|'''')*''|''(?:[^'']|'''')*$|[eE]''.*|\$(?:[[:alpha:]_][[:alnum:]_]*)?\$.*'
                '|[[:alnum:]_$]*[0-9][[:alnum:]_$.]*',
                E'\x02\\&\x03', 'g'),
            E'\x02(?:[''0-9]|[eE]''|\\$[^0-9])[^\x03]*\x03', '?', 'g'),
        '\m(?:true|false)\M', '?', 'gi'),
    E'\x02\x03', '')
$$;
COMMENT ON FUNCTION audit.statement_text() IS
    'pg-audit: the current client statement as events without application context record it: its first 2,000 characters, every constant replaced by ?';
GRANT EXECUTE ON FUNCTION audit.statement_text() TO PUBLIC;

-- The arguments of a trigger, from pg_trigger.tgargs (NUL-terminated strings).
CREATE FUNCTION audit.trigger_arguments(args bytea) RETURNS text[]
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    result text[] := '{}';
    cut integer;
BEGIN
    LOOP
        cut := position('\x00'::bytea IN args);
        EXIT WHEN cut = 0;
        result := result || convert_from(substr(args, 1, cut - 1), current_setting('server_encoding'));
        args := substr(args, cut + 1);
    END LOOP;
    RETURN result;
END
$$;
COMMENT ON FUNCTION audit.trigger_arguments(bytea) IS 'pg-audit: the arguments of a trigger (pg_trigger.tgargs) as text[]';
GRANT EXECUTE ON FUNCTION audit.trigger_arguments(bytea) TO PUBLIC;

-- Whether one trigger is a well-formed capture trigger: named for its event
-- (audit_capture_insert, _update, _delete, _truncate), AFTER ... FOR EACH
-- STATEMENT, the transition tables capture reads, no WHEN, audit.capture()
-- with arguments that match its relation's primary key (current = false when
-- they no longer do, or when they are of an earlier version).
CREATE FUNCTION audit.capture_trigger_check(trigger_oid oid, OUT wellformed boolean, OUT current boolean, OUT args text[])
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    t record;
BEGIN
    SELECT tg.*, p.proname, n.nspname INTO t
    FROM pg_trigger tg JOIN pg_proc p ON p.oid = tg.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
    WHERE tg.oid = trigger_oid;
    args := audit.trigger_arguments(t.tgargs);
    wellformed := t.nspname = 'audit' AND t.proname = 'capture' AND t.tgqual IS NULL AND t.tgconstraint = 0
        AND t.tgtype = CASE t.tgname WHEN 'audit_capture_insert' THEN 4 WHEN 'audit_capture_delete' THEN 8
                                     WHEN 'audit_capture_update' THEN 16 WHEN 'audit_capture_truncate' THEN 32 END
        AND t.tgoldtable IS NOT DISTINCT FROM CASE WHEN t.tgname IN ('audit_capture_update', 'audit_capture_delete')
                                                   THEN 'audit_old' END
        AND t.tgnewtable IS NOT DISTINCT FROM CASE WHEN t.tgname IN ('audit_capture_update', 'audit_capture_insert')
                                                   THEN 'audit_new' END
        AND cardinality(args) IN (1, 2, 4)
        AND (SELECT c.relpersistence <> 't' FROM pg_class c WHERE c.oid = t.tgrelid);
    IF wellformed THEN
        -- A superuser may make any trigger: arguments that are not the arrays
        -- capture reads make it malformed, not an error in every reader's view.
        BEGIN
            PERFORM args[1]::text[], CASE WHEN cardinality(args) = 4
                                          THEN (args[1]::int2[], args[2]::text[], args[3]::int2[], args[4]::text[]) END;
        EXCEPTION WHEN data_exception THEN
            wellformed := false;
        END;
    END IF;
    current := wellformed AND cardinality(args) = 4
               AND args = audit.capture_arguments(t.tgrelid, args[4]::text[]);
END
$$;
COMMENT ON FUNCTION audit.capture_trigger_check(oid) IS
    'pg-audit: whether a trigger is a well-formed capture trigger, whether its arguments match its table''s key, and the arguments';
GRANT EXECUTE ON FUNCTION audit.capture_trigger_check(oid) TO PUBLIC;

-- The capture triggers of one relation: how many, and when they are the four,
-- well formed, ENABLE ALWAYS and alike, their arguments (else NULL).
CREATE FUNCTION audit.capture_state(target regclass, OUT triggers integer, OUT args text[], OUT current boolean)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT count(*)::integer,
           CASE WHEN count(*) = 4 AND bool_and(c.wellformed AND t.tgenabled = 'A')
                     AND count(DISTINCT t.tgname) = 4 AND count(DISTINCT c.args) = 1
                THEN min(c.args) END,
           count(*) = 4 AND bool_and(c.current AND t.tgenabled = 'A') AND count(DISTINCT c.args) = 1
    FROM pg_trigger t CROSS JOIN LATERAL audit.capture_trigger_check(t.oid) c
    WHERE t.tgrelid = target AND NOT t.tgisinternal
      AND (t.tgname LIKE 'audit\_capture\_%'
           OR t.tgfoid IN (SELECT p.oid FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
                           WHERE n.nspname = 'audit' AND p.proname = 'capture'))
$$;
COMMENT ON FUNCTION audit.capture_state(regclass) IS
    'pg-audit: the capture triggers of a relation: their number, their common arguments when the four are complete and ENABLE ALWAYS (else NULL), and whether those arguments are current';
GRANT EXECUTE ON FUNCTION audit.capture_state(regclass) TO PUBLIC;

-- Creates (or replaces) the four capture triggers of one relation, as
-- the caller, who must own it. Used by enable_tracking and by the DDL guard for
-- partitions added to a tracked table.
CREATE FUNCTION audit.install_capture(target regclass, exclude_columns text[]) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    args text := (SELECT string_agg(quote_literal(a), ', ') FROM unnest(audit.capture_arguments(target, exclude_columns)) a);
    op text;
BEGIN
    -- CREATE OR REPLACE keeps a trigger's OID, so capture re-made for a rename
    -- is not taken at commit for capture dropped and made again.
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS audit_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', target, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_capture_update AFTER UPDATE ON %s '
                   'REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', target, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS audit_old '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', target, args);
    EXECUTE format('CREATE OR REPLACE TRIGGER audit_capture_truncate AFTER TRUNCATE ON %s '
                   'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', target, args);
    -- One ALTER TABLE for all four, so the DDL guard never sees a half-enabled set.
    EXECUTE format('ALTER TABLE ONLY %s ENABLE ALWAYS TRIGGER audit_capture_insert, '
                   'ENABLE ALWAYS TRIGGER audit_capture_update, ENABLE ALWAYS TRIGGER audit_capture_delete, '
                   'ENABLE ALWAYS TRIGGER audit_capture_truncate', target);
    FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
        EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', 'audit_capture_' || op, target,
                       'pg-audit: records ' || upper(op) || ' in audit.event (audit.enable_tracking)');
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit.install_capture(regclass, text[]) IS
    'pg-audit: internal; creates the four capture triggers of one relation as the caller (use audit.enable_tracking)';
GRANT EXECUTE ON FUNCTION audit.install_capture(regclass, text[]) TO PUBLIC;

CREATE OR REPLACE FUNCTION audit.enable_tracking(target regclass, exclude_columns text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel pg_class;
    bad text;
    member regclass;
BEGIN
    SELECT * INTO rel FROM pg_class WHERE oid = target;
    IF rel.relkind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pg-audit: % is not a table', target USING ERRCODE = 'wrong_object_type';
    END IF;
    IF rel.relnamespace = 'audit'::regnamespace THEN
        RAISE EXCEPTION 'pg-audit: % belongs to the audit schema and cannot be tracked', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF NOT pg_has_role(current_user, rel.relowner, 'USAGE') THEN
        RAISE EXCEPTION 'pg-audit: only the owner of % may change its tracking', target
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF rel.relispartition THEN
        RAISE EXCEPTION 'pg-audit: % is a partition; track the table it belongs to, %', target, audit.tracked_root(target)
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A temporary table disappears with its session, without DDL to record it.
    IF rel.relpersistence = 't' THEN
        RAISE EXCEPTION 'pg-audit: % is a temporary table and cannot be tracked', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- A statement on an inheritance parent changes its children's rows without
    -- their statement triggers firing: such tables could be changed unseen.
    IF EXISTS (SELECT FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
               WHERE (i.inhparent = target OR i.inhrelid = target) AND NOT c.relispartition) THEN
        RAISE EXCEPTION 'pg-audit: % takes part in table inheritance, whose rows a statement on another table changes without its triggers', target
            USING ERRCODE = 'invalid_table_definition', HINT = 'Track partitioned tables, or tables without inheritance.';
    END IF;
    IF NOT EXISTS (SELECT FROM pg_index WHERE indrelid = target AND indisprimary) THEN
        RAISE EXCEPTION 'pg-audit: % has no primary key', target
            USING ERRCODE = 'invalid_table_definition',
                  HINT = 'Events identify rows by their primary key; add one, then enable tracking.';
    END IF;
    exclude_columns := coalesce(exclude_columns, '{}');
    SELECT string_agg(quote_ident(c), ', ') INTO bad
    FROM unnest(exclude_columns) c
    WHERE NOT EXISTS (SELECT FROM pg_attribute
                      WHERE attrelid = target AND attname = c AND attnum > 0 AND NOT attisdropped);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'pg-audit: % has no column %', target, bad USING ERRCODE = 'undefined_column';
    END IF;
    SELECT string_agg(quote_ident(a.attname), ', ') INTO bad
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = target AND i.indisprimary AND a.attname = ANY (exclude_columns);
    IF bad IS NOT NULL THEN
        RAISE EXCEPTION 'pg-audit: primary key column % of % cannot be excluded', bad, target
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Every event names its row by the primary key.';
    END IF;
    -- The commit-time check must see the finished set, whatever the caller's
    -- SET CONSTRAINTS said.
    SET CONSTRAINTS audit.audit_check_tracking DEFERRED;
    -- Statement triggers of a partitioned table do not fire for a statement that
    -- names one of its partitions, so each partition gets its own.
    FOR member IN SELECT target UNION ALL SELECT relid FROM pg_partition_tree(target) WHERE relid <> target LOOP
        IF NOT coalesce((SELECT s.current AND s.args = audit.capture_arguments(member, exclude_columns)
                         FROM audit.capture_state(member) s), false) THEN
            PERFORM audit.install_capture(member, exclude_columns);
        END IF;
    END LOOP;
    FOR member IN SELECT target UNION ALL SELECT relid FROM pg_partition_tree(target) WHERE relid <> target LOOP
        PERFORM audit.sync_tracking(member);
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit.enable_tracking(regclass, text[]) IS
    'pg-audit: captures INSERT, UPDATE, DELETE and TRUNCATE of a table with a primary key (and its partitions) into audit.event; excluded columns never reach the log; records TRACKING_ENABLED; idempotent; the caller must own the table';

CREATE OR REPLACE FUNCTION audit.disable_tracking(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    op text;
    member regclass;
BEGIN
    IF NOT pg_has_role(current_user, (SELECT relowner FROM pg_class WHERE oid = target), 'USAGE') THEN
        RAISE EXCEPTION 'pg-audit: only the owner of % may change its tracking', target
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SET CONSTRAINTS audit.audit_check_tracking DEFERRED;
    FOR member IN SELECT target UNION ALL SELECT relid FROM pg_partition_tree(target) WHERE relid <> target LOOP
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'audit_capture_' || op, member);
        END LOOP;
    END LOOP;
    FOR member IN SELECT target UNION ALL SELECT relid FROM pg_partition_tree(target) WHERE relid <> target LOOP
        PERFORM audit.sync_tracking(member);
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit.disable_tracking(regclass) IS
    'pg-audit: stops capturing a table and its partitions (past events stay) and records TRACKING_DISABLED; the caller must own the table';

CREATE OR REPLACE VIEW audit.tracked_table AS
SELECT t.relation AS table_oid,
       t.table_name,
       -- by number, so a renamed column shows its current name
       ARRAY(SELECT a.attname::text COLLATE "default" FROM pg_catalog.pg_attribute a
             WHERE a.attrelid = t.relation AND a.attnum = ANY (t.excluded_attnums) AND NOT a.attisdropped
             ORDER BY a.attname) AS excluded_columns,
       coalesce(s.args IS NOT NULL, false) AS enabled_always,
       EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = t.relation AND i.indisprimary) AS has_primary_key
FROM audit.tracking t CROSS JOIN LATERAL audit.capture_state(t.relation) s
WHERE t.relation = t.tracked_table;
COMMENT ON VIEW audit.tracked_table IS
    'pg-audit: tables whose changes are captured, with their excluded columns and whether all four capture triggers are in place and fire always';

-- ---------------------------------------------------------------------------
-- DDL guard (attached by sql/guards.sql when the installer is a superuser)
-- ---------------------------------------------------------------------------

-- Refuses, to everyone but superusers: changes to schema audit and its objects
-- (audit_owner members included, and audit_owner itself outside the shapes its
-- maintenance functions use), privileges handed out by audit_owner members,
-- objects outside schema audit given to the audit roles, partitions or children
-- of the log outside schema audit, rules, triggers and policies on audit
-- tables, capture triggers that are malformed or not ENABLE ALWAYS, primary-key
-- changes of tracked tables, and inheritance children of tracked tables. Then,
-- for everyone, tracks partitions added to a tracked table and has
-- audit.record_ddl() record DDL of tracked tables and queue the commit-time
-- check of capture triggers. Reads catalogs only: no code any other role
-- defines runs in it.
CREATE OR REPLACE FUNCTION audit.guard_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj record;
    rel record;
    offender text;
    hint text := 'Only a superuser may alter the audit schema; change capture with audit.enable_tracking() and audit.disable_tracking().';
    superuser boolean := (SELECT rolsuper FROM pg_roles WHERE rolname = session_user);
    member boolean := pg_has_role(session_user, 'audit_owner', 'MEMBER') OR pg_has_role(session_user, 'audit_appender', 'MEMBER');
    -- audit_owner's own maintenance functions (partitions, retention), called by
    -- someone who is not a member: only the shapes they use are allowed.
    maintenance boolean := current_user = 'audit_owner' AND NOT member;
    audit_ns oid := (SELECT oid FROM pg_namespace WHERE nspname = 'audit');
    log_tree oid[];
    tracked_parent regclass;
    state record;
BEGIN
    IF TG_EVENT = 'ddl_command_start' THEN
        -- Only audit_owner members get here (nobody else owns what these
        -- commands could hit). DROP SCHEMA audit CASCADE or DROP FUNCTION
        -- audit.guard_ddl() CASCADE would drop the event triggers with the
        -- function, so sql_drop would never fire; a replaced guard_ddl would
        -- judge its own replacement. Refuse them before they run.
        IF NOT superuser AND member THEN
            offender := 'anything with ' || TG_TAG;
        END IF;
    ELSIF TG_EVENT = 'sql_drop' THEN
        IF NOT superuser THEN
            FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
                -- maintain() and retire_partition() drop a detached partition with what
                -- belongs to it (index, constraint, defaults, row type, triggers).
                IF obj.schema_name = 'audit'
                   AND NOT (maintenance AND TG_TAG IN ('DROP TABLE', 'DROP TRIGGER', 'ALTER TABLE')
                            AND obj.object_identity ~ '(^|\s)audit\.event_([0-9]{4}_[0-9]{2}|default)([_.\[]|$)') THEN
                    offender := obj.object_identity;
                END IF;
                EXIT WHEN offender IS NOT NULL;
            END LOOP;
        END IF;
    ELSE
        log_tree := ARRAY(SELECT relid FROM pg_partition_tree('audit.event'::regclass));
        FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
            EXIT WHEN superuser;
            -- What audit_owner's maintenance functions do to the log's partitions:
            -- create, attach, detach, protect (append-only triggers, which must
            -- stay ENABLE ALWAYS) and give up INSERT.
            IF maintenance
               AND ((obj.command_tag IN ('CREATE TABLE', 'ALTER TABLE', 'CREATE INDEX', 'COMMENT')
                     AND obj.object_identity ~ '^audit\.event(_[0-9]{4}_[0-9]{2}|_default)?(_[a-z_]+)?$')
                    OR (obj.command_tag IN ('CREATE TRIGGER', 'COMMENT')
                        AND obj.object_identity ~ '^audit_(append_only|no_truncate) on audit\.event(_[0-9]{4}_[0-9]{2}|_default)?$')
                    OR obj.command_tag = 'REVOKE') THEN
                IF obj.command_tag = 'ALTER TABLE'
                   AND EXISTS (SELECT FROM pg_trigger WHERE tgrelid = obj.objid AND tgenabled <> 'A'
                               AND tgname IN ('audit_append_only', 'audit_no_truncate')) THEN
                    offender := 'the append-only triggers of ' || obj.object_identity;
                END IF;
                EXIT WHEN offender IS NOT NULL;
                CONTINUE;
            END IF;
            IF obj.command_tag IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES')
               AND (member OR current_user IN ('audit_owner', 'audit_appender')) THEN
                -- These name no object here; an owner member could otherwise
                -- grant INSERT on the log or EXECUTE on append_event to anyone.
                offender := 'privileges with ' || obj.command_tag;
            ELSIF obj.schema_name = 'audit' THEN
                offender := obj.object_identity;
            ELSIF obj.classid = 'pg_proc'::regclass
                  AND (SELECT proowner FROM pg_proc WHERE oid = obj.objid)
                      IN (SELECT oid FROM pg_roles WHERE rolname IN ('audit_owner', 'audit_appender')) THEN
                -- A function owned by an audit role would run with its rights.
                offender := obj.object_identity;
            ELSIF obj.classid = 'pg_class'::regclass
                  AND ((SELECT relowner FROM pg_class WHERE oid = obj.objid)
                          IN (SELECT oid FROM pg_roles WHERE rolname IN ('audit_owner', 'audit_appender'))
                       OR EXISTS (SELECT FROM pg_inherits WHERE inhrelid = obj.objid AND inhparent = ANY (log_tree))) THEN
                -- A view owned by an audit role reads with its rights; a partition
                -- or child of the log outside schema audit escapes its guard.
                offender := obj.object_identity;
            ELSIF obj.classid IN ('pg_trigger'::regclass, 'pg_rewrite'::regclass, 'pg_policy'::regclass)
                  AND EXISTS (SELECT FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                              WHERE obj.classid = 'pg_trigger'::regclass AND t.oid = obj.objid AND c.relnamespace = audit_ns
                              UNION ALL
                              SELECT FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
                              WHERE obj.classid = 'pg_rewrite'::regclass AND r.oid = obj.objid AND c.relnamespace = audit_ns
                              UNION ALL
                              SELECT FROM pg_policy p JOIN pg_class c ON c.oid = p.polrelid
                              WHERE obj.classid = 'pg_policy'::regclass AND p.oid = obj.objid AND c.relnamespace = audit_ns) THEN
                -- Triggers, rules and policies have no schema of their own: any of
                -- them on the log could drop, rewrite or hide events.
                offender := obj.object_identity;
            ELSIF obj.classid = 'pg_trigger'::regclass THEN
                SELECT t.tgname, t.tgrelid::regclass AS relation, p.proname, n.nspname INTO rel
                FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid JOIN pg_namespace n ON n.oid = p.pronamespace
                WHERE t.oid = obj.objid;
                IF (rel.tgname LIKE 'audit\_capture\_%' OR (rel.nspname = 'audit' AND rel.proname = 'capture'))
                   AND NOT (SELECT c.current FROM audit.capture_trigger_check(obj.objid) c) THEN
                    offender := format('%s on %s', rel.tgname, rel.relation);
                    hint := 'Capture triggers are made by audit.enable_tracking(): named for their event, statement level, with the table''s current key.';
                ELSIF rel.nspname = 'audit' AND rel.proname = 'admin_log_event'
                      AND NOT (rel.tgname = 'audit_admin_log'
                               AND (SELECT relname FROM pg_class WHERE oid = rel.relation) = 'django_admin_log'
                               AND (SELECT tgtype FROM pg_trigger WHERE oid = obj.objid) = 5) THEN
                    offender := format('%s on %s', rel.tgname, rel.relation);
                    hint := 'Admin events come from a Django admin log table, through audit.enable_admin_log().';
                END IF;
            ELSIF obj.classid = 'pg_class'::regclass AND obj.command_tag IN ('ALTER TABLE', 'CREATE TABLE') THEN
                SELECT c.oid::regclass AS relation, c.relkind, c.relispartition INTO rel FROM pg_class c WHERE c.oid = obj.objid;
                SELECT * INTO state FROM audit.capture_state(rel.relation);
                IF state.triggers > 0 AND state.args IS NULL THEN
                    offender := 'the capture triggers of ' || obj.object_identity;
                    hint := 'Capture triggers stay ENABLE ALWAYS; stop capturing a table with audit.disable_tracking().';
                ELSIF state.args IS NOT NULL AND cardinality(state.args) = 4
                      AND state.args[1] IS DISTINCT FROM (audit.capture_arguments(rel.relation, '{}'))[1] THEN
                    offender := 'the primary key of tracked table ' || obj.object_identity;
                    hint := 'Events name rows by their primary key: stop tracking (audit.disable_tracking), change the key, then enable tracking again.';
                END IF;
                -- A child that inherits from a tracked table (or a tracked table
                -- that inherits) has rows a statement changes without capture.
                SELECT i.inhparent::regclass INTO tracked_parent
                FROM pg_inherits i JOIN pg_class child ON child.oid = i.inhrelid
                WHERE NOT child.relispartition AND (i.inhrelid = obj.objid OR i.inhparent = obj.objid)
                  AND ((SELECT s.triggers FROM audit.capture_state(i.inhparent) s) > 0
                       OR (SELECT s.triggers FROM audit.capture_state(i.inhrelid) s) > 0)
                LIMIT 1;
                IF offender IS NULL AND tracked_parent IS NOT NULL THEN
                    offender := format('inheritance between %s and tracked table %s', obj.object_identity, tracked_parent);
                    hint := 'A statement on an inheritance parent changes its children without their capture triggers; use partitioning.';
                END IF;
                -- A tracked table attached under an untracked partitioned table:
                -- statements on that parent would change it uncaptured.
                IF offender IS NULL THEN
                    SELECT format('tracked table %s as a partition of untracked table %s', p.relid, audit.tracked_root(p.relid))
                      INTO offender
                      FROM pg_partition_tree(obj.objid) p
                     WHERE (SELECT s.triggers FROM audit.capture_state(p.relid) s) > 0
                       AND (SELECT s.triggers FROM audit.capture_state(audit.tracked_root(p.relid)) s) = 0
                     LIMIT 1;
                    IF offender IS NOT NULL THEN
                        hint := 'Track the partitioned table (audit.enable_tracking), which tracks its partitions.';
                    END IF;
                END IF;
            END IF;
            EXIT WHEN offender IS NOT NULL;
        END LOOP;
        -- Capture triggers whose names no longer match their columns (a renamed
        -- key or excluded column, a dropped excluded column, triggers of an
        -- earlier version) are made again, for the same columns by number.
        IF offender IS NULL THEN
            FOR rel IN SELECT DISTINCT c.objid::regclass AS relid, s.args
                       FROM pg_event_trigger_ddl_commands() c
                       CROSS JOIN LATERAL audit.capture_state(c.objid) s
                       WHERE c.classid = 'pg_class'::regclass AND c.command_tag = 'ALTER TABLE'
                         AND s.args IS NOT NULL AND NOT s.current LOOP
                PERFORM audit.install_capture(rel.relid,
                    CASE WHEN cardinality(rel.args) = 4 THEN audit.column_names(rel.relid, rel.args[3]::int2[])
                         ELSE rel.args[1]::text[] END);
            END LOOP;
        END IF;
        -- Partitions created in or attached to a tracked table are tracked in
        -- the same command, by the same owner, like the table.
        IF offender IS NULL THEN
            FOR rel IN SELECT DISTINCT p.relid, r.args[4]::text[] AS excluded_columns
                       FROM pg_event_trigger_ddl_commands() c
                       CROSS JOIN LATERAL (SELECT c.objid::regclass AS relid
                                           UNION SELECT t.relid FROM pg_partition_tree(c.objid) t) p
                       CROSS JOIN LATERAL audit.capture_state(audit.tracked_root(p.relid)) r
                       WHERE c.classid = 'pg_class'::regclass AND c.command_tag IN ('CREATE TABLE', 'ALTER TABLE')
                         AND (SELECT relkind FROM pg_class WHERE oid = p.relid) IN ('r', 'p')
                         AND p.relid <> audit.tracked_root(p.relid) AND cardinality(r.args) = 4
                         AND (SELECT s.triggers FROM audit.capture_state(p.relid) s) = 0 LOOP
                PERFORM audit.install_capture(rel.relid, rel.excluded_columns);
            END LOOP;
        END IF;
    END IF;
    IF offender IS NOT NULL THEN
        RAISE EXCEPTION 'pg-audit: % may not change %: audit objects and capture triggers are guarded',
            session_user, offender
            USING ERRCODE = 'insufficient_privilege', HINT = hint;
    END IF;
    IF TG_EVENT <> 'ddl_command_start' THEN
        PERFORM audit.record_ddl(TG_EVENT, TG_TAG);
    END IF;
END
$$;
COMMENT ON FUNCTION audit.guard_ddl() IS
    'pg-audit: event trigger function refusing non-superuser DDL on the audit schema, on capture triggers and on the keys and inheritance of tracked tables; tracks new partitions of tracked tables and records DDL of tracked tables (audit.record_ddl)';

-- Everyone may look up names in schema audit (the DDL guard runs as whoever
-- issues DDL and calls functions here); every object keeps its own privileges.
GRANT USAGE ON SCHEMA audit TO PUBLIC;
-- For the definer functions below, created as audit_appender; revoked at the end.
GRANT CREATE ON SCHEMA audit TO audit_appender;

-- ---------------------------------------------------------------------------
-- The write path, owned by audit_appender
-- ---------------------------------------------------------------------------

RESET ROLE;
ALTER FUNCTION audit.capture() OWNER TO audit_appender;
ALTER FUNCTION audit.append_event(text, text, text, jsonb, text, text, jsonb, jsonb, jsonb) OWNER TO audit_appender;
ALTER FUNCTION audit.log_event(text, text, text, jsonb, text) OWNER TO audit_appender;
ALTER FUNCTION audit.admin_log_event() OWNER TO audit_appender;
ALTER FUNCTION audit.record_tracking(regclass) OWNER TO audit_appender;
SET LOCAL ROLE audit_appender;
-- audit_owner's maintenance (maintain, retire_partition, set_retention) records
-- its events through append_event too.
GRANT EXECUTE ON FUNCTION audit.append_event(text, text, text, jsonb, text, text, jsonb, jsonb, jsonb) TO audit_owner;
-- ---------------------------------------------------------------------------
-- Capture
-- ---------------------------------------------------------------------------

-- The primary key columns and the names of columns by number, read from the
-- catalog: what capture falls back on when its trigger's arguments are out of
-- date (a renamed column; triggers of an earlier version).
CREATE FUNCTION audit.primary_key_names(target regclass) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}')
    FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
    WHERE i.indrelid = target AND i.indisprimary
$$;
COMMENT ON FUNCTION audit.primary_key_names(regclass) IS 'pg-audit: the primary key columns of a table, in column order';
GRANT EXECUTE ON FUNCTION audit.primary_key_names(regclass) TO PUBLIC;

CREATE FUNCTION audit.column_names(target regclass, attnums int2[]) RETURNS text[]
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT coalesce(array_agg(a.attname::text ORDER BY a.attnum), '{}') FROM pg_attribute a
    WHERE a.attrelid = target AND a.attnum = ANY (attnums) AND NOT a.attisdropped
$$;
COMMENT ON FUNCTION audit.column_names(regclass, int2[]) IS 'pg-audit: the current names of columns of a table, given by number';
GRANT EXECUTE ON FUNCTION audit.column_names(regclass, int2[]) TO PUBLIC;

-- One statement-level trigger function for INSERT, UPDATE, DELETE and TRUNCATE
-- of every tracked relation. Arguments (array literals): key column numbers,
-- key column names, excluded column numbers, excluded column names. Triggers
-- of earlier versions pass the excluded names only; their key comes from the
-- catalog (slower, same events).
--
-- Rows are read as hstore(row): each column printed by its type's output
-- function, as psql shows it (12.50 stays 12.50), never through a cast. The
-- row reaches hstore() as a subquery's row (x.*, never a bare alias, which a
-- column could be named), of type record: hstore(<the table's
-- row type>) would be a cast if the table's owner created one to hstore WITH
-- INOUT (function-call syntax naming a type), and would parse the row's text. The
-- hstore functions are found on this function's search_path (set below to
-- pg_catalog, the schema of hstore, pg_temp), in a schema the application
-- cannot create in.
--
-- Names. An excluded column is excluded under its recorded name and under the
-- current name of its number, so a rename never lets it into the log. Key
-- columns are taken by their recorded names; the DDL guard renews the arguments
-- when a key column is renamed (without the guard, events name the row by the
-- old key column until enable_tracking runs again: pg-audit status warns).
--
-- Cost. A statement pays mostly for starting its INSERT ... SELECT: every
-- function and PL/pgSQL expression is set up (and its EXECUTE privilege
-- checked) for each statement. So the common path evaluates few PL/pgSQL
-- expressions, the rare ones (old triggers, excluded columns, partitions, an
-- address, no context) are behind one test each, and each kind of statement is
-- one query over its transition table (docs/benchmarks.md).
--
-- UPDATE pairing. PostgreSQL appends the old and the new image of each updated
-- row to the two transition tables in the same step (AfterTriggerSaveEvent), so
-- the n-th row of audit_old and the n-th row of audit_new are one row before and
-- after, whether or not its key changed (SET id = 3 - id included). Pairing by
-- position needs no join, so no cached plan can turn it into a nested loop. The
-- two differ in size only in a partitioned table, when a row moved to another
-- partition was dropped there by a BEFORE INSERT trigger; a partitioned table's
-- UPDATE compares their sizes, and when they differ rows are paired by key
-- instead, a row without a partner recorded as what it became, marked
-- unpaired_update.
CREATE OR REPLACE FUNCTION audit.capture() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
-- The transition tables carry the tracked table's columns, which may be named
-- like our variables: the variables win.
#variable_conflict use_variable
DECLARE
    keys text[] := TG_ARGV[1]::text[];
    excluded text[] := TG_ARGV[3]::text[];
    root regclass := pg_partition_root(TG_RELID);
    tbl text := format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME);
    ip_raw text := nullif(btrim(current_setting('audit.ip', true)), '');  -- as audit.current_context()
    ip inet;
    extra jsonb;
BEGIN
    IF TG_NARGS <> 4 OR TG_ARGV[2] <> '{}' OR root IS NOT NULL THEN
        IF TG_NARGS <> 4 THEN
            -- capture triggers of an earlier version: excluded columns by name
            keys := audit.primary_key_names(TG_RELID);
            excluded := TG_ARGV[0]::text[];
        ELSIF TG_ARGV[2] <> '{}' THEN
            excluded := excluded || audit.column_names(TG_RELID, TG_ARGV[2]::int2[]);
        END IF;
        IF root IS NOT NULL THEN
            -- A partition's events are its root's, by the root's live name.
            tbl := audit.table_name(root);
        END IF;
    END IF;
    IF ip_raw IS NOT NULL OR coalesce(current_setting('audit.actor_id', true), '') = '' THEN
        IF ip_raw IS NOT NULL THEN
            ip := audit.parse_ip(ip_raw);
            IF ip IS NULL THEN
                extra := jsonb_build_object('ip_raw', left(ip_raw, 100));
            END IF;
        END IF;
        -- Without application context (psql, cron) the statement says what was
        -- run (its constants withheld).
        IF coalesce(current_setting('audit.actor_id', true), '') = ''
           AND coalesce(current_setting('audit.request_id', true), '') = '' THEN
            extra := coalesce(extra, '{}') || jsonb_build_object('statement', audit.statement_text());
        END IF;
    END IF;

    IF TG_OP = 'UPDATE' THEN
        -- (Nested IFs: a query naming audit_old cannot even be planned in an
        -- INSERT trigger, which has none.)
        IF root IS NOT NULL THEN
            IF (SELECT count(*) FROM audit_old) <> (SELECT count(*) FROM audit_new) THEN
                -- An old image without its new one: positions no longer pair.
                INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                         table_name, row_key, old_values, new_values, detail)
                SELECT CASE WHEN d.n IS NULL THEN 'DELETE' WHEN d.o IS NULL THEN 'INSERT' ELSE 'UPDATE' END,
                       left(nullif(current_setting('audit.actor_id', true), ''), 256),
                       left(nullif(current_setting('audit.actor_name', true), ''), 256), ip,
                       left(nullif(current_setting('audit.user_agent', true), ''), 512),
                       left(nullif(current_setting('audit.request_id', true), ''), 128), tbl,
                       hstore_to_jsonb(slice(coalesce(d.n, d.o), keys)),
                       hstore_to_jsonb(CASE WHEN d.n IS NULL THEN delete(d.o, excluded)
                                            WHEN d.o IS NOT NULL THEN slice(d.o, akeys(delete(d.n - d.o, excluded))) END),
                       hstore_to_jsonb(CASE WHEN d.o IS NULL THEN delete(d.n, excluded)
                                            WHEN d.n IS NOT NULL THEN delete(d.n - d.o, excluded) END),
                       CASE WHEN d.o IS NULL OR d.n IS NULL
                            THEN coalesce(extra, '{}') || '{"unpaired_update": true}' ELSE extra END
                FROM (SELECT o.h AS o, n.h AS n
                      FROM (SELECT hstore(x.*) AS h FROM (SELECT * FROM audit_old) x OFFSET 0) o
                      FULL JOIN (SELECT hstore(y.*) AS h FROM (SELECT * FROM audit_new) y OFFSET 0) n
                        ON slice(o.h, keys) = slice(n.h, keys)) d
                WHERE d.o IS NULL OR d.n IS NULL OR delete(d.n - d.o, excluded) <> '';
                RETURN NULL;
            END IF;
        END IF;
        -- changed: the new values that differ from the old, minus excluded columns.
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                 table_name, row_key, old_row_key, old_values, new_values, detail)
        SELECT 'UPDATE', left(nullif(current_setting('audit.actor_id', true), ''), 256),
               left(nullif(current_setting('audit.actor_name', true), ''), 256), ip,
               left(nullif(current_setting('audit.user_agent', true), ''), 512),
               left(nullif(current_setting('audit.request_id', true), ''), 128), tbl,
               hstore_to_jsonb(slice(d.n, keys)),
               CASE WHEN d.changed ?| keys THEN hstore_to_jsonb(slice(d.o, keys)) END,
               hstore_to_jsonb(slice(d.o, akeys(d.changed))), hstore_to_jsonb(d.changed), extra
        FROM (SELECT p.o, p.n, delete(p.n - p.o, excluded) AS changed
              FROM unnest(ARRAY(SELECT hstore(o.*) FROM (SELECT * FROM audit_old) o),
                          ARRAY(SELECT hstore(n.*) FROM (SELECT * FROM audit_new) n)) AS p(o, n)
              OFFSET 0) d
        WHERE d.changed <> '';
    ELSIF TG_OP = 'INSERT' THEN
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                 table_name, row_key, new_values, detail)
        SELECT 'INSERT', left(nullif(current_setting('audit.actor_id', true), ''), 256),
               left(nullif(current_setting('audit.actor_name', true), ''), 256), ip,
               left(nullif(current_setting('audit.user_agent', true), ''), 512),
               left(nullif(current_setting('audit.request_id', true), ''), 128), tbl,
               hstore_to_jsonb(slice(s.h, keys)), hstore_to_jsonb(delete(s.h, excluded)), extra
        FROM (SELECT hstore(n.*) AS h FROM (SELECT * FROM audit_new) n OFFSET 0) s;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                 table_name, row_key, old_values, detail)
        SELECT 'DELETE', left(nullif(current_setting('audit.actor_id', true), ''), 256),
               left(nullif(current_setting('audit.actor_name', true), ''), 256), ip,
               left(nullif(current_setting('audit.user_agent', true), ''), 512),
               left(nullif(current_setting('audit.request_id', true), ''), 128), tbl,
               hstore_to_jsonb(slice(s.h, keys)), hstore_to_jsonb(delete(s.h, excluded)), extra
        FROM (SELECT hstore(o.*) AS h FROM (SELECT * FROM audit_old) o OFFSET 0) s;
    ELSE
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id, table_name, detail)
        VALUES ('TRUNCATE', left(nullif(current_setting('audit.actor_id', true), ''), 256),
                left(nullif(current_setting('audit.actor_name', true), ''), 256), ip,
                left(nullif(current_setting('audit.user_agent', true), ''), 512),
                left(nullif(current_setting('audit.request_id', true), ''), 128), tbl, extra);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.capture() IS
    'pg-audit: statement-level trigger function recording INSERT, UPDATE (changed columns only), DELETE and TRUNCATE of a tracked table, values as PostgreSQL prints them; arguments: key column numbers and names, excluded column numbers and names';


CREATE OR REPLACE FUNCTION audit.log_event(
    action text, actor_id text DEFAULT NULL, actor_name text DEFAULT NULL,
    detail jsonb DEFAULT NULL, outcome text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Verbs that the database records would be forgeable if applications could write them too.
    IF action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE', 'DDL', 'RETENTION')
       OR action LIKE 'ADMIN\_%' OR action LIKE 'TRACKING\_%' THEN
        RAISE EXCEPTION 'pg-audit: action % is reserved for events recorded by the database itself', action
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF outcome IS NOT NULL AND outcome NOT IN ('success', 'failure') THEN
        RAISE EXCEPTION 'pg-audit: outcome must be success or failure, got %', quote_literal(left(outcome, 80))
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    RETURN audit.append_event(
        action, actor_id, actor_name, detail,
        coalesce(outcome, CASE WHEN action ~ '_(FAILED|DENIED)$' THEN 'failure'
                               WHEN action IN ('LOGIN', 'LOGOUT') THEN 'success' END));
END
$$;

-- Row trigger on a Django admin log table: each LogEntry becomes one
-- ADMIN_CREATE, ADMIN_UPDATE or ADMIN_DELETE event naming that table. The row
-- is read through hstore like a captured one (no value of it is cast), and a
-- change message that is not JSON jsonb can hold (plain text, \u0000, nesting
-- too deep) is kept as a string: an admin's save never fails for it.
CREATE OR REPLACE FUNCTION audit.admin_log_event() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    flag text;
    user_id text;
    message text;
    detail jsonb;
BEGIN
    IF TG_TABLE_NAME <> 'django_admin_log' OR TG_OP <> 'INSERT' OR TG_LEVEL <> 'ROW' OR TG_WHEN <> 'AFTER' THEN
        RAISE EXCEPTION 'pg-audit: audit.admin_log_event() records inserts into a table named django_admin_log only'
            USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Attach it with audit.enable_admin_log().';
    END IF;
    SELECT r -> 'action_flag', r -> 'user_id', r -> 'change_message',
           jsonb_build_object('object_id', r -> 'object_id', 'object_repr', r -> 'object_repr',
                              'content_type_id', r -> 'content_type_id', 'action_flag', r -> 'action_flag',
                              'admin_log_id', r -> 'id')
      INTO flag, user_id, message, detail
      FROM (SELECT hstore(r.*) AS r FROM (SELECT NEW.*) r) s;
    BEGIN
        detail := detail || jsonb_build_object('change_message', nullif(message, '')::jsonb);
    EXCEPTION WHEN OTHERS THEN
        detail := detail || jsonb_build_object('change_message', message);
    END;
    PERFORM audit.append_event(
        CASE flag WHEN '1' THEN 'ADMIN_CREATE' WHEN '2' THEN 'ADMIN_UPDATE' WHEN '3' THEN 'ADMIN_DELETE'
                  ELSE 'ADMIN_ACTION' END,
        user_id, NULL, detail, NULL, format('%I.%I', TG_TABLE_SCHEMA, TG_TABLE_NAME));
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.admin_log_event() IS
    'pg-audit: row trigger function turning inserts into a django_admin_log table into ADMIN_CREATE, ADMIN_UPDATE and ADMIN_DELETE events naming that table';

-- Brings audit.tracking in line with the capture triggers a relation has now,
-- and records what changed: TRACKING_ENABLED (with the excluded columns) when a
-- table starts being tracked or its exclusions change, TRACKING_DISABLED when its
-- capture triggers are gone. A partition is recorded only where it differs from
-- its table. Reads the catalog, so the event says what the triggers do, whoever
-- changed them and however. Incomplete or disabled capture triggers are refused
-- (recorded, for a superuser).
CREATE FUNCTION audit.sync_tracking(target regclass) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    state record;
    known audit.tracking;
    root regclass;
    root_row audit.tracking;
    tbl text;
    key_attnums int2[];
    excluded_attnums int2[];
    excluded_names text[];
    triggers oid[];
    detail jsonb;
BEGIN
    SELECT * INTO known FROM audit.tracking WHERE relation = target;
    IF NOT EXISTS (SELECT FROM pg_class WHERE oid = target) THEN
        DELETE FROM audit.tracking WHERE relation = target;  -- dropped: audit.record_ddl recorded it
        RETURN;
    END IF;
    root := audit.tracked_root(target);
    tbl := audit.table_name(root);
    SELECT * INTO root_row FROM audit.tracking WHERE relation = root;
    detail := CASE WHEN target <> root THEN jsonb_build_object('partition', audit.table_name(target)) END;
    SELECT * INTO state FROM audit.capture_state(target);
    IF state.triggers = 0 THEN
        IF known.relation IS NOT NULL THEN
            DELETE FROM audit.tracking WHERE relation = target;
            IF target = root OR root_row.relation IS NOT NULL THEN
                PERFORM audit.append_event('TRACKING_DISABLED', NULL, NULL, detail, NULL, tbl);
            END IF;
        END IF;
        RETURN;
    END IF;
    IF state.args IS NULL THEN
        IF NOT (SELECT rolsuper FROM pg_roles WHERE rolname = session_user) THEN
            RAISE EXCEPTION 'pg-audit: % may not change the capture triggers of %: audit objects and capture triggers are guarded',
                session_user, target
                USING ERRCODE = 'insufficient_privilege',
                      DETAIL = 'A tracked table keeps all four capture triggers, well formed and ENABLE ALWAYS, or none.',
                      HINT = 'Change capture with audit.enable_tracking() and audit.disable_tracking().';
        END IF;
        -- A superuser's doing: recorded, and the table stays listed (with
        -- enabled_always false in audit.tracked_table) so that status warns.
        PERFORM audit.append_event('TRACKING_DISABLED', NULL, NULL,
                                   coalesce(detail, '{}') || jsonb_build_object('incomplete', true, 'capture_triggers',
                                       (SELECT jsonb_object_agg(tgname, tgenabled::text) FROM pg_trigger
                                        WHERE tgrelid = target AND tgname LIKE 'audit\_capture\_%')),
                                   NULL, tbl);
        RETURN;
    END IF;
    IF cardinality(state.args) = 4 THEN
        key_attnums := state.args[1]::int2[];
        excluded_attnums := state.args[3]::int2[];
    ELSE
        -- capture triggers of an earlier version: excluded columns by name
        key_attnums := (audit.capture_arguments(target, '{}'))[1]::int2[];
        excluded_attnums := (audit.capture_arguments(target, state.args[1]::text[]))[3]::int2[];
    END IF;
    excluded_names := ARRAY(SELECT attname::text FROM pg_attribute
                            WHERE attrelid = target AND attnum = ANY (excluded_attnums) ORDER BY attname);
    triggers := ARRAY(SELECT oid FROM pg_trigger WHERE tgrelid = target AND tgname LIKE 'audit\_capture\_%'
                      ORDER BY tgname);
    INSERT INTO audit.tracking (relation, tracked_table, table_name, key_columns, key_attnums,
                                excluded_columns, excluded_attnums, capture_triggers)
    VALUES (target, root, tbl,
            ARRAY(SELECT attname::text FROM pg_attribute WHERE attrelid = target AND attnum = ANY (key_attnums) ORDER BY attnum),
            key_attnums, excluded_names, excluded_attnums, triggers)
    ON CONFLICT (relation) DO UPDATE
        SET tracked_table = EXCLUDED.tracked_table, table_name = EXCLUDED.table_name,
            key_columns = EXCLUDED.key_columns, key_attnums = EXCLUDED.key_attnums,
            excluded_columns = EXCLUDED.excluded_columns, excluded_attnums = EXCLUDED.excluded_attnums,
            capture_triggers = EXCLUDED.capture_triggers, recorded_at = clock_timestamp();
    IF (known.relation IS NULL OR known.tracked_table <> root OR known.excluded_attnums <> excluded_attnums)
       AND (target = root OR root_row.relation IS NULL OR root_row.excluded_columns <> excluded_names) THEN
        PERFORM audit.append_event('TRACKING_ENABLED', NULL, NULL,
                                   coalesce(detail, '{}') || jsonb_build_object('exclude_columns', excluded_names),
                                   NULL, tbl);
    ELSIF known.capture_triggers <> triggers THEN
        -- The same capture, dropped and made again in this transaction: changes
        -- in between were not captured. Both halves are recorded.
        PERFORM audit.append_event('TRACKING_DISABLED', NULL, NULL,
                                   coalesce(detail, '{}') || jsonb_build_object('recreated', true), NULL, tbl);
        PERFORM audit.append_event('TRACKING_ENABLED', NULL, NULL,
                                   coalesce(detail, '{}') || jsonb_build_object('exclude_columns', excluded_names,
                                                                                'recreated', true),
                                   NULL, tbl);
    END IF;
END
$$;
COMMENT ON FUNCTION audit.sync_tracking(regclass) IS
    'pg-audit: records what tracking a table or partition has now (TRACKING_ENABLED, TRACKING_DISABLED) when it differs from audit.tracking; refuses incomplete or disabled capture triggers';
REVOKE ALL ON FUNCTION audit.sync_tracking(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.sync_tracking(regclass) TO audit_writer, audit_owner;

-- The name of earlier versions, still called by their Django migrations.
CREATE OR REPLACE FUNCTION audit.record_tracking(target regclass) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM audit.sync_tracking(target);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.record_tracking(regclass) IS
    'pg-audit: earlier name of audit.sync_tracking(), kept for the migrations that call it';

-- Deferred constraint trigger on audit.tracking_check: at commit, every relation
-- whose capture triggers changed in the transaction is checked and recorded.
CREATE FUNCTION audit.check_tracking() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM audit.sync_tracking(NEW.relation::regclass);
    DELETE FROM audit.tracking_check WHERE relation = NEW.relation;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.check_tracking() IS
    'pg-audit: deferred trigger function: checks and records, at commit, the capture triggers changed in the transaction (audit.sync_tracking)';
REVOKE ALL ON FUNCTION audit.check_tracking() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.check_tracking() TO audit_owner;

-- Called by the DDL guard after every DDL command: records DDL of tracked
-- tables (ALTER, RENAME, DROP, ATTACH, DETACH, dropped columns, new inheritance
-- children, changes of the types of their columns, ...) as DDL events with the
-- statement, and queues the commit-time check for relations whose capture
-- triggers the command touched. Everything comes from the event trigger's own
-- view of the command (outside an event trigger it fails), so a caller can
-- make it record nothing but what really happened.
CREATE FUNCTION audit.record_ddl(event text, command_tag text) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj record;
    hit record;
BEGIN
    IF event = 'sql_drop' THEN
        FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
            IF obj.object_type = 'trigger' AND obj.address_names[3] LIKE 'audit\_capture\_%' THEN
                INSERT INTO audit.tracking_check (relation)
                SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                WHERE n.nspname = obj.address_names[1] AND c.relname = obj.address_names[2];
                CONTINUE;
            END IF;
            -- A tracked table dropped, or a column of one (DROP COLUMN, or DROP TYPE
            -- ... CASCADE of the column's type): data gone without row events.
            FOR hit IN SELECT t.* FROM audit.tracking t
                       WHERE (obj.object_type = 'table' AND t.relation = obj.objid::regclass)
                          OR (obj.object_type = 'table column' AND NOT obj.original  -- else ALTER TABLE records it
                              AND t.relation = (SELECT c.oid FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                                                WHERE n.nspname = obj.address_names[1]
                                                  AND c.relname = obj.address_names[2])::regclass) LOOP
                PERFORM audit.append_event('DDL', NULL, NULL,
                    jsonb_build_object('command_tag', command_tag, 'object_type', obj.object_type,
                                       'object_identity', obj.object_identity, 'statement', audit.statement_text()),
                    NULL, hit.table_name);
                IF obj.object_type = 'table' THEN
                    DELETE FROM audit.tracking WHERE relation = hit.relation;
                END IF;
            END LOOP;
        END LOOP;
        RETURN;
    END IF;
    FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() c
               WHERE c.command_tag NOT IN ('COMMENT', 'GRANT', 'REVOKE', 'SECURITY LABEL') LOOP
        IF obj.classid = 'pg_trigger'::regclass THEN
            INSERT INTO audit.tracking_check (relation)
            SELECT t.tgrelid FROM pg_trigger t JOIN pg_proc p ON p.oid = t.tgfoid
            WHERE t.oid = obj.objid
              AND (t.tgname LIKE 'audit\_capture\_%' OR p.oid = 'audit.capture()'::regprocedure);
            CONTINUE;
        END IF;
        -- The tracked tables the command touches: the table itself; the tracked
        -- parent of a new inheritance child (refused to everyone but superusers);
        -- and, for a type, every tracked table with a column of it (ALTER TYPE ...
        -- RENAME VALUE changes what rows say without row events; a composite
        -- type's ALTER TYPE ... DROP ATTRIBUTE names its pg_class entry).
        FOR hit IN SELECT t.*, audit.table_name(audit.tracked_root(t.relation)) AS live_name
                   FROM audit.tracking t
                   WHERE (obj.classid = 'pg_class'::regclass
                          AND (t.relation = obj.objid::regclass
                               OR t.relation IN (SELECT p.relid FROM pg_partition_tree(obj.objid) p)
                               OR t.relation IN (SELECT i.inhparent::regclass FROM pg_inherits i
                                                 JOIN pg_class c ON c.oid = i.inhrelid
                                                 WHERE i.inhrelid = obj.objid AND NOT c.relispartition)))
                      OR (obj.classid IN ('pg_type'::regclass, 'pg_class'::regclass)
                          AND EXISTS (SELECT FROM pg_attribute a JOIN pg_type y ON y.oid = a.atttypid
                                      WHERE a.attrelid = t.relation AND a.attnum > 0 AND NOT a.attisdropped
                                        AND CASE WHEN obj.classid = 'pg_type'::regclass
                                                 THEN obj.objid IN (y.oid, y.typelem, y.typbasetype)
                                                 ELSE obj.objid = y.typrelid END)) LOOP
            PERFORM audit.append_event('DDL', NULL, NULL,
                jsonb_build_object('command_tag', obj.command_tag, 'object_type', obj.object_type,
                                   'object_identity', obj.object_identity, 'statement', audit.statement_text())
                || CASE WHEN hit.table_name <> hit.live_name THEN jsonb_build_object('previous_name', hit.table_name)
                        ELSE '{}' END,
                NULL, hit.live_name);
            -- Renames, detached partitions and capture triggers the command touched
            -- are brought up to date at commit.
            INSERT INTO audit.tracking_check (relation)
            SELECT t.relation FROM audit.tracking t WHERE t.tracked_table = hit.tracked_table;
        END LOOP;
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit.record_ddl(text, text) IS
    'pg-audit: called by the DDL guard: records DDL of tracked tables as DDL events with the statement, and queues the commit-time check of capture triggers';
REVOKE ALL ON FUNCTION audit.record_ddl(text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.record_ddl(text, text) TO PUBLIC;


-- ---------------------------------------------------------------------------
-- Back to audit_owner: the commit-time check, the admin log, privileges
-- ---------------------------------------------------------------------------

SET LOCAL ROLE audit_owner;

CREATE CONSTRAINT TRIGGER audit_check_tracking AFTER INSERT ON audit.tracking_check
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION audit.check_tracking();
ALTER TABLE audit.tracking_check ENABLE ALWAYS TRIGGER audit_check_tracking;
COMMENT ON TRIGGER audit_check_tracking ON audit.tracking_check IS
    'pg-audit: at commit, checks and records the capture triggers changed in the transaction';

-- Run by the owner of django_admin_log (not a definer: only the owner may add
-- its trigger). content_type is accepted for earlier callers and unused: events
-- carry content_type_id, and readers look the name up.
CREATE OR REPLACE FUNCTION audit.enable_admin_log(admin_log regclass, content_type regclass DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    IF (SELECT relname FROM pg_class WHERE oid = admin_log) <> 'django_admin_log' THEN
        RAISE EXCEPTION 'pg-audit: % is not named django_admin_log', admin_log USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT string_agg(c, ', ') INTO missing
    FROM unnest(ARRAY['action_flag', 'object_id', 'object_repr', 'change_message', 'user_id',
                      'content_type_id', 'id']) c
    WHERE NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = admin_log AND attname = c
                                                 AND attnum > 0 AND NOT attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'pg-audit: % is not a Django admin log (no column %)', admin_log, missing
            USING ERRCODE = 'undefined_column';
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS audit_admin_log ON %s', admin_log);
    EXECUTE format('CREATE TRIGGER audit_admin_log AFTER INSERT ON %s FOR EACH ROW '
                   'EXECUTE FUNCTION audit.admin_log_event()', admin_log);
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_admin_log', admin_log);
    EXECUTE format('COMMENT ON TRIGGER audit_admin_log ON %s IS %L', admin_log,
                   'pg-audit: records admin actions in audit.event (audit.enable_admin_log)');
END
$$;

REVOKE CREATE ON SCHEMA audit FROM audit_appender;

RESET ROLE;

-- ---------------------------------------------------------------------------
-- Tables tracked by an earlier version get this version's capture triggers
-- ---------------------------------------------------------------------------

-- Through enable_tracking, so each is recorded (TRACKING_ENABLED). A table the
-- installer may not alter keeps its earlier triggers, which this capture()
-- still serves (reading the key from the catalog), until its owner runs
-- audit.enable_tracking on it.
DO $upgrade$
DECLARE
    t record;
BEGIN
    FOR t IN SELECT tg.tgrelid::regclass AS relation, audit.trigger_arguments(tg.tgargs) AS args
             FROM pg_catalog.pg_trigger tg JOIN pg_catalog.pg_class c ON c.oid = tg.tgrelid
             WHERE tg.tgname = 'audit_capture_update' AND tg.tgnargs = 1 AND NOT c.relispartition LOOP
        BEGIN
            PERFORM audit.enable_tracking(t.relation, t.args[1]::text[]);
        EXCEPTION WHEN OTHERS THEN
            RAISE WARNING 'pg-audit: % keeps the capture triggers of an earlier version: %', t.relation, SQLERRM
                USING HINT = 'Its owner upgrades them with SELECT audit.enable_tracking(...).';
        END;
    END LOOP;
END
$upgrade$;

INSERT INTO audit.schema_version (version, name) VALUES (6, 'trust_boundary');
