-- sql/0006_trust_boundary.sql: the trust boundary and capture at the floor
-- (issues 9 and 10).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.

SET LOCAL ROLE audit_owner;

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

CREATE INDEX event_row_ref_idx ON audit.event (audit.row_ref(table_name, row_key))
    WHERE table_name IS NOT NULL;
COMMENT ON INDEX audit.event_row_ref_idx IS 'pg-audit: events of one row (audit.row_history, audit.last_change)';
CREATE INDEX event_old_row_ref_idx ON audit.event (audit.row_ref(table_name, old_row_key))
    WHERE old_row_key IS NOT NULL;
COMMENT ON INDEX audit.event_old_row_ref_idx IS 'pg-audit: updates that moved a row away from a key';

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (6, 'trust_boundary');
