-- sql/finish.sql: the last thing every installer runs, after the steps and
-- sql/guards.sql, inside the same transaction. Idempotent.
--
-- It points capture at hstore (first block). Then a non-superuser installer gives back the memberships in audit_owner and
-- audit_appender that sql/bootstrap.sql granted it for this transaction, and
-- any it granted itself in an earlier version (which kept them), then keeps
-- audit_writer: on a managed service the installing login is often the
-- application's too.

-- Capture and the admin-log trigger call hstore's functions by name, found on
-- their search_path: the schema that holds hstore must be one nobody but
-- superusers and audit_owner can create objects in (otherwise the application
-- could define an overload they would pick). Checked, and the functions pointed
-- at it, at every install, so hstore can move and an install follows it.
DO $hstore$
DECLARE
    schema name;
    creators text;
    fn text;
BEGIN
    SELECT n.nspname INTO schema
    FROM pg_catalog.pg_extension e JOIN pg_catalog.pg_namespace n ON n.oid = e.extnamespace
    WHERE e.extname = 'hstore';
    SELECT pg_catalog.string_agg(DISTINCT CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE r.rolname END, ', ')
      INTO creators
      FROM pg_catalog.pg_namespace n
      CROSS JOIN LATERAL pg_catalog.aclexplode(coalesce(n.nspacl, pg_catalog.acldefault('n', n.nspowner))) a
      LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.grantee
     WHERE n.nspname = schema AND a.privilege_type = 'CREATE'
       AND (a.grantee = 0 OR NOT r.rolsuper) AND coalesce(r.rolname, '') <> 'audit_owner';
    IF creators IS NULL THEN
        SELECT CASE WHEN r.rolsuper OR r.rolname = 'audit_owner' THEN NULL ELSE r.rolname END INTO creators
        FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_roles r ON r.oid = n.nspowner
        WHERE n.nspname = schema;
    END IF;
    IF creators IS NOT NULL THEN
        RAISE EXCEPTION 'pg-audit: the hstore extension is in schema %, where % can create objects', schema, creators
            USING ERRCODE = 'insufficient_privilege',
                  DETAIL = 'Capture reads rows through hstore; an object the application creates beside it could run with the right to write audit events.',
                  HINT = 'Move it to a schema only superusers can create in (CREATE SCHEMA extensions; ALTER EXTENSION hstore SET SCHEMA extensions;, and add that schema to the search_path of roles that use hstore), then install again.';
    END IF;
    -- Capture runs as audit_appender, which must reach hstore's functions.
    IF NOT pg_catalog.has_schema_privilege('audit_appender', schema, 'USAGE') THEN
        EXECUTE pg_catalog.format('GRANT USAGE ON SCHEMA %I TO audit_appender', schema);
        IF NOT pg_catalog.has_schema_privilege('audit_appender', schema, 'USAGE') THEN
            RAISE EXCEPTION 'pg-audit: audit_appender needs USAGE on schema %, where the hstore extension is', schema
                USING ERRCODE = 'insufficient_privilege',
                      HINT = pg_catalog.format('Run GRANT USAGE ON SCHEMA %I TO audit_appender as its owner, then install again.', schema);
        END IF;
    END IF;
    FOREACH fn IN ARRAY ARRAY['audit.capture()', 'audit.admin_log_event()'] LOOP
        IF (SELECT p.proconfig FROM pg_catalog.pg_proc p WHERE p.oid = fn::pg_catalog.regprocedure)
           IS DISTINCT FROM ARRAY[pg_catalog.format('search_path=pg_catalog, %I, pg_temp', schema)] THEN
            EXECUTE pg_catalog.format('ALTER FUNCTION %s SET search_path = pg_catalog, %I, pg_temp', fn, schema);
        END IF;
    END LOOP;
END
$hstore$;

DO $finish$
DECLARE
    r text;
BEGIN
    IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
        RETURN;
    END IF;
    FOREACH r IN ARRAY pg_catalog.string_to_array(nullif(pg_catalog.current_setting('pg_audit.granted', true), ''), ',') LOOP
        EXECUTE pg_catalog.format('REVOKE %I FROM %I', r, current_user);
    END LOOP;
    PERFORM pg_catalog.set_config('pg_audit.granted', '', true);
    -- Earlier versions granted audit_owner to a non-superuser installer for good.
    IF EXISTS (SELECT FROM pg_catalog.pg_auth_members m
               WHERE m.roleid = 'audit_owner'::regrole AND m.member = current_user::regrole
                 AND m.grantor = current_user::regrole) THEN
        REVOKE audit_owner FROM CURRENT_USER;
    END IF;
    IF NOT pg_catalog.pg_has_role(current_user, 'audit_writer', 'USAGE') THEN
        EXECUTE pg_catalog.format('GRANT audit_writer TO %I', current_user);
    END IF;
END
$finish$;
