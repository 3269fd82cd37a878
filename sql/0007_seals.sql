-- sql/0007_seals.sql: seals and verification that do not rest on the database
-- they check (issue 9).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.
--
--   * canonical format 2, for events that carry old_row_key;
--   * a retired partition excuses its missing sealed events only when the
--     seals themselves prove the retirement (audit.retirement_proofs);
--   * every change of audit.retention_policy is a RETENTION event;
--   * audit.newest_seal() works for the role that seals (audit_writer).
--
-- pg-audit verify recomputes all of this in the client from raw column values
-- (pg_audit_schema/canonical.py, docs/retention.md); these SQL functions stay
-- as the in-database convenience and must agree with it.

SET LOCAL ROLE audit_owner;

-- ---------------------------------------------------------------------------
-- Canonical form, format 2
-- ---------------------------------------------------------------------------

-- Format 1 is frozen: an event without old_row_key keeps it, so every seal
-- taken before this step still verifies. An event with old_row_key gets format
-- 2: the same array led by 2, with old_row_key appended. Still no SET clause
-- (inlined into seal and verify) and only qualified or builtin names, so a
-- caller's search_path cannot reach into it.
CREATE OR REPLACE FUNCTION audit.event_canonical(e audit.event) RETURNS text
LANGUAGE sql STABLE PARALLEL SAFE
AS $$
    SELECT (pg_catalog.jsonb_build_array(
        CASE WHEN e.old_row_key IS NULL THEN 1 ELSE 2 END,   -- format version
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
        e.txid::text)
      OPERATOR(pg_catalog.||)
        CASE WHEN e.old_row_key IS NULL THEN '[]'::jsonb
             ELSE pg_catalog.jsonb_build_array(e.old_row_key) END)::text
$$;
COMMENT ON FUNCTION audit.event_canonical(audit.event) IS
    'pg-audit: the canonical text of an event, what seals hash and archives hold (one per line): jsonb array [format, id, occurred_at, tx_started_at, action, outcome, actor_id, actor_name, ip, user_agent, request_id, db_role, application_name, table_name, row_key, old_values, new_values, detail, txid], UTC timestamps; format 1, or 2 with old_row_key appended when it is not NULL (docs/retention.md)';

-- ---------------------------------------------------------------------------
-- The newest seal, for the role that seals
-- ---------------------------------------------------------------------------

-- pg-audit seal --hash-file runs as the application's login (audit_writer),
-- which may not read audit.seal: the head is all it needs, and all it gets.
ALTER FUNCTION audit.newest_seal() SECURITY DEFINER;
REVOKE ALL ON FUNCTION audit.newest_seal() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.newest_seal() TO audit_reader, audit_writer;

-- ---------------------------------------------------------------------------
-- Retention policy changes are events
-- ---------------------------------------------------------------------------

-- Row triggers, ENABLE ALWAYS: a direct UPDATE by the owner or a superuser, a
-- DELETE or INSERT of the policy row, and TRUNCATE are recorded as well as
-- audit.set_retention(); session_replication_role does not skip them.
CREATE FUNCTION audit.record_policy_change() RETURNS trigger
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    detail jsonb := jsonb_build_object('operation', 'policy', 'change', lower(TG_OP));
BEGIN
    IF TG_RELID <> 'audit.retention_policy'::regclass THEN
        RAISE EXCEPTION 'pg-audit: audit.record_policy_change() records changes of audit.retention_policy only, not of %',
            TG_RELID::regclass USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF TG_OP IN ('INSERT', 'UPDATE') THEN
        detail := detail || jsonb_build_object('keep_months', NEW.keep_months);
    END IF;
    IF TG_OP IN ('UPDATE', 'DELETE') THEN
        detail := detail || jsonb_build_object('previous_keep_months', OLD.keep_months);
    END IF;
    PERFORM audit.append_event('RETENTION', NULL, NULL, detail, NULL, 'audit.retention_policy');
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.record_policy_change() IS
    'pg-audit: trigger function recording every change of audit.retention_policy as a RETENTION event (detail.operation = policy)';
REVOKE ALL ON FUNCTION audit.record_policy_change() FROM PUBLIC;

CREATE TRIGGER audit_policy_change AFTER INSERT OR UPDATE OR DELETE ON audit.retention_policy
    FOR EACH ROW EXECUTE FUNCTION audit.record_policy_change();
CREATE TRIGGER audit_policy_truncate AFTER TRUNCATE ON audit.retention_policy
    FOR EACH STATEMENT EXECUTE FUNCTION audit.record_policy_change();
ALTER TABLE audit.retention_policy ENABLE ALWAYS TRIGGER audit_policy_change,
                                   ENABLE ALWAYS TRIGGER audit_policy_truncate;
COMMENT ON TRIGGER audit_policy_change ON audit.retention_policy IS
    'pg-audit: records each INSERT, UPDATE and DELETE of the retention policy as a RETENTION event (ENABLE ALWAYS)';
COMMENT ON TRIGGER audit_policy_truncate ON audit.retention_policy IS
    'pg-audit: records a TRUNCATE of the retention policy as a RETENTION event (ENABLE ALWAYS)';

-- The trigger records the change now; set_retention only validates and updates.
CREATE OR REPLACE FUNCTION audit.set_retention(keep_months integer) RETURNS void
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
END
$$;
COMMENT ON FUNCTION audit.set_retention(integer) IS
    'pg-audit: sets how many months stay in audit.event (3 or more); the change is recorded as a RETENTION event';

-- ---------------------------------------------------------------------------
-- Retirements the seals prove
-- ---------------------------------------------------------------------------

CREATE TYPE audit.retirement_proof AS (
    partition   text,          -- audit.retired.partition
    range_from  timestamptz,
    range_to    timestamptz,
    problem     text           -- NULL when the seals prove the retirement, else why not
);
COMMENT ON TYPE audit.retirement_proof IS
    'pg-audit: one row of audit.retired and whether the seals prove it (problem NULL) or why not';

-- A row of audit.retired is only a claim: a superuser can insert one. It
-- excuses missing sealed events only when the seals bear it out: its range is
-- exactly one monthly partition's (in the session's time zone or in UTC), no
-- event of that range is left in the log, the sealed events of the range are
-- as many as it says and hash (sha256 over their sealed row hashes in
-- (id, occurred_at) order, as the archive manifest does) to its content_sha256,
-- and a RETENTION drop event records the same partition, range, count and
-- hashes, dated at least 58 days after the range ended (retire_partition keeps
-- the newest three months) and not after events sealed after it, nor in the
-- future. pg_audit_schema/seal.py checks the same in the client.
CREATE FUNCTION audit.retirement_proofs() RETURNS SETOF audit.retirement_proof
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    r audit.retired;
    drops audit.event[];
    d audit.event;
    proof audit.retirement_proof;
    n bigint;
    content text;
    k bigint;
    next_first timestamptz;
BEGIN
    IF NOT EXISTS (SELECT FROM audit.retired) THEN
        RETURN;
    END IF;
    SELECT coalesce(array_agg(e ORDER BY e.id), '{}') INTO drops
      FROM audit.event e WHERE e.action = 'RETENTION' AND e.detail->>'operation' = 'drop';
    FOR r IN SELECT * FROM audit.retired x ORDER BY x.range_from, x.partition LOOP
        proof := ROW(r.partition, r.range_from, r.range_to, NULL);
        IF NOT (isfinite(r.range_from) AND isfinite(r.range_to)
                AND ((r.range_from = date_trunc('month', r.range_from)
                      AND r.range_to = r.range_from + interval '1 month'
                      AND r.partition = 'audit.event_' || to_char(r.range_from, 'YYYY_MM'))
                  OR (r.range_from = date_trunc('month', r.range_from, 'UTC')
                      AND r.range_to = ((r.range_from AT TIME ZONE 'UTC') + interval '1 month') AT TIME ZONE 'UTC'
                      AND r.partition = 'audit.event_' || to_char(r.range_from AT TIME ZONE 'UTC', 'YYYY_MM')))) THEN
            proof.problem := 'its range is not exactly one monthly partition';
        ELSIF EXISTS (SELECT FROM audit.event e
                      WHERE e.occurred_at >= r.range_from AND e.occurred_at < r.range_to) THEN
            proof.problem := 'events of its range are still in the log';
        ELSE
            SELECT count(*), encode(sha256(coalesce(string_agg(x.h, ''::bytea ORDER BY x.id, x.t), ''::bytea)), 'hex')
              INTO n, content
              FROM (SELECT u.id, u.t, substring(s.row_hashes FROM ((u.o - 1) * 32 + 1)::int FOR 32) AS h
                      FROM audit.seal s, unnest(s.event_ids, s.event_times) WITH ORDINALITY AS u(id, t, o)
                     WHERE u.t >= r.range_from AND u.t < r.range_to) x;
            IF n <> r.row_count OR content <> r.content_sha256 THEN
                proof.problem := format('the seals hold %s events of its range (content sha256 %s), it claims %s (%s)',
                                        n, content, r.row_count, r.content_sha256);
            ELSE
                SELECT * INTO d FROM unnest(drops) x
                 WHERE x.detail->>'partition' = r.partition
                   AND x.detail->>'range_from' = audit.utc_text(r.range_from)
                   AND x.detail->>'range_to' = audit.utc_text(r.range_to)
                   AND x.detail->>'row_count' = r.row_count::text
                   AND x.detail->>'content_sha256' = r.content_sha256
                   AND x.detail->>'manifest_sha256' = r.manifest_sha256
                 ORDER BY x.id LIMIT 1;
                IF NOT FOUND THEN
                    proof.problem := 'no RETENTION event records this retirement';
                ELSIF d.tx_started_at - interval '58 days' < r.range_to THEN
                    proof.problem := format('its RETENTION event %s is dated before the range was old enough to retire', d.id);
                ELSIF d.tx_started_at > now() + interval '1 day' THEN
                    proof.problem := format('its RETENTION event %s is dated in the future', d.id);
                ELSE
                    SELECT s.batch INTO k FROM audit.seal s
                     WHERE d.txid::text::bigint >= s.from_xid AND d.txid::text::bigint < s.to_xid;
                    SELECT min(t) INTO next_first
                      FROM audit.seal s, unnest(s.event_times) AS t WHERE s.batch = k + 1;
                    IF next_first < d.tx_started_at - interval '1 day' THEN
                        proof.problem := format('its RETENTION event %s is dated after events sealed later', d.id);
                    END IF;
                END IF;
            END IF;
        END IF;
        RETURN NEXT proof;
    END LOOP;
END
$$;
COMMENT ON FUNCTION audit.retirement_proofs() IS
    'pg-audit: each row of audit.retired with problem NULL when the seals prove the retirement, else the reason; only proven retirements excuse missing sealed events in audit.verify()';
REVOKE ALL ON FUNCTION audit.retirement_proofs() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.retirement_proofs() TO audit_reader;

-- ---------------------------------------------------------------------------
-- Verification with proven retirements
-- ---------------------------------------------------------------------------

-- The proofs scan every seal, so audit.verify() computes them once and hands
-- them to each batch; audit.verify_batch(bigint) computes them itself.
CREATE FUNCTION audit.verify_batch(target_batch bigint, retirements audit.retirement_proof[])
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
           CASE WHEN c.id IS NULL THEN
                    format('event %s was deleted', x.id)
                    || coalesce((SELECT format(' (retired partition %s does not account for it: %s)',
                                               r.partition, r.problem)
                                 FROM unnest(retirements) r
                                 WHERE x.t >= r.range_from AND x.t < r.range_to LIMIT 1), '')
                WHEN x.id IS NULL THEN format('event %s was inserted after sealing', c.id)
                ELSE format('event %s was changed', c.id) END
    FROM sealed x FULL JOIN current c ON c.id = x.id AND c.t = x.t
    WHERE (c.id IS NULL AND NOT EXISTS (SELECT FROM unnest(retirements) r
                                        WHERE r.problem IS NULL
                                          AND x.t >= r.range_from AND x.t < r.range_to))
       OR x.id IS NULL
       OR c.h <> x.h
    ORDER BY coalesce(c.id, x.id);
END
$$;
COMMENT ON FUNCTION audit.verify_batch(bigint, audit.retirement_proof[]) IS
    'pg-audit: recomputes one seal batch, excusing missing events only inside proven retirements (from audit.retirement_proofs()); no rows means intact';
REVOKE ALL ON FUNCTION audit.verify_batch(bigint, audit.retirement_proof[]) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.verify_batch(bigint, audit.retirement_proof[]) TO audit_reader;

CREATE OR REPLACE FUNCTION audit.verify_batch(target_batch bigint)
RETURNS TABLE (batch bigint, event_id bigint, problem text)
LANGUAGE sql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
    SELECT v.batch, v.event_id, v.problem
    FROM audit.verify_batch(target_batch, ARRAY(SELECT p FROM audit.retirement_proofs() p)) v
$$;
COMMENT ON FUNCTION audit.verify_batch(bigint) IS
    'pg-audit: recomputes one seal batch: its chain link, its own hash, and each event (changed, deleted, inserted); no rows means intact';

CREATE OR REPLACE FUNCTION audit.verify(expect_hash text DEFAULT NULL)
RETURNS TABLE (ok boolean, batches bigint, events bigint, batch bigint, event_id bigint, problem text,
               newest_hash text)
LANGUAGE plpgsql STABLE
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    newest bigint;
    found_problem record;
    retirements audit.retirement_proof[] := ARRAY(SELECT p FROM audit.retirement_proofs() p);
BEGIN
    ok := true;
    batches := 0;
    events := 0;
    SELECT max(x.batch), encode((array_agg(x.hash ORDER BY x.batch DESC))[1], 'hex')
      INTO newest, newest_hash FROM audit.seal x;
    -- By number, not by the rows present, so a deleted seal row shows as missing.
    FOR b IN 1..coalesce(newest, 0) LOOP
        SELECT * INTO found_problem FROM audit.verify_batch(b, retirements) v LIMIT 1;
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
    'pg-audit: recomputes every seal batch and reports the first problem (batch, event, what), excusing missing events only in retirements the seals prove; with expect_hash, also checks that an externally kept seal hash is still in the chain. pg-audit verify does the same outside the database';

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (7, 'seals');
