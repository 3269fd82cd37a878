"""A credential-stuffing burst against the test project, in a process of its own.

    python burst.py MODE HOST PORT DBNAME USER PASSWORD ATTEMPTS THREADS [POOL_MAX]

Serves the test project (ATOMIC_REQUESTS on, real LoginView) with Django's
threaded WSGI server, so connections are opened and given back per request as
in production (the test client keeps them). MODE is "pool" (Django's psycopg
pool of at most POOL_MAX connections), "direct" (no pool, CONN_MAX_AGE 0) or
"pgbouncer" (HOST/PORT is a pgbouncer in transaction mode). THREADS clients
fetch the login form once for the CSRF token, then post wrong passwords.
Prints one JSON object: responses by status, seconds, p99 latency, and the
most backends of USER on DBNAME (MONITOR_DB behind pgbouncer) seen at once,
sampled every 5 ms through MONITOR_DSN (a superuser connection to the server).
"""

from __future__ import annotations

import http.client
import json
import os
import re
import sys
import threading
import time
from collections import Counter
from typing import Any


def configure(mode: str, host: str, port: str, dbname: str, user: str, password: str,
              pool_max: int) -> None:
    import django
    import testproject.settings as base
    from django.conf import settings

    database: dict[str, Any] = {
        "ENGINE": "django.db.backends.postgresql", "NAME": dbname, "HOST": host, "PORT": port,
        "USER": user, "PASSWORD": password, "ATOMIC_REQUESTS": True, "CONN_MAX_AGE": 0,
        "OPTIONS": {},
    }
    if mode == "pool":
        database["OPTIONS"]["pool"] = {"min_size": 1, "max_size": pool_max, "timeout": 60}
    if mode == "pgbouncer":
        database["DISABLE_SERVER_SIDE_CURSORS"] = True
    options = {k: getattr(base, k) for k in dir(base) if k.isupper()}
    options.update(DATABASES={"default": database}, DEBUG=False)
    settings.configure(**options)
    django.setup()


def attempt(port: int, name: str, count: int, statuses: Counter[int],
            latencies: list[float]) -> None:
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=120)
    conn.request("GET", "/login/")
    form = conn.getresponse()
    page = form.read().decode()
    cookie = form.getheader("Set-Cookie", "").split(";", 1)[0]
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page)
    assert token and cookie, (form.status, page[:300])
    body = f"username={name}&password=wrong&csrfmiddlewaretoken={token.group(1)}"
    for _ in range(count):
        started = time.perf_counter()
        conn.request("POST", "/login/", body=body, headers={
            "Content-Type": "application/x-www-form-urlencoded", "Cookie": cookie,
            "User-Agent": "burst"})
        response = conn.getresponse()
        response.read()
        latencies.append(time.perf_counter() - started)
        statuses[response.status] += 1


def main() -> None:
    mode, host, port, dbname, user, password, attempts, threads = sys.argv[1:9]
    pool_max = int(sys.argv[9]) if len(sys.argv) > 9 else 1
    configure(mode, host, port, dbname, user, password, pool_max)

    import psycopg
    from django.core.servers.basehttp import ThreadedWSGIServer, WSGIRequestHandler
    from django.core.wsgi import get_wsgi_application

    class Quiet(WSGIRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

    server = ThreadedWSGIServer(("127.0.0.1", 0), Quiet)
    server.set_app(get_wsgi_application())
    threading.Thread(target=server.serve_forever, daemon=True).start()

    most = 0
    done = threading.Event()

    def monitor() -> None:
        nonlocal most
        with psycopg.connect(os.environ["MONITOR_DSN"], autocommit=True) as conn:
            while not done.is_set():
                (n,) = conn.execute(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = %s AND usename = %s",
                    [os.environ.get("MONITOR_DB", dbname), user]).fetchone()
                most = max(most, n)
                time.sleep(0.005)

    watcher = threading.Thread(target=monitor)
    watcher.start()
    statuses: Counter[int] = Counter()
    latencies: list[float] = []
    per_thread = int(attempts) // int(threads)
    started = time.perf_counter()
    workers = [threading.Thread(target=attempt, args=(
        server.server_address[1], f"burst-{os.environ['BURST_TAG']}-{t}", per_thread, statuses,
        latencies)) for t in range(int(threads))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    seconds = time.perf_counter() - started
    done.set()
    watcher.join()
    server.shutdown()
    latencies.sort()
    print(json.dumps({
        "mode": mode, "attempts": per_thread * int(threads), "threads": int(threads),
        "statuses": {str(k): v for k, v in sorted(statuses.items())},
        "seconds": round(seconds, 2),
        "p99_ms": round(latencies[int(len(latencies) * 0.99) - 1] * 1000, 1) if latencies else None,
        "max_connections": most,
    }))


if __name__ == "__main__":
    main()
