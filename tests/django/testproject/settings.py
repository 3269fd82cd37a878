"""Settings of the Django test project.

DATABASES is a placeholder: tests/django/conftest.py points it at the test
PostgreSQL server (the pg_server fixture) before the test database is created.
"""

from __future__ import annotations

import os

if os.environ.get("PG_AUDIT_TEST_DRIVER") == "psycopg2":
    import psycopg2_driver  # noqa: F401  (Django on psycopg2; see that module)

SECRET_KEY = "pg-audit-tests-only"
DEBUG = False
ALLOWED_HOSTS = ["*"]
USE_TZ = True
TIME_ZONE = "UTC"
ROOT_URLCONF = "testproject.urls"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
STATIC_URL = "/static/"
LOGIN_REDIRECT_URL = "/"

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "accounts",  # sorts before django_bridge: migration order must not depend on labels
    "pgtrigger",
    "django_bridge",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django_bridge.middleware.AuditContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
]

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

DATABASES = {
    "default": {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "postgres",
        "CONN_MAX_AGE": 60,
    }
}

# manage.py runs against any database (the install tests): PG_AUDIT_DJANGO_DSN.
if os.environ.get("PG_AUDIT_DJANGO_DSN"):
    from psycopg.conninfo import conninfo_to_dict

    _params = conninfo_to_dict(os.environ["PG_AUDIT_DJANGO_DSN"])
    DATABASES["default"].update(
        NAME=_params.get("dbname", ""), HOST=_params.get("host", ""),
        PORT=str(_params.get("port", "")), USER=_params.get("user", ""),
        PASSWORD=_params.get("password", ""),
    )

# Fast hashing: the tests log in many times.
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

# The test client talks to the app through one trusted proxy hop when a test says so.
PG_AUDIT_TRUSTED_PROXIES = ["10.0.0.0/8"]
