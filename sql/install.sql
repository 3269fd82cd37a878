-- sql/install.sql: install or upgrade pg-audit with psql.
--
--     psql -v ON_ERROR_STOP=1 -d mydb -f sql/install.sql
--
-- Applies, in one transaction, sql/bootstrap.sql, every numbered step the
-- database does not have yet, then sql/guards.sql and sql/finish.sql. Running it again changes
-- nothing. pg-audit install and Django's migrate apply the same files.
\set ON_ERROR_STOP 1
\set QUIET 1
BEGIN;
SET LOCAL client_min_messages = warning;
\o /dev/null
\ir bootstrap.sql

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 1) AS pending \gset
\if :pending
\ir 0001_core.sql
\endif

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 2) AS pending \gset
\if :pending
\ir 0002_django.sql
\endif

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 3) AS pending \gset
\if :pending
\ir 0003_reporting.sql
\endif

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 4) AS pending \gset
\if :pending
\ir 0004_retention.sql
\endif

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 5) AS pending \gset
\if :pending
\ir 0005_viewer_indexes.sql
\endif

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 6) AS pending \gset
\if :pending
\ir 0006_trust_boundary.sql
\endif

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 7) AS pending \gset
\if :pending
\ir 0007_seals.sql
\endif

SELECT NOT EXISTS (SELECT FROM audit.schema_version WHERE version = 8) AS pending \gset
\if :pending
\ir 0008_investigation.sql
\endif

\ir guards.sql
\ir finish.sql
COMMIT;
\o
SELECT 'pg-audit schema at version ' || max(version) AS status FROM audit.schema_version;
