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

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (6, 'trust_boundary');
