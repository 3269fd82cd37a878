-- sql/guards.sql: the event trigger that keeps non-superusers from altering
-- or dropping the audit schema's objects and from switching capture off behind
-- audit.disable_tracking's back.
--
-- Run by every installer after the numbered steps. Event triggers need a
-- superuser: any other installer gets one warning naming what is missing, and
-- the log then rests on privileges and the append-only triggers alone.
-- Idempotent: the event triggers are created only where missing. Their
-- function, audit.guard_ddl(), is versioned in the numbered steps.

DO $guards$
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_guard_ddl_end') THEN
            CREATE EVENT TRIGGER audit_guard_ddl_end ON ddl_command_end EXECUTE FUNCTION audit.guard_ddl();
            COMMENT ON EVENT TRIGGER audit_guard_ddl_end IS
                'pg-audit: refuses non-superuser ALTER/CREATE on audit objects and disabling capture triggers';
        END IF;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_guard_drop') THEN
            CREATE EVENT TRIGGER audit_guard_drop ON sql_drop EXECUTE FUNCTION audit.guard_ddl();
            COMMENT ON EVENT TRIGGER audit_guard_drop IS
                'pg-audit: refuses non-superuser DROP of audit objects and of capture triggers';
        END IF;
        -- DROP SCHEMA audit CASCADE and DROP FUNCTION audit.guard_ddl() CASCADE
        -- drop the event triggers along with their function, a replaced
        -- guard_ddl would vet its own replacement, and a procedure or schema an
        -- audit_owner member creates could be given to audit_owner: refuse these
        -- to members before they run. (An earlier version listed fewer tags.)
        IF EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_guard_ddl_start'
                   AND evttags IS DISTINCT FROM ARRAY['DROP SCHEMA', 'DROP FUNCTION', 'DROP PROCEDURE',
                       'DROP ROUTINE', 'DROP OWNED', 'CREATE FUNCTION', 'CREATE PROCEDURE',
                       'CREATE SCHEMA', 'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE',
                       'ALTER SCHEMA']) THEN
            DROP EVENT TRIGGER audit_guard_ddl_start;
        END IF;
        IF NOT EXISTS (SELECT FROM pg_catalog.pg_event_trigger WHERE evtname = 'audit_guard_ddl_start') THEN
            CREATE EVENT TRIGGER audit_guard_ddl_start ON ddl_command_start
                WHEN TAG IN ('DROP SCHEMA', 'DROP FUNCTION', 'DROP PROCEDURE', 'DROP ROUTINE',
                             'DROP OWNED', 'CREATE FUNCTION', 'CREATE PROCEDURE', 'CREATE SCHEMA',
                             'ALTER FUNCTION', 'ALTER PROCEDURE', 'ALTER ROUTINE', 'ALTER SCHEMA')
                EXECUTE FUNCTION audit.guard_ddl();
            COMMENT ON EVENT TRIGGER audit_guard_ddl_start IS
                'pg-audit: refuses to audit_owner members the commands that could remove or replace the guard itself';
        END IF;
        -- ENABLE ALWAYS: session_replication_role = replica must not skip the guard.
        ALTER EVENT TRIGGER audit_guard_ddl_end ENABLE ALWAYS;
        ALTER EVENT TRIGGER audit_guard_drop ENABLE ALWAYS;
        ALTER EVENT TRIGGER audit_guard_ddl_start ENABLE ALWAYS;
    ELSIF (SELECT count(*) FROM pg_catalog.pg_event_trigger
           WHERE evtname IN ('audit_guard_ddl_end', 'audit_guard_drop', 'audit_guard_ddl_start')) < 3 THEN
        RAISE WARNING 'pg-audit: installed without a superuser, so these guards are missing: event triggers audit_guard_ddl_end, audit_guard_drop and audit_guard_ddl_start (they stop non-superusers from altering or dropping audit objects and disabling capture triggers)'
            USING HINT = 'Run the installer once as a superuser to add them.';
    END IF;
END
$guards$;
