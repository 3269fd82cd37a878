"""The multi-database project end to end, in a process of its own (test_multidb.py).

DJANGO_SETTINGS_MODULE=testproject.settings_multidb: checks, migrate on both
databases, a failed and a good login through the real LoginView (users on
SQLite), and a shop write (on PostgreSQL). Prints the check ids as JSON.
"""

from __future__ import annotations

import json

import django

django.setup()

from django.contrib.auth import get_user_model  # noqa: E402
from django.core.checks import run_checks  # noqa: E402
from django.core.management import call_command  # noqa: E402
from django.test import Client  # noqa: E402
from shop.models import Product  # noqa: E402

ids = sorted({m.id for m in run_checks() if m.id and m.id.startswith("pg_audit")})
call_command("migrate", verbosity=0)
call_command("migrate", database="audit", verbosity=0)
db_ids = sorted({m.id for m in run_checks(databases=["default", "audit"], tags=["database"])
                 if m.id and m.id.startswith("pg_audit")})
get_user_model().objects.create_user("carol", password="carol-pw-1")
client = Client(REMOTE_ADDR="192.0.2.44")
failed = client.post("/login/", {"username": "carol", "password": "wrong"}).status_code
good = client.post("/login/", {"username": "carol", "password": "carol-pw-1"}).status_code
created = client.get("/w/create/?name=multidb-widget").status_code
print(json.dumps({"checks": ids, "database_checks": db_ids, "statuses": [failed, good, created],
                  "products": Product.objects.count()}))
