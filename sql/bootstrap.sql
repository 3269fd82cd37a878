-- sql/bootstrap.sql: roles, schema and version table that every step builds on.
--
-- Run before the numbered steps by every installer (psql install.sql, pg-audit
-- install, Django migrate), inside the installer's transaction; sql/finish.sql
-- runs last. Idempotent: on an installed database it creates nothing and
-- changes nothing.

DO $bootstrap$
DECLARE
    r text;
BEGIN
    -- Two installers at once would race on CREATE ROLE and on the steps.
    PERFORM pg_catalog.pg_advisory_xact_lock(pg_catalog.hashtext('pg_audit.install'));
    FOREACH r IN ARRAY ARRAY['audit_owner', 'audit_appender', 'audit_writer', 'audit_reader'] LOOP
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_roles WHERE rolname = r) THEN
            EXECUTE pg_catalog.format('CREATE ROLE %I NOLOGIN', r);
        END IF;
    END LOOP;
    -- A non-superuser installer (a managed service's database owner with
    -- CREATEROLE) acts as audit_owner and audit_appender for this transaction
    -- only: sql/finish.sql takes the memberships back, so no login keeps them.
    -- A plain GRANT, not the ADMIN-only membership PostgreSQL 16+ gives the
    -- creator of a role, which allows neither SET nor INHERIT.
    IF NOT (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        FOREACH r IN ARRAY ARRAY['audit_owner', 'audit_appender'] LOOP
            IF NOT pg_catalog.pg_has_role(current_user, r, 'USAGE') THEN
                BEGIN
                    EXECUTE pg_catalog.format('GRANT %I TO %I', r, current_user);
                EXCEPTION WHEN insufficient_privilege THEN
                    RAISE EXCEPTION 'pg-audit: % cannot act as %, which owns the audit schema', current_user, r
                        USING ERRCODE = 'insufficient_privilege',
                              DETAIL = pg_catalog.format('Installing needs a superuser, or a login with CREATEROLE that may grant %s (the one that created it, on PostgreSQL 16 and later).', r),
                              HINT = pg_catalog.format('Install as that login, or have it run: GRANT %I TO %I WITH ADMIN OPTION', r, current_user);
                END;
                PERFORM pg_catalog.set_config('pg_audit.granted',
                    pg_catalog.concat_ws(',', nullif(pg_catalog.current_setting('pg_audit.granted', true), ''), r), true);
            END IF;
        END LOOP;
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
