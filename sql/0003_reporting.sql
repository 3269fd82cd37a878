-- sql/0003_reporting.sql: reporting views and investigation functions for
-- audit_reader, and the NOTIFY that lets `pg-audit tail` follow the log.
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.
--
-- Everything here reads audit.event only: a database without Django (no
-- auth_user) gets the same views, simply empty where they speak of Django.
-- Views and functions run with the caller's rights (audit_reader has SELECT on
-- audit.event); none of them is SECURITY DEFINER.

SET LOCAL ROLE audit_owner;

-- ---------------------------------------------------------------------------
-- Indexes. Each is partial, so an insert that does not match the predicate
-- pays only for evaluating it; the rows they hold (logins, privilege changes,
-- truncations) are a small share of the log.
-- ---------------------------------------------------------------------------

CREATE INDEX event_auth_idx ON audit.event (occurred_at)
    WHERE action IN ('LOGIN', 'LOGOUT', 'LOGIN_FAILED');
COMMENT ON INDEX audit.event_auth_idx IS
    'pg-audit: authentication events by time (audit.auth_events, audit.failed_login_bursts)';

-- UPDATEs of auth_user that touch neither flag (last_login on every login) stay out.
CREATE INDEX event_privilege_idx ON audit.event (occurred_at)
    WHERE table_name IN ('public.auth_user_groups', 'public.auth_user_user_permissions',
                         'public.auth_group_permissions')
       OR (table_name = 'public.auth_user'
           AND (action <> 'UPDATE' OR new_values ?| ARRAY['is_superuser', 'is_staff']));
COMMENT ON INDEX audit.event_privilege_idx IS
    'pg-audit: privilege-bearing events by time (audit.privilege_changes)';

CREATE INDEX event_truncate_idx ON audit.event (table_name, occurred_at)
    WHERE action = 'TRUNCATE';
COMMENT ON INDEX audit.event_truncate_idx IS
    'pg-audit: truncations of a table (audit.row_as_of: a TRUNCATE ends every row)';

-- ---------------------------------------------------------------------------
-- Authentication
-- ---------------------------------------------------------------------------

CREATE VIEW audit.auth_events AS
SELECT e.id AS event_id,
       e.occurred_at,
       e.action,
       e.outcome,
       e.actor_id,
       -- A failed login has no actor: the name that was tried is in detail.
       coalesce(e.actor_name, e.detail ->> 'username') AS user_name,
       e.ip,
       e.user_agent,
       e.request_id,
       e.db_role,
       e.detail
FROM audit.event e
WHERE e.action IN ('LOGIN', 'LOGOUT', 'LOGIN_FAILED');
COMMENT ON VIEW audit.auth_events IS
    'pg-audit: logins, logouts and failed logins with outcome, user (the attempted name for failures), IP and time; newest first: ORDER BY occurred_at DESC';
GRANT SELECT ON audit.auth_events TO audit_reader;

CREATE FUNCTION audit.failed_login_bursts(
    threshold integer DEFAULT 5,
    "window" interval DEFAULT '10 minutes',
    since timestamptz DEFAULT now() - interval '1 day',
    "until" timestamptz DEFAULT NULL  -- NULL: up to now
) RETURNS TABLE (
    subject_kind text,          -- 'user' or 'ip'
    subject text,               -- the user name tried, or the client address
    max_in_window bigint,       -- most failures inside one window
    failures bigint,            -- all failures of the subject since "since"
    first_failure timestamptz,
    last_failure timestamptz,
    other_subjects text[]       -- for a user the addresses used, for an address the names tried
)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    WITH f AS (
        SELECT e.occurred_at, coalesce(e.actor_name, e.detail ->> 'username', e.actor_id) AS user_name,
               pg_catalog.host(e.ip) AS ip
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
    ORDER BY max(w.n) DESC, w.kind DESC, w.subject
$$;
COMMENT ON FUNCTION audit.failed_login_bursts(integer, interval, timestamptz, timestamptz) IS
    'pg-audit: user names and client addresses with at least threshold failed logins within one window between since and until (defaults: 5 in 10 minutes, the last day)';
REVOKE ALL ON FUNCTION audit.failed_login_bursts(integer, interval, timestamptz, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.failed_login_bursts(integer, interval, timestamptz, timestamptz) TO audit_reader;

CREATE VIEW audit.recent_failed_login_bursts AS
SELECT * FROM audit.failed_login_bursts();
COMMENT ON VIEW audit.recent_failed_login_bursts IS
    'pg-audit: audit.failed_login_bursts() with its defaults: 5 or more failures within 10 minutes during the last day, by user name and by address';
GRANT SELECT ON audit.recent_failed_login_bursts TO audit_reader;

-- ---------------------------------------------------------------------------
-- Privilege changes (Django's auth tables, when they are tracked)
-- ---------------------------------------------------------------------------

CREATE VIEW audit.privilege_changes AS
SELECT e.id AS event_id,
       e.occurred_at,
       p.privilege,            -- superuser, staff, group or permission
       p.change,               -- granted or revoked
       p.grantee_kind,         -- user or group
       p.grantee_id,           -- auth_user.id or auth_group.id; NULL for a TRUNCATE (everyone)
       p.object_id,            -- auth_group.id or auth_permission.id granted or revoked
       e.actor_id,
       e.actor_name,
       e.ip,
       e.db_role,
       e.request_id,
       e.table_name,
       e.action
FROM audit.event e
CROSS JOIN LATERAL (
    SELECT f.privilege,
           CASE WHEN e.action <> 'DELETE' AND (e.new_values ->> f.col)::boolean
                THEN 'granted' ELSE 'revoked' END AS change,
           'user' AS grantee_kind,
           e.row_key ->> 'id' AS grantee_id,
           NULL::text AS object_id
    FROM (VALUES ('is_superuser', 'superuser'), ('is_staff', 'staff')) AS f(col, privilege)
    WHERE e.table_name = 'public.auth_user'
      AND CASE e.action
              WHEN 'UPDATE' THEN e.new_values ? f.col
              WHEN 'INSERT' THEN coalesce((e.new_values ->> f.col)::boolean, false)
              WHEN 'DELETE' THEN coalesce((e.old_values ->> f.col)::boolean, false)
              ELSE false
          END
    UNION ALL
    SELECT CASE e.table_name WHEN 'public.auth_user_groups' THEN 'group' ELSE 'permission' END,
           CASE e.action WHEN 'INSERT' THEN 'granted' WHEN 'DELETE' THEN 'revoked'
                         WHEN 'TRUNCATE' THEN 'revoked' ELSE 'changed' END,
           CASE e.table_name WHEN 'public.auth_group_permissions' THEN 'group' ELSE 'user' END,
           coalesce(e.new_values, e.old_values)
               ->> CASE e.table_name WHEN 'public.auth_group_permissions' THEN 'group_id' ELSE 'user_id' END,
           coalesce(e.new_values, e.old_values)
               ->> CASE e.table_name WHEN 'public.auth_user_groups' THEN 'group_id' ELSE 'permission_id' END
    WHERE e.table_name <> 'public.auth_user' AND e.action IN ('INSERT', 'UPDATE', 'DELETE', 'TRUNCATE')
) p
-- The predicate of audit.event_privilege_idx, word for word, so the planner uses it.
WHERE e.table_name IN ('public.auth_user_groups', 'public.auth_user_user_permissions',
                       'public.auth_group_permissions')
   OR (e.table_name = 'public.auth_user'
       AND (e.action <> 'UPDATE' OR e.new_values ?| ARRAY['is_superuser', 'is_staff']));
COMMENT ON VIEW audit.privilege_changes IS
    'pg-audit: superuser and staff flags, group memberships and permissions granted or revoked (Django auth tables in schema public, tracked): to whom, by whom, when, from where';
GRANT SELECT ON audit.privilege_changes TO audit_reader;

-- ---------------------------------------------------------------------------
-- Data changes, one row per column
-- ---------------------------------------------------------------------------

CREATE VIEW audit.column_changes AS
SELECT e.id AS event_id,
       e.occurred_at,
       e.action,
       e.table_name,
       e.row_key,
       c.column_name,
       e.old_values -> c.column_name AS old_value,          -- NULL for INSERT
       e.new_values -> c.column_name AS new_value,          -- NULL for DELETE
       e.old_values ->> c.column_name AS old_text,
       e.new_values ->> c.column_name AS new_text,
       e.actor_id,
       e.actor_name,
       e.ip,
       e.db_role,
       e.request_id,
       e.txid
FROM audit.event e
CROSS JOIN LATERAL (
    SELECT jsonb_object_keys(coalesce(e.old_values, '{}')) AS column_name
    UNION
    SELECT jsonb_object_keys(coalesce(e.new_values, '{}'))
) c
WHERE e.table_name IS NOT NULL AND e.action IN ('INSERT', 'UPDATE', 'DELETE');
COMMENT ON VIEW audit.column_changes IS
    'pg-audit: data changes of tracked tables, one row per changed column (INSERT: every column, old NULL; DELETE: every column, new NULL); excluded columns never appear';
GRANT SELECT ON audit.column_changes TO audit_reader;

-- ---------------------------------------------------------------------------
-- Investigation functions
-- ---------------------------------------------------------------------------

-- The key a row had before an UPDATE that changed it: the event's key with the
-- old values of its columns; NULL when the key did not change.
CREATE FUNCTION audit.previous_key(row_key jsonb, old_values jsonb) RETURNS jsonb
LANGUAGE sql IMMUTABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT CASE WHEN prev IS DISTINCT FROM previous_key.row_key THEN prev END
    FROM (SELECT pg_catalog.jsonb_object_agg(k, coalesce(previous_key.old_values -> k, previous_key.row_key -> k)) AS prev
          FROM pg_catalog.jsonb_object_keys(previous_key.row_key) AS k) s
$$;
COMMENT ON FUNCTION audit.previous_key(jsonb, jsonb) IS
    'pg-audit: the primary key a row had before an UPDATE event (row_key, old_values), or NULL when that update kept the key';
GRANT EXECUTE ON FUNCTION audit.previous_key(jsonb, jsonb) TO audit_reader;

CREATE FUNCTION audit.last_change(target regclass, row_key jsonb, column_name text)
RETURNS TABLE (
    event_id bigint, occurred_at timestamptz, action text, old_value jsonb, new_value jsonb,
    actor_id text, actor_name text, ip inet, db_role text, request_id text
)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key jsonb := last_change.row_key;
    col text := last_change.column_name;
    tbl text := audit.table_name(target);
    high bigint := NULL;
    older_key jsonb;
    ev audit.event;
    hops integer := 0;
BEGIN
    -- Newest first through the row's events; at the UPDATE that gave the row
    -- its key, carry on with the key it had before. The events of one key
    -- are audit.row_history's first half, read here through the
    -- (table_name, row_key) index; its second half (updates that moved a key
    -- away) is never needed walking backwards.
    WHILE key IS NOT NULL AND hops < 100 LOOP
        hops := hops + 1;
        older_key := NULL;
        FOR ev IN SELECT * FROM audit.event h
                  WHERE h.table_name = tbl AND h.row_key = key AND (high IS NULL OR h.id < high)
                  ORDER BY h.id DESC LOOP
            IF ev.old_values ? col OR ev.new_values ? col THEN
                RETURN QUERY SELECT ev.id, ev.occurred_at, ev.action, ev.old_values -> col,
                                    ev.new_values -> col, ev.actor_id, ev.actor_name, ev.ip,
                                    ev.db_role, ev.request_id;
                RETURN;
            END IF;
            EXIT WHEN ev.action = 'INSERT';
            IF ev.action = 'UPDATE' THEN
                older_key := audit.previous_key(ev.row_key, ev.old_values);
                IF older_key IS NOT NULL THEN
                    high := ev.id;
                    EXIT;
                END IF;
            END IF;
        END LOOP;
        key := older_key;
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit.last_change(regclass, jsonb, text) IS
    'pg-audit: the newest event that set a column of one row (by primary key, following key changes): when, who, from where, old and new value; no row when never recorded';
REVOKE ALL ON FUNCTION audit.last_change(regclass, jsonb, text) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.last_change(regclass, jsonb, text) TO audit_reader;

CREATE FUNCTION audit.row_as_of(target regclass, row_key jsonb, "at" timestamptz)
RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    key jsonb := row_as_of.row_key;
    tbl text := audit.table_name(target);
    high bigint := NULL;
    keys jsonb[] := ARRAY[]::jsonb[];
    lows bigint[] := ARRAY[]::bigint[];
    highs bigint[] := ARRAY[]::bigint[];
    start audit.event;
    state jsonb := NULL;
    last_id bigint;
    last_at timestamptz;
    ev record;
BEGIN
    -- Walk back through the keys the row had: for each, the newest event that
    -- began it (its INSERT, or the UPDATE that gave it this key) before "at".
    LOOP
        SELECT * INTO start FROM audit.event h
        WHERE h.table_name = tbl AND h.row_key = key AND h.occurred_at <= row_as_of."at" AND (high IS NULL OR h.id < high)
          AND (h.action = 'INSERT'
               OR (h.action = 'UPDATE' AND audit.previous_key(h.row_key, h.old_values) IS NOT NULL))
        ORDER BY h.id DESC LIMIT 1;
        keys := keys || key;
        lows := lows || start.id;
        highs := highs || high;
        EXIT WHEN start.id IS NULL OR start.action = 'INSERT' OR cardinality(keys) >= 100;
        high := start.id;
        key := audit.previous_key(start.row_key, start.old_values);
    END LOOP;
    -- Replay, oldest key first, each key's events from its beginning up to the
    -- rename. A TRUNCATE of the table ends every row.
    FOR i IN REVERSE cardinality(keys)..1 LOOP
        FOR ev IN
            SELECT h.id, h.occurred_at, h.action, h.row_key, h.new_values
            FROM audit.event h
            WHERE h.table_name = tbl AND h.row_key = keys[i] AND h.occurred_at <= row_as_of."at"
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
    -- before "at"? Such an event carries the new key, so only its old values
    -- name ours: this reads the table's updates of that time span (BRIN on
    -- occurred_at), the one part of the replay not bounded by the row's own events.
    IF state IS NOT NULL AND EXISTS (
        SELECT FROM audit.event m
        WHERE m.table_name = tbl AND m.action = 'UPDATE' AND m.row_key <> row_as_of.row_key
          AND m.old_values @> row_as_of.row_key
          AND m.id > last_id AND m.occurred_at >= last_at AND m.occurred_at <= row_as_of."at") THEN
        state := NULL;
    END IF;
    RETURN state;
END
$$;
COMMENT ON FUNCTION audit.row_as_of(regclass, jsonb, timestamptz) IS
    'pg-audit: a row as it was at a time, replayed from its events (following key changes) as jsonb; NULL when it did not exist; excluded columns absent, and without its INSERT only the key and changed columns';
REVOKE ALL ON FUNCTION audit.row_as_of(regclass, jsonb, timestamptz) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.row_as_of(regclass, jsonb, timestamptz) TO audit_reader;

-- ---------------------------------------------------------------------------
-- NOTIFY for followers (pg-audit tail)
-- ---------------------------------------------------------------------------

-- Live tail: one notification per writing transaction (pg_notify folds equal
-- payloads), created DISABLED. A transaction that notifies takes a
-- cluster-wide lock on the notification queue at commit, so committing writers
-- queue behind each other: with 4 writers and synchronous_commit on it kept
-- 0.62 of the throughput (measured). pg-audit tail polls the primary key once a
-- second without it; a superuser who wants instant wake-ups runs
--   ALTER TABLE audit.event ENABLE ALWAYS TRIGGER audit_notify;
CREATE FUNCTION audit.notify_event() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    PERFORM pg_catalog.pg_notify('audit_event', '');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.notify_event() IS
    'pg-audit: statement trigger function on audit.event: pg_notify(''audit_event'') so pg-audit tail wakes at once';
REVOKE ALL ON FUNCTION audit.notify_event() FROM PUBLIC;

CREATE TRIGGER audit_notify AFTER INSERT ON audit.event
    FOR EACH STATEMENT EXECUTE FUNCTION audit.notify_event();
ALTER TABLE audit.event DISABLE TRIGGER audit_notify;
COMMENT ON TRIGGER audit_notify ON audit.event IS
    'pg-audit: off by default (it serialises commits); when enabled, wakes pg-audit tail on channel audit_event once per writing transaction';

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (3, 'reporting');
