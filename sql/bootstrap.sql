-- sql/bootstrap.sql: roles, schema and version table that every step builds on.
--
-- Run before the numbered steps by every installer (psql install.sql, pg-audit
-- install, Django migrate), inside the installer's transaction. Idempotent:
-- on an installed database it creates nothing and changes nothing.

DO $bootstrap$
DECLARE
    r text;
BEGIN
    -- Two installers at once would race on CREATE ROLE and on the steps.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_audit.install'));
    FOREACH r IN ARRAY ARRAY['audit_owner', 'audit_writer', 'audit_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    -- A non-superuser installer (a managed service's database owner with
    -- CREATEROLE) must be able to hand objects over to audit_owner.
    -- USAGE, not MEMBER: on PostgreSQL 16+ the CREATEROLE installer that just
    -- created audit_owner is a member WITH ADMIN but neither INHERIT nor SET, and
    -- could not then hand objects over; a plain GRANT adds INHERIT and SET.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
       AND NOT pg_catalog.pg_has_role(current_user, 'audit_owner', 'USAGE') THEN
        EXECUTE pg_catalog.format('GRANT audit_owner TO %I', current_user);
    END IF;
END
$bootstrap$;

CREATE SCHEMA IF NOT EXISTS audit AUTHORIZATION audit_owner;

CREATE TABLE IF NOT EXISTS audit.schema_version (
    version     integer     PRIMARY KEY,                         -- the step's number, NNNN of sql/NNNN_name.sql
    name        text        NOT NULL,                            -- the step's name
    applied_at  timestamptz NOT NULL DEFAULT pg_catalog.now(),
    applied_by  name        NOT NULL DEFAULT session_user
);
ALTER TABLE audit.schema_version OWNER TO audit_owner;
COMMENT ON SCHEMA audit IS 'pg-audit: append-only audit trail enforced by PostgreSQL (see docs/)';
COMMENT ON TABLE audit.schema_version IS 'pg-audit: schema steps applied to this database (sql/NNNN_*.sql), one row each';
COMMENT ON INDEX audit.schema_version_pkey IS 'pg-audit: one row per applied step';
GRANT USAGE ON SCHEMA audit TO audit_writer, audit_reader;
GRANT SELECT ON audit.schema_version TO audit_writer, audit_reader;
