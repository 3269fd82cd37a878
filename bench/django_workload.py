"""Runs inside one library's venv: ``python bench/django_workload.py setup|run ARGS_JSON``.

Configures the tiny project in bench/djproject for one library as its docs
recommend, then either installs it into the library's own database (setup) or
times every workload once and prints the measurements as JSON (run). Each call is
its own process, so libraries never share a Python process.
"""

from __future__ import annotations

import json
import os
import sys
import time
from contextlib import AbstractContextManager, nullcontext
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE / "djproject"))
IP = "203.0.113.7"

APPS: dict[str, list[str]] = {
    "none": [],
    "django_bridge": ["pgtrigger", "django_bridge"],
    "pghistory": ["pgtrigger", "pghistory"],
    "auditlog": ["auditlog"],
    "auditrum": ["auditrum.integrations.django"],
}
MIDDLEWARE: dict[str, list[str]] = {
    "none": [],
    "django_bridge": [],  # filled in by _bridge_middleware() when the bridge has one
    "pghistory": ["benchapp.pghistory_middleware.HistoryWithIpMiddleware"],
    "auditlog": ["auditlog.middleware.AuditlogMiddleware"],
    "auditrum": [
        "auditrum.integrations.django.middleware.RequestIDMiddleware",
        "auditrum.integrations.django.middleware.AuditrumMiddleware",
    ],
}
notes: list[str] = []


def _bridge_middleware() -> list[str]:
    try:
        import django_bridge.middleware as mw
    except ImportError as exc:
        notes.append(f"django_bridge.middleware missing ({exc}): request context not set")
        return []
    names = [
        n
        for n in dir(mw)
        if n.endswith("Middleware")
        and isinstance(getattr(mw, n), type)
        and getattr(getattr(mw, n), "__module__", "") == mw.__name__
    ]
    if not names:
        notes.append("django_bridge.middleware has no middleware class yet")
        return []
    preferred = [n for n in names if "Context" in n or "Audit" in n] or names
    return [f"django_bridge.middleware.{preferred[0]}"]


def configure(library: str, db: dict[str, Any]) -> None:
    os.environ["BENCH_LIBRARY"] = library
    import django
    from django.conf import settings

    middleware = MIDDLEWARE[library] or (_bridge_middleware() if library == "django_bridge" else [])
    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-not-secret",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        ROOT_URLCONF="benchapp.urls",
        INSTALLED_APPS=[
            "django.contrib.contenttypes",
            "django.contrib.auth",
            "django.contrib.sessions",
            *APPS[library],
            "benchapp",
        ],
        MIDDLEWARE=[
            "django.middleware.security.SecurityMiddleware",
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            *middleware,
        ],
        DATABASES={
            "default": {
                "ENGINE": "django.db.backends.postgresql",
                "NAME": db["name"],
                "HOST": db["host"],
                "PORT": db["port"],
                "USER": db["user"],
            }
        },
        DEFAULT_AUTO_FIELD="django.db.models.BigAutoField",
        PASSWORD_HASHERS=["django.contrib.auth.hashers.MD5PasswordHasher"],
        AUDITLOG_DISABLE_REMOTE_ADDR=False,
    )
    django.setup()


def _sql(query: str, params: list[Any] | None = None) -> list[tuple[Any, ...]]:
    from django.db import connection

    with connection.cursor() as cur:
        cur.execute(query, params or [])
        return cur.fetchall() if cur.description else []


def setup(library: str) -> None:
    from django.contrib.auth import get_user_model
    from django.core.management import call_command

    if library == "django_bridge":
        # The bench app has no migrations, so syncdb would create its tracked
        # table (with pgtrigger's triggers) before django_bridge's migration ran;
        # a real project's migration depends on the bridge's. Install first, as
        # psql would; the bridge's migration then finds it installed.
        import psycopg
        from django.db import connection

        from pg_audit_schema import install

        params = connection.get_connection_params()
        with psycopg.connect(
            **{k: v for k, v in params.items() if k != "cursor_factory"}, autocommit=True
        ) as conn:
            install(conn)
    call_command("migrate", run_syncdb=True, verbosity=0)
    if library == "pghistory":
        import pgtrigger

        pgtrigger.install()  # the project has no migrations module, so install directly
    elif library == "auditrum":
        from auditrum.integrations.django.executor import DjangoExecutor
        from auditrum.integrations.django.tracking import get_registered_specs
        from auditrum.tracking.manager import TriggerManager

        manager = TriggerManager(DjangoExecutor())
        manager.bootstrap()
        for _, spec in get_registered_specs():
            manager.install(spec, force=True)  # what its generated migration does
    elif library == "django_bridge":
        _bridge_track()
    get_user_model().objects.create_user("alice", "alice@example.com", "pw", is_staff=True)


def _bridge_track() -> None:
    import pgtrigger
    from benchapp.models import Item

    if getattr(Item._meta, "triggers", None):
        pgtrigger.install()  # what makemigrations + migrate do in a project with migrations
        notes.append("tracking: Meta.triggers = django_bridge.tracking.tracked() (pgtrigger)")
    tracked = _sql(
        "SELECT count(*) FROM audit.tracked_table WHERE table_name = 'public.benchapp_item'"
    )
    if not tracked[0][0]:
        notes.append("no declarative tracking in django_bridge: tracking enabled with SQL")
        _sql("SELECT audit.enable_tracking('benchapp_item'::regclass)")


def context_manager(library: str, user: Any) -> AbstractContextManager[Any]:
    """The library's own way to attach user and IP to changes made outside a request."""
    if library == "pghistory":
        import pghistory

        return pghistory.context(user=user.pk, ip=IP)
    if library == "auditlog":
        from auditlog.context import set_actor

        return set_actor(user, remote_addr=IP)
    if library == "auditrum":
        from auditrum.integrations.django.runtime import auditrum_context

        return auditrum_context(user_id=user.pk, username=user.username, client_ip=IP)
    if library == "django_bridge":
        import importlib

        for module_name in ("django_bridge", "django_bridge.context"):
            try:
                module = importlib.import_module(module_name)
            except ImportError:
                continue
            for name in ("audit_context", "context", "AuditContext", "actor_context"):
                cm = getattr(module, name, None)
                if cm is None:
                    continue
                for kwargs in (
                    {"actor": user, "ip": IP},
                    {"user": user, "ip": IP},
                    {"actor_id": str(user.pk), "actor_name": user.username, "ip": IP},
                    {"actor": user},
                    {"user": user},
                ):
                    try:
                        made = cm(**kwargs)
                    except TypeError:
                        continue
                    notes.append(f"ORM context: {module_name}.{name}({', '.join(kwargs)})")
                    return made  # type: ignore[no-any-return]
        notes.append("no django_bridge context manager found: ORM workloads ran without context")
    return nullcontext()


def history_rows(library: str) -> int | None:
    if library == "none":
        return None
    if library == "django_bridge":
        query = "SELECT count(*) FROM audit.event WHERE table_name = 'public.benchapp_item'"
    elif library == "pghistory":
        query = "SELECT count(*) FROM benchapp_itemevent"
    elif library == "auditlog":
        query = "SELECT count(*) FROM auditlog_logentry"
    else:
        query = "SELECT count(*) FROM auditlog"
    return int(_sql(query)[0][0])


def who_and_where(library: str) -> str | None:
    """What the newest history row says about user and address (request workload)."""
    queries = {
        "django_bridge": "SELECT concat_ws(' ', 'actor_id=' || actor_id, 'ip=' || host(ip)) "
        "FROM audit.event WHERE table_name = 'public.benchapp_item' ORDER BY id DESC LIMIT 1",
        "pghistory": "SELECT c.metadata::text FROM benchapp_itemevent e "
        "LEFT JOIN pghistory_context c ON c.id = e.pgh_context_id ORDER BY e.pgh_id DESC LIMIT 1",
        "auditlog": "SELECT concat_ws(' ', 'actor_id=' || actor_id, 'ip=' || host(remote_addr)) "
        "FROM auditlog_logentry ORDER BY id DESC LIMIT 1",
        "auditrum": "SELECT c.metadata::text FROM auditlog a "
        "LEFT JOIN audit_context c ON c.id = a.context_id "
        "ORDER BY a.changed_at DESC LIMIT 1",
    }
    if library not in queries:
        return None
    try:
        rows = _sql(queries[library])
    except Exception as exc:  # noqa: BLE001 - informative only
        from django.db import connection

        connection.rollback() if not connection.get_autocommit() else None
        return f"(could not read: {str(exc).splitlines()[0]})"
    return (str(rows[0][0])[:200] or "(nothing recorded)") if rows else None


def backend_pid() -> int:
    from django.db import connection

    connection.ensure_connection()
    return int(connection.connection.info.backend_pid)


def server_cpu(pid: int) -> float | None:
    """CPU seconds of a local backend so far (None when /proc does not show it)."""
    try:
        return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        return None


def run(library: str, sizes: dict[str, int]) -> dict[str, Any]:
    from benchapp.models import Item
    from django.contrib.auth import get_user_model
    from django.db.models import F
    from django.test import Client
    from django.utils import timezone

    user = get_user_model().objects.get(username="alice")
    client = Client(REMOTE_ADDR=IP, HTTP_USER_AGENT="Mozilla/5.0 (bench)")
    client.force_login(user)
    n, bulk, requests = sizes["single"], sizes["bulk"], sizes["requests"]
    results: dict[str, Any] = {}

    def measure(name: str, expected: int, fn: Any) -> None:
        before = history_rows(library)
        pid = backend_pid()
        server0, client0, start = server_cpu(pid), time.process_time(), time.perf_counter()
        fn()
        seconds = time.perf_counter() - start
        client, server1 = time.process_time() - client0, server_cpu(pid)
        same_backend = backend_pid() == pid
        after = history_rows(library)
        results[name] = {
            "seconds": seconds,
            # CPU of this process (Django, the library, psycopg) and of its database
            # backend: the work done, whatever else the machine runs meanwhile
            "client_cpu_s": client,
            "server_cpu_s": server1 - server0
            if server0 is not None and server1 is not None and same_backend
            else None,
            "operations": expected,
            "history_rows": None if before is None else after - before,
        }  # type: ignore[operator]

    # Warm-up, not timed: URL resolver, triggers' first plans, connection.
    with context_manager(library, user):
        warm = [
            Item.objects.create(qty=0, name="warm", updated_at=timezone.now()) for _ in range(5)
        ]
        for obj in warm:
            obj.qty = 1
            obj.save()
            obj.delete()
    for _ in range(3):
        client.post("/write/")

    objs: list[Any] = []
    with context_manager(library, user):
        measure(
            "create",
            n,
            lambda: objs.extend(
                Item.objects.create(qty=i, name=f"item {i}", updated_at=timezone.now())
                for i in range(n)
            ),
        )

        def update_each() -> None:
            for obj in objs:
                obj.qty += 1
                obj.save()

        measure("update", n, update_each)
        measure("delete", n, lambda: [obj.delete() for obj in objs])
        created: list[Any] = []
        measure(
            "bulk_create",
            bulk,
            lambda: created.extend(
                Item.objects.bulk_create(
                    [Item(qty=i, name=f"bulk {i}", updated_at=timezone.now()) for i in range(bulk)]
                )
            ),
        )
        first = min(o.pk for o in created)
        measure(
            "queryset_update",
            bulk,
            lambda: Item.objects.filter(pk__gte=first, name__startswith="bulk").update(
                qty=F("qty") + 1
            ),
        )

    def post_all() -> None:
        for _ in range(requests):
            response = client.post("/write/")
            if response.status_code != 200:
                raise RuntimeError(f"request failed with {response.status_code}")

    measure("request", requests, post_all)
    results["request"]["who_and_where"] = who_and_where(library)
    return results


def main() -> None:
    phase, args = sys.argv[1], json.loads(sys.argv[2])
    library = args["library"]
    configure(library, args["db"])
    out: dict[str, Any] = {"library": library}
    if phase == "setup":
        setup(library)
    else:
        out["workloads"] = run(library, args["sizes"])
    out["notes"] = notes
    print("BENCH-RESULT " + json.dumps(out))


if __name__ == "__main__":
    main()
