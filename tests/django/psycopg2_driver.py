"""PG_AUDIT_TEST_DRIVER=psycopg2: the Django tests on psycopg2 while the fixtures keep psycopg 3.

Django's postgresql backend takes psycopg 3 whenever it can import it; the
suite's fixtures (tests/conftest.py, pgtest.py) need psycopg 3 to create the
server's databases. Imported by the test project's settings (so in pytest and
in every manage.py or burst process the tests start, before Django loads its
backend), this imports Django's backend with psycopg 3 hidden, so every Django
connection is a psycopg2 connection. CI runs the Django tests so, in a
virtualenv with psycopg2-binary (.ci/run).
"""

from __future__ import annotations

import sys

import psycopg

sys.modules["psycopg"] = None  # type: ignore[assignment]
try:
    import django.db.backends.postgresql.base  # noqa: F401  (settles the driver)
finally:
    sys.modules["psycopg"] = psycopg

from django.db.backends.postgresql.psycopg_any import is_psycopg3  # noqa: E402

assert not is_psycopg3, "psycopg2 is not installed"
