"""A burst of failed logins under ATOMIC_REQUESTS never waits on the request's own pool.

Each mode serves the test project from a process of its own (burst.py) with
Django's threaded WSGI server, as the application's login role, and sends 200
wrong passwords from 8 threads: Django's psycopg pool at its smallest (one
connection), pgbouncer in transaction mode with a pool of one server
connection (Debian's package, started here), and no pool. Every attempt must
answer 200 (the form again) and leave its LOGIN_FAILED event, with no more
connections than the pool, the proxy or the threads allow.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from django.db import connection
from pgtest import PASSWORD
from psycopg.conninfo import conninfo_to_dict

pytestmark = pytest.mark.django_db(transaction=True)

ATTEMPTS, THREADS = 200, 8
PGBOUNCER = shutil.which("pgbouncer") or "/usr/sbin/pgbouncer"
HERE = Path(__file__).parent


@pytest.fixture
def app_role(roles: dict[str, str]) -> str:
    app = roles["app"]
    with connection.cursor() as cursor:
        cursor.execute(f'GRANT audit_writer TO "{app}"')
        cursor.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{app}"')
        cursor.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{app}"')
    return app


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture
def pgbouncer(pg_server: Any, app_role: str) -> Iterator[tuple[str, str]]:
    """pgbouncer in transaction mode with one server connection, in front of the test database."""
    if not os.path.exists(PGBOUNCER):
        pytest.skip("pgbouncer is missing: apt-get install pgbouncer")
    server = conninfo_to_dict(pg_server.conninfo())
    folder = Path(tempfile.mkdtemp(prefix="pg-audit-pgbouncer-"))
    port = _free_port()
    target = f"host={server.get('host', 'localhost')} port={server.get('port', 5432)} " \
             f"dbname={connection.settings_dict['NAME']} user={app_role} password={PASSWORD}"
    (folder / "pgbouncer.ini").write_text(f"""
[databases]
burst = {target}
[pgbouncer]
listen_addr = 127.0.0.1
listen_port = {port}
unix_socket_dir =
auth_type = any
pool_mode = transaction
default_pool_size = 1
max_client_conn = 500
query_wait_timeout = 30
logfile = {folder}/pgbouncer.log
pidfile = {folder}/pgbouncer.pid
ignore_startup_parameters = extra_float_digits,options
""")
    run_as: dict[str, Any] = {}
    if os.geteuid() == 0:  # pgbouncer refuses to run as root
        from pg_audit_schema.embedded import SERVICE_USER

        subprocess.run(["useradd", "--system", "--no-create-home", "--shell",
                        "/usr/sbin/nologin", SERVICE_USER], capture_output=True)
        shutil.chown(folder, SERVICE_USER)
        run_as = {"user": SERVICE_USER}
    process = subprocess.Popen([PGBOUNCER, str(folder / "pgbouncer.ini")],
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, **run_as)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.05)
        else:
            pytest.fail(f"pgbouncer did not start: {(folder / 'pgbouncer.log').read_text()}")
        yield "127.0.0.1", str(port)
    finally:
        process.terminate()
        process.wait(timeout=10)
        shutil.rmtree(folder, ignore_errors=True)


def _burst(pg_server: Any, mode: str, host: str, port: str, dbname: str, user: str,
           pool_max: int = 1) -> dict[str, Any]:
    tag = uuid.uuid4().hex[:8]
    env = {**os.environ, "MONITOR_DSN": pg_server.conninfo(), "BURST_TAG": tag,
           "MONITOR_DB": connection.settings_dict["NAME"],
           "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent)])}
    env.pop("DJANGO_SETTINGS_MODULE", None)
    result = subprocess.run(
        [sys.executable, str(HERE / "burst.py"), mode, host, port, dbname, user, PASSWORD,
         str(ATTEMPTS), str(THREADS), str(pool_max)],
        env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stderr[-3000:]
    numbers = json.loads(result.stdout.strip().splitlines()[-1])
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*), count(DISTINCT request_id) FROM audit.event "
                       "WHERE action = 'LOGIN_FAILED' AND detail->>'username' LIKE %s "
                       "AND user_agent = 'burst'", [f"burst-{tag}-%"])
        numbers["events"], numbers["request_ids"] = cursor.fetchone()
    print(f"\nfailed-login burst: {json.dumps(numbers)}")
    return numbers


def _assert_held(numbers: dict[str, Any], most_connections: int) -> None:
    assert numbers["statuses"] == {"200": ATTEMPTS}, numbers
    assert numbers["events"] == numbers["request_ids"] == ATTEMPTS, numbers
    assert 0 < numbers["max_connections"] <= most_connections, numbers


def _database(pg_server: Any) -> tuple[str, str, str]:
    params = conninfo_to_dict(pg_server.conninfo())
    return params.get("host", ""), str(params.get("port", "")), connection.settings_dict["NAME"]


def test_django_pool_of_one(pg_server: Any, app_role: str) -> None:
    import django

    if django.VERSION < (5, 1) or connection.Database.__name__ != "psycopg":
        pytest.skip("Django's connection pool needs Django 5.1+ and psycopg 3")
    pytest.importorskip("psycopg_pool")
    host, port, dbname = _database(pg_server)
    _assert_held(_burst(pg_server, "pool", host, port, dbname, app_role, pool_max=1), 1)


def test_pgbouncer_transaction_mode_pool_of_one(pg_server: Any, app_role: str,
                                                pgbouncer: tuple[str, str]) -> None:
    host, port = pgbouncer
    _assert_held(_burst(pg_server, "pgbouncer", host, port, "burst", app_role), 1)


def test_no_pool(pg_server: Any, app_role: str) -> None:
    host, port, dbname = _database(pg_server)
    _assert_held(_burst(pg_server, "direct", host, port, dbname, app_role), THREADS)
