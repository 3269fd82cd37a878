"""``pg-audit demo``: the example shop on a throwaway PostgreSQL, driven and audited.

Starts an embedded server, installs the schema as the superuser, creates the
shop's login role (not a superuser, member of audit_writer), migrates and runs
the Django site of ``example/`` as that role, walks a short scenario through
HTTP, psql and a refused attack, and prints the trail. ``--serve`` keeps the
site and the server up until Ctrl-C. Nothing is left running afterwards.
"""

from __future__ import annotations

import argparse
import datetime
import decimal
import functools
import http.cookiejar
import json
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import psycopg
from psycopg import sql
from psycopg.types.json import set_json_loads

from .embedded import Server, temporary_server
from .errors import PgAuditError
from .events import actor_label, ip_text, value_text
from .installer import install

DB_NAME = "shop"
APP_ROLE = "shop_app"
READER_ROLE = "shop_auditor"
ADMIN_USER = "alice"
SPOOFED_IP = "203.0.113.66"
DBA_SQL = "UPDATE shop_product SET stock = stock + 40 WHERE sku = 'TEE-01'"
ATTACK_SQL = "DELETE FROM audit.event"

Say = Callable[[str], None]

# Changes made outside the application: by any login but the application's
# (a DBA in psql), as docs/dba-guide.md gives it.
OUTSIDE_THE_APP = (
    "SELECT occurred_at, db_role, application_name, table_name, row_key, action "
    f"FROM audit.event WHERE table_name IS NOT NULL AND db_role <> '{APP_ROLE}' ORDER BY id;"
)

# What an auditor would ask first, all open to audit_reader.
INVESTIGATIONS = (
    "SELECT * FROM audit.auth_events;",
    "SELECT * FROM audit.column_changes('shop_product') WHERE action = 'UPDATE';",
    "SELECT * FROM audit.last_change('shop_product', '{\"id\": 1}', 'price');",
    "SELECT * FROM audit.row_history('shop_product', '{\"id\": 2}');",
    OUTSIDE_THE_APP,
)


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand to the ``pg-audit`` parser."""
    parser = subparsers.add_parser(
        "demo",
        help="run the example shop on a throwaway PostgreSQL and show its audit trail",
        description=(
            "Start an embedded PostgreSQL, install the audit schema, run the example "
            "Django shop, drive a short scenario through it and print the audit trail. "
            "Needs no server and no Docker; leaves nothing running."
        ),
    )
    parser.add_argument(
        "--serve", action="store_true",
        help="keep the site and the database running until Ctrl-C, to look around",
    )
    parser.add_argument(
        "--port", type=int, default=0,
        help="HTTP port of the site on 127.0.0.1 (default: any free port)",
    )
    parser.set_defaults(func=command)


def command(args: argparse.Namespace) -> int:
    return run(serve=args.serve, port=args.port)


def _say(text: str) -> None:
    print(text, flush=True)


def run(serve: bool = False, port: int = 0, say: Say = _say) -> int:
    """Run the demo; returns the exit status (0, 130 after an early Ctrl-C)."""
    site_dir = example_dir()
    previous = _interrupt_on_signals()
    try:
        with tempfile.TemporaryDirectory(prefix="pg-audit-demo-") as scratch, \
                temporary_server(port=5432) as server:
            _demo(server, site_dir, Path(scratch), serve, port or _free_port(), say)
        say("Stopped; nothing is left running.")
    except KeyboardInterrupt:
        say("\ninterrupted; everything is stopped")
        return 130
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    return 0


def example_dir() -> Path:
    here = Path(__file__).resolve().parent
    for candidate in (here / "example", here.parent / "example"):
        if (candidate / "manage.py").is_file():
            return candidate
    raise PgAuditError(
        "the demo needs the example/ Django project of a source checkout: "
        "git clone the project and run `make demo` there"
    )


def _interrupt_on_signals() -> dict[int, Any]:
    """Ctrl-C and SIGTERM both clean up through the finally blocks.

    SIGINT is set too, since a shell starts background jobs with it ignored.
    The first signal starts the cleanup; later ones must not cut it short
    (a server half stopped would stay running).
    """
    def interrupt(signum: int, frame: Any) -> None:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        raise KeyboardInterrupt

    previous: dict[int, Any] = {}
    try:
        for signum in (signal.SIGINT, signal.SIGTERM):
            previous[signum] = signal.signal(signum, interrupt)
    except ValueError:  # not the main thread: leave signals alone
        pass
    return previous


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


# ---------------------------------------------------------------------------
# The steps
# ---------------------------------------------------------------------------


def _demo(server: Server, site_dir: Path, scratch: Path, serve: bool, port: int,
          say: Say) -> None:
    say("pg-audit demo: an example shop on a throwaway PostgreSQL, audited by the database\n")
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        version = conn.execute("SHOW server_version").fetchone()[0].split()[0]  # type: ignore[index]
    say(f"  PostgreSQL {version} started in {server.datadir.parent} (Unix socket only)")

    password = secrets.token_urlsafe(12)
    _prepare_database(server, password)
    say(f"  audit schema installed by the superuser; the shop connects as {APP_ROLE}\n"
        f"  (no superuser, member of audit_writer), its audit viewer as {READER_ROLE} "
        "(audit_reader)")

    env = _site_env(server, password, port)
    _manage(site_dir, env, "migrate", "--noinput")
    _manage(site_dir, env, "seed_shop")
    say(f"  example site migrated and seeded ({site_dir})")

    with _running_site(site_dir, env, port, scratch / "site.log") as (url, site):
        say(f"  site running at {url}\n")
        say("Scenario")
        _scenario(server, url, password, say)
        say("")
        _print_trail(server, say)
        say("")
        _print_how_to_look(server, url, password, serve, say)
        if serve:
            say("\nServing until Ctrl-C ...")
            try:
                _serve_until_interrupted(site, scratch / "site.log")
            except KeyboardInterrupt:
                say("")
    say("Stopping the site and the database ...")


def _prepare_database(server: Server, password: str) -> None:
    """Database, app role and schema, as the superuser the installer should be."""
    ident = sql.Identifier
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(sql.SQL("CREATE DATABASE {}").format(ident(DB_NAME)))
        for role in (APP_ROLE, READER_ROLE):
            conn.execute(
                sql.SQL("CREATE ROLE {} LOGIN NOSUPERUSER NOCREATEDB NOCREATEROLE PASSWORD {}")
                .format(ident(role), sql.Literal(password))
            )
    with psycopg.connect(server.dsn(DB_NAME), autocommit=True) as conn:
        install(conn)
        conn.execute(sql.SQL("GRANT audit_writer TO {}").format(ident(APP_ROLE)))
        conn.execute(sql.SQL("GRANT audit_reader TO {}").format(ident(READER_ROLE)))
        conn.execute(sql.SQL("GRANT CREATE ON SCHEMA public TO {}").format(ident(APP_ROLE)))


def _site_env(server: Server, password: str, port: int) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "example_site.settings",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(40),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1,localhost",
        "DB_HOST": str(server.socket_dir),
        "DB_PORT": str(server.port),
        "DB_NAME": DB_NAME,
        "DB_USER": APP_ROLE,
        "DB_PASSWORD": password,
        "DB_READER_USER": READER_ROLE,
        "DB_READER_PASSWORD": password,
        # The demo's client is not a proxy: its X-Forwarded-For must be ignored.
        "PG_AUDIT_TRUSTED_PROXIES": "",
        "SHOP_ADMIN_USER": ADMIN_USER,
        "SHOP_ADMIN_PASSWORD": password,
        "PYTHONUNBUFFERED": "1",
    }


def _manage(site_dir: Path, env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=site_dir, env=env,
        capture_output=True, text=True,
    )
    if done.returncode != 0:
        raise PgAuditError(
            f"manage.py {' '.join(args)} failed:\n{_tail(done.stdout + done.stderr)}"
        )
    return done.stdout


def _tail(text: str, lines: int = 15) -> str:
    return "\n".join("    " + line for line in text.strip().splitlines()[-lines:])


@contextmanager
def _running_site(
    site_dir: Path, env: dict[str, str], port: int, log: Path
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    url = f"http://127.0.0.1:{port}"
    with open(log, "w") as out:
        # Its own session: Ctrl-C reaches only us, and we stop the site in order.
        site = subprocess.Popen(
            [sys.executable, "manage.py", "runserver", "--noreload", "--insecure",
             f"127.0.0.1:{port}"],
            cwd=site_dir, env=env, stdout=out, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )
    try:
        _wait_until_up(site, url, log)
        yield url, site
    finally:
        site.terminate()
        try:
            site.wait(timeout=10)
        except subprocess.TimeoutExpired:
            site.kill()
            site.wait()


def _wait_until_up(site: subprocess.Popen[bytes], url: str, log: Path) -> None:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        if site.poll() is not None:
            raise PgAuditError(f"the example site exited at start:\n{_tail(log.read_text())}")
        try:
            with urllib.request.urlopen(url + "/accounts/login/", timeout=2):
                return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            time.sleep(0.2)
    raise PgAuditError(f"the example site did not answer within 60 s:\n{_tail(log.read_text())}")


def _serve_until_interrupted(site: subprocess.Popen[bytes], log: Path) -> None:
    while site.poll() is None:
        time.sleep(0.5)
    raise PgAuditError(f"the example site stopped:\n{_tail(log.read_text())}")


# ---------------------------------------------------------------------------
# The scenario
# ---------------------------------------------------------------------------


class Browser:
    """A tiny HTTP client with cookies and Django's CSRF token."""

    def __init__(self, base: str, headers: dict[str, str] | None = None) -> None:
        self.base = base
        self.jar = http.cookiejar.CookieJar()
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(self.jar))
        self.headers = {"User-Agent": "pg-audit-demo/1.0", **(headers or {})}

    def get(self, path: str) -> tuple[str, str]:
        return self._open(urllib.request.Request(self.base + path, headers=self.headers))

    def post(self, path: str, data: dict[str, str] | list[tuple[str, str]]) -> tuple[str, str]:
        fields = list(data.items()) if isinstance(data, dict) else list(data)
        fields = [(k, v) for k, v in fields if k != "csrfmiddlewaretoken"]
        fields.append(("csrfmiddlewaretoken", self._csrf_token()))
        request = urllib.request.Request(
            self.base + path, data=urllib.parse.urlencode(fields).encode(),
            headers={**self.headers, "Referer": self.base + path}, method="POST",
        )
        return self._open(request)

    def _open(self, request: urllib.request.Request) -> tuple[str, str]:
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            raise PgAuditError(
                f"{request.get_method()} {request.full_url} answered {exc.code}"
            ) from exc

    def _csrf_token(self) -> str:
        for cookie in self.jar:
            if cookie.name == "csrftoken" and cookie.value:
                return cookie.value
        raise PgAuditError("the site set no csrftoken cookie")


class FormFields(HTMLParser):
    """The fields a browser would submit, form by form."""

    def __init__(self) -> None:
        super().__init__()
        self.forms: list[list[tuple[str, str]]] = []
        self._select: str | None = None
        self._textarea: str | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        name = a.get("name")
        if tag == "form":
            self.forms.append([])
        if not self.forms:
            return
        fields = self.forms[-1]
        if tag == "input" and name:
            kind = a.get("type", "text")
            if kind in ("submit", "button", "image", "file", "reset"):
                return
            if kind in ("checkbox", "radio") and "checked" not in a:
                return
            fields.append((name, a.get("value", "on" if kind == "checkbox" else "")))
        elif tag == "select" and name:
            self._select = name
        elif tag == "option" and self._select and "selected" in a:
            fields.append((self._select, a.get("value", "")))
        elif tag == "textarea" and name:
            self._textarea = name
            fields.append((name, ""))

    def handle_data(self, data: str) -> None:
        if self._textarea and self.forms and self.forms[-1][-1][0] == self._textarea:
            fields = self.forms[-1]
            fields[-1] = (self._textarea, fields[-1][1] + data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "select":
            self._select = None
        elif tag == "textarea":
            self._textarea = None


def form_fields(html: str, having: str) -> list[tuple[str, str]]:
    """The fields of the first form of the page that has a field named ``having``."""
    parser = FormFields()
    parser.feed(html)
    for fields in parser.forms:
        if any(name == having for name, _ in fields):
            return fields
    raise PgAuditError(f"no form with a field {having!r} on the page")


def _scenario(server: Server, url: str, password: str, say: Say) -> None:
    _step(say, f"mallory tries alice's account, forging X-Forwarded-For: {SPOOFED_IP}")
    mallory = Browser(url, {"X-Forwarded-For": SPOOFED_IP, "User-Agent": "mallory/0.1"})
    mallory.get("/accounts/login/")
    where, page = mallory.post("/accounts/login/",
                               {"username": ADMIN_USER, "password": "letmein"})
    if where.rstrip("/") != url + "/accounts/login" or "Wrong user name" not in page:
        raise PgAuditError("the wrong password was accepted?")

    alice = Browser(url, {"User-Agent": "Mozilla/5.0 (alice's laptop)"})
    _step(say, "alice logs in")
    alice.get("/accounts/login/")
    where, _ = alice.post("/accounts/login/", {"username": ADMIN_USER, "password": password})
    if where.rstrip("/") != url:
        raise PgAuditError("alice could not log in")

    product_id = _product_id(server, "MUG-01")
    change = f"/admin/shop/product/{product_id}/change/"
    _step(say, "alice changes the price of a mug in the admin")
    _, page = alice.get(change)
    fields = [(k, "11.00" if k == "price" else v) for k, v in form_fields(page, "price")]
    where, _ = alice.post(change, [*fields, ("_save", "Save")])
    if not where.endswith("/admin/shop/product/"):
        raise PgAuditError("the admin did not accept the change")

    _step(say, "alice gives 10% off everything in stock (one UPDATE statement)")
    alice.get("/")
    alice.post("/discount/", {})

    _step(say, f"a DBA in psql: {DBA_SQL}")
    _psql(server, "postgres", DBA_SQL)

    _step(say, f"the shop's own login tries: {ATTACK_SQL}")
    refused = _psql(server, APP_ROLE, ATTACK_SQL, password=password, expect_error=True)
    say(f"      refused: {refused}")

    _step(say, "alice logs out")
    alice.get("/")
    alice.post("/accounts/logout/", {})


def _step(say: Say, text: str) -> None:
    say(f"  - {text}")


def _product_id(server: Server, sku: str) -> int:
    with psycopg.connect(server.dsn(DB_NAME), autocommit=True) as conn:
        row = conn.execute("SELECT id FROM shop_product WHERE sku = %s", [sku]).fetchone()
    if row is None:
        raise PgAuditError(f"the seeded product {sku} is missing")
    return int(row[0])


def _psql(server: Server, user: str, statement: str, *, password: str = "",
          expect_error: bool = False) -> str:
    """Run one statement in psql, as a person at a terminal would; returns the error line."""
    conninfo = (f"host={server.socket_dir} port={server.port} dbname={DB_NAME} "
                f"user={user} application_name=psql")
    env = {**os.environ, "PGPASSWORD": password} if password else dict(os.environ)
    done = subprocess.run(
        [server.tool("psql"), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", conninfo, "-c", statement],
        env=env, capture_output=True, text=True,
    )
    error = next((line for line in done.stderr.splitlines() if line.startswith("ERROR")), "")
    if expect_error:
        if done.returncode == 0:
            raise PgAuditError(f"{user} was allowed to run: {statement}")
        return error or done.stderr.strip()
    if done.returncode != 0:
        raise PgAuditError(f"psql as {user} failed: {error or done.stderr.strip()}")
    return ""


# ---------------------------------------------------------------------------
# The trail
# ---------------------------------------------------------------------------


# Title and widest width of each column of the trail; the last takes the rest.
COLUMNS = (("time", 8), ("action", 16), ("actor", 20), ("ip", 20), ("table", 20), ("key", 8),
           ("changes", 0))


def _print_trail(server: Server, say: Say) -> None:
    with psycopg.connect(server.dsn(DB_NAME, READER_ROLE), autocommit=True) as conn:
        # Decimal keeps numeric values as stored: 12.50, not 12.5.
        set_json_loads(functools.partial(json.loads, parse_float=decimal.Decimal), conn)
        rows = conn.execute(
            "SELECT occurred_at, action, outcome, actor_id, actor_name, db_role, user_agent, "
            "request_id, ip, table_name, row_key, old_values, new_values, detail "
            "FROM audit.event ORDER BY id"
        ).fetchall()
    # Admin events name their model by content type id; the reader may not read
    # django_content_type, the superuser may.
    with psycopg.connect(server.dsn(DB_NAME), autocommit=True) as conn:
        types = dict(conn.execute(
            "SELECT id::text, app_label || '.' || model FROM django_content_type").fetchall())
    # The migrations' TRACKING_ENABLED events, one line instead of one row each.
    tracking = [r[:1] + r[1:2] + r[9:10] + r[13:14] for r in rows if r[1] == "TRACKING_ENABLED"]
    rows = [r for r in rows if r[1] != "TRACKING_ENABLED"]
    say(f"The audit trail: {len(rows) + len(tracking)} events in audit.event, "
        f"read as {READER_ROLE} (times in UTC)")
    width = _terminal_width()
    if tracking:
        text = (f"{len(tracking)} TRACKING_ENABLED events of the migrations, for: "
                + ", ".join(_tracked(r[2], r[3]) for r in tracking))
        say(textwrap.fill(text, width, initial_indent="  ", subsequent_indent="    "))
    say("")
    for line in trail_table([_trail_cells(row, types) for row in rows], width):
        say(line)
    failed = [r for r in rows if r[1] == "LOGIN_FAILED"]
    if failed and failed[0][8] is not None:
        client = ip_text(failed[0][8])
        say("\n" + textwrap.fill(
            f"The failed login was recorded from {client}, the real client: the forged "
            f"X-Forwarded-For ({SPOOFED_IP}) came from no trusted proxy.", width))


def _terminal_width() -> int:
    return max(80, min(200, shutil.get_terminal_size((120, 24)).columns))


def trail_table(rows: Sequence[Sequence[str]], width: int) -> list[str]:
    """Rows as aligned columns, each as wide as its content, the last cut to fit ``width``."""
    titles = [title for title, _ in COLUMNS]
    widths = [
        min(cap, max([len(title), *(len(" ".join(r[i].split())) for r in rows)]))
        for i, (title, cap) in enumerate(COLUMNS[:-1])
    ]
    widths.append(max(20, width - sum(w + 2 for w in widths)))
    lines = []
    for cells in [titles, ["-" * w for w in widths], *rows]:
        fitted = (_fit(cell, w) for cell, w in zip(cells, widths, strict=True))
        lines.append("  ".join(fitted).rstrip())
    return lines


def _fit(text: str, width: int) -> str:
    text = " ".join(text.split())
    return text.ljust(width) if len(text) <= width else text[: width - 1] + "~"


def _tracked(table: str | None, detail: Any) -> str:
    name = (table or "?").removeprefix("public.")
    excluded = detail.get("exclude_columns") if isinstance(detail, dict) else None
    return f"{name} (not {', '.join(excluded)})" if excluded else name


def _trail_cells(row: Sequence[Any], types: dict[str, str] | None = None) -> list[str]:
    (occurred_at, action, outcome, actor_id, actor_name, db_role, user_agent, request_id, ip,
     table, key, old, new, detail) = row
    when = occurred_at.astimezone(datetime.timezone.utc).strftime("%H:%M:%S")
    if outcome == "failure" and not action.endswith("FAILED"):
        action = f"{action} (failed)"
    # No application user: "anonymous" for a request, else the database login.
    who = actor_label(actor_id, actor_name, db_role, ip, user_agent, request_id)
    short_table = (table or "").removeprefix("public.")
    key_text = ",".join(str(v) for v in key.values()) if isinstance(key, dict) else ""
    if isinstance(detail, dict) and "content_type_id" in detail and types:
        # The id as the trigger printed it ("8"), or a number in older events.
        detail = {**detail, "content_type": detail.get("content_type")
                  or types.get(str(detail["content_type_id"]))}
    return [when, action, who, ip_text(ip) or "", short_table, key_text,
            summarise(old, new, detail, key)]


def summarise(old: Any, new: Any, detail: Any, key: Any = None) -> str:
    """old->new per changed column; an insert's or delete's values but the key; else the detail."""
    old = old if isinstance(old, dict) else {}
    new = new if isinstance(new, dict) else {}
    if not (old and new) and isinstance(key, dict):
        old = {c: v for c, v in old.items() if c not in key}
        new = {c: v for c, v in new.items() if c not in key}
    if old and new:
        columns = [*new, *(c for c in old if c not in new)]
        return ", ".join(f"{c} {value_text(old.get(c))}->{value_text(new.get(c))}" for c in columns)
    values = new or old
    if values:
        return " ".join(f"{c}={value_text(v)}" for c, v in values.items())
    if isinstance(detail, dict) and "object_repr" in detail:
        return admin_summary(detail)
    if isinstance(detail, dict) and detail:
        return " ".join(
            f"{k}={value_text(v)}" for k, v in detail.items() if v not in ([], {}, None)
        )
    return ""


def admin_summary(detail: dict[str, Any]) -> str:
    """An admin log entry as the admin's history page puts it."""
    what = f"{detail.get('content_type') or 'object'} {detail.get('object_id') or ''}".strip()
    text = f"{what} {value_text(detail.get('object_repr'))}"
    message = detail.get("change_message")
    parts = []
    if isinstance(message, list):
        for item in message:
            for verb, data in (item.items() if isinstance(item, dict) else []):
                fields = data.get("fields") if isinstance(data, dict) else None
                parts.append(f"{verb} {', '.join(fields)}" if fields else verb)
    elif message:
        parts.append(str(message))
    return f"{text}: {'; '.join(parts)}" if parts else text


def _print_how_to_look(server: Server, url: str, password: str, serve: bool, say: Say) -> None:
    if serve:
        say("Look at it yourself, while this runs:")
    else:
        say(f"Look at it yourself: `{_program()} demo --serve` keeps the site and the database "
            "up\nand prints commands like these (this run's are gone when it ends):")
    conninfo = (f"host={server.socket_dir} port={server.port} dbname={DB_NAME} "
                f"user={READER_ROLE}")
    say(f'  psql:   {server.tool("psql")} "{conninfo}"')
    say("          then try:")
    for query in INVESTIGATIONS:
        say(f"            {query}")
    say(f"  admin:  {url}/admin/django_bridge/auditevent/")
    if serve:
        say(f"          user {ADMIN_USER}, password {password}")


def _program() -> str:
    """How the user started us: `.venv/bin/pg-audit` after `make demo`, else `pg-audit`."""
    started = Path(sys.argv[0])
    return os.path.relpath(started) if started.name == "pg-audit" else "pg-audit"


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m pg_audit_schema.demo [--serve] [--port N]``, without the full CLI."""
    parser = argparse.ArgumentParser(prog="pg-audit")
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["demo", *(sys.argv[1:] if argv is None else argv)])
    try:
        return int(args.func(args))
    except PgAuditError as exc:
        print(f"pg-audit: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
