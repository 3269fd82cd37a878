"""Settings for Django's own test suite (tests/runtests.py) with the bridge installed.

Used by django_suite.py. runtests.py replaces INSTALLED_APPS and MIDDLEWARE with
its own lists when it reads the settings; this module adds the bridge to those
lists first (runtests.py is __main__), so every test runs with django_bridge's
migrations, execute wrapper, auth receivers and middleware, on PostgreSQL
(PG_AUDIT_DJANGO_DSN, a superuser: the test databases get the audit schema).
"""

from __future__ import annotations

import os
import sys

from psycopg.conninfo import conninfo_to_dict

runtests = sys.modules["__main__"]
if "django_bridge" not in runtests.ALWAYS_INSTALLED_APPS:
    runtests.ALWAYS_INSTALLED_APPS.extend(["pgtrigger", "django_bridge"])
    runtests.ALWAYS_MIDDLEWARE.insert(0, "django_bridge.middleware.AuditContextMiddleware")

_params = conninfo_to_dict(os.environ["PG_AUDIT_DJANGO_DSN"])
_database = {
    "ENGINE": "django.db.backends.postgresql", "HOST": _params.get("host", ""),
    "PORT": str(_params.get("port", "")), "USER": _params.get("user", ""),
    "PASSWORD": _params.get("password", ""),
}
DATABASES = {
    "default": {**_database, "NAME": "pgaudit_test_djsuite",
                "TEST": {"NAME": "pgaudit_test_djsuite"}},
    "other": {**_database, "NAME": "pgaudit_test_djsuite_other",
              "TEST": {"NAME": "pgaudit_test_djsuite_other"}},
}
SECRET_KEY = "django_tests_secret_key"
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
DEFAULT_AUTO_FIELD = "django.db.models.AutoField"
USE_TZ = False
