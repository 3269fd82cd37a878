-- sql/0008_investigation.sql: investigation functions and views that take a
-- table however it is written and say so when a question cannot be answered
-- (issue 12).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.
--
-- What changes, and why:
--   * A table is named however a person writes it: shop_product,
--     public.shop_product, "Sales"."Order", or as a regclass. audit.resolve_table()
--     turns it into the name events carry, and refuses, with a hint, a table
--     that does not exist or whose changes were never tracked.
--   * A row key matches by value, whatever JSON type the caller used: events
--     since step 6 hold PostgreSQL's text output of each key column
--     ({"id": "42"}), older ones typed JSON ({"id": 42}); audit.key_forms()
--     gives both forms of a caller's key (42 for a numeric(10,2) key is
--     "42.00"), and a key whose columns are not the primary key is refused.
--   * row_history, last_change and row_as_of find a row's events through
--     audit.row_ref() (step 6) and a row's earlier keys through old_row_key,
--     so the (table_name, row_key) btree that every captured row paid for goes.
--   * Misspelt columns, reversed ranges and thresholds below 1 are errors, not
--     empty answers.
--
-- Everything here runs with the caller's rights (audit_reader's), pins
-- search_path, and evaluates builtin types and pg_catalog functions only: a
-- key value is parsed with its column's type only when that type is a builtin
-- base type; an application-defined type's text is compared as given.

SET LOCAL ROLE audit_owner;

-- ---------------------------------------------------------------------------
-- Which tables the log knows
-- ---------------------------------------------------------------------------

-- TRACKING_ENABLED and TRACKING_DISABLED events name every table that was ever
-- tracked, including dropped ones; they are found through the index of rare
-- verbs, audit.event_action_idx (step 0006).
CREATE FUNCTION audit.known_tables() RETURNS SETOF text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT t.table_name FROM audit.tracking t WHERE t.relation = t.tracked_table  -- not the view: no capture_state()
    UNION
    SELECT e.table_name FROM audit.event e
    WHERE e.action IN ('TRACKING_ENABLED', 'TRACKING_DISABLED') AND e.table_name IS NOT NULL
$$;
COMMENT ON FUNCTION audit.known_tables() IS
    'pg-audit: every table the log has events of: tracked now, or tracked once (TRACKING_* events), as schema.table';
REVOKE ALL ON FUNCTION audit.known_tables() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.known_tables() TO audit_reader;

CREATE FUNCTION audit.resolve_table(target text) RETURNS text
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    parts text[];
    wanted text;
    matches text[];
    known text[];
    hint text;
BEGIN
    IF target IS NULL OR btrim(target) = '' THEN
        RAISE EXCEPTION 'pg-audit: a table name is required'
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example ''shop_order'' or ''public.shop_order''.';
    END IF;
    BEGIN
        parts := parse_ident(btrim(target));
    EXCEPTION WHEN invalid_parameter_value THEN
        RAISE EXCEPTION 'pg-audit: % is not a table name', quote_literal(left(target, 200))
            USING ERRCODE = 'invalid_parameter_value',
                  HINT = 'Write table, schema.table, or quote mixed-case names: "Sales"."Order".';
    END;
    IF cardinality(parts) = 3 AND parts[1] = current_database() THEN
        parts := parts[2:3];
    END IF;
    IF cardinality(parts) NOT IN (1, 2) THEN
        RAISE EXCEPTION 'pg-audit: % is not a table name', quote_literal(left(target, 200))
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Write table or schema.table.';
    END IF;
    known := ARRAY(SELECT k FROM audit.known_tables() k ORDER BY k);
    -- Events since step 6 quote the parts of a name where an identifier needs it
    -- ("Sales"."Order"); earlier ones did not (Sales.Order): match either.
    IF cardinality(parts) = 2 THEN
        wanted := format('%I.%I', parts[1], parts[2]);
        matches := ARRAY(SELECT k FROM unnest(known) k WHERE k IN (wanted, parts[1] || '.' || parts[2]));
    ELSE
        wanted := quote_ident(parts[1]);
        matches := ARRAY(SELECT k FROM unnest(known) k
                         WHERE right(k, length(wanted) + 1) = '.' || wanted
                            OR right(k, length(parts[1]) + 1) = '.' || parts[1]);
    END IF;
    IF cardinality(matches) = 1 THEN
        RETURN matches[1];
    ELSIF cardinality(matches) > 1 THEN
        RAISE EXCEPTION 'pg-audit: % names more than one tracked table: %', quote_literal(target),
            array_to_string(matches, ', ')
            USING ERRCODE = 'ambiguous_alias', HINT = 'Qualify it with its schema.';
    END IF;
    -- Not in the log: say whether the table exists at all.
    IF EXISTS (SELECT FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
               WHERE c.relname = parts[cardinality(parts)] AND c.relkind IN ('r', 'p')
                 AND (cardinality(parts) = 1 OR n.nspname = parts[1])) THEN
        RAISE EXCEPTION 'pg-audit: table % is not tracked: the log has no events of it', wanted
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = format('Start recording its changes with: SELECT audit.enable_tracking(%L);', wanted);
    END IF;
    SELECT string_agg(k, ', ') INTO hint FROM unnest(known) k
    WHERE lower(k) = lower(CASE WHEN cardinality(parts) = 2 THEN wanted ELSE k END)
      AND lower(right(k, length(parts[cardinality(parts)]) + 1)) = lower('.' || parts[cardinality(parts)]);
    IF hint IS NOT NULL THEN
        hint := format('Did you mean %s? Unquoted names are folded to lower case; names with capitals need double quotes: ''"Order"''.', hint);
    ELSIF cardinality(known) = 0 THEN
        hint := 'No table has been tracked yet.';
    ELSE
        hint := 'Tables with events: ' || array_to_string(known[1:20], ', ')
                || CASE WHEN cardinality(known) > 20 THEN ', ...' ELSE '' END || '.';
    END IF;
    RAISE EXCEPTION 'pg-audit: table % does not exist and the log has no events of it', wanted
        USING ERRCODE = 'undefined_table', HINT = hint;
END
$$;
COMMENT ON FUNCTION audit.resolve_table(text) IS
    'pg-audit: a table as a person writes it (table, schema.table, quoted names) turned into the schema.table that events carry; an error with a hint when it does not exist or was never tracked, or when the name is ambiguous';
REVOKE ALL ON FUNCTION audit.resolve_table(text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.resolve_table(text) TO audit_reader;

-- The same for a regclass: the quoted, schema-qualified name resolves to itself.
CREATE FUNCTION audit.resolve_table(target regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT audit.resolve_table(resolve_table.target::text) $$;
COMMENT ON FUNCTION audit.resolve_table(regclass) IS
    'pg-audit: audit.resolve_table(text) for a regclass: its schema.table as events carry it, or an error when it was never tracked';
REVOKE ALL ON FUNCTION audit.resolve_table(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.resolve_table(regclass) TO audit_reader;

-- ---------------------------------------------------------------------------
-- Row keys by value
-- ---------------------------------------------------------------------------

-- The JSON forms in which events may hold a key: first the text form (each
-- column as PostgreSQL prints it, as capture records since step 6), then the
-- typed form older events hold, when it differs. For a caller's key
-- (from_caller) its columns must be the table's primary key; keys read from
-- the log are taken as they are.
CREATE FUNCTION audit.key_forms(table_name text, row_key jsonb, from_caller boolean DEFAULT true)
RETURNS jsonb[]
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    rel oid;
    pk text[];
    col text;
    v jsonb;
    type_name text;
    builtin boolean;
    given text;
    text_form jsonb;
    typed_form jsonb;
    as_text jsonb := '{}';
    as_typed jsonb := '{}';
BEGIN
    IF row_key IS NULL OR jsonb_typeof(row_key) <> 'object' OR row_key = '{}' THEN
        RAISE EXCEPTION 'pg-audit: a row key is a JSON object of the primary key columns, got %',
            coalesce(left(row_key::text, 200), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example ''{"id": 42}''.';
    END IF;
    SELECT c.oid INTO rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname || '.' || c.relname = key_forms.table_name AND c.relkind IN ('r', 'p')
    LIMIT 1;
    IF rel IS NOT NULL THEN
        pk := ARRAY(SELECT a.attname::text FROM pg_index i
                    JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)
                    WHERE i.indrelid = rel AND i.indisprimary ORDER BY a.attname);
        IF from_caller AND cardinality(pk) > 0
           AND pk <> ARRAY(SELECT k FROM jsonb_object_keys(row_key) k ORDER BY k) THEN
            RAISE EXCEPTION 'pg-audit: % is not a key of %: its primary key is (%)',
                left(row_key::text, 200), key_forms.table_name, array_to_string(pk, ', ')
                USING ERRCODE = 'invalid_parameter_value',
                      HINT = format('For example %s.', (SELECT jsonb_object_agg(p, '...') FROM unnest(pk) p));
        END IF;
    END IF;
    FOR col, v IN SELECT * FROM jsonb_each(row_key) LOOP
        IF jsonb_typeof(v) = 'null' THEN
            RAISE EXCEPTION 'pg-audit: key column % of % is null in %', col, key_forms.table_name, left(row_key::text, 200)
                USING ERRCODE = 'invalid_parameter_value';
        END IF;
        IF jsonb_typeof(v) IN ('object', 'array') THEN
            as_text := as_text || jsonb_build_object(col, v);
            as_typed := as_typed || jsonb_build_object(col, v);
            CONTINUE;
        END IF;
        given := v #>> '{}';
        type_name := NULL;
        builtin := false;
        IF rel IS NOT NULL THEN
            SELECT format_type(a.atttypid, a.atttypmod),
                   t.typnamespace = 'pg_catalog'::regnamespace AND t.typtype = 'b' AND t.typcategory <> 'A'
              INTO type_name, builtin
              FROM pg_attribute a JOIN pg_type t ON t.oid = a.atttypid
             WHERE a.attrelid = rel AND a.attname = col AND a.attnum > 0 AND NOT a.attisdropped;
        END IF;
        IF builtin THEN
            -- Parse with the column's own (builtin) type and print it back with
            -- its output function, as capture does (format's %s; a cast to text
            -- differs: true::text is 'true' where capture holds 't', an inet
            -- gains /32, char(n) loses its padding); to_jsonb of the value is
            -- what older events hold.
            BEGIN
                EXECUTE format('SELECT pg_catalog.jsonb_build_object(%L, pg_catalog.format(''%%s'', x)), '
                               'pg_catalog.jsonb_build_object(%L, pg_catalog.to_jsonb(x)) '
                               'FROM (SELECT %L::%s AS x) s', col, col, given, type_name)
                   INTO STRICT text_form, typed_form;
            EXCEPTION WHEN data_exception THEN
                RAISE EXCEPTION 'pg-audit: % is not a valid % for key column % of %',
                    quote_literal(left(given, 100)), type_name, col, key_forms.table_name
                    USING ERRCODE = 'invalid_parameter_value';
            END;
        ELSE
            -- Unknown or application-defined type: compare the text as given,
            -- and a number also as the JSON number older events would hold.
            text_form := jsonb_build_object(col, given);
            typed_form := CASE WHEN jsonb_typeof(v) = 'string' AND given ~ '^-?[0-9]+(\.[0-9]+)?$'
                               THEN jsonb_build_object(col, given::numeric)
                               ELSE jsonb_build_object(col, v) END;
        END IF;
        as_text := as_text || text_form;
        as_typed := as_typed || typed_form;
    END LOOP;
    IF as_typed = as_text THEN
        RETURN ARRAY[as_text];
    END IF;
    RETURN ARRAY[as_text, as_typed];
END
$$;
COMMENT ON FUNCTION audit.key_forms(text, jsonb, boolean) IS
    'pg-audit: the JSON forms a row key may have in events: text form (as captured since version 6), then typed form (older events); a caller''s key must name the primary key columns and parse as their types';
REVOKE ALL ON FUNCTION audit.key_forms(text, jsonb, boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.key_forms(text, jsonb, boolean) TO audit_reader;

-- Events written by a capture that does not fill old_row_key: an UPDATE that
-- moved a row away from a key is found among them by its old values, without
-- an index (a scan of the table's events). Until capture records old_row_key
-- for every key change, that is every event; then it becomes the events before
-- that capture was installed, and row_history and row_as_of read indexes only.
CREATE FUNCTION audit.old_row_keys_since() RETURNS timestamptz
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT coalesce((SELECT v.applied_at FROM audit.schema_version v WHERE v.version = 6), 'infinity') $$;
COMMENT ON FUNCTION audit.old_row_keys_since() IS
    'pg-audit: since when every UPDATE that changes a key records old_row_key; older key changes are found by their old values';
REVOKE ALL ON FUNCTION audit.old_row_keys_since() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.old_row_keys_since() TO audit_reader;

-- Ids of the events of one key (any of its forms): those that carry it as
-- row_key, and with moved_away the UPDATEs that moved a row away from it.
CREATE FUNCTION audit.key_event_ids(table_name text, forms jsonb[], moved_away boolean)
RETURNS SETOF bigint
LANGUAGE plpgsql STABLE ROWS 10
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text := key_event_ids.table_name;
    f jsonb;
BEGIN
    FOREACH f IN ARRAY forms LOOP
        -- Written exactly so, the planner reads them from event_row_ref_idx
        -- and event_old_row_ref_idx.
        RETURN QUERY SELECT e.id FROM audit.event e
            WHERE audit.row_ref(e.table_name, e.row_key) = audit.row_ref(tbl, f)
              AND e.table_name = tbl AND e.row_key = f;
        IF moved_away THEN
            RETURN QUERY SELECT e.id FROM audit.event e
                WHERE audit.row_ref(e.table_name, e.old_row_key) = audit.row_ref(tbl, f)
                  AND e.table_name = tbl AND e.old_row_key = f;
        END IF;
    END LOOP;
    IF moved_away THEN
        RETURN QUERY SELECT e.id FROM audit.event e
            WHERE e.occurred_at < audit.old_row_keys_since()
              AND e.table_name = tbl AND e.action = 'UPDATE' AND e.old_row_key IS NULL
              AND e.row_key <> ALL (forms) AND e.old_values @> ANY (forms);
    END IF;
END
$$;
COMMENT ON FUNCTION audit.key_event_ids(text, jsonb[], boolean) IS
    'pg-audit: ids of the events that carry one of the key forms as row_key, and with moved_away those that moved a row away from it (internal to row_history and column_changes)';
REVOKE ALL ON FUNCTION audit.key_event_ids(text, jsonb[], boolean) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.key_event_ids(text, jsonb[], boolean) TO audit_reader;

-- The key before an UPDATE event, from old_row_key or, for older events, from
-- the old values of its key columns.
CREATE FUNCTION audit.key_before(e audit.event) RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN e.action = 'UPDATE'
                THEN coalesce(e.old_row_key, audit.previous_key(e.row_key, e.old_values)) END
$$;
COMMENT ON FUNCTION audit.key_before(audit.event) IS
    'pg-audit: for an UPDATE that changed the primary key, the key before it (old_row_key, or for older events the key columns of old_values); NULL otherwise';
REVOKE ALL ON FUNCTION audit.key_before(audit.event) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.key_before(audit.event) TO audit_reader;

-- ---------------------------------------------------------------------------
-- Ranges and thresholds
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.check_period(since timestamptz, "until" timestamptz) RETURNS void
LANGUAGE plpgsql IMMUTABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF since > "until" THEN
        RAISE EXCEPTION 'pg-audit: the period is reversed: since % is after until %', since, "until"
            USING ERRCODE = 'invalid_parameter_value', HINT = 'Swap since and until.';
    END IF;
END
$$;
COMMENT ON FUNCTION audit.check_period(timestamptz, timestamptz) IS
    'pg-audit: raises when since is after until (a reversed period would silently match nothing)';
REVOKE ALL ON FUNCTION audit.check_period(timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.check_period(timestamptz, timestamptz) TO audit_reader;

-- ---------------------------------------------------------------------------
-- The investigation functions, by table name or regclass
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.row_history(target text, row_key jsonb) RETURNS SETOF audit.event
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text := audit.resolve_table(target);
BEGIN
    RETURN QUERY
    SELECT e.* FROM audit.event e
    WHERE e.id IN (SELECT audit.key_event_ids(tbl, audit.key_forms(tbl, row_history.row_key), true))
      AND e.table_name = tbl
    ORDER BY e.id;
END
$$;
COMMENT ON FUNCTION audit.row_history(text, jsonb) IS
    'pg-audit: every event of one row, oldest first, including the update that gave it a new key; the table as written (table, schema.table), the key by value ({"id": 42} or {"id": "42"})';
REVOKE ALL ON FUNCTION audit.row_history(text, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.row_history(text, jsonb) TO audit_reader;

CREATE OR REPLACE FUNCTION audit.row_history(target regclass, row_key jsonb) RETURNS SETOF audit.event
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM audit.row_history(row_history.target::text, row_history.row_key) $$;
COMMENT ON FUNCTION audit.row_history(regclass, jsonb) IS
    'pg-audit: audit.row_history(text, jsonb) for a regclass: every event of one row, oldest first';

CREATE FUNCTION audit.last_change(target text, row_key jsonb, column_name text)
RETURNS TABLE (
    event_id bigint, occurred_at timestamptz, action text, old_value jsonb, new_value jsonb,
    actor_id text, actor_name text, ip inet, db_role text, request_id text
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text := audit.resolve_table(target);
    col text := last_change.column_name;
    forms jsonb[] := audit.key_forms(tbl, last_change.row_key);
    high bigint := NULL;
    older jsonb;
    ev audit.event;
    hops integer := 0;
    rel oid;
    excluded text[];
    columns text;
BEGIN
    IF col IS NULL OR col = '' THEN
        RAISE EXCEPTION 'pg-audit: a column name is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Newest first through the row's events; at the UPDATE that gave the row
    -- its key, carry on with the key it had before.
    WHILE forms IS NOT NULL AND hops < 100 LOOP
        hops := hops + 1;
        older := NULL;
        FOR ev IN SELECT * FROM audit.event h
                  WHERE h.id IN (SELECT audit.key_event_ids(tbl, forms, false))
                    AND h.table_name = tbl AND (high IS NULL OR h.id < high)
                  ORDER BY h.id DESC LOOP
            IF ev.old_values ? col OR ev.new_values ? col THEN
                RETURN QUERY SELECT ev.id, ev.occurred_at, ev.action, ev.old_values -> col,
                                    ev.new_values -> col, ev.actor_id, ev.actor_name, ev.ip,
                                    ev.db_role, ev.request_id;
                RETURN;
            END IF;
            EXIT WHEN ev.action = 'INSERT';
            older := audit.key_before(ev);
            IF older IS NOT NULL THEN
                high := ev.id;
                EXIT;
            END IF;
        END LOOP;
        forms := CASE WHEN older IS NOT NULL THEN audit.key_forms(tbl, older, false) END;
    END LOOP;
    -- No event set it: say why when the column is not one the log can hold.
    SELECT c.oid INTO rel FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE n.nspname || '.' || c.relname = tbl AND c.relkind IN ('r', 'p') LIMIT 1;
    IF rel IS NULL THEN
        RETURN;  -- the table is gone: its columns are no longer known
    END IF;
    IF NOT EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = rel AND a.attname = col
                   AND a.attnum > 0 AND NOT a.attisdropped) THEN
        SELECT string_agg(a.attname, ', ' ORDER BY a.attnum) INTO columns FROM pg_attribute a
        WHERE a.attrelid = rel AND a.attnum > 0 AND NOT a.attisdropped;
        RAISE EXCEPTION 'pg-audit: % has no column %', tbl, quote_literal(col)
            USING ERRCODE = 'undefined_column', HINT = format('Its columns: %s.', columns);
    END IF;
    SELECT t.excluded_columns INTO excluded FROM audit.tracked_table t WHERE t.table_name = tbl;
    IF col = ANY (excluded) THEN
        RAISE EXCEPTION 'pg-audit: column % of % is excluded from the log: its values are never recorded', col, tbl
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
END
$$;
COMMENT ON FUNCTION audit.last_change(text, jsonb, text) IS
    'pg-audit: the newest event that set a column of one row (by primary key value, following key changes): when, who, from where, old and new value; no row when never recorded; an error for a column the table does not have or excludes';
REVOKE ALL ON FUNCTION audit.last_change(text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.last_change(text, jsonb, text) TO audit_reader;

CREATE OR REPLACE FUNCTION audit.last_change(target regclass, row_key jsonb, column_name text)
RETURNS TABLE (
    event_id bigint, occurred_at timestamptz, action text, old_value jsonb, new_value jsonb,
    actor_id text, actor_name text, ip inet, db_role text, request_id text
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT * FROM audit.last_change(last_change.target::text, last_change.row_key, last_change.column_name) $$;
COMMENT ON FUNCTION audit.last_change(regclass, jsonb, text) IS
    'pg-audit: audit.last_change(text, jsonb, text) for a regclass';

CREATE FUNCTION audit.row_as_of(target text, row_key jsonb, "at" timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text := audit.resolve_table(target);
    forms jsonb[] := audit.key_forms(tbl, row_as_of.row_key);
    first_forms jsonb[] := forms;
    high bigint := NULL;
    keys jsonb[] := ARRAY[]::jsonb[];   -- each a JSON array of the forms of one key
    lows bigint[] := ARRAY[]::bigint[];
    highs bigint[] := ARRAY[]::bigint[];
    start audit.event;
    state jsonb := NULL;
    last_id bigint;
    last_at timestamptz;
    ev record;
    f jsonb;
BEGIN
    IF row_as_of."at" IS NULL THEN
        RAISE EXCEPTION 'pg-audit: a time is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Walk back through the keys the row had: for each, the newest event that
    -- began it (its INSERT, or the UPDATE that gave it this key) before "at".
    LOOP
        start := NULL;
        SELECT * INTO start FROM audit.event h
        WHERE h.id IN (SELECT audit.key_event_ids(tbl, forms, false))
          AND h.table_name = tbl AND h.occurred_at <= row_as_of."at" AND (high IS NULL OR h.id < high)
          AND (h.action = 'INSERT' OR audit.key_before(h) IS NOT NULL)
        ORDER BY h.id DESC LIMIT 1;
        keys := keys || to_jsonb(forms);
        lows := lows || start.id;
        highs := highs || high;
        EXIT WHEN start.id IS NULL OR start.action = 'INSERT' OR cardinality(keys) >= 100;
        high := start.id;
        forms := audit.key_forms(tbl, audit.key_before(start), false);
    END LOOP;
    -- Replay, oldest key first, each key's events from its beginning up to the
    -- key change. A TRUNCATE of the table ends every row.
    FOR i IN REVERSE cardinality(keys)..1 LOOP
        FOR ev IN
            SELECT h.id, h.occurred_at, h.action, h.row_key, h.new_values
            FROM audit.event h
            WHERE h.id IN (SELECT audit.key_event_ids(
                               tbl, ARRAY(SELECT jsonb_array_elements(keys[i])), false))
              AND h.table_name = tbl AND h.occurred_at <= row_as_of."at"
              AND (lows[i] IS NULL OR h.id >= lows[i]) AND (highs[i] IS NULL OR h.id < highs[i])
            UNION ALL
            SELECT t.id, t.occurred_at, t.action, NULL, NULL FROM audit.event t
            WHERE t.action = 'TRUNCATE' AND t.table_name = tbl
              AND t.occurred_at <= row_as_of."at"
              AND (lows[i] IS NULL OR t.id >= lows[i]) AND (highs[i] IS NULL OR t.id < highs[i])
            ORDER BY 1
        LOOP
            last_id := ev.id;
            last_at := ev.occurred_at;
            IF ev.action IN ('TRUNCATE', 'DELETE') THEN
                state := NULL;
            ELSIF ev.action = 'INSERT' THEN
                state := ev.new_values;
            ELSIF ev.action = 'UPDATE' THEN
                -- Without the INSERT (tracking began later) only the key and
                -- the columns changed since are known.
                state := coalesce(state, ev.row_key) || ev.new_values;
            END IF;
        END LOOP;
    END LOOP;
    -- Did an UPDATE move the row to another key after its last event and
    -- before "at"? Such an event carries our key as old_row_key (index); among
    -- events without old_row_key, in its old values (read for that span only).
    IF state IS NOT NULL THEN
        FOREACH f IN ARRAY first_forms LOOP
            IF EXISTS (SELECT FROM audit.event m
                       WHERE audit.row_ref(m.table_name, m.old_row_key) = audit.row_ref(tbl, f)
                         AND m.table_name = tbl AND m.old_row_key = f
                         AND m.id > last_id AND m.occurred_at <= row_as_of."at") THEN
                state := NULL;
            END IF;
        END LOOP;
    END IF;
    IF state IS NOT NULL AND last_at < audit.old_row_keys_since() AND EXISTS (
        SELECT FROM audit.event m
        WHERE m.table_name = tbl AND m.action = 'UPDATE' AND m.old_row_key IS NULL
          AND m.row_key <> ALL (first_forms) AND m.old_values @> ANY (first_forms)
          AND m.id > last_id AND m.occurred_at >= last_at
          AND m.occurred_at <= least(row_as_of."at", audit.old_row_keys_since())) THEN
        state := NULL;
    END IF;
    RETURN state;
END
$$;
COMMENT ON FUNCTION audit.row_as_of(text, jsonb, timestamptz) IS
    'pg-audit: a row as it was at a time, replayed from its events (following key changes) as jsonb; NULL when it did not exist; excluded columns absent, and without its INSERT only the key and changed columns';
REVOKE ALL ON FUNCTION audit.row_as_of(text, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.row_as_of(text, jsonb, timestamptz) TO audit_reader;

CREATE OR REPLACE FUNCTION audit.row_as_of(target regclass, row_key jsonb, "at" timestamptz)
RETURNS jsonb
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$ SELECT audit.row_as_of(row_as_of.target::text, row_as_of.row_key, row_as_of."at") $$;
COMMENT ON FUNCTION audit.row_as_of(regclass, jsonb, timestamptz) IS
    'pg-audit: audit.row_as_of(text, jsonb, timestamptz) for a regclass';

-- The view audit.column_changes for one table (and optionally one row, and a
-- period), with the table as written.
CREATE FUNCTION audit.column_changes(
    target text, row_key jsonb DEFAULT NULL,
    since timestamptz DEFAULT NULL, "until" timestamptz DEFAULT NULL
) RETURNS SETOF audit.column_changes
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    tbl text := audit.resolve_table(target);
BEGIN
    PERFORM audit.check_period(since, "until");
    IF column_changes.row_key IS NULL THEN
        RETURN QUERY SELECT c.* FROM audit.column_changes c
            WHERE c.table_name = tbl
              AND (column_changes.since IS NULL OR c.occurred_at >= column_changes.since)
              AND (column_changes."until" IS NULL OR c.occurred_at < column_changes."until")
            ORDER BY c.event_id, c.column_name;
    ELSE
        RETURN QUERY SELECT c.* FROM audit.column_changes c
            WHERE c.event_id IN (SELECT audit.key_event_ids(tbl, audit.key_forms(tbl, column_changes.row_key), true))
              AND c.table_name = tbl
              AND (column_changes.since IS NULL OR c.occurred_at >= column_changes.since)
              AND (column_changes."until" IS NULL OR c.occurred_at < column_changes."until")
            ORDER BY c.event_id, c.column_name;
    END IF;
END
$$;
COMMENT ON FUNCTION audit.column_changes(text, jsonb, timestamptz, timestamptz) IS
    'pg-audit: audit.column_changes of one table (as written), optionally of one row (by key value) and a period [since, until)';
REVOKE ALL ON FUNCTION audit.column_changes(text, jsonb, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.column_changes(text, jsonb, timestamptz, timestamptz) TO audit_reader;

-- Same signature and result as step 3's; now refuses what would match nothing.
CREATE OR REPLACE FUNCTION audit.failed_login_bursts(
    threshold integer DEFAULT 5,
    "window" interval DEFAULT '10 minutes',
    since timestamptz DEFAULT now() - interval '1 day',
    "until" timestamptz DEFAULT NULL
) RETURNS TABLE (
    subject_kind text, subject text, max_in_window bigint, failures bigint,
    first_failure timestamptz, last_failure timestamptz, other_subjects text[]
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF threshold IS NULL OR threshold < 1 THEN
        RAISE EXCEPTION 'pg-audit: threshold must be 1 or more, got %', coalesce(threshold::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF "window" IS NULL OR "window" <= interval '0' THEN
        RAISE EXCEPTION 'pg-audit: window must be a positive interval, got %', coalesce("window"::text, 'NULL')
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF since IS NULL THEN
        RAISE EXCEPTION 'pg-audit: since is required' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    PERFORM audit.check_period(since, "until");
    RETURN QUERY
    WITH f AS (
        SELECT e.occurred_at, coalesce(e.actor_name, e.detail ->> 'username', e.actor_id) AS user_name,
               host(e.ip) AS ip
        FROM audit.event e
        WHERE e.action IN ('LOGIN', 'LOGOUT', 'LOGIN_FAILED')
          AND e.outcome = 'failure'
          AND e.occurred_at >= failed_login_bursts.since
          AND (failed_login_bursts."until" IS NULL OR e.occurred_at < failed_login_bursts."until")
    ), s AS (
        SELECT 'user' AS kind, f.user_name AS subject, f.ip AS other, f.occurred_at FROM f
        WHERE f.user_name IS NOT NULL
        UNION ALL
        SELECT 'ip', f.ip, f.user_name, f.occurred_at FROM f WHERE f.ip IS NOT NULL
    ), w AS (
        SELECT s.*, count(*) OVER (PARTITION BY s.kind, s.subject ORDER BY s.occurred_at
                                   RANGE BETWEEN CURRENT ROW AND failed_login_bursts."window" FOLLOWING) AS n
        FROM s
    )
    SELECT w.kind, w.subject, max(w.n), count(*), min(w.occurred_at), max(w.occurred_at),
           array_agg(DISTINCT w.other ORDER BY w.other) FILTER (WHERE w.other IS NOT NULL)
    FROM w
    GROUP BY w.kind, w.subject
    HAVING max(w.n) >= failed_login_bursts.threshold
    ORDER BY max(w.n) DESC, w.kind DESC, w.subject;
END
$$;

-- ---------------------------------------------------------------------------
-- The (table_name, row_key) btree goes: every reader now uses row_ref
-- ---------------------------------------------------------------------------

DROP INDEX audit.event_row_idx;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (8, 'investigation');
