-- sql/0004_retention.sql: monthly partition maintenance, retention and sealing (issue 5).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.
--
-- Three pieces, all owned by audit_owner:
--   * seals: audit.seal() hashes the events of finished transactions into
--     batches chained by hash (audit.seal); audit.verify() recomputes them.
--     Writers never wait for a seal: they only insert, as before.
--   * maintenance: audit.maintain() moves strays out of audit.event_default
--     and creates partitions ahead.
--   * retention: audit.retire_partition() is the only way a partition leaves,
--     and only with the manifest hash of an archive of its sealed content.

SET LOCAL ROLE audit_owner;

-- ---------------------------------------------------------------------------
-- Canonical form of an event
-- ---------------------------------------------------------------------------

-- A jsonb array of every column in a fixed order, led by the format version:
-- JSON string escaping means no value can imitate a separator, and jsonb text
-- is deterministic (fixed spacing, jsonb values with sorted keys). Timestamps go
-- in as UTC timestamp without time zone, which JSON encodes in one ISO 8601
-- form whatever the session's TimeZone and DateStyle. An array, not an object:
-- building a 19-key object cost four times as much per event. The order is
-- frozen: a later column gets a new format version, or old seals would stop
-- verifying.
--
-- No SET clause on these two, unlike the definers: a function with SET is never
-- inlined, and the call per row dominated the cost of a seal. They run as the
-- caller and name only pg_catalog objects, which come first on every search_path.
CREATE FUNCTION audit.utc_text(t timestamptz) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$ SELECT pg_catalog.to_jsonb(t AT TIME ZONE 'UTC') #>> '{}' $$;
COMMENT ON FUNCTION audit.utc_text(timestamptz) IS
    'pg-audit: a timestamp as UTC ISO 8601 text (2026-11-27T06:19:55.320678), independent of TimeZone and DateStyle';

CREATE FUNCTION audit.event_canonical(e audit.event) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT pg_catalog.jsonb_build_array(
        1,                                  -- format version
        e.id,
        e.occurred_at AT TIME ZONE 'UTC',
        e.tx_started_at AT TIME ZONE 'UTC',
        e.action,
        e.outcome,
        e.actor_id,
        e.actor_name,
        e.ip::text,
        e.user_agent,
        e.request_id,
        e.db_role,
        e.application_name,
        e.table_name,
        e.row_key,
        e.old_values,
        e.new_values,
        e.detail,
        e.txid::text)::text
$$;
COMMENT ON FUNCTION audit.event_canonical(audit.event) IS
    'pg-audit: the canonical text of an event: jsonb array [1, id, occurred_at, tx_started_at, action, outcome, actor_id, actor_name, ip, user_agent, request_id, db_role, application_name, table_name, row_key, old_values, new_values, detail, txid], UTC timestamps; what seals hash and archives hold, one per line';
GRANT EXECUTE ON FUNCTION audit.event_canonical(audit.event) TO audit_reader, audit_writer;

-- Seals select events by transaction id, every second or minute. A btree, not
-- a BRIN: BRIN cannot narrow the not-yet-summarised tail of a partition, which
-- is exactly where new events are, so each seal would rescan everything since
-- the last vacuum (measured: 100-200 ms per seal). Appending to the right edge
-- of a btree costs each insert little (docs/benchmarks.md).
CREATE INDEX event_txid_idx ON audit.event (txid);
COMMENT ON INDEX audit.event_txid_idx IS 'pg-audit: events of a range of transactions (audit.seal, audit.verify)';

-- ---------------------------------------------------------------------------
-- Seals
-- ---------------------------------------------------------------------------

CREATE TABLE audit.seal (
    batch        bigint      PRIMARY KEY,                               -- 1, 2, 3, ... without gaps
    sealed_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    from_xid     bigint      NOT NULL,                                  -- events of transactions >= from_xid
    to_xid       bigint      NOT NULL,                                  -- ... and < to_xid, all finished when sealed
    event_count  bigint      NOT NULL,
    event_ids    bigint[]    NOT NULL,                                  -- sealed events, ordered by (id, occurred_at)
    event_times  timestamptz[] NOT NULL,                                -- their occurred_at, same order
    row_hashes   bytea       NOT NULL,                                  -- sha256 of each canonical form, 32 bytes each
    prev_hash    bytea       NOT NULL,                                  -- hash of batch - 1 (32 zero bytes for batch 1)
    hash         bytea       NOT NULL,                                  -- see audit.seal_hash()
    sealed_by    text        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE audit.seal IS
    'pg-audit: hash-chained batches of sealed events (audit.seal); append-only; audit.verify() recomputes them';
COMMENT ON INDEX audit.seal_pkey IS 'pg-audit: one row per batch number';
SELECT audit.protect_table('audit.seal');
GRANT SELECT ON audit.seal TO audit_reader;

CREATE FUNCTION audit.seal_hash(
    batch bigint, from_xid bigint, to_xid bigint, event_count bigint,
    event_ids bigint[], event_times timestamptz[], row_hashes bytea, prev_hash bytea
) RETURNS bytea
LANGUAGE sql STABLE PARALLEL SAFE
SET search_path = pg_catalog, pg_temp
AS $$
    -- Numbers and hex cannot contain '|'; variable-length parts enter as digests.
    SELECT pg_catalog.sha256(
        pg_catalog.convert_to(pg_catalog.format('pg-audit-seal/1|%s|%s|%s|%s|', batch, from_xid, to_xid, event_count), 'UTF8')
        || prev_hash
        || pg_catalog.sha256(row_hashes)
        || pg_catalog.sha256(pg_catalog.convert_to(event_ids::text, 'UTF8'))
        || pg_catalog.sha256(pg_catalog.convert_to(
               (SELECT coalesce(pg_catalog.jsonb_agg(t AT TIME ZONE 'UTC' ORDER BY o), '[]')::text
                FROM unnest(event_times) WITH ORDINALITY AS u(t, o)), 'UTF8')))
$$;
COMMENT ON FUNCTION audit.seal_hash(bigint, bigint, bigint, bigint, bigint[], timestamptz[], bytea, bytea) IS
    'pg-audit: the hash of one seal batch from its contents and the previous batch hash';

CREATE FUNCTION audit.seal() RETURNS bigint
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    last audit.seal;
    lo bigint;
    bound bigint;
    new_batch bigint;
    n bigint;
    ids bigint[];
    times timestamptz[];
    hashes bytea;
    prev bytea;
BEGIN
    -- A subscriber's seals come from its publisher, whose transaction ids these
    -- are; sealing here would fork the chain and break replication.
    IF EXISTS (SELECT FROM pg_subscription_rel WHERE srrelid = 'audit.seal'::regclass) THEN
        RAISE EXCEPTION 'pg-audit: audit.seal is replicated into this database; seal on the publisher'
            USING ERRCODE = 'object_not_in_prerequisite_state';
    END IF;
    -- Only seals wait for each other; writers never take this lock.
    PERFORM pg_advisory_xact_lock(hashtext('pg_audit.seal'));
    SELECT * INTO last FROM audit.seal s ORDER BY s.batch DESC LIMIT 1;
    lo := coalesce(last.to_xid, 0);
    -- Every transaction below xmin has finished, and none can start below it:
    -- their events are final. Later statements see them all.
    bound := pg_snapshot_xmin(pg_current_snapshot())::text::bigint;
    IF bound <= lo THEN
        RETURN NULL;
    END IF;
    SELECT count(*),
           coalesce(array_agg(e.id ORDER BY e.id, e.occurred_at), '{}'),
           coalesce(array_agg(e.occurred_at ORDER BY e.id, e.occurred_at), '{}'),
           coalesce(string_agg(sha256(convert_to(audit.event_canonical(e), 'UTF8')), ''::bytea
                               ORDER BY e.id, e.occurred_at), ''::bytea)
      INTO n, ids, times, hashes
      FROM audit.event e
     WHERE e.txid >= lo::text::xid8 AND e.txid < bound::text::xid8;
    IF n = 0 THEN
        RETURN NULL;  -- no empty batches: the next seal starts from the same lo
    END IF;
    new_batch := coalesce(last.batch, 0) + 1;
    prev := coalesce(last.hash, '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea);
    INSERT INTO audit.seal (batch, from_xid, to_xid, event_count, event_ids, event_times, row_hashes, prev_hash, hash)
    VALUES (new_batch, lo, bound, n, ids, times, hashes, prev,
            audit.seal_hash(new_batch, lo, bound, n, ids, times, hashes, prev));
    RETURN new_batch;
END
$$;
COMMENT ON FUNCTION audit.seal() IS
    'pg-audit: seals the events of all finished transactions not sealed yet into one hash-chained batch; returns its number, or NULL when there was nothing to seal. Run every minute (cron, pg_cron, pg-audit seal)';
REVOKE ALL ON FUNCTION audit.seal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.seal() TO audit_writer;

CREATE FUNCTION audit.newest_seal(OUT batch bigint, OUT hash text, OUT to_xid bigint, OUT sealed_at timestamptz)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT s.batch, pg_catalog.encode(s.hash, 'hex'), s.to_xid, s.sealed_at
    FROM audit.seal s ORDER BY s.batch DESC LIMIT 1
$$;
COMMENT ON FUNCTION audit.newest_seal() IS
    'pg-audit: the newest seal batch and its hash (hex); keep the hash outside the database and check it with audit.verify(expect_hash)';
GRANT EXECUTE ON FUNCTION audit.newest_seal() TO audit_reader, audit_writer;

-- ---------------------------------------------------------------------------
-- Retention bookkeeping (needed by verify: retired events are not "deleted")
-- ---------------------------------------------------------------------------

CREATE TABLE audit.retention_policy (
    singleton    boolean     PRIMARY KEY DEFAULT true CHECK (singleton),
    keep_months  integer     NOT NULL DEFAULT 12 CHECK (keep_months BETWEEN 3 AND 1200),  -- this month and the keep_months - 1 before
    changed_at   timestamptz NOT NULL DEFAULT pg_catalog.now(),
    changed_by   text        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE audit.retention_policy IS
    'pg-audit: how many months of events stay in audit.event (at least 3: PCI DSS 10.5.1); change it with audit.set_retention()';
COMMENT ON INDEX audit.retention_policy_pkey IS 'pg-audit: the policy is a single row';
INSERT INTO audit.retention_policy DEFAULT VALUES;
GRANT SELECT ON audit.retention_policy TO audit_reader;

CREATE TABLE audit.retired (
    partition        text        PRIMARY KEY,
    range_from       timestamptz NOT NULL,
    range_to         timestamptz NOT NULL,
    row_count        bigint      NOT NULL,
    first_id         bigint,
    last_id          bigint,
    content_sha256   text        NOT NULL,
    manifest_sha256  text        NOT NULL,          -- sha256 of the archive manifest text
    retired_at       timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
    retired_by       text        NOT NULL DEFAULT session_user
);
COMMENT ON TABLE audit.retired IS
    'pg-audit: partitions that left through audit.retire_partition(), with their archive manifest hash; append-only';
COMMENT ON INDEX audit.retired_pkey IS 'pg-audit: a partition is retired once';
SELECT audit.protect_table('audit.retired');
GRANT SELECT ON audit.retired TO audit_reader;

-- ---------------------------------------------------------------------------
-- Verification
-- ---------------------------------------------------------------------------

CREATE FUNCTION audit.verify_batch(target_batch bigint)
RETURNS TABLE (batch bigint, event_id bigint, problem text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    s audit.seal;
    p audit.seal;
    zero bytea := '\x0000000000000000000000000000000000000000000000000000000000000000'::bytea;
BEGIN
    batch := target_batch;
    SELECT * INTO s FROM audit.seal x WHERE x.batch = target_batch;
    IF NOT FOUND THEN
        problem := format('seal batch %s is missing', target_batch);
        RETURN NEXT;
        RETURN;
    END IF;
    IF target_batch > 1 THEN
        SELECT * INTO p FROM audit.seal x WHERE x.batch = target_batch - 1;
    END IF;
    IF s.prev_hash IS DISTINCT FROM coalesce(p.hash, zero) THEN
        problem := format('seal chain broken: prev_hash of batch %s is not the hash of batch %s',
                          target_batch, target_batch - 1);
        RETURN NEXT;
    END IF;
    IF s.from_xid IS DISTINCT FROM coalesce(p.to_xid, 0) OR s.to_xid <= s.from_xid THEN
        problem := format('seal batch %s covers transactions [%s, %s), not following batch %s',
                          target_batch, s.from_xid, s.to_xid, target_batch - 1);
        RETURN NEXT;
    END IF;
    IF s.hash IS DISTINCT FROM audit.seal_hash(s.batch, s.from_xid, s.to_xid, s.event_count, s.event_ids,
                                               s.event_times, s.row_hashes, s.prev_hash)
       OR s.event_count <> cardinality(s.event_ids) OR s.event_count <> cardinality(s.event_times)
       OR s.event_count * 32 <> length(s.row_hashes) THEN
        problem := format('seal batch %s was rewritten: its hash does not match its contents', target_batch);
        RETURN NEXT;
    END IF;
    RETURN QUERY
    WITH sealed AS (
        SELECT u.id, u.t, substring(s.row_hashes FROM ((u.o - 1) * 32 + 1)::int FOR 32) AS h
        FROM unnest(s.event_ids, s.event_times) WITH ORDINALITY AS u(id, t, o)
    ), current AS (
        SELECT e.id, e.occurred_at AS t, sha256(convert_to(audit.event_canonical(e), 'UTF8')) AS h
        FROM audit.event e
        WHERE e.txid >= s.from_xid::text::xid8 AND e.txid < s.to_xid::text::xid8
    )
    SELECT target_batch, coalesce(c.id, x.id),
           CASE WHEN c.id IS NULL THEN format('event %s was deleted', x.id)
                WHEN x.id IS NULL THEN format('event %s was inserted after sealing', c.id)
                ELSE format('event %s was changed', c.id) END
    FROM sealed x FULL JOIN current c ON c.id = x.id AND c.t = x.t
    -- A missing event is excused only inside a retired range whose partition is
    -- really gone: a forged audit.retired row cannot hide a deletion from a live one.
    WHERE (c.id IS NULL AND NOT EXISTS (SELECT FROM audit.retired r
                                        WHERE x.t >= r.range_from AND x.t < r.range_to
                                          AND to_regclass(r.partition) IS NULL))
       OR x.id IS NULL
       OR c.h <> x.h
    ORDER BY coalesce(c.id, x.id);
END
$$;
COMMENT ON FUNCTION audit.verify_batch(bigint) IS
    'pg-audit: recomputes one seal batch: its chain link, its own hash, and each event (changed, deleted, inserted); no rows means intact';
GRANT EXECUTE ON FUNCTION audit.verify_batch(bigint) TO audit_reader;

CREATE FUNCTION audit.verify(expect_hash text DEFAULT NULL)
RETURNS TABLE (ok boolean, batches bigint, events bigint, batch bigint, event_id bigint, problem text,
               newest_hash text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newest bigint;
    found_problem record;
BEGIN
    ok := true;
    batches := 0;
    events := 0;
    SELECT max(x.batch), encode((array_agg(x.hash ORDER BY x.batch DESC))[1], 'hex')
      INTO newest, newest_hash FROM audit.seal x;
    -- By number, not by the rows present, so a deleted seal row shows as missing.
    FOR b IN 1..coalesce(newest, 0) LOOP
        SELECT * INTO found_problem FROM audit.verify_batch(b) v LIMIT 1;
        IF FOUND THEN
            ok := false;
            batch := found_problem.batch;
            event_id := found_problem.event_id;
            problem := found_problem.problem;
            RETURN NEXT;
            RETURN;
        END IF;
        batches := batches + 1;
        events := events + (SELECT x.event_count FROM audit.seal x WHERE x.batch = b);
    END LOOP;
    IF expect_hash IS NOT NULL
       AND NOT EXISTS (SELECT FROM audit.seal x WHERE encode(x.hash, 'hex') = lower(btrim(expect_hash))) THEN
        ok := false;
        problem := 'the expected seal hash is not in the seal chain: the chain was rewritten or cut back';
    END IF;
    RETURN NEXT;
END
$$;
COMMENT ON FUNCTION audit.verify(text) IS
    'pg-audit: recomputes every seal batch and reports the first problem (batch, event, what); with expect_hash, also checks that an externally kept seal hash is still in the chain';
GRANT EXECUTE ON FUNCTION audit.verify(text) TO audit_reader;

-- ---------------------------------------------------------------------------
-- Partitions
-- ---------------------------------------------------------------------------

CREATE VIEW audit.event_partition AS
SELECT c.oid::regclass AS partition,
       (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'FROM \(''([^'']+)''\)'))[1]::timestamptz AS range_from,
       (regexp_match(pg_catalog.pg_get_expr(c.relpartbound, c.oid), 'TO \(''([^'']+)''\)'))[1]::timestamptz AS range_to,
       pg_catalog.pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT' AS is_default
FROM pg_catalog.pg_inherits i JOIN pg_catalog.pg_class c ON c.oid = i.inhrelid
WHERE i.inhparent = 'audit.event'::regclass;
COMMENT ON VIEW audit.event_partition IS 'pg-audit: the partitions of audit.event with their time ranges';
GRANT SELECT ON audit.event_partition TO audit_reader;

CREATE FUNCTION audit.expired_partitions() RETURNS SETOF regclass
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT p.partition FROM audit.event_partition p, audit.retention_policy r
    WHERE NOT p.is_default
      AND p.range_to <= pg_catalog.date_trunc('month', pg_catalog.now()
                                              - pg_catalog.make_interval(months => r.keep_months - 1))
    ORDER BY p.range_from
$$;
COMMENT ON FUNCTION audit.expired_partitions() IS
    'pg-audit: monthly partitions older than the retention policy keeps, oldest first';
GRANT EXECUTE ON FUNCTION audit.expired_partitions() TO audit_reader;

-- Strays: with no partition for their month, events land in audit.event_default.
-- Moving them is the one place rows leave a protected table, so it is narrow:
-- in one transaction, holding ACCESS EXCLUSIVE on the log (inserts wait, nobody
-- sees a middle state), detach the default partition (PostgreSQL drops its
-- cloned row trigger), copy the month's rows unchanged (same id, times, txid:
-- their seals still verify) into a new table, delete exactly as many from the
-- detached default, attach the new table as the month's partition, reattach the
-- default and re-protect both. A count mismatch aborts everything. No path
-- deletes from an attached partition.
CREATE FUNCTION audit.maintain(months_ahead integer DEFAULT 3)
RETURNS TABLE (operation text, partition text, row_count bigint)
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    month_start date;
    part_name text;
    moved bigint;
    removed bigint;
    created regclass;
    strays jsonb := '[]';
BEGIN
    IF EXISTS (SELECT FROM audit.event_default) THEN
        LOCK TABLE audit.event IN ACCESS EXCLUSIVE MODE;
        ALTER TABLE audit.event DETACH PARTITION audit.event_default;
        IF EXISTS (SELECT FROM pg_trigger WHERE tgrelid = 'audit.event_default'::regclass
                   AND tgname = 'audit_append_only') THEN
            DROP TRIGGER audit_append_only ON audit.event_default;  -- a server that kept the clone
        END IF;
        FOR month_start IN SELECT DISTINCT date_trunc('month', d.occurred_at)::date FROM audit.event_default d
                           ORDER BY 1 LOOP
            part_name := format('event_%s', to_char(month_start, 'YYYY_MM'));
            -- Filled while standalone, then attached: rows copied into a published
            -- partition would reach logical replicas a second time.
            EXECUTE format('CREATE TABLE audit.%I (LIKE audit.event INCLUDING DEFAULTS)', part_name);
            EXECUTE format('INSERT INTO audit.%I SELECT d.* FROM audit.event_default d '
                           'WHERE d.occurred_at >= %L AND d.occurred_at < %L',
                           part_name, month_start, month_start + interval '1 month');
            GET DIAGNOSTICS moved = ROW_COUNT;
            DELETE FROM audit.event_default d
             WHERE d.occurred_at >= month_start AND d.occurred_at < month_start + interval '1 month';
            GET DIAGNOSTICS removed = ROW_COUNT;
            EXECUTE format('ALTER TABLE audit.event ATTACH PARTITION audit.%I FOR VALUES FROM (%L) TO (%L)',
                           part_name, month_start, month_start + interval '1 month');
            EXECUTE format('COMMENT ON TABLE audit.%I IS %L', part_name,
                           format('pg-audit: audit events of %s', to_char(month_start, 'YYYY-MM')));
            PERFORM audit.protect_table(format('audit.%I', part_name)::regclass);
            IF moved <> removed THEN
                RAISE EXCEPTION 'pg-audit: moving strays of % copied % rows but removed %', part_name, moved, removed;
            END IF;
            operation := 'moved_strays';
            partition := 'audit.' || part_name;
            row_count := moved;
            strays := strays || jsonb_build_object('partition', partition, 'row_count', moved);
            RETURN NEXT;
        END LOOP;
        ALTER TABLE audit.event ATTACH PARTITION audit.event_default DEFAULT;
        PERFORM audit.protect_table('audit.event_default');
    END IF;
    FOR created IN SELECT * FROM audit.create_partitions(months_ahead) LOOP
        operation := 'created';
        partition := audit.table_name(created);
        row_count := 0;
        RETURN NEXT;
    END LOOP;
    IF strays <> '[]' THEN
        PERFORM audit.append_event('RETENTION', NULL, NULL,
                                   jsonb_build_object('operation', 'move_strays', 'partitions', strays),
                                   NULL, 'audit.event');
    END IF;
END
$$;
COMMENT ON FUNCTION audit.maintain(integer) IS
    'pg-audit: moves events waiting in audit.event_default into new monthly partitions and creates partitions months_ahead ahead. Run daily (cron, pg_cron, pg-audit maintain)';
REVOKE ALL ON FUNCTION audit.maintain(integer) FROM PUBLIC;

-- ---------------------------------------------------------------------------
-- Retention
-- ---------------------------------------------------------------------------

-- The manifest of a partition's archive, computed from the sealed content. The
-- archive writes this exact text; audit.retire_partition() recomputes it and
-- compares hashes, so a partition leaves only as the archive described it.
CREATE FUNCTION audit.archive_manifest(target regclass) RETURNS jsonb
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    p record;
    n bigint;
    lo bigint;
    hi bigint;
    max_xid bigint;
    content bytea;
    s record;
BEGIN
    SELECT * INTO p FROM audit.event_partition ep WHERE ep.partition = target AND NOT ep.is_default;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pg-audit: % is not a monthly partition of audit.event', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    SELECT count(*), min(e.id), max(e.id), max(e.txid)::text::bigint,
           sha256(coalesce(string_agg(sha256(convert_to(audit.event_canonical(e), 'UTF8')), ''::bytea
                                      ORDER BY e.id, e.occurred_at), ''::bytea))
      INTO n, lo, hi, max_xid, content
      FROM audit.event e WHERE e.occurred_at >= p.range_from AND e.occurred_at < p.range_to;
    IF n > 0 THEN
        SELECT x.batch, encode(x.hash, 'hex') AS hash INTO s
          FROM audit.seal x WHERE x.to_xid > max_xid ORDER BY x.batch LIMIT 1;
        IF NOT FOUND THEN
            RAISE EXCEPTION 'pg-audit: % is not fully sealed yet', target
                USING ERRCODE = 'object_not_in_prerequisite_state', HINT = 'Run audit.seal() first.';
        END IF;
    END IF;
    RETURN jsonb_build_object(
        'format', 'pg-audit-archive/1',
        'partition', audit.table_name(target),
        'range_from', audit.utc_text(p.range_from),
        'range_to', audit.utc_text(p.range_to),
        'row_count', n,
        'first_id', lo,
        'last_id', hi,
        'content_sha256', encode(content, 'hex'),
        'seal_batch', s.batch,
        'seal_hash', s.hash);
END
$$;
COMMENT ON FUNCTION audit.archive_manifest(regclass) IS
    'pg-audit: manifest of a partition archive: row count, id range, sha256 over its events'' row hashes, and the seal batch that covers its newest event';
GRANT EXECUTE ON FUNCTION audit.archive_manifest(regclass) TO audit_reader;

CREATE FUNCTION audit.retire_partition(target regclass, manifest_sha256 text) RETURNS jsonb
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    manifest jsonb;
    actual text;
    p record;
BEGIN
    SELECT * INTO p FROM audit.event_partition ep WHERE ep.partition = target AND NOT ep.is_default;
    IF NOT FOUND THEN
        RAISE EXCEPTION 'pg-audit: % is not a monthly partition of audit.event', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    IF target NOT IN (SELECT audit.expired_partitions())
       OR p.range_to > date_trunc('month', now()) - interval '2 months' THEN
        RAISE EXCEPTION 'pg-audit: % is not expired under the retention policy', target
            USING ERRCODE = 'invalid_parameter_value';
    END IF;
    -- Nothing may change while the archive is compared and the partition leaves.
    EXECUTE format('LOCK TABLE %s IN ACCESS EXCLUSIVE MODE', target);
    PERFORM audit.seal();
    manifest := audit.archive_manifest(target);
    actual := encode(sha256(convert_to(manifest::text, 'UTF8')), 'hex');
    IF manifest_sha256 IS NULL OR lower(btrim(manifest_sha256)) <> actual THEN
        RAISE EXCEPTION 'pg-audit: refusing to drop %: the manifest hash does not match its sealed content', target
            USING ERRCODE = 'object_not_in_prerequisite_state',
                  HINT = 'Archive it first with: pg-audit archive --dir DIR';
    END IF;
    INSERT INTO audit.retired (partition, range_from, range_to, row_count, first_id, last_id,
                               content_sha256, manifest_sha256)
    VALUES (manifest->>'partition', p.range_from, p.range_to, (manifest->>'row_count')::bigint,
            (manifest->>'first_id')::bigint, (manifest->>'last_id')::bigint,
            manifest->>'content_sha256', actual);
    PERFORM audit.append_event('RETENTION', NULL, NULL,
                               jsonb_build_object('operation', 'drop', 'manifest_sha256', actual) || manifest,
                               NULL, 'audit.event');
    EXECUTE format('ALTER TABLE audit.event DETACH PARTITION %s', target);
    -- DETACH drops the cloned row trigger: guard the table until it is gone.
    PERFORM audit.protect_table(target);
    EXECUTE format('DROP TABLE %s', target);
    RETURN manifest || jsonb_build_object('manifest_sha256', actual);
END
$$;
COMMENT ON FUNCTION audit.retire_partition(regclass, text) IS
    'pg-audit: the only way a partition leaves: seals, checks the archive manifest hash against the sealed content, records RETENTION, then detaches and drops it. Use pg-audit archive';
REVOKE ALL ON FUNCTION audit.retire_partition(regclass, text) FROM PUBLIC;

CREATE FUNCTION audit.set_retention(keep_months integer) RETURNS void
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
BEGIN
    IF keep_months IS NULL OR keep_months < 3 OR keep_months > 1200 THEN
        RAISE EXCEPTION 'pg-audit: keep_months must be between 3 and 1200, got %', keep_months
            USING ERRCODE = 'invalid_parameter_value', HINT = 'The newest 3 months always stay (PCI DSS 10.5.1).';
    END IF;
    UPDATE audit.retention_policy r SET keep_months = set_retention.keep_months,
                                        changed_at = now(), changed_by = session_user;
    PERFORM audit.append_event('RETENTION', NULL, NULL,
                               jsonb_build_object('operation', 'policy', 'keep_months', keep_months), NULL);
END
$$;
COMMENT ON FUNCTION audit.set_retention(integer) IS
    'pg-audit: sets how many months stay in audit.event (3 or more) and records it as a RETENTION event';
REVOKE ALL ON FUNCTION audit.set_retention(integer) FROM PUBLIC;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (4, 'retention');
