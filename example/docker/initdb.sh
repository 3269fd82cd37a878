#!/bin/sh
# Run once by the postgres image on a fresh volume (docker-entrypoint-initdb.d):
# the shop's database and login roles, and the audit schema installed as the
# superuser, so the site never needs more than audit_writer.
set -eu
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d postgres -v pw="$SHOP_DB_PASSWORD" \
    -v reader_pw="$SHOP_DB_READER_PASSWORD" <<'SQL'
CREATE ROLE shop_app LOGIN NOSUPERUSER PASSWORD :'pw';
CREATE ROLE shop_auditor LOGIN NOSUPERUSER PASSWORD :'reader_pw';
CREATE DATABASE shop;
SQL
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d shop -f "${PG_AUDIT_SQL:-/pg-audit/sql}/install.sql"
psql -v ON_ERROR_STOP=1 -U "$POSTGRES_USER" -d shop <<'SQL'
GRANT audit_writer TO shop_app;
GRANT audit_reader TO shop_auditor;
GRANT CREATE ON SCHEMA public TO shop_app;
SQL
