"""Times the Django admin changelist of audit events on the reporting level's log.

Runs in the project's own venv (the bridge's admin is this repository's code):
``python bench/admin_workload.py ARGS_JSON``; prints ``BENCH-RESULT {json}``.
"""

from __future__ import annotations

import datetime
import json
import statistics
import sys
import time
from typing import Any


def configure(db: dict[str, Any]) -> None:
    import django
    from django.conf import settings

    settings.configure(
        DEBUG=False,
        SECRET_KEY="bench-not-secret",
        ALLOWED_HOSTS=["*"],
        USE_TZ=True,
        ROOT_URLCONF=__name__,
        INSTALLED_APPS=[
            "django.contrib.admin",
            "django.contrib.auth",
            "django.contrib.contenttypes",
            "django.contrib.sessions",
            "django.contrib.messages",
            "django_bridge",
        ],
        MIDDLEWARE=[
            "django.contrib.sessions.middleware.SessionMiddleware",
            "django.middleware.common.CommonMiddleware",
            "django.middleware.csrf.CsrfViewMiddleware",
            "django.contrib.auth.middleware.AuthenticationMiddleware",
            "django.contrib.messages.middleware.MessageMiddleware",
        ],
        TEMPLATES=[
            {
                "BACKEND": "django.template.backends.django.DjangoTemplates",
                "APP_DIRS": True,
                "OPTIONS": {
                    "context_processors": [
                        "django.template.context_processors.request",
                        "django.contrib.auth.context_processors.auth",
                        "django.contrib.messages.context_processors.messages",
                    ]
                },
            }
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
    )
    django.setup()


urlpatterns: list[Any] = []


def main() -> None:
    args = json.loads(sys.argv[1])
    try:
        configure(args["db"])
    except Exception as exc:  # noqa: BLE001 - an unfinished bridge is reported, not fatal
        print("BENCH-RESULT " + json.dumps({"status": f"missing: django_bridge app ({exc})"}))
        return
    from django.contrib import admin
    from django.contrib.auth import get_user_model
    from django.core.management import call_command
    from django.test import Client
    from django.urls import path, reverse

    urlpatterns.append(path("admin/", admin.site.urls))
    found = [
        (m, ma)
        for m, ma in admin.site._registry.items()
        if m._meta.app_label == "django_bridge" and "event" in m._meta.model_name
    ]
    if not found:
        print(
            "BENCH-RESULT " + json.dumps({"status": "missing: no audit event model in the admin"})
        )
        return
    model, model_admin = found[0]
    call_command("migrate", verbosity=0)
    User = get_user_model()
    user = User.objects.filter(username="bench-admin").first() or User.objects.create_superuser(
        "bench-admin", "admin@example.com", "pw"
    )
    client = Client()
    client.force_login(user)
    url = reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_changelist")
    today = datetime.date.today()
    # The bridge admin's own filter parameters; an unknown one shows as a redirect status.
    variants = {
        "default page (newest first)": "",
        "action = LOGIN_FAILED": "?action=LOGIN_FAILED",
        "last 7 days": f"?occurred_from={today - datetime.timedelta(days=7)}&occurred_to={today}",
        "actor id = 42": "?actor=42",
        "table = public.shop_order": "?table=public.shop_order",
        "IP in 198.51.100.0/24": "?ip=198.51.100.0/24",
        "search request id": "?q=req-123456",
        "action + 7 days + table": "?action=UPDATE"
        f"&occurred_from={today - datetime.timedelta(days=7)}"
                                   "&table=public.shop_order",
        "page 50": "?p=50",
    }
    filters = [getattr(f, "__name__", str(f)) for f in (model_admin.list_filter or ())]
    results: dict[str, Any] = {
        "status": "ok",
        "model": model._meta.label,
        "url": url,
        "list_filter": filters,
        "search_fields": list(model_admin.search_fields),
        "pages": {},
    }
    for label, query in variants.items():
        secs = []
        status = 0
        for _ in range(args["reps"]):
            start = time.perf_counter()
            response = client.get(url + query)
            secs.append(time.perf_counter() - start)
            status = response.status_code
        results["pages"][label] = {
            "query": query,
            "http_status": status,
            "ms_median": round(statistics.median(secs) * 1000, 1),
            "ms_first": round(secs[0] * 1000, 1),
        }
    print("BENCH-RESULT " + json.dumps(results))


if __name__ == "__main__":
    main()
