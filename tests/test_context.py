"""Transaction-local context, its bounds, hostile values, and audit.log_event."""

from __future__ import annotations

import json
import subprocess
from typing import Any

import psycopg
import pytest
from pgtest import Database, reset_public_schema

FIELDS = ("actor_id", "actor_name", "ip", "user_agent", "request_id")
BOUNDS = {"actor_id": 256, "actor_name": 256, "user_agent": 512, "request_id": 128}


# One database for the module, the public schema emptied before each test, and
# every helper reading only the events written since: CREATE DATABASE per test
# was most of this file's run time.
_since = [0]


@pytest.fixture(scope="module")
def db(module_db: Database) -> Database:
    return module_db


@pytest.fixture(autouse=True)
def _fresh_public_schema(db: Database, roles: dict[str, str]) -> None:
    _since[0] = reset_public_schema(db, roles)


def events(db: Database) -> list[dict[str, Any]]:
    with db.connect() as conn:
        return [r[0] for r in conn.execute(
            "SELECT to_jsonb(e) FROM audit.event e WHERE action <> 'TRACKING_ENABLED' AND id > %s "
            "ORDER BY id", [_since[0]]
        ).fetchall()]


@pytest.fixture
def app(db: Database, roles: dict[str, str]) -> psycopg.Connection:
    conn = db.connect(roles["app"])
    conn.execute("CREATE TABLE public.note (id int PRIMARY KEY, body text)")
    conn.execute("SELECT audit.enable_tracking('public.note')")
    return conn


def ctx(event: dict[str, Any]) -> tuple[Any, ...]:
    return tuple(event[f] for f in FIELDS)


def test_context_set_with_set_local_set_config_or_set_context_is_recorded(
    db: Database, app: psycopg.Connection
) -> None:
    with app.transaction():
        app.execute("SET LOCAL audit.actor_id = '42'")
        app.execute("SET LOCAL audit.actor_name = 'Ann'")
        app.execute("SELECT set_config('audit.ip', '10.1.2.3', true), "
                    "set_config('audit.user_agent', 'Mozilla/5.0', true), "
                    "set_config('audit.request_id', 'req-1', true)")
        app.execute("INSERT INTO note VALUES (1, 'x')")
        app.execute("SELECT audit.log_event(action => 'EXPORT')")
    with app.transaction():
        app.execute("SELECT audit.set_context(actor_id => '7', actor_name => 'Bob', ip => '::1', "
                    "user_agent => 'curl', request_id => 'req-2')")
        app.execute("DELETE FROM note")
    assert [ctx(e) for e in events(db)] == [
        ("42", "Ann", "10.1.2.3", "Mozilla/5.0", "req-1"),
        ("42", "Ann", "10.1.2.3", "Mozilla/5.0", "req-1"),
        ("7", "Bob", "::1", "curl", "req-2"),
    ]


def test_empty_strings_count_as_unset(db: Database, app: psycopg.Connection) -> None:
    with app.transaction():
        for field in FIELDS:
            app.execute(f"SET LOCAL audit.{field} = ''")
        app.execute("INSERT INTO note VALUES (1, 'x')")
        app.execute("SELECT audit.log_event(action => 'EXPORT', actor_id => '', actor_name => '')")
    assert [ctx(e) for e in events(db)] == [(None,) * 5, (None,) * 5]
    # Without an actor or request id the change carries the statement that made it.
    assert [e["detail"] for e in events(db)] == [
        {"statement": "INSERT INTO note VALUES (?, ?)"}, None]


def test_context_of_one_transaction_is_absent_in_the_next_on_the_same_connection(
    db: Database, app: psycopg.Connection
) -> None:
    with app.transaction():
        app.execute("SELECT audit.set_context(actor_id => '1', actor_name => 'Ann', "
                    "ip => '10.0.0.1', "
                    "user_agent => 'ua', request_id => 'r1')")
        app.execute("INSERT INTO note VALUES (1, 'x')")
    app.execute("INSERT INTO note VALUES (2, 'y')")  # autocommit: its own transaction
    with app.transaction():
        app.execute("UPDATE note SET body = 'z'")
        app.execute("SELECT audit.log_event(action => 'EXPORT')")
    # A failed transaction does not leak its context either.
    with pytest.raises(ZeroDivisionError):
        with app.transaction():
            app.execute("SELECT audit.set_context(actor_id => 'ghost')")
            raise ZeroDivisionError
    app.execute("DELETE FROM note WHERE id = 1")
    recorded = [ctx(e) for e in events(db)]
    assert recorded[0] == ("1", "Ann", "10.0.0.1", "ua", "r1")
    assert recorded[1:] == [(None,) * 5] * 5
    left = app.execute("SELECT current_setting('audit.actor_id', true)").fetchone()
    assert left in [("",), (None,)]


def test_without_context_a_dba_in_psql_is_still_named(
    db: Database, app: psycopg.Connection, pg_server: Any
) -> None:
    subprocess.run(
        [pg_server.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1",
         "-c", "INSERT INTO note VALUES (1, 'by hand')"],
        check=True, capture_output=True, env=pg_server.libpq_env(db.name),
    )
    with db.connect() as conn:
        (superuser,) = conn.execute("SELECT session_user::text").fetchone()
    (event,) = events(db)
    assert ctx(event) == (None,) * 5
    assert (event["db_role"], event["application_name"]) == (superuser, "psql")


def test_unparseable_ip_is_stored_null_with_a_bounded_raw_copy_and_never_aborts(
    db: Database, app: psycopg.Connection
) -> None:
    raws = ["not an ip", "999.1.1.1", "10.0.0.1; DROP TABLE x", "z" * 5000]
    for n, raw in enumerate(raws):
        with app.transaction():
            app.execute("SELECT set_config('audit.ip', %s, true)", [raw])
            app.execute("INSERT INTO note VALUES (%s, 'x')", [n])
            app.execute("SELECT audit.log_event(action => 'EXPORT', detail => '{\"k\": 1}')")
    recorded = events(db)
    assert len(recorded) == 2 * len(raws)
    for n, raw in enumerate(raws):
        insert, custom = recorded[2 * n:2 * n + 2]
        assert insert["ip"] is None and custom["ip"] is None
        assert insert["detail"] == {"ip_raw": raw[:100],
                                    "statement": "INSERT INTO note VALUES ($1, ?)"}
        assert custom["detail"] == {"k": 1, "ip_raw": raw[:100]}


def test_capture_and_log_event_read_an_address_alike(
    db: Database, app: psycopg.Connection
) -> None:
    # Blank is no address; padding is trimmed; the raw copy is the trimmed text.
    raws = ["   ", "  10.0.0.9  ", "  bad ip  "]
    for n, raw in enumerate(raws):
        with app.transaction():
            app.execute("SELECT set_config('audit.actor_id', 'u1', true)")
            app.execute("SELECT set_config('audit.ip', %s, true)", [raw])
            app.execute("INSERT INTO note VALUES (%s, 'x')", [n])
            app.execute("SELECT audit.log_event(action => 'EXPORT')")
    recorded = [(e["ip"], e["detail"]) for e in events(db)]
    assert recorded == [(None, None), (None, None),
                        ("10.0.0.9", None), ("10.0.0.9", None),
                        (None, {"ip_raw": "bad ip"}), (None, {"ip_raw": "bad ip"})]


def test_valid_addresses_are_stored_as_inet(db: Database, app: psycopg.Connection) -> None:
    for raw in (" 192.168.0.7 ", "2001:db8::1", "10.0.0.0/8"):
        with app.transaction():
            app.execute("SELECT set_config('audit.ip', %s, true)", [raw])
            app.execute("SELECT audit.log_event(action => 'EXPORT')")
    assert [(e["ip"], e["detail"]) for e in events(db)] == [
        ("192.168.0.7", None), ("2001:db8::1", None), ("10.0.0.0/8", None)]


def test_multi_kilobyte_values_are_cut_to_their_documented_bounds(
    db: Database, app: psycopg.Connection
) -> None:
    long = {f: ("é" if f == "actor_name" else f[0]) * 6000 for f in BOUNDS}
    with app.transaction():
        for field, value in long.items():
            app.execute("SELECT set_config(%s, %s, true)", [f"audit.{field}", value])
        app.execute("INSERT INTO note VALUES (1, 'x')")
        app.execute("SELECT audit.log_event(action => 'EXPORT')")
        app.execute("SELECT audit.log_event(action => 'LOGIN', actor_id => %s, actor_name => %s)",
                    ["9" * 9000, "ü" * 9000])
    insert, custom, login = events(db)
    for event in (insert, custom):
        for field, bound in BOUNDS.items():
            assert event[field] == long[field][:bound], field
    assert (login["actor_id"], login["actor_name"]) == ("9" * 256, "ü" * 256)


def test_log_event_detail_over_64_kib_is_kept_as_a_marked_head(
    db: Database, app: psycopg.Connection
) -> None:
    fits = {"note": "a" * 60000}
    huge = {"note": "b" * 100000}
    for detail in (fits, huge):
        app.execute("SELECT audit.log_event(action => 'EXPORT', detail => %s::jsonb)",
                    [json.dumps(detail)])
    kept, cut = (e["detail"] for e in events(db))
    assert kept == fits
    assert cut["truncated"] is True
    assert cut["original_bytes"] == len(json.dumps(huge))
    assert cut["head"] == json.dumps(huge)[:4096]


def test_nul_bytes_are_refused_before_anything_is_written(
    db: Database, app: psycopg.Connection
) -> None:
    with pytest.raises(psycopg.DataError, match="NUL"):
        with app.transaction():
            app.execute("INSERT INTO note VALUES (1, 'x')")
            app.execute("SELECT set_config('audit.actor_name', %s, true)", ["Ann\x00Admin"])
    with pytest.raises(psycopg.DataError, match="NUL"):
        app.execute("SELECT audit.log_event(action => 'LOGIN', actor_name => %s)", ["a\x00b"])
    # Inside JSON, \u0000 is refused by the server.
    with pytest.raises(psycopg.errors.UntranslatableCharacter):
        app.execute("SELECT audit.log_event(action => 'LOGIN', detail => %s::jsonb)",
                    ['{"user": "a\\u0000b"}'])
    assert events(db) == []
    assert app.execute("SELECT count(*) FROM note").fetchone() == (0,)


def test_invalid_utf8_is_refused_by_the_server(db: Database, app: psycopg.Connection) -> None:
    with pytest.raises(psycopg.errors.CharacterNotInRepertoire, match="invalid byte sequence"):
        with app.transaction():
            app.execute("INSERT INTO note VALUES (1, 'x')")
            app.execute("SELECT set_config('audit.user_agent', "
                        "convert_from('\\x4dc328ff'::bytea, 'UTF8'), true)")
    # Raw bytes on the wire, past the driver's encoder.
    app.pgconn.exec_(b"BEGIN")
    result = app.pgconn.exec_(b"SELECT set_config('audit.actor_name', 'A\xff\xfeB', true)")
    assert result.error_field(psycopg.pq.DiagnosticField.SQLSTATE) == b"22021"
    app.pgconn.exec_(b"ROLLBACK")
    # A client that declares LATIN1 gets its bytes converted, never stored raw.
    app.execute("SET client_encoding = 'LATIN1'")
    app.pgconn.exec_(b"BEGIN")
    app.pgconn.exec_(b"SELECT set_config('audit.actor_name', 'Ren\xe9', true)")
    app.pgconn.exec_(b"SELECT audit.log_event(action => 'LOGIN')")
    app.pgconn.exec_(b"COMMIT")
    assert [e["actor_name"] for e in events(db)] == ["René"]


def test_log_event_refuses_verbs_the_database_records_itself(
    db: Database, app: psycopg.Connection
) -> None:
    for action in ["INSERT", "UPDATE", "DELETE", "TRUNCATE", "ADMIN_CREATE", "ADMIN_DELETE",
                   "TRACKING_ENABLED", "TRACKING_DISABLED", "RETENTION"]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege,
                           match=f"^pg-audit: action {action} is reserved"):
            app.execute("SELECT audit.log_event(action => %s)", [action])
    assert events(db) == []


def test_log_event_refuses_malformed_actions(db: Database, app: psycopg.Connection) -> None:
    for action in ["login", "Login", "LOG IN", "", "1LOGIN", "A" * 64, "LOGIN;", None]:
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="upper-case verb"):
            app.execute("SELECT audit.log_event(action => %s)", [action])
    assert events(db) == []


def test_log_event_outcome_defaults_and_validation(db: Database, app: psycopg.Connection) -> None:
    ids = []
    for action, outcome in [("LOGIN", None), ("LOGOUT", None), ("LOGIN_FAILED", None),
                            ("ACCESS_DENIED", None), ("EXPORT", None), ("LOGIN", "failure")]:
        (new_id,) = app.execute("SELECT audit.log_event(action => %s, outcome => %s)",
                                [action, outcome]).fetchone()
        ids.append(new_id)
    recorded = events(db)
    assert [e["id"] for e in recorded] == ids
    assert [e["outcome"] for e in recorded] == [
        "success", "success", "failure", "failure", None, "failure"]
    with pytest.raises(psycopg.errors.InvalidParameterValue,
                       match="outcome must be success or failure"):
        app.execute("SELECT audit.log_event(action => 'LOGIN', outcome => 'maybe')")
    assert len(events(db)) == 6
