-- sql/0002_django.sql: Django admin log capture (issue 3).
--
-- A step file: applied once, inside the installer's transaction; never edited
-- once released.
--
-- Django's tables may not exist when the schema is installed (psql first,
-- migrate later), so this step only defines the functions; django_bridge's
-- migration attaches the trigger, as the owner of django_admin_log, with
-- audit.enable_admin_log(). Any runner can call it the same way.

SET LOCAL ROLE audit_owner;

-- Row trigger on django_admin_log: each LogEntry becomes one ADMIN_CREATE,
-- ADMIN_UPDATE or ADMIN_DELETE event, written by audit.append_event like every
-- other single event. TG_ARGV[0] is the oid of django_content_type (or '').
CREATE FUNCTION audit.admin_log_event() RETURNS trigger
LANGUAGE plpgsql
SECURITY DEFINER
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    verb text;
    content_type text;
    message jsonb;
BEGIN
    verb := CASE NEW.action_flag WHEN 1 THEN 'ADMIN_CREATE' WHEN 2 THEN 'ADMIN_UPDATE'
                                 WHEN 3 THEN 'ADMIN_DELETE' ELSE 'ADMIN_ACTION' END;
    IF TG_NARGS > 0 AND TG_ARGV[0] <> '' AND NEW.content_type_id IS NOT NULL THEN
        EXECUTE format('SELECT app_label || ''.'' || model FROM %s WHERE id = $1',
                       TG_ARGV[0]::oid::regclass)
            INTO content_type USING NEW.content_type_id;
    END IF;
    -- Django stores the change message as JSON text; older rows and other
    -- writers may have plain text, kept as a JSON string.
    BEGIN
        message := nullif(NEW.change_message, '')::jsonb;
    EXCEPTION WHEN invalid_text_representation THEN
        message := to_jsonb(NEW.change_message);
    END;
    PERFORM audit.append_event(
        verb, NEW.user_id::text, NULL,
        jsonb_build_object('object_id', NEW.object_id, 'object_repr', NEW.object_repr,
                           'content_type', content_type, 'content_type_id', NEW.content_type_id,
                           'change_message', message, 'action_flag', NEW.action_flag,
                           'admin_log_id', NEW.id),
        NULL);
    RETURN NULL;
END
$$;
COMMENT ON FUNCTION audit.admin_log_event() IS
    'pg-audit: row trigger function turning django_admin_log inserts into ADMIN_CREATE, ADMIN_UPDATE and ADMIN_DELETE events; argument: oid of django_content_type';
REVOKE ALL ON FUNCTION audit.admin_log_event() FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.admin_log_event() TO audit_writer;

-- Run by the owner of django_admin_log (not a definer: only the owner may add
-- its trigger). Lets audit_owner read the content types the events name.
CREATE FUNCTION audit.enable_admin_log(admin_log regclass, content_type regclass DEFAULT NULL)
RETURNS void
LANGUAGE plpgsql
SET search_path = pg_catalog, pg_temp
AS $$
DECLARE
    missing text;
BEGIN
    SELECT string_agg(c, ', ') INTO missing
    FROM unnest(ARRAY['action_flag', 'object_id', 'object_repr', 'change_message', 'user_id',
                      'content_type_id', 'id']) c
    WHERE NOT EXISTS (SELECT FROM pg_attribute WHERE attrelid = admin_log AND attname = c
                                                 AND attnum > 0 AND NOT attisdropped);
    IF missing IS NOT NULL THEN
        RAISE EXCEPTION 'pg-audit: % is not a Django admin log (no column %)', admin_log, missing
            USING ERRCODE = 'undefined_column';
    END IF;
    IF content_type IS NOT NULL THEN
        EXECUTE format('GRANT SELECT ON %s TO audit_owner', content_type);
    END IF;
    EXECUTE format('DROP TRIGGER IF EXISTS audit_admin_log ON %s', admin_log);
    EXECUTE format('CREATE TRIGGER audit_admin_log AFTER INSERT ON %s FOR EACH ROW '
                   'EXECUTE FUNCTION audit.admin_log_event(%L)',
                   admin_log, coalesce(content_type::oid::text, ''));
    EXECUTE format('ALTER TABLE %s ENABLE ALWAYS TRIGGER audit_admin_log', admin_log);
    EXECUTE format('COMMENT ON TRIGGER audit_admin_log ON %s IS %L', admin_log,
                   'pg-audit: records admin actions in audit.event (audit.enable_admin_log)');
END
$$;
COMMENT ON FUNCTION audit.enable_admin_log(regclass, regclass) IS
    'pg-audit: attaches the ADMIN_* event trigger to a Django admin log table; idempotent; the caller must own the table';
REVOKE ALL ON FUNCTION audit.enable_admin_log(regclass, regclass) FROM PUBLIC;
GRANT EXECUTE ON FUNCTION audit.enable_admin_log(regclass, regclass) TO audit_writer;

RESET ROLE;

INSERT INTO audit.schema_version (version, name) VALUES (2, 'django');
