-- sql/0001_core.sql: the append-only event log, context, capture triggers and
-- the functions that write and read them.
--
-- A step file: applied once, inside the installer's transaction, after
-- sql/bootstrap.sql. Never edited once released; later changes go in a new step.
-- Objects are created as audit_owner, so SECURITY DEFINER functions run as the
-- owner of the log and nobody else needs a privilege on it.

SET LOCAL ROLE audit_owner;

-- ---------------------------------------------------------------------------
-- The log
-- ---------------------------------------------------------------------------

CREATE SEQUENCE audit.event_id_seq AS bigint;
COMMENT ON SEQUENCE audit.event_id_seq IS 'pg-audit: ids of audit.event, increasing in insertion order';

CREATE TABLE audit.event (
    id               bigint      NOT NULL DEFAULT pg_catalog.nextval('audit.event_id_seq'),
    occurred_at      timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),   -- wall clock when recorded
    tx_started_at    timestamptz NOT NULL DEFAULT pg_catalog.now(),               -- start of the writing transaction
    action           text        NOT NULL,                                        -- upper-case verb
    outcome          text,                                                        -- auth events: success or failure
    actor_id         text,                                                        -- application user id, NULL if anonymous
    actor_name       text,                                                        -- user name at the time
    ip               inet,                                                        -- client address, NULL if unknown or unparseable
    user_agent       text,                                                        -- client user agent, bounded
    request_id       text,                                                        -- correlates one request or job
    db_role          text        NOT NULL DEFAULT session_user,                   -- database login that made the change
    application_name text        DEFAULT nullif(pg_catalog.current_setting('application_name'), ''),
    table_name       text,                                                        -- schema.table of a data event
    row_key          jsonb,                                                       -- primary key of the changed row
    old_values       jsonb,                                                       -- before (UPDATE: changed columns only)
    new_values       jsonb,                                                       -- after (UPDATE: changed columns only)
    detail           jsonb,                                                       -- free-form extra data
    txid             xid8        NOT NULL DEFAULT pg_catalog.pg_current_xact_id(),
    CONSTRAINT event_pkey PRIMARY KEY (id, occurred_at)
) PARTITION BY RANGE (occurred_at);

ALTER SEQUENCE audit.event_id_seq OWNED BY audit.event.id;

-- No CHECK constraints: PostgreSQL prepares each CHECK expression anew for
-- every INSERT statement, which measured 15-40 us per constraint per statement,
-- more than the rest of a single-row capture. The only writers are this schema's
-- SECURITY DEFINER functions, which write fixed verbs (capture) or validate them
-- (append_event), so the invariants are kept there.

COMMENT ON TABLE audit.event IS
    'pg-audit: every audit event (data changes, logins, admin actions, application events); append-only, partitioned by month on occurred_at';
COMMENT ON COLUMN audit.event.id IS 'increasing with insertion order (not commit order)';
COMMENT ON COLUMN audit.event.occurred_at IS 'wall-clock time the event was recorded (clock_timestamp)';
COMMENT ON COLUMN audit.event.tx_started_at IS 'start of the transaction that recorded the event (now())';
COMMENT ON COLUMN audit.event.action IS 'INSERT, UPDATE, DELETE, TRUNCATE, LOGIN, LOGOUT, LOGIN_FAILED, ADMIN_*, TRACKING_* or an application verb';
COMMENT ON COLUMN audit.event.outcome IS 'success or failure, for authentication and other attempts';
COMMENT ON COLUMN audit.event.actor_id IS 'application user id from audit.actor_id (max 256 chars); NULL when anonymous';
COMMENT ON COLUMN audit.event.actor_name IS 'application user name as it was then, from audit.actor_name (max 256 chars)';
COMMENT ON COLUMN audit.event.ip IS 'client address from audit.ip; NULL when unset or unparseable (raw value then in detail.ip_raw)';
COMMENT ON COLUMN audit.event.user_agent IS 'client user agent from audit.user_agent (max 512 chars)';
COMMENT ON COLUMN audit.event.request_id IS 'request or job id from audit.request_id (max 128 chars)';
COMMENT ON COLUMN audit.event.db_role IS 'database login (session_user) that made the change';
COMMENT ON COLUMN audit.event.application_name IS 'application_name of the database session';
COMMENT ON COLUMN audit.event.table_name IS 'schema.table of a data event; NULL otherwise';
COMMENT ON COLUMN audit.event.row_key IS 'primary key of the changed row as jsonb, e.g. {"id": 42}; after a key change, the new key';
COMMENT ON COLUMN audit.event.old_values IS 'columns before the change; for UPDATE only those that changed; excluded columns never appear';
COMMENT ON COLUMN audit.event.new_values IS 'columns after the change; for UPDATE only those that changed; excluded columns never appear';
COMMENT ON COLUMN audit.event.detail IS 'free-form extra data (admin change message, attempted user name, ip_raw, ...)';
COMMENT ON COLUMN audit.event.txid IS 'the database transaction that recorded the event';
COMMENT ON INDEX audit.event_pkey IS 'pg-audit: primary key (id, occurred_at); occurred_at because it is the partition key';

CREATE TABLE audit.event_default PARTITION OF audit.event DEFAULT;
COMMENT ON TABLE audit.event_default IS
    'pg-audit: catches events outside every monthly partition, so an insert never fails; see audit.create_partitions()';

-- BRIN: events arrive in time order, and a BRIN insert costs next to nothing.
CREATE INDEX event_occurred_at_idx ON audit.event USING brin (occurred_at);
CREATE INDEX event_row_idx ON audit.event (table_name, row_key) WHERE table_name IS NOT NULL;
CREATE INDEX event_actor_idx ON audit.event (actor_id, occurred_at) WHERE actor_id IS NOT NULL;
CREATE INDEX event_request_idx ON audit.event (request_id) WHERE request_id IS NOT NULL;
COMMENT ON INDEX audit.event_occurred_at_idx IS 'pg-audit: time ranges and newest-first listing';
COMMENT ON INDEX audit.event_row_idx IS 'pg-audit: history of one row (audit.row_history)';
COMMENT ON INDEX audit.event_actor_idx IS 'pg-audit: what one user did';
COMMENT ON INDEX audit.event_request_idx IS 'pg-audit: everything one request or job did';

GRANT SELECT ON audit.event TO audit_reader;

-- ---------------------------------------------------------------------------
-- Append-only: refuse UPDATE, DELETE and TRUNCATE, whatever the privileges
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.refuse_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    RAISE EXCEPTION 'pg-audit: % on %.% is not allowed: the audit log is append-only',
        TG_OP, TG_TABLE_SCHEMA, TG_TABLE_NAME
        USING ERRCODE = 'insufficient_privilege',
              HINT = 'Audit events can only be added. Old partitions leave through the retention function.';
END
$$;
COMMENT ON FUNCTION audit.refuse_change() IS
    'pg-audit: trigger function that makes audit tables append-only by raising on UPDATE, DELETE and TRUNCATE';

-- Adds the append-only triggers to an audit table and marks them ENABLE ALWAYS,
-- so session_replication_role = replica does not skip them. Used for the log,
-- each of its partitions and any later append-only table.
CREATE FUNCTION audit.protect_table(target regclass) RETURNS void
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
END
$$;
COMMENT ON FUNCTION audit.protect_table(regclass) IS
    'pg-audit: adds the append-only triggers (ENABLE ALWAYS) to an audit table or partition; idempotent';
REVOKE ALL ON FUNCTION audit.protect_table(regclass) FROM PUBLIC;

SELECT audit.protect_table('audit.event');
SELECT audit.protect_table('audit.event_default');
SELECT audit.protect_table('audit.schema_version');

-- ---------------------------------------------------------------------------
-- Monthly partitions
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.create_partitions(months_ahead integer DEFAULT 3) RETURNS SETOF regclass
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    month_start date := date_trunc('month', now())::date;
    part_name text;
    part regclass;
BEGIN
    IF months_ahead IS NULL OR months_ahead < 0 OR months_ahead > 120 THEN
        RAISE EXCEPTION 'pg-audit: months_ahead must be between 0 and 120, got %', months_ahead
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    FOR i IN 0..months_ahead LOOP
        part_name := format('event_%s', to_char(month_start, 'YYYY_MM'));
        IF to_regclass(format('audit.%I', part_name)) IS NULL THEN
            IF EXISTS (SELECT FROM audit.event_default
                       WHERE occurred_at >= month_start
                         AND occurred_at < month_start + interval '1 month') THEN
                RAISE WARNING 'pg-audit: events of % wait in audit.event_default; partition % not created',
                    to_char(month_start, 'YYYY-MM'), part_name;
            ELSE
                EXECUTE format('CREATE TABLE audit.%I PARTITION OF audit.event FOR VALUES FROM (%L) TO (%L)',
                               part_name, month_start, month_start + interval '1 month');
                part := format('audit.%I', part_name)::regclass;
                EXECUTE format('COMMENT ON TABLE %s IS %L', part,
                               format('pg-audit: audit events of %s', to_char(month_start, 'YYYY-MM')));
                PERFORM audit.protect_table(part);
                RETURN NEXT part;
            END IF;
        END IF;
        month_start := month_start + interval '1 month';
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit.create_partitions(integer) IS
    'pg-audit: creates the monthly partitions of audit.event from this month to months_ahead ahead; returns those it created. Run it monthly (cron, pg_cron)';
REVOKE ALL ON FUNCTION audit.create_partitions(integer) FROM PUBLIC;

SELECT audit.create_partitions();

-- ---------------------------------------------------------------------------
-- Context: transaction-local settings audit.actor_id, audit.actor_name,
-- audit.ip, audit.user_agent, audit.request_id
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.set_context(
    actor_id text DEFAULT NULL, actor_name text DEFAULT NULL, ip text DEFAULT NULL,
    user_agent text DEFAULT NULL, request_id text DEFAULT NULL
) RETURNS void
LANGUAGE sql
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT pg_catalog.set_config('audit.actor_id', coalesce(actor_id, ''), true),
           pg_catalog.set_config('audit.actor_name', coalesce(actor_name, ''), true),
           pg_catalog.set_config('audit.ip', coalesce(ip, ''), true),
           pg_catalog.set_config('audit.user_agent', coalesce(user_agent, ''), true),
           pg_catalog.set_config('audit.request_id', coalesce(request_id, ''), true);
$$;
COMMENT ON FUNCTION audit.set_context(text, text, text, text, text) IS
    'pg-audit: sets all five context settings for the current transaction only (NULL clears one)';
REVOKE ALL ON FUNCTION audit.set_context(text, text, text, text, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.set_context(text, text, text, text, text) TO audit_writer;

-- An address as inet, or NULL when it does not parse. PostgreSQL 16 and later
-- check without raising; older servers pay for a subtransaction.
DO $parse_ip$
BEGIN
    IF current_setting('server_version_num')::int >= 160000 THEN
        -- PL/pgSQL, not SQL: PostgreSQL 18 plans SQL functions with the argument
        -- as a constant and folds raw::inet even in the branch CASE skips, so a
        -- bad address raised instead of giving NULL.
        CREATE FUNCTION audit.parse_ip(raw text) RETURNS inet
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
        AS 'BEGIN IF pg_catalog.pg_input_is_valid(raw, ''inet'') THEN RETURN raw::pg_catalog.inet; END IF; RETURN NULL; END';
    ELSE
        CREATE FUNCTION audit.parse_ip(raw text) RETURNS inet
        LANGUAGE plpgsql IMMUTABLE PARALLEL SAFE
        SET search_path = pg_catalog, pg_temp
        AS 'BEGIN RETURN raw::inet; EXCEPTION WHEN others THEN RETURN NULL; END';
    END IF;
END
$parse_ip$;
COMMENT ON FUNCTION audit.parse_ip(text) IS 'pg-audit: text as inet, or NULL when it is not an address';

-- The context as the triggers record it: '' is unset, values are cut to their
-- documented bounds, and an unparseable IP becomes NULL with the raw text
-- (cut to 100 characters) kept for the detail column. Never raises.
CREATE FUNCTION audit.current_context(
    OUT actor_id text, OUT actor_name text, OUT ip inet, OUT user_agent text,
    OUT request_id text, OUT ip_raw text
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    actor_id := left(nullif(current_setting('audit.actor_id', true), ''), 256);
    actor_name := left(nullif(current_setting('audit.actor_name', true), ''), 256);
    user_agent := left(nullif(current_setting('audit.user_agent', true), ''), 512);
    request_id := left(nullif(current_setting('audit.request_id', true), ''), 128);
    ip_raw := nullif(btrim(current_setting('audit.ip', true)), '');
    ip := audit.parse_ip(ip_raw);
    ip_raw := CASE WHEN ip IS NULL THEN left(ip_raw, 100) END;
END
$$;
COMMENT ON FUNCTION audit.current_context() IS
    'pg-audit: the context of this transaction as events record it (bounded; bad IP as NULL with ip_raw)';
REVOKE ALL ON FUNCTION audit.current_context() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.current_context() TO audit_writer, audit_reader;

-- ---------------------------------------------------------------------------
-- Writing single events
-- ---------------------------------------------------------------------------

-- The one path for events that are not row captures: application events,
-- tracking changes, admin actions. Not callable by anyone but the owner;
-- log_event is the public face.
CREATE FUNCTION audit.append_event(
    action text, actor_id text, actor_name text, detail jsonb, outcome text,
    table_name text DEFAULT NULL, row_key jsonb DEFAULT NULL,
    old_values jsonb DEFAULT NULL, new_values jsonb DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    ctx record;
    new_id bigint;
BEGIN
    IF action IS NULL OR action !~ '^[A-Z][A-Z0-9_]{0,62}$' THEN
        RAISE EXCEPTION 'pg-audit: action must be an upper-case verb of at most 63 characters, got %',
            coalesce(quote_literal(left(action, 80)), 'NULL')
            USING ERRCODE = 'invalid_parameter_value', HINT = 'For example LOGIN, LOGOUT or EXPORT_REPORT.';
    END IF;
    ctx := audit.current_context();
    IF ctx.ip_raw IS NOT NULL THEN
        detail := coalesce(detail, '{}'::jsonb) || jsonb_build_object('ip_raw', ctx.ip_raw);
    END IF;
    -- A caller's detail is kept up to 64 KiB; past that its head is kept, marked.
    IF octet_length(detail::text) > 65536 THEN
        detail := jsonb_build_object('truncated', true, 'original_bytes', octet_length(detail::text),
                                     'head', left(detail::text, 4096));
    END IF;
    INSERT INTO audit.event (action, outcome, actor_id, actor_name, ip, user_agent, request_id,
                             table_name, row_key, old_values, new_values, detail)
    VALUES (action, outcome,
            coalesce(left(nullif(append_event.actor_id, ''), 256), ctx.actor_id),
            coalesce(left(nullif(append_event.actor_name, ''), 256), ctx.actor_name),
            ctx.ip, ctx.user_agent, ctx.request_id,
            table_name, row_key, old_values, new_values, detail)
    RETURNING id INTO new_id;
    RETURN new_id;
END
$$;
COMMENT ON FUNCTION audit.append_event(text, text, text, jsonb, text, text, jsonb, jsonb, jsonb) IS
    'pg-audit: internal writer of one event with the current context; owner only (use audit.log_event)';
REVOKE ALL ON FUNCTION audit.append_event(text, text, text, jsonb, text, text, jsonb, jsonb, jsonb) FROM PUBLIC;

CREATE FUNCTION audit.log_event(
    action text, actor_id text DEFAULT NULL, actor_name text DEFAULT NULL,
    detail jsonb DEFAULT NULL, outcome text DEFAULT NULL
) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    -- Verbs that triggers write would be forgeable if applications could write them too.
    IF action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
       OR action LIKE 'ADMIN\_%' OR action LIKE 'TRACKING\_%' OR action = 'RETENTION' THEN
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
COMMENT ON FUNCTION audit.log_event(text, text, text, jsonb, text) IS
    'pg-audit: records an application event (LOGIN, LOGOUT, LOGIN_FAILED, or an own upper-case verb) with the current context; actor defaults to the context; returns the event id';
REVOKE ALL ON FUNCTION audit.log_event(text, text, text, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.log_event(text, text, text, jsonb, text) TO audit_writer;

-- ---------------------------------------------------------------------------
-- Capturing data changes
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.table_name(target regclass) RETURNS text
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT n.nspname || '.' || c.relname
    FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
    WHERE c.oid = target
$$;
COMMENT ON FUNCTION audit.table_name(regclass) IS
    'pg-audit: a table as audit.event.table_name spells it (schema.table, unquoted)';
GRANT EXECUTE ON FUNCTION audit.table_name(regclass) TO PUBLIC;

-- One statement-level trigger function for INSERT, UPDATE, DELETE and TRUNCATE
-- of every tracked table. TG_ARGV[0] is the excluded columns as a text[] literal.
--
-- UPDATE pairing. PostgreSQL appends the old and the new image of each updated
-- row to the two transition tables in the same step (AfterTriggerSaveEvent), so
-- the n-th row of audit_old and the n-th row of audit_new are one row before and
-- after, whether or not its key changed (SET id = 3 - id included). Pairing by
-- position needs no join, so no cached plan can turn it into a nested loop: the
-- statement costs the same after single-row writes as in a fresh session.
-- Both arrays have the same length except when a row moved to another partition
-- was dropped there by a BEFORE INSERT trigger; then rows are paired by key.
CREATE FUNCTION audit.capture() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
-- The transition tables carry the tracked table's columns, which may be named
-- like our variables (excluded, tbl, ...): the variables win.
#variable_conflict use_variable
DECLARE
    excluded text[] := TG_ARGV[0]::text[];
    -- A partition's triggers name the tracked table they belong to.
    tbl text := coalesce(TG_ARGV[1], TG_TABLE_SCHEMA || '.' || TG_TABLE_NAME);
    ctx record := audit.current_context();
    extra jsonb := CASE WHEN ctx.ip_raw IS NOT NULL THEN jsonb_build_object('ip_raw', ctx.ip_raw) END;
    -- row_key is the row minus every column outside the primary key, looked up
    -- per statement so that a new column or a changed key is picked up at once.
    -- (Here rather than in an SQL function: those are planned anew at each call.)
    non_key text[] := ARRAY(
        SELECT a.attname::text FROM pg_attribute a
        WHERE a.attrelid = TG_RELID AND a.attnum > 0 AND NOT a.attisdropped
          AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = TG_RELID AND i.indisprimary
                                                  AND a.attnum = ANY (i.indkey)));
BEGIN
    -- One INSERT per statement whatever the number of rows. OFFSET 0 keeps each
    -- row's to_jsonb() computed once. Whole rows are n.* and o.*: a bare n or o
    -- would be the column of that name when the tracked table has one.
    IF TG_OP = 'INSERT' THEN
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                 table_name, row_key, new_values, detail)
        SELECT 'INSERT', ctx.actor_id, ctx.actor_name, ctx.ip, ctx.user_agent, ctx.request_id,
               tbl, r - non_key, r - excluded, extra
        FROM (SELECT to_jsonb(n.*) AS r FROM audit_new n OFFSET 0) s;
    ELSIF TG_OP = 'UPDATE' THEN
      IF (SELECT count(*) FROM audit_old) = (SELECT count(*) FROM audit_new) THEN
        -- A changed column is one whose value differs; old and new values are
        -- each row minus its unchanged columns.
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                 table_name, row_key, old_values, new_values, detail)
        SELECT 'UPDATE', ctx.actor_id, ctx.actor_name, ctx.ip, ctx.user_agent, ctx.request_id,
               tbl, d.n - non_key, d.o - d.same, d.n - d.same, extra
        FROM (SELECT p.o, p.n,
                     ARRAY(SELECT e.key FROM jsonb_each(p.n) e WHERE (p.o -> e.key) = e.value) AS same
              FROM unnest(ARRAY(SELECT to_jsonb(o.*) - excluded FROM audit_old o),
                          ARRAY(SELECT to_jsonb(n.*) - excluded FROM audit_new n)) AS p(o, n)
              OFFSET 0) d
        WHERE d.n - d.same <> '{}';
      ELSE
        -- An old image without its new one: a row moved to another partition
        -- whose BEFORE INSERT trigger dropped it. Positions no longer pair, so
        -- pair by key; a row without a partner is recorded as what it became
        -- (DELETE, or INSERT), marked, rather than guessed into a wrong pair.
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                 table_name, row_key, old_values, new_values, detail)
        SELECT CASE WHEN d.n IS NULL THEN 'DELETE' WHEN d.o IS NULL THEN 'INSERT' ELSE 'UPDATE' END,
               ctx.actor_id, ctx.actor_name, ctx.ip, ctx.user_agent, ctx.request_id,
               tbl, coalesce(d.n, d.o) - non_key,
               CASE WHEN d.n IS NULL THEN d.o WHEN d.o IS NOT NULL THEN d.o - d.same END,
               CASE WHEN d.o IS NULL THEN d.n WHEN d.n IS NOT NULL THEN d.n - d.same END,
               CASE WHEN d.o IS NULL OR d.n IS NULL
                    THEN coalesce(extra, '{}') || '{"unpaired_update": true}' ELSE extra END
        FROM (SELECT o.r AS o, n.r AS n,
                     ARRAY(SELECT e.key FROM jsonb_each(n.r) e WHERE (o.r -> e.key) = e.value) AS same
              FROM (SELECT to_jsonb(x.*) - excluded AS r FROM audit_old x) o
              FULL JOIN (SELECT to_jsonb(y.*) - excluded AS r FROM audit_new y) n
                ON (o.r - non_key) = (n.r - non_key)
              OFFSET 0) d
        WHERE d.o IS NULL OR d.n IS NULL OR d.n - d.same <> '{}';
      END IF;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id,
                                 table_name, row_key, old_values, detail)
        SELECT 'DELETE', ctx.actor_id, ctx.actor_name, ctx.ip, ctx.user_agent, ctx.request_id,
               tbl, r - non_key, r - excluded, extra
        FROM (SELECT to_jsonb(o.*) AS r FROM audit_old o OFFSET 0) s;
    ELSE
        INSERT INTO audit.event (action, actor_id, actor_name, ip, user_agent, request_id, table_name, detail)
        VALUES ('TRUNCATE', ctx.actor_id, ctx.actor_name, ctx.ip, ctx.user_agent, ctx.request_id, tbl, extra);
    END IF;
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.capture() IS
    'pg-audit: statement-level trigger function recording INSERT, UPDATE (changed columns only), DELETE and TRUNCATE of a tracked table; argument: excluded columns';
REVOKE ALL ON FUNCTION audit.capture() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.capture() TO audit_writer;

CREATE VIEW audit.tracked_table AS
SELECT t.tgrelid::regclass AS table_oid,
       audit.table_name(t.tgrelid) AS table_name,
       -- The first NUL-terminated argument, decoded as text: encode(..., 'escape')
       -- doubles backslashes and broke on column names that have one.
       pg_catalog.convert_from(pg_catalog.substr(t.tgargs, 1, pg_catalog.position(t.tgargs, '\x00'::bytea) - 1),
                               pg_catalog.current_setting('server_encoding'))::text[] AS excluded_columns,
       t.tgenabled = 'A' AS enabled_always,
       EXISTS (SELECT FROM pg_catalog.pg_index i WHERE i.indrelid = t.tgrelid AND i.indisprimary) AS has_primary_key
FROM pg_catalog.pg_trigger t
WHERE t.tgname = 'audit_capture_update' AND t.tgnargs = 1;  -- partitions' copies have 2
COMMENT ON VIEW audit.tracked_table IS
    'pg-audit: tables whose changes are captured, with their excluded columns and whether the capture fires always';
GRANT SELECT ON audit.tracked_table TO audit_reader, audit_writer;

-- enable_tracking and disable_tracking run as the table owner (they create its
-- triggers), who may not write events; this definer records the state the
-- table is actually in, so the event cannot claim what did not happen.
CREATE FUNCTION audit.record_tracking(target regclass) RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    excluded text[];
BEGIN
    IF NOT pg_has_role(session_user, (SELECT relowner FROM pg_class WHERE oid = target), 'USAGE') THEN
        RAISE EXCEPTION 'pg-audit: only the owner of % may change its tracking', target
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    SELECT t.excluded_columns INTO excluded FROM audit.tracked_table t
    WHERE t.table_oid = target AND t.enabled_always;
    IF FOUND THEN
        RETURN audit.append_event('TRACKING_ENABLED', NULL, NULL,
                                  jsonb_build_object('exclude_columns', excluded), NULL,
                                  audit.table_name(target));
    END IF;
    RETURN audit.append_event('TRACKING_DISABLED', NULL, NULL, NULL, NULL, audit.table_name(target));
END
$$;
COMMENT ON FUNCTION audit.record_tracking(regclass) IS
    'pg-audit: internal; records TRACKING_ENABLED or TRACKING_DISABLED as the table now is (used by enable_tracking and disable_tracking)';
REVOKE ALL ON FUNCTION audit.record_tracking(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.record_tracking(regclass) TO audit_writer;

CREATE FUNCTION audit.enable_tracking(target regclass, exclude_columns text[] DEFAULT '{}')
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    kind "char";
    bad text;
    args text;
    op text;
    rel regclass;
    trigger_args text;
BEGIN
    SELECT relkind INTO kind FROM pg_class WHERE oid = target;
    IF kind NOT IN ('r', 'p') THEN
        RAISE EXCEPTION 'pg-audit: % is not a table', target USING ERRCODE = 'wrong_object_type';
    END IF;
    IF (SELECT relnamespace = 'audit'::regnamespace FROM pg_class WHERE oid = target) THEN
        RAISE EXCEPTION 'pg-audit: % belongs to the audit schema and cannot be tracked', target
            USING ERRCODE = 'invalid_parameter_value';
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
    args := (SELECT coalesce(array_agg(DISTINCT c ORDER BY c), '{}') FROM unnest(exclude_columns) c)::text;
    IF EXISTS (SELECT FROM audit.tracked_table WHERE table_oid = target
               AND excluded_columns = args::text[] AND enabled_always)
       AND (SELECT count(*) FROM pg_trigger WHERE tgrelid IN (SELECT target UNION SELECT relid FROM pg_partition_tree(target))
            AND tgname LIKE 'audit\_capture\_%' AND tgenabled = 'A')
           = 4 * (SELECT count(*) FROM (SELECT target UNION SELECT relid FROM pg_partition_tree(target)) r) THEN
        RETURN;  -- already tracked exactly so (partitions included)
    END IF;
    -- The DDL guard lets capture triggers change only while this is set.
    PERFORM set_config('audit.untracking', target::oid::text, true);
    -- Statement-level triggers of a partitioned table do not fire for a statement
    -- that names one of its partitions, so each partition gets its own, whose
    -- second argument names the tracked table its events belong to.
    FOR rel IN SELECT target UNION SELECT relid FROM pg_partition_tree(target) LOOP
        trigger_args := CASE WHEN rel = target THEN format('%L', args)
                             ELSE format('%L, %L', args, audit.table_name(target)) END;
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'audit_capture_' || op, rel);
        END LOOP;
        EXECUTE format('CREATE TRIGGER audit_capture_insert AFTER INSERT ON %s REFERENCING NEW TABLE AS audit_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', rel, trigger_args);
        EXECUTE format('CREATE TRIGGER audit_capture_update AFTER UPDATE ON %s '
                       'REFERENCING OLD TABLE AS audit_old NEW TABLE AS audit_new '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', rel, trigger_args);
        EXECUTE format('CREATE TRIGGER audit_capture_delete AFTER DELETE ON %s REFERENCING OLD TABLE AS audit_old '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', rel, trigger_args);
        EXECUTE format('CREATE TRIGGER audit_capture_truncate AFTER TRUNCATE ON %s '
                       'FOR EACH STATEMENT EXECUTE FUNCTION audit.capture(%s)', rel, trigger_args);
        -- One ALTER TABLE for all four, so the DDL guard never sees a half-enabled set.
        EXECUTE format('ALTER TABLE ONLY %s ENABLE ALWAYS TRIGGER audit_capture_insert, '
                       'ENABLE ALWAYS TRIGGER audit_capture_update, ENABLE ALWAYS TRIGGER audit_capture_delete, '
                       'ENABLE ALWAYS TRIGGER audit_capture_truncate', rel);
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('COMMENT ON TRIGGER %I ON %s IS %L', 'audit_capture_' || op, rel,
                           'pg-audit: records ' || upper(op) || ' in audit.event (audit.enable_tracking)');
        END LOOP;
    END LOOP;
    PERFORM set_config('audit.untracking', '', true);
    PERFORM audit.record_tracking(target);
END
$$;
COMMENT ON FUNCTION audit.enable_tracking(regclass, text[]) IS
    'pg-audit: captures INSERT, UPDATE, DELETE and TRUNCATE of a table with a primary key into audit.event; excluded columns never reach the log; idempotent; the caller must own the table';
REVOKE ALL ON FUNCTION audit.enable_tracking(regclass, text[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.enable_tracking(regclass, text[]) TO audit_writer;

CREATE FUNCTION audit.disable_tracking(target regclass) RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    op text;
    rel regclass;
BEGIN
    IF NOT EXISTS (SELECT FROM pg_trigger WHERE tgrelid IN (SELECT target UNION SELECT relid FROM pg_partition_tree(target))
                   AND tgname LIKE 'audit\_capture\_%') THEN
        RETURN;
    END IF;
    PERFORM set_config('audit.untracking', target::oid::text, true);
    FOR rel IN SELECT target UNION SELECT relid FROM pg_partition_tree(target) LOOP
        FOREACH op IN ARRAY ARRAY['insert', 'update', 'delete', 'truncate'] LOOP
            EXECUTE format('DROP TRIGGER IF EXISTS %I ON %s', 'audit_capture_' || op, rel);
        END LOOP;
    END LOOP;
    PERFORM set_config('audit.untracking', '', true);
    PERFORM audit.record_tracking(target);
END
$$;
COMMENT ON FUNCTION audit.disable_tracking(regclass) IS
    'pg-audit: stops capturing a table (its past events stay) and records TRACKING_DISABLED; the caller must own the table';
REVOKE ALL ON FUNCTION audit.disable_tracking(regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.disable_tracking(regclass) TO audit_writer;

-- ---------------------------------------------------------------------------
-- Reading
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.row_history(target regclass, row_key jsonb) RETURNS SETOF audit.event
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT e.* FROM audit.event e
    WHERE e.table_name = audit.table_name(target)
      AND (e.row_key = row_history.row_key
           OR (e.action = 'UPDATE' AND e.old_values @> row_history.row_key))
    ORDER BY e.id
$$;
COMMENT ON FUNCTION audit.row_history(regclass, jsonb) IS
    'pg-audit: every event of one row, oldest first, including the update that gave it a new key';
REVOKE ALL ON FUNCTION audit.row_history(regclass, jsonb) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.row_history(regclass, jsonb) TO audit_reader;

-- ---------------------------------------------------------------------------
-- DDL guard (attached by sql/guards.sql when the installer is a superuser)
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.guard_ddl() RETURNS event_trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    obj record;
    offender text;
BEGIN
    -- Superusers can do anything anyway; inside audit_owner's own functions
    -- (called by someone who is not an audit_owner member) DDL is ours.
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = session_user)
       OR (current_user = 'audit_owner' AND NOT pg_has_role(session_user, 'audit_owner', 'MEMBER')) THEN
        RETURN;
    END IF;
    IF TG_EVENT = 'ddl_command_start' THEN
        -- Only audit_owner members get here (nobody else owns what these
        -- commands could hit). DROP SCHEMA audit CASCADE or DROP FUNCTION
        -- audit.guard_ddl() CASCADE would drop the event triggers with the
        -- function, so sql_drop would never fire; a replaced guard_ddl would
        -- judge its own replacement. Refuse them before they run.
        IF pg_has_role(session_user, 'audit_owner', 'MEMBER') THEN
            offender := 'anything with ' || TG_TAG;
        END IF;
    ELSIF TG_EVENT = 'sql_drop' THEN
        FOR obj IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
            IF obj.schema_name = 'audit' THEN
                offender := obj.object_identity;
            ELSIF obj.object_type = 'trigger' AND obj.original
                  AND obj.address_names[3] LIKE 'audit\_capture\_%'
                  AND NOT coalesce(current_setting('audit.untracking', true) IN
                      (SELECT x.oid::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace,
                              LATERAL (SELECT c.oid UNION SELECT a.relid::oid FROM pg_partition_ancestors(c.oid) a) x(oid)
                       WHERE n.nspname = obj.address_names[1] AND c.relname = obj.address_names[2]), false) THEN
                offender := obj.object_identity;
            END IF;
            EXIT WHEN offender IS NOT NULL;
        END LOOP;
    ELSE
        FOR obj IN SELECT * FROM pg_event_trigger_ddl_commands() LOOP
            IF obj.command_tag IN ('GRANT', 'REVOKE', 'ALTER DEFAULT PRIVILEGES')
               AND pg_has_role(session_user, 'audit_owner', 'MEMBER') THEN
                -- These name no object here; an owner member could otherwise
                -- grant INSERT on the log or EXECUTE on append_event to anyone.
                offender := 'privileges with ' || obj.command_tag;
            ELSIF obj.schema_name = 'audit' THEN
                offender := obj.object_identity;
            ELSIF obj.classid IN ('pg_trigger'::regclass, 'pg_rewrite'::regclass)
                  AND obj.command_tag IN ('CREATE TRIGGER', 'CREATE RULE', 'ALTER TRIGGER', 'ALTER RULE')
                  AND EXISTS (SELECT FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid
                              WHERE t.oid = obj.objid AND c.relnamespace = 'audit'::regnamespace
                                AND obj.classid = 'pg_trigger'::regclass
                              UNION ALL
                              SELECT FROM pg_rewrite r JOIN pg_class c ON c.oid = r.ev_class
                              WHERE r.oid = obj.objid AND c.relnamespace = 'audit'::regnamespace
                                AND obj.classid = 'pg_rewrite'::regclass) THEN
                -- Triggers and rules have no schema of their own: a rule or a
                -- BEFORE trigger on the log could drop or rewrite events.
                offender := obj.object_identity;
            ELSIF obj.command_tag = 'ALTER TABLE' AND obj.classid = 'pg_class'::regclass THEN
                SELECT format('%s on %s', t.tgname, obj.object_identity) INTO offender
                FROM pg_trigger t
                WHERE t.tgrelid = obj.objid AND t.tgname LIKE 'audit\_capture\_%' AND t.tgenabled <> 'A'
                LIMIT 1;
                -- Events name rows by primary key: without one, row_key would be {}.
                IF offender IS NULL
                   AND EXISTS (SELECT FROM pg_trigger t WHERE t.tgrelid = obj.objid
                               AND t.tgname LIKE 'audit\_capture\_%')
                   AND NOT EXISTS (SELECT FROM pg_index i WHERE i.indrelid = obj.objid AND i.indisprimary) THEN
                    offender := 'the primary key of tracked table ' || obj.object_identity;
                END IF;
            ELSIF obj.classid = 'pg_trigger'::regclass THEN
                -- CREATE OR REPLACE TRIGGER and ALTER TRIGGER ... RENAME would
                -- otherwise repoint, re-argue or rename (then drop) a capture.
                SELECT format('%s on %s', t.tgname, t.tgrelid::regclass) INTO offender
                FROM pg_trigger t
                WHERE t.oid = obj.objid
                  AND (t.tgname LIKE 'audit\_capture\_%' OR t.tgfoid = 'audit.capture()'::regprocedure)
                  AND NOT coalesce(current_setting('audit.untracking', true) IN
                                   (SELECT t.tgrelid::text UNION
                                    SELECT a.relid::oid::text FROM pg_partition_ancestors(t.tgrelid) a), false);
            END IF;
            EXIT WHEN offender IS NOT NULL;
        END LOOP;
    END IF;
    IF offender IS NOT NULL THEN
        RAISE EXCEPTION 'pg-audit: % may not change %: audit objects and capture triggers are guarded',
            session_user, offender
            USING ERRCODE = 'insufficient_privilege',
                  HINT = 'Only a superuser may alter the audit schema; stop capturing a table with audit.disable_tracking().';
    END IF;
END
$$;
COMMENT ON FUNCTION audit.guard_ddl() IS
    'pg-audit: event trigger function refusing non-superuser DDL on the audit schema and on capture triggers';
REVOKE ALL ON FUNCTION audit.guard_ddl() FROM PUBLIC;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (1, 'core');
