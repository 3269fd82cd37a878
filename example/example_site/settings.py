"""Settings of the pg-audit example shop.

Everything that differs between the demo, docker-compose and a laptop comes
from the environment. The site connects as an ordinary login role (member of
audit_writer, not a superuser), so the audit log is as immutable here as in
production.
"""

from __future__ import annotations

import os
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent

# The demo passes a fresh random key; the fallback is for local tinkering only.
SECRET_KEY = os.environ.get("DJANGO_SECRET_KEY", "example-only-not-secret")
DEBUG = os.environ.get("DJANGO_DEBUG", "") == "1"
ALLOWED_HOSTS = os.environ.get("DJANGO_ALLOWED_HOSTS", "127.0.0.1,localhost").split(",")

INSTALLED_APPS = [
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "pgtrigger",
    "django_bridge",
    "shop",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    # Early, so that every write of the request, the session's included, carries
    # its audit context (user, client address, user agent, request id).
    "django_bridge.middleware.AuditContextMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "example_site.urls"
WSGI_APPLICATION = "example_site.wsgi.application"

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

_DB = {
    "ENGINE": "django.db.backends.postgresql",
    "NAME": os.environ.get("DB_NAME", "shop"),
    # A directory is a Unix socket (the embedded server of `pg-audit demo`).
    "HOST": os.environ.get("DB_HOST", "localhost"),
    "PORT": os.environ.get("DB_PORT", "5432"),
}
DATABASES = {
    # The shop's login: member of audit_writer, so it adds events but cannot
    # read, change or remove them.
    "default": {
        **_DB,
        "USER": os.environ.get("DB_USER", "shop_app"),
        "PASSWORD": os.environ.get("DB_PASSWORD", ""),
        # One transaction per request: its changes and their events commit together.
        "ATOMIC_REQUESTS": True,
    },
    # The admin's audit viewer reads through a login that holds audit_reader only.
    "audit": {
        **_DB,
        "USER": os.environ.get("DB_READER_USER", "shop_auditor"),
        "PASSWORD": os.environ.get("DB_READER_PASSWORD", ""),
    },
}
DATABASE_ROUTERS = ["example_site.routers.AuditReaderRouter"]

# Client addresses: only these proxies may speak for the client through
# X-Forwarded-For. Empty: the header is ignored and the socket peer is recorded.
PG_AUDIT_TRUSTED_PROXIES = [
    p for p in os.environ.get("PG_AUDIT_TRUSTED_PROXIES", "").split(",") if p
]

LOGIN_REDIRECT_URL = "/"
LOGOUT_REDIRECT_URL = "/"

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
