"""The ``pg-audit`` command line against a real server: in-process through
``main([...])``, and once through the installed console script."""

from __future__ import annotations

import contextlib
import csv
import decimal
import io
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import psycopg
import pytest
from pgtest import printed

from pg_audit_schema._common import EXIT_ERROR
from pg_audit_schema._export import csv_cell
from pg_audit_schema.cli import main
from pg_audit_schema.events import ANONYMOUS, EXPORT_COLUMNS, actor_label, value_text
from pg_audit_schema.installer import latest_version

SCRIPT = Path(sys.executable).parent / "pg-audit"


def run(capsys: pytest.CaptureFixture[str], dsn: str, *argv: str) -> tuple[int, str, str]:
    code = main(["--dsn", dsn, *argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *fragments: str) -> None:
    assert code != 0
    assert "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("pg-audit: ")
    for fragment in fragments:
        assert fragment in lines[0], lines[0]


def test_install_then_install_again_then_upgrade(
    empty_db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = empty_db.conninfo()
    code, out, err = run(capsys, dsn, "upgrade")
    assert_one_line_error(code, err, "not installed", "pg-audit install")
    code, out, _ = run(capsys, dsn, "install")
    assert code == 0 and "to version" in out and "0003_reporting" in out
    code, out, _ = run(capsys, dsn, "install")
    assert code == 0 and "nothing to do" in out
    code, out, _ = run(capsys, dsn, "upgrade")
    assert code == 0 and "nothing to do" in out
    with psycopg.connect(dsn) as conn:
        assert conn.execute("SELECT count(*) FROM audit.event").fetchone() == (0,)


def test_status_reports_versions_tracking_roles_and_no_warning_when_healthy(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE t (id int PRIMARY KEY, secret text)")
        app.execute("SELECT audit.enable_tracking('t', '{secret}')")
        app.execute("INSERT INTO t VALUES (1, 'x')")
    code, out, err = run(capsys, db.conninfo(roles["reader"]), "status")
    assert code == 0, err
    latest = latest_version()
    assert f"version {latest} installed, {latest} available (up to date)" in out
    assert "public.t (excluded: secret)" in out
    assert "events:   2 " in out  # TRACKING_ENABLED and the INSERT
    assert "INSERT at" in out
    assert f"audit_reader: {roles['reader']}" in out
    assert f"audit_writer: {roles['app']}" in out
    # The fixture's deliberately misconfigured login is the only thing to warn about.
    assert f"warnings: 1\n  ! login role {roles['ownermember']} holds audit_owner" in out


def test_status_warns_about_what_weakens_the_trail(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE t (id int PRIMARY KEY)")
        app.execute("SELECT audit.enable_tracking('t')")
    with db.connect() as su:  # only a superuser gets past the DDL guard
        su.execute("ALTER TABLE t DROP CONSTRAINT t_pkey")
        su.execute("ALTER TABLE t ENABLE TRIGGER audit_capture_update")
        su.execute("ALTER EVENT TRIGGER audit_guard_drop DISABLE")
    code, out, _ = run(capsys, db.conninfo(), "status")
    assert code == 0
    warnings = out.split("warnings:", 1)[1]
    assert "capture triggers of public.t are not ENABLE ALWAYS" in warnings
    assert "public.t has no primary key" in warnings
    assert "connected as superuser" in warnings
    assert f"login role {roles['ownermember']} holds audit_owner" in warnings
    assert "audit_guard_drop" in warnings


def test_track_and_untrack(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    dsn = db.conninfo(roles["app"])
    with db.connect(roles["app"]) as app, db.connect() as su:
        app.execute("CREATE TABLE t (id int PRIMARY KEY, token text, note text)")
        code, out, _ = run(capsys, dsn, "track", "t", "--exclude", "token, note")
        assert code == 0 and "tracking public.t" in out and "token" in out
        app.execute("INSERT INTO t VALUES (1, 'secret', 'n')")
        assert su.execute(
            "SELECT new_values FROM audit.event WHERE action = 'INSERT'"
        ).fetchone() == (printed({"id": 1}),)
        code, out, _ = run(capsys, dsn, "untrack", "t")
        assert code == 0 and "no longer tracking public.t" in out
        app.execute("INSERT INTO t VALUES (2, 'secret', 'n')")
        assert su.execute(
            "SELECT count(*) FROM audit.event WHERE action = 'INSERT'"
        ).fetchone() == (1,)
    code, _, err = run(capsys, dsn, "track", "nosuchtable")
    assert_one_line_error(code, err, "nosuchtable", "does not exist")
    code, _, err = run(capsys, dsn, "track", "t", "--exclude", "nosuchcolumn")
    assert_one_line_error(code, err, "no column")


def test_expected_failures_are_one_line_with_a_non_zero_exit(
    db: Any, empty_db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, _, err = run(
        capsys, "host=/nonexistent-socket-dir port=1 dbname=x connect_timeout=2", "status"
    )
    assert_one_line_error(code, err, "cannot connect")
    code, _, err = run(capsys, "this is not a dsn", "status")
    assert_one_line_error(code, err, "cannot connect")
    for command in (["status"], ["report"], ["export"], ["tail", "--timeout", "1"]):
        code, _, err = run(capsys, empty_db.conninfo(), *command)
        assert_one_line_error(code, err, "not installed")
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE t (id int PRIMARY KEY)")
    code, _, err = run(capsys, db.conninfo(roles["reader"]), "track", "t")
    assert_one_line_error(code, err, "permission denied")
    code, _, err = run(capsys, empty_db.conninfo(roles["reader"]), "install")
    assert_one_line_error(code, err, "installing the audit schema failed")
    code, _, err = run(capsys, db.conninfo(roles["stranger"]), "status")
    assert_one_line_error(code, err, "permission denied", "audit_reader")
    code, _, err = run(capsys, db.conninfo(roles["stranger"]), "export")
    assert_one_line_error(code, err, "permission denied")
    code, _, err = run(capsys, db.conninfo(), "report", "--since", "not a time")
    assert_one_line_error(code, err, "--since", "not a time")


def test_report_summarises_a_period(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE t (id int PRIMARY KEY, v int)")
        app.execute("SELECT audit.enable_tracking('t')")
        with app.transaction():
            app.execute(
                "SELECT audit.set_context(actor_id => '7', actor_name => 'alice', "
                "ip => '192.0.2.1')"
            )
            app.execute("INSERT INTO t SELECT g, 0 FROM generate_series(1, 3) g")
            app.execute("UPDATE t SET v = 1 WHERE id = 1")
        with app.transaction():
            app.execute("SELECT audit.set_context(ip => '203.0.113.5')")
            app.execute(
                "SELECT audit.log_event('LOGIN_FAILED', detail => '{\"username\": \"bob\"}') "
                "FROM generate_series(1, 6)"
            )
        app.execute(
            "CREATE TABLE public.auth_user_groups (id int PRIMARY KEY, user_id int, group_id int)"
        )
        app.execute("SELECT audit.enable_tracking('public.auth_user_groups')")
        with app.transaction():
            app.execute(
                "SELECT audit.set_context(actor_id => '1', actor_name => 'root', "
                "ip => '192.0.2.99')"
            )
            app.execute("INSERT INTO public.auth_user_groups VALUES (1, 42, 3)")
    code, out, err = run(capsys, db.conninfo(roles["reader"]), "report", "--since", "1h")
    assert code == 0, err
    assert "Events by action (13 in all)" in out
    privileges = out.split("Privilege changes", 1)[1].split("Busiest tables", 1)[0]
    assert "group" in privileges and "granted" in privileges and "user 42" in privileges
    assert "root" in privileges and "192.0.2.99" in privileges
    assert "LOGIN_FAILED      6" in out or "LOGIN_FAILED  6" in out.replace("      ", "  ")
    assert "alice" in out
    bursts = out.split("Failed-login bursts", 1)[1].split("Privilege changes", 1)[0]
    assert "bob" in bursts and "203.0.113.5" in bursts
    busiest = out.split("Busiest tables", 1)[1]
    assert "public.t" in busiest
    code, out, _ = run(
        capsys,
        db.conninfo(roles["reader"]),
        "report",
        "--since",
        "2000-01-01",
        "--until",
        "2000-01-02",
    )
    assert code == 0 and "(0 in all)" in out


HOSTILE = [
    '=HYPERLINK("http://evil","x")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tTAB",
    "line one\r\nforged,line",
    "sep\u2028arated",
    "back\\slash",
]


def _hostile_events(db: Any, roles: dict[str, str]) -> None:
    with db.connect(roles["app"]) as app:
        for i, text in enumerate(HOSTILE):
            with app.transaction():
                app.execute(
                    "SELECT audit.set_context(actor_id => %s, actor_name => %s, user_agent => %s)",
                    [str(i), text, text],
                )
                app.execute(
                    "SELECT audit.log_event('LOGIN', detail => jsonb_build_object('x', %s::text))",
                    [text],
                )


def test_export_csv_is_safe_against_injection(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _hostile_events(db, roles)
    code, out, err = run(
        capsys, db.conninfo(roles["reader"]), "export", "--format", "csv", "--since", "1h"
    )
    assert code == 0, err
    physical = out.split("\r\n")
    assert physical[-1] == ""
    assert len(physical) - 1 == len(HOSTILE) + 1  # header + one line per event
    for line in physical[:-1]:
        assert "\n" not in line and "\r" not in line and "\u2028" not in line
    records = list(csv.DictReader(io.StringIO(out, newline="")))
    assert len(records) == len(HOSTILE)
    for record in records:
        for cell in record.values():
            assert not cell.startswith(("=", "+", "-", "@", "\t", "\r")), cell
    names = [r["actor_name"] for r in records]
    assert names[0].startswith("'=HYPERLINK")
    assert names[5] == "line one\\r\\nforged,line"
    assert names[7] == "back\\\\slash"
    assert "'" + "=HYPERLINK" not in records[0]["detail"]  # JSON cells start with {


def test_csv_cell_neutralises_every_formula_start() -> None:
    for text in HOSTILE:
        cell = csv_cell(text)
        assert not cell.startswith(("=", "+", "-", "@", "\t", "\r"))
        assert cell.isprintable()
    assert csv_cell({"a": "x\u2028y"}) == '{"a":"x\\u2028y"}'
    assert csv_cell(None) == ""


def test_export_jsonl_streams_every_event_one_per_line(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    _hostile_events(db, roles)
    with db.connect(roles["app"]) as app:
        # More than one batch of the server-side cursor.
        app.execute(
            "SELECT audit.log_event('PING', detail => jsonb_build_object('n', g)) "
            "FROM generate_series(1, 4500) g"
        )
    target = tmp_path / "events.jsonl"
    code, _, err = run(
        capsys, db.conninfo(roles["reader"]), "export", "--since", "1h", "-o", str(target)
    )
    assert code == 0, err
    assert "4508 events exported" in err
    text = target.read_text(encoding="utf-8")
    lines = text.splitlines()  # splits at U+2028 too: it must not occur raw
    assert len(lines) == 4500 + len(HOSTILE)
    events = [json.loads(line) for line in lines]
    assert [e["id"] for e in events] == sorted(e["id"] for e in events)
    assert events[5]["actor_name"] == HOSTILE[5]
    assert events[6]["actor_name"] == HOSTILE[6]


def _insert_until_done(
    db: Any, roles: dict[str, str], done: threading.Event | Any, action: str = "LOGIN"
) -> None:
    with db.connect(roles["app"]) as app:
        for i in range(200):
            if done():
                return
            app.execute("SELECT audit.log_event('NOISE', actor_id => 'x')")
            app.execute(
                "SELECT audit.log_event(%s, actor_id => 'carol', detail => "
                "jsonb_build_object('n', %s::int))",
                [action, i],
            )
            time.sleep(0.1)


def _tail_in_background(argv: list[str]) -> tuple[threading.Thread, io.StringIO, list[int]]:
    """Runs ``pg-audit`` with argv in a thread; returns the thread, its stdout
    and a list that receives its exit code."""
    out = io.StringIO()
    result: list[int] = []

    def follow() -> None:
        with contextlib.redirect_stdout(out):
            result.append(main(argv))

    thread = threading.Thread(target=follow)
    thread.start()
    return thread, out, result


def test_tail_prints_an_event_committed_by_another_connection(
    db: Any, roles: dict[str, str]
) -> None:
    thread, out, result = _tail_in_background(
        [
            "--dsn",
            db.conninfo(roles["reader"]),
            "tail",
            "--action",
            "login",
            "--actor",
            "carol",
            "--limit",
            "2",
            "--timeout",
            "30",
        ]
    )
    _insert_until_done(db, roles, lambda: not thread.is_alive())
    thread.join(35)
    assert result == [0]
    lines = out.getvalue().splitlines()
    assert len(lines) == 2, lines
    for line in lines:
        assert " LOGIN(success) by carol " in line and "NOISE" not in line


def test_tail_stops_at_its_timeout_with_nothing_to_show(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, _ = run(capsys, db.conninfo(roles["reader"]), "tail", "--timeout", "0.5")
    assert code == 0 and out == ""


def test_console_script_tail_json_and_status_with_pg_environment(
    db: Any, roles: dict[str, str], pg_server: Any
) -> None:
    assert SCRIPT.exists(), SCRIPT
    env = pg_server.libpq_env(db.name, roles["reader"])
    proc = subprocess.Popen(
        [str(SCRIPT), "tail", "--json", "--limit", "1", "--timeout", "30"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    _insert_until_done(db, roles, lambda: proc.poll() is not None, action="LOGOUT")
    out, err = proc.communicate(timeout=35)
    assert proc.returncode == 0, err
    # NOISE events come first in each round, but --limit 1 may see either: parse it.
    event = json.loads(out.strip().splitlines()[0])
    assert event["action"] in {"NOISE", "LOGOUT"} and event["db_role"] == roles["app"]

    status = subprocess.run(
        [str(SCRIPT), "status"], env=env, capture_output=True, text=True, timeout=60
    )
    assert status.returncode == 0, status.stderr
    assert "installed" in status.stdout
    bad = subprocess.run(
        [str(SCRIPT), "status"],
        env={**env, "PGDATABASE": "no_such_db_x"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert bad.returncode != 0 and "Traceback" not in bad.stderr
    assert bad.stderr.strip().startswith("pg-audit: cannot connect")
    assert os.linesep == "\n" or True


def _wait_until_listening(db: Any, user: str) -> None:
    """Until tail has read the newest id and waits (idle after that or a later poll)."""
    with db.connect() as su:
        for _ in range(300):
            row = su.execute(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s "
                "AND state = 'idle' AND (query LIKE 'SELECT coalesce(max(id), 0)%%' "
                "OR query LIKE 'SELECT id, occurred_at%%')",
                [db.name, user],
            ).fetchone()
            if row and row[0]:
                return
            time.sleep(0.1)
    raise AssertionError("tail did not start listening")


def test_tail_shows_an_event_whose_transaction_commits_after_a_newer_one(
    db: Any, roles: dict[str, str]
) -> None:
    """Ids are handed out at insert, not at commit: a slow transaction's event
    has a lower id than events committed before it, and must not be skipped."""
    with db.connect(roles["app"]) as slow, db.connect(roles["app"]) as fast:
        thread, out, result = _tail_in_background(
            ["--dsn", db.conninfo(roles["reader"]), "tail", "--limit", "2", "--timeout", "30"]
        )
        _wait_until_listening(db, roles["reader"])
        slow.execute("BEGIN")
        slow.execute("SELECT audit.log_event('SLOW', actor_id => 'slow')")
        fast.execute("SELECT audit.log_event('FAST', actor_id => 'fast')")
        for _ in range(100):
            if "FAST" in out.getvalue():
                break
            time.sleep(0.1)
        slow.execute("COMMIT")
        thread.join(35)
    assert result == [0]
    lines = out.getvalue().splitlines()
    assert [line.split()[3] for line in lines] == ["FAST", "SLOW"], lines


def test_help_lists_every_subcommand_and_the_exit_statuses(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["--help"]) == 0
    out = capsys.readouterr().out
    for command in ("install", "upgrade", "status", "track", "untrack", "tail", "report", "export"):
        assert f"    {command} " in out
    statuses = out.split("exit status:", 1)[1]
    for code, meaning in [
        ("0", "success"), ("1", "verify, archive verify or archive show found"),
        ("2", "any other failure"),
        ("3", "unexpected"), ("130", "interrupted"), ("141", "went away"),
    ]:
        assert f"\n  {code} " in statuses and meaning in statuses, (code, statuses)


def test_status_estimates_a_large_log_instead_of_counting_it(
    db: Any, roles: dict[str, str]
) -> None:
    from pg_audit_schema._status import collect, render

    with db.connect(roles["app"]) as app:
        app.execute("SELECT audit.log_event('PING') FROM generate_series(1, 50)")
    with db.connect() as su:
        su.execute("ANALYZE audit.event")
    with db.connect(roles["reader"]) as reader:
        exact = collect(reader)
        estimated = collect(reader, exact_count_below=10)
    assert (exact.events, exact.events_estimated) == (50, False)
    assert estimated.events_estimated and estimated.events == 50
    assert "events:   ~50 " in render(estimated)


def test_export_reads_through_a_server_side_cursor(db: Any, roles: dict[str, str]) -> None:
    from pg_audit_schema._export import rows

    with db.connect(roles["app"]) as app:
        app.execute("SELECT audit.log_event('PING') FROM generate_series(1, 10)")
    with db.connect(roles["reader"]) as conn:
        since, until = conn.execute("SELECT now() - interval '1 hour', now()").fetchone()  # type: ignore[misc]
        events = rows(conn, since, until)
        first = next(events)
        # The rest waits on the server, in a cursor of this transaction.
        cursors = conn.execute("SELECT name FROM pg_cursors").fetchall()
        assert cursors == [("pg_audit_export",)]
        assert first["action"] == "PING" and len(list(events)) == 9


def test_dsn_may_follow_the_command_as_the_contract_writes_it(
    empty_db: Any, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["install", "--dsn", empty_db.conninfo()]) == 0
    assert main(["status", "--dsn", empty_db.conninfo()]) == 0
    assert "installed" in capsys.readouterr().out


def _exact_values(db: Any, roles: dict[str, str]) -> None:
    """A captured row (values as their text), then the same numbers as JSON
    numbers, as an event written before step 6 holds them."""
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE price (id int PRIMARY KEY, big numeric(30,10), unit numeric)")
        app.execute("SELECT audit.enable_tracking('price')")
        with app.transaction():
            app.execute("SELECT audit.set_context(actor_id => '7', ip => '203.0.113.9')")
            app.execute("INSERT INTO price VALUES (1, 12345678901234567890.1234567891, 12.50)")
    with db.connect() as su:
        su.execute(
            "INSERT INTO audit.event (action, actor_id, ip, table_name, row_key, new_values) "
            "VALUES ('INSERT', '7', '203.0.113.9', 'public.price', '{\"id\": 2}', "
            "'{\"id\": 2, \"big\": 12345678901234567890.1234567891, \"unit\": 12.50}')"
        )


def test_export_writes_numbers_addresses_and_times_exactly_as_stored(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    _exact_values(db, roles)
    dsn = db.conninfo(roles["reader"])
    code, out, err = run(capsys, dsn, "export", "--since", "1h")
    assert code == 0, err
    captured, legacy = out.splitlines()[-2:]
    # Captured text stays a JSON string, byte for byte.
    assert '"big": "12345678901234567890.1234567891"' in captured, captured
    assert '"unit": "12.50"' in captured and '"ip":"203.0.113.9"' in captured, captured
    event = json.loads(captured)
    assert event["new_values"]["unit"] == "12.50"
    assert list(event) == list(EXPORT_COLUMNS)
    assert event["occurred_at"].endswith("+00:00")
    # A JSON number of an older event keeps every digit and its scale.
    assert '"big": 12345678901234567890.1234567891' in legacy, legacy
    assert '"unit": 12.50' in legacy, legacy
    event = json.loads(legacy, parse_float=decimal.Decimal)
    assert event["new_values"]["unit"] == decimal.Decimal("12.50")
    assert event["new_values"]["big"] == decimal.Decimal("12345678901234567890.1234567891")
    code, out, err = run(capsys, dsn, "export", "--since", "1h", "--format", "csv")
    assert code == 0, err
    records = list(csv.DictReader(io.StringIO(out, newline="")))
    assert list(records[0]) == list(EXPORT_COLUMNS)
    captured_values, legacy_values = (r["new_values"] for r in records[-2:])
    assert '"big": "12345678901234567890.1234567891"' in captured_values
    assert '"unit": "12.50"' in captured_values
    assert '"big": 12345678901234567890.1234567891' in legacy_values
    assert '"unit": 12.50' in legacy_values
    assert records[-2]["ip"] == records[-1]["ip"] == "203.0.113.9"


def test_tail_and_report_spell_values_addresses_and_who_as_export_does(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    from pg_audit_schema._export import exact, select_list
    from pg_audit_schema._tail import one_line

    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE t (id int PRIMARY KEY, v numeric)")
        app.execute("SELECT audit.enable_tracking('t')")
        with app.transaction():  # a request without a signed-in user
            app.execute("SELECT audit.set_context(ip => '198.51.100.4')")
            app.execute("INSERT INTO t VALUES (1, 1.10)")
        app.execute("UPDATE t SET v = 2.500")  # no context at all: the login did it
    with db.connect() as su:  # the same change as an event before step 6 holds it
        su.execute(
            "INSERT INTO audit.event (action, db_role, table_name, row_key, old_values, "
            "new_values) VALUES ('UPDATE', 'postgres', 'public.t', '{\"id\": 1}', "
            "'{\"v\": 1.10}', '{\"v\": 2.500}')"
        )
    with db.connect(roles["reader"]) as reader:
        rows = reader.execute(
            f"SELECT {select_list()} FROM audit.event "
            "WHERE table_name = 'public.t' AND action IN ('INSERT', 'UPDATE') ORDER BY id"
        ).fetchall()
    cols = list(EXPORT_COLUMNS)
    insert, update, legacy = (one_line(exact(dict(zip(cols, r, strict=True)))) for r in rows)
    assert " by anonymous from 198.51.100.4 " in insert, insert
    assert f" by {roles['app']} db={roles['app']} " in update, update
    # The text as captured, and an older event's JSON numbers, read the same.
    assert 'public.t {"id":"1"} v: 1.10 -> 2.500' in update, update
    assert 'public.t {"id":1} v: 1.10 -> 2.500' in legacy, legacy
    code, out, err = run(capsys, db.conninfo(roles["reader"]), "report", "--since", "1h")
    assert code == 0, err
    actors = out.split("Top actors", 1)[1].split("Failed-login bursts", 1)[0]
    assert "anonymous" in actors and roles["app"] in actors and "(anonymous)" not in actors


def test_values_read_as_their_text_and_never_ambiguously() -> None:
    assert value_text("12.50") == "12.50" and value_text("MUG-01") == "MUG-01"
    assert value_text(decimal.Decimal("12345678901234567890.1234567891")) == (
        "12345678901234567890.1234567891"
    )
    assert value_text(None) == "null" and value_text("null") == '"null"'
    assert value_text("") == '""' and value_text("a -> b, c") == '"a -> b, c"'
    assert value_text("x\ny") == '"x\\ny"' and value_text('"q"') == '"\\"q\\""'
    assert value_text(True) == "true" and value_text({"a": decimal.Decimal("1.0")}) == '{"a":1.0}'


def test_actor_label_is_one_vocabulary() -> None:
    assert actor_label("7", "alice", "shop_app", "192.0.2.1") == "alice"
    assert actor_label("7", None, "shop_app") == "7"
    assert actor_label(None, None, "shop_app", "192.0.2.1") == ANONYMOUS == "anonymous"
    assert actor_label(None, None, "shop_app", None, None, "req-1") == "anonymous"
    assert actor_label(None, None, "postgres") == "postgres"


def test_failures_are_one_line_with_the_documented_status(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    dsn = db.conninfo(roles["reader"])
    cases = [
        (["verify", "--expect-file", str(tmp_path / "missing.txt")], "missing.txt"),
        (["export", "-o", "/no/such/dir/x.jsonl"], "/no/such/dir/x.jsonl"),
        (["export", "--since", "now", "--until", "1d"], "reversed"),
        (["report", "--since", "2026-02-01", "--until", "2026-01-01"], "reversed"),
        (["report", "--threshold", "-1"], "more than 0"),
        (["report", "--threshold", "0"], "more than 0"),
        (["report", "--window", "-5 minutes"], "--window"),
        (["tail", "--limit", "-1"], "0 or more"),
        (["export", "--format", "xml"], "invalid choice"),
        (["nosuchcommand"], "invalid choice"),
    ]
    for argv, fragment in cases:
        code, out, err = run(capsys, dsn, *argv)
        assert code == EXIT_ERROR, (argv, code, err)
        assert_one_line_error(code, err, fragment)


def test_untrack_of_a_table_never_tracked_says_so(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE t (id int PRIMARY KEY)")
    code, out, _ = run(capsys, db.conninfo(roles["app"]), "untrack", "t")
    assert code == 0 and out.strip() == "pg-audit: public.t is not tracked; nothing to stop"
    with db.connect() as su:
        assert su.execute(
            "SELECT count(*) FROM audit.event WHERE action = 'TRACKING_DISABLED'"
        ).fetchone() == (0,)


def test_export_into_a_closed_pipe_ends_quietly(
    db: Any, roles: dict[str, str], pg_server: Any
) -> None:
    with db.connect(roles["app"]) as app:
        app.execute("SELECT audit.log_event('PING') FROM generate_series(1, 20000)")
    env = pg_server.libpq_env(db.name, roles["reader"])
    done = subprocess.run(
        ["bash", "-c", f"'{SCRIPT}' export --since 1h | head -n 1; echo \"${{PIPESTATUS[0]}}\""],
        env=env, capture_output=True, text=True, timeout=120,
    )
    lines = done.stdout.splitlines()
    assert json.loads(lines[0])["action"] == "PING"
    assert lines[1] == "141", done.stdout
    assert done.stderr == "", done.stderr


def test_server_warnings_print_once_without_a_doubled_prefix(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with db.connect() as su:
        su.execute("DROP EVENT TRIGGER audit_guard_drop")
        su.execute(f"ALTER ROLE {roles['app']} CREATEROLE")
    try:
        code, out, err = run(capsys, db.conninfo(roles["app"]), "install")
    finally:
        with db.connect() as su:
            su.execute(f"ALTER ROLE {roles['app']} NOCREATEROLE")
    assert code == 0, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("pg-audit: warning: installed without"), err
    assert "pg-audit: pg-audit" not in err


def test_status_shows_seals_retention_partitions_and_the_same_warnings_to_readers(
    db: Any, roles: dict[str, str], capsys: pytest.CaptureFixture[str]
) -> None:
    with db.connect(roles["app"]) as app:
        app.execute("SELECT audit.log_event('PING') FROM generate_series(1, 3)")
        app.execute("SELECT audit.seal()")
        app.execute("SELECT audit.log_event('PONG')")
    with db.connect() as su:  # a stray: an event no monthly partition takes
        su.execute(
            "INSERT INTO audit.event (occurred_at, action) VALUES (now() + interval '2 years', 'X')"
        )
        su.execute("ALTER EVENT TRIGGER audit_guard_drop DISABLE")
    code, as_reader, err = run(capsys, db.conninfo(roles["reader"]), "status")
    assert code == 0, err
    assert "sealed:   batch 1 at " in as_reader
    assert "unsealed: 2 events" in as_reader  # PONG and the stray
    assert "retention: keep 12 months" in as_reader
    ahead = as_reader.split("partitions ahead: ", 1)[1].splitlines()[0]
    assert ahead.count("audit.event_") == 4, ahead  # this month and three ahead
    assert "events wait in audit.event_default" in as_reader
    assert "DDL guards missing or not ENABLE ALWAYS: audit_guard_drop" in as_reader
    code, as_superuser, _ = run(capsys, db.conninfo(), "status")
    reader_warnings = as_reader.split("warnings:", 1)[1].splitlines()[1:]
    superuser_warnings = [
        w for w in as_superuser.split("warnings:", 1)[1].splitlines()[1:]
        if "connected as superuser" not in w
    ]
    assert reader_warnings == superuser_warnings


def test_status_reads_the_default_partition_through_the_log_alone(
    db: Any, roles: dict[str, str]
) -> None:
    """The stray check prunes to audit.event_default: it never reads the months."""
    from pg_audit_schema._status import _default_partition_has_rows

    with db.connect(roles["reader"]) as reader:
        statements: list[str] = []
        original = reader.execute

        def spy(query: Any, params: Any = None, **kw: Any) -> Any:
            statements.append(str(query))
            return original(query, params, **kw)

        reader.execute = spy  # type: ignore[method-assign]
        assert _default_partition_has_rows(reader) is False
        query, = [s for s in statements if "EXISTS" in s]
        reader.execute = original  # type: ignore[method-assign]
        ranges = reader.execute(
            "SELECT range_from, range_to FROM audit.event_partition WHERE NOT is_default "
            "ORDER BY range_from"
        ).fetchall()
        plan = "\n".join(
            r[0] for r in reader.execute(
                "EXPLAIN " + query, [ranges[0][0], ranges[-1][1]]
            ).fetchall()
        )
    assert "event_default" in plan and "event_20" not in plan, plan
