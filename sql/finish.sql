-- sql/finish.sql: the last thing every installer runs, after the steps and
-- sql/guards.sql, inside the same transaction.
--
-- A non-superuser installer gives back the memberships in audit_owner and
-- audit_appender that sql/bootstrap.sql granted it for this transaction, and
-- any it granted itself in an earlier version (which kept them), then keeps
-- audit_writer: on a managed service the installing login is often the
-- application's too. Idempotent.

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
