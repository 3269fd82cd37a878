"""The Django tests run on the driver CI asks for (PG_AUDIT_TEST_DRIVER), psycopg 3 by default."""

from __future__ import annotations

import os

from django.db import connection


def test_django_runs_on_the_requested_driver() -> None:
    expected = os.environ.get("PG_AUDIT_TEST_DRIVER", "psycopg")
    assert connection.Database.__name__ == expected
