"""`pg-audit demo` end to end, and the docker-compose setup it mirrors.

The demo runs as a subprocess exactly as `make demo` runs it (minus the CLI
wrapper), on its own embedded server; the tests check what it prints and that
nothing of it is left running afterwards.
"""

from __future__ import annotations

import os
import re
import shlex
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg
import pytest

from pg_audit_schema.demo import (
    APP_ROLE,
    INVESTIGATIONS,
    OUTSIDE_THE_APP,
    READER_ROLE,
    SPOOFED_IP,
    Browser,
    example_dir,
    form_fields,
    summarise,
    trail_table,
)
from pg_audit_schema.embedded import temporary_server

ROOT = Path(__file__).resolve().parent.parent
DEMO = [sys.executable, "-m", "pg_audit_schema.demo"]


def _processes_mentioning(text: str) -> list[str]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode()
            except OSError:
                continue
            if text in cmdline:
                found.append(f"{entry.name}: {cmdline}")
    return found


def _server_root(output: str) -> str:
    match = re.search(r"started in (/\S+)", output)
    assert match, output
    return match[1]


def _site_url(output: str) -> str:
    match = re.search(r"site running at (http://127\.0\.0\.1:\d+)", output)
    assert match, output
    return match[1]


def _assert_nothing_left(output: str) -> None:
    root = _server_root(output)
    assert not Path(root).exists(), f"{root} was not removed"
    assert _processes_mentioning(root) == [], "a postgres process of the demo survived"
    url = _site_url(output)
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/", timeout=2)


def _trail(output: str) -> list[str]:
    """The rows of the printed trail table."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("The audit trail"))
    header = next(i for i in range(start, len(lines)) if lines[i].startswith("time "))
    rows = []
    for line in lines[header + 2:]:
        if not line.strip():
            break
        rows.append(line)
    return rows


@pytest.fixture(scope="module")
def demo_output() -> str:
    done = subprocess.run(DEMO, cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stderr == "", done.stderr
    return done.stdout


def test_demo_exits_cleanly_and_leaves_nothing_running(demo_output: str) -> None:
    _assert_nothing_left(demo_output)
    assert demo_output.rstrip().endswith("nothing is left running.")


def test_demo_prints_the_trail_of_every_scenario_step(demo_output: str) -> None:
    rows = _trail(demo_output)
    actions = [row.split()[1] for row in rows]
    for action in ("LOGIN_FAILED", "LOGIN", "ADMIN_UPDATE", "UPDATE", "LOGOUT"):
        assert action in actions, demo_output
    assert "TRACKING_ENABLED" in demo_output and "shop_order (not card_token)" in demo_output
    admin = [r for r in rows if r.split()[1] == "ADMIN_UPDATE"]
    assert len(admin) == 1 and " alice " in admin[0] and 'shop.product 1 "Mug' in admin[0]
    admin_edit = [r for r in rows if r.split()[1] == "UPDATE" and "price 12.50->11.00" in r]
    assert len(admin_edit) == 1 and " alice " in admin_edit[0], demo_output
    # The bulk update: one statement, one event per product in stock (2 of 3).
    discount = [r for r in rows if "price 11.00->9.90" in r or "price 15.00->13.50" in r]
    assert len(discount) == 2, demo_output
    # No application user and no request: the database login that did it.
    dba = [r for r in rows if r.split()[2] == "postgres"]
    assert len(dba) == 1 and "stock 0->40" in dba[0], demo_output
    # The same word for "no user" as tail, report and export (events.actor_label).
    assert "[postgres" not in demo_output and "(anonymous)" not in demo_output


def test_demo_records_the_real_client_not_the_forged_header(demo_output: str) -> None:
    failed = [r for r in _trail(demo_output) if r.split()[1] == "LOGIN_FAILED"]
    assert len(failed) == 1, demo_output
    assert " 127.0.0.1 " in failed[0] and " anonymous " in failed[0]
    assert "The failed login was recorded from 127.0.0.1" in demo_output
    assert SPOOFED_IP not in "\n".join(_trail(demo_output))


def test_demo_shows_the_app_role_refused_deleting_the_log(demo_output: str) -> None:
    refused = [line for line in demo_output.splitlines() if "refused:" in line]
    assert refused and "ERROR:" in refused[0] and "event" in refused[0], demo_output


def test_demo_never_shows_the_excluded_card_token(demo_output: str) -> None:
    assert "tok_4242" not in demo_output
    order = [r for r in _trail(demo_output) if " shop_order " in r]
    assert len(order) == 1 and "card_token" not in order[0]


@pytest.fixture
def serving() -> Iterator[tuple[subprocess.Popen[str], list[str]]]:
    demo = subprocess.Popen(
        [*DEMO, "--serve"], cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        text=True,
    )
    lines: list[str] = []
    try:
        assert demo.stdout is not None
        for line in demo.stdout:
            lines.append(line)
            if line.startswith("Serving until Ctrl-C"):
                break
        else:
            pytest.fail("the demo ended before serving:\n" + "".join(lines))
        yield demo, lines
    finally:
        if demo.poll() is None:
            demo.send_signal(signal.SIGINT)
            try:
                demo.wait(timeout=60)
            except subprocess.TimeoutExpired:
                demo.kill()
                demo.wait()


def test_serve_keeps_site_and_database_up_until_ctrl_c(
    serving: tuple[subprocess.Popen[str], list[str]],
) -> None:
    demo, lines = serving
    output = "".join(lines)
    url = _site_url(output)
    with urllib.request.urlopen(url + "/admin/login/", timeout=10) as response:
        assert response.status == 200
    password = re.search(r"user alice, password (\S+)", output)
    assert password, output
    # The printed psql command works as printed.
    psql_line = next(line for line in lines if line.strip().startswith("psql:"))
    psql = shlex.split(psql_line.split("psql:", 1)[1])
    done = subprocess.run([*psql, "-XAtc", "SELECT count(*) FROM audit.event"],
                          capture_output=True, text=True, timeout=30)
    assert done.returncode == 0, done.stderr
    assert int(done.stdout) > 5
    # So do the investigation queries it suggests, as the reader it connects as.
    for query in INVESTIGATIONS:
        assert query in output
        done = subprocess.run([*psql, "-XAt", "-v", "ON_ERROR_STOP=1", "-c", query],
                              capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and done.stdout.strip(), (query, done.stderr)
        if query == OUTSIDE_THE_APP:  # docs/dba-guide.md's recipe: the DBA's change alone
            rows = done.stdout.strip().splitlines()
            assert len(rows) == 1 and "|postgres|psql|public.shop_product|" in rows[0], rows
    # The admin's audit viewer, as the superuser the demo printed, reads the same trail.
    alice = Browser(url)
    alice.get("/admin/login/")
    where, _ = alice.post("/admin/login/", {"username": "alice", "password": password[1],
                                            "next": "/admin/"})
    assert where == url + "/admin/"
    _, page = alice.get("/admin/django_bridge/auditevent/")
    assert "public.shop_product" in page and "UPDATE" in page
    time.sleep(0.5)
    demo.send_signal(signal.SIGINT)
    # An impatient second Ctrl-C, during the cleanup: it must not cut it short.
    time.sleep(0.3)
    second = demo.poll() is None
    if second:
        demo.send_signal(signal.SIGINT)
    rest, _ = demo.communicate(timeout=60)
    assert "Stopped; nothing is left running." in rest, output + rest
    # The second signal may land after the cleanup, as the interpreter exits.
    assert demo.returncode in ((0, -signal.SIGINT, 130) if second else (0,)), output + rest
    _assert_nothing_left(output + rest)


def test_demo_failing_midway_says_why_and_leaves_nothing_running() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        done = subprocess.run([*DEMO, "--port", str(port)], cwd=ROOT, capture_output=True,
                              text=True, timeout=300)
    assert done.returncode == 1, done.stdout + done.stderr
    assert done.stderr.startswith("pg-audit: the example site exited at start")
    assert "already in use" in done.stderr
    assert "Traceback" not in done.stderr
    root = _server_root(done.stdout)
    assert not Path(root).exists()
    assert _processes_mentioning(root) == []


def test_pg_audit_cli_offers_the_demo() -> None:
    """`make demo` runs `pg-audit demo`: the CLI must carry the subcommand."""
    done = subprocess.run([sys.executable, "-m", "pg_audit_schema.cli", "demo", "--help"],
                          cwd=ROOT, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "--serve" in done.stdout and "--port" in done.stdout


# ---------------------------------------------------------------------------
# Pieces of the demo
# ---------------------------------------------------------------------------


def test_summarise_shows_old_to_new_per_changed_column() -> None:
    assert summarise({"price": "12.50"}, {"price": "11.00"}, None) == "price 12.50->11.00"
    assert summarise(None, {"sku": "MUG-01", "stock": 3}, None) == "sku=MUG-01 stock=3"
    assert summarise(None, None, {"username": "alice"}) == "username=alice"
    assert summarise({"name": "a b"}, {"name": None}, None) == 'name "a b"->null'
    # Values as capture prints them, and the JSON numbers of older events, alike.
    assert summarise(None, {"is_staff": "t", "last_name": "", "note": "null"}, None) == (
        'is_staff=t last_name="" note="null"'
    )
    assert summarise({"price": Decimal("12.50")}, {"price": "11.00"}, None) == (
        "price 12.50->11.00"
    )


def test_trail_table_aligns_and_fits_the_width() -> None:
    lines = trail_table([["12:00:00", "UPDATE", "alice", "127.0.0.1", "shop_product", "1",
                          "x" * 300]], 100)
    assert all(len(line) <= 100 for line in lines)
    assert lines[2].endswith("~")
    assert lines[0].index("action") == lines[2].index("UPDATE")


def test_form_fields_pick_the_form_with_the_field() -> None:
    page = """
      <form id="logout-form" method="post">
        <input type="hidden" name="csrfmiddlewaretoken" value="t"></form>
      <form method="post"><input type="hidden" name="csrfmiddlewaretoken" value="t">
        <input name="price" value="12.50"><input type="checkbox" name="off">
        <input type="checkbox" name="on" checked><select name="s"><option value="1">
        <option value="2" selected></select><textarea name="t">hi</textarea>
        <input type="submit" name="_save" value="Save"></form>"""
    assert form_fields(page, "price") == [
        ("csrfmiddlewaretoken", "t"), ("price", "12.50"), ("on", "on"), ("s", "2"), ("t", "hi"),
    ]


# ---------------------------------------------------------------------------
# docker-compose.yml
# ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:  # type: ignore[type-arg]
    yaml = pytest.importorskip("yaml", reason="PyYAML is part of the test extra")
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())  # type: ignore[no-any-return]


def test_compose_runs_postgres_18_and_the_example_site(compose: dict) -> None:  # type: ignore[type-arg]
    services = compose["services"]
    assert set(services) == {"db", "site"}
    assert services["db"]["image"] == "postgres:18"
    site = services["site"]
    assert site["depends_on"]["db"]["condition"] == "service_healthy"
    assert site["working_dir"] == "/src/example"
    assert ".:/src" in site["volumes"]
    for volume in services["db"]["volumes"]:
        source = volume.split(":")[0]
        assert (ROOT / source).exists(), f"{source} is mounted but missing"
    assert "manage.py migrate" in site["command"] and "seed_shop" in site["command"]


def test_compose_env_is_what_the_example_settings_read(compose: dict) -> None:  # type: ignore[type-arg]
    env = compose["services"]["site"]["environment"]
    settings = (example_dir() / "example_site" / "settings.py").read_text()
    read = set(re.findall(r'os\.environ\.get\("([A-Z_]+)"', settings))
    assert {k for k in env if not k.startswith("SHOP_")} <= read
    assert {"DB_HOST", "DB_NAME", "DB_USER", "DB_PASSWORD"} <= set(env)
    db_env = compose["services"]["db"]["environment"]
    assert env["DB_PASSWORD"] == db_env["SHOP_DB_PASSWORD"]
    assert env["DB_READER_PASSWORD"] == db_env["SHOP_DB_READER_PASSWORD"]
    assert env["DB_HOST"] == "db" and env["DB_USER"] == APP_ROLE
    assert env["DB_READER_USER"] == READER_ROLE
    assert env["PG_AUDIT_TRUSTED_PROXIES"] == ""


def test_compose_init_script_and_site_env_work_on_a_real_server(
    compose: dict, tmp_path: Path,  # type: ignore[type-arg]
) -> None:
    """initdb.sh and the site's env, run against a throwaway server instead of the containers."""
    db_env = compose["services"]["db"]["environment"]
    site_env = compose["services"]["site"]["environment"]
    with temporary_server(port=5433) as server:
        base = {**server.env(), "PATH": f"{server.bindir}{os.pathsep}{os.environ['PATH']}"}
        init = subprocess.run(
            ["sh", str(example_dir() / "docker" / "initdb.sh")],
            env={**base, **db_env, "POSTGRES_USER": "postgres",
                 "PG_AUDIT_SQL": str(ROOT / "sql")},
            capture_output=True, text=True, timeout=120,
        )
        assert init.returncode == 0, init.stderr
        env = {**os.environ, **site_env, "DB_HOST": str(server.socket_dir),
               "DB_PORT": str(server.port), "DJANGO_SETTINGS_MODULE": "example_site.settings",
               "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
        # The site's command as written, but for installing and serving.
        argv = shlex.split(compose["services"]["site"]["command"])
        assert argv[:2] == ["sh", "-c"]
        steps = [step.strip() for step in argv[2].split(" && ")]
        assert steps[0].startswith("pip install")
        assert steps[-1].startswith("exec python manage.py runserver")
        recorded = []
        for _ in range(2):  # twice: a restarted container starts the same way
            done = subprocess.run(["sh", "-c", " && ".join(steps[1:-1])], cwd=example_dir(),
                                  env=env, capture_output=True, text=True, timeout=300)
            assert done.returncode == 0, done.stdout + done.stderr
            with psycopg.connect(server.dsn("shop"), autocommit=True) as conn:
                recorded.append(conn.execute("SELECT max(id) FROM django_migrations").fetchone())
        assert recorded[0] == recorded[1], "the restart unapplied and reapplied migrations"
        with psycopg.connect(server.dsn("shop"), autocommit=True) as conn:
            owner, superuser, writer = conn.execute(
                "SELECT t.tableowner, r.rolsuper, pg_has_role(r.rolname, 'audit_writer', 'MEMBER') "
                "FROM pg_tables t JOIN pg_roles r ON r.rolname = t.tableowner "
                "WHERE t.tablename = 'shop_product'"
            ).fetchone()  # type: ignore[misc]
            assert (owner, superuser, writer) == (APP_ROLE, False, True)
            reader = conn.execute(
                "SELECT rolsuper, pg_has_role(rolname, 'audit_reader', 'MEMBER'), "
                "pg_has_role(rolname, 'audit_writer', 'MEMBER') FROM pg_roles WHERE rolname = %s",
                [READER_ROLE],
            ).fetchone()
            assert reader == (False, True, False)
            assert conn.execute("SELECT count(*) FROM audit.event WHERE table_name = "
                                "'public.shop_product' AND action = 'INSERT'").fetchone()[0] == 3  # type: ignore[index]
