"""AuditContextMiddleware: the request's audit context for every transaction it opens.

Place it early in MIDDLEWARE (before SessionMiddleware and
AuthenticationMiddleware), so every write of the request, theirs included,
is attributed. The actor is read from request.user when a write happens, so
the middleware may sit before AuthenticationMiddleware.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any

from asgiref.sync import iscoroutinefunction, markcoroutinefunction, sync_to_async
from django.conf import settings
from django.http import HttpRequest, HttpResponse

from . import client
from .context import LIMITS, RequestContext, _current, clean, new_request_id
from .handlers import flush_pending
from .sending import clear_leftovers

logger = logging.getLogger("django_bridge")

# Set when a request carried X-Forwarded-For while no proxy is trusted; the
# pg_audit.W030 check reports it (a deployment behind a proxy records the
# proxy's address for every event until PG_AUDIT_TRUSTED_PROXIES is set).
forwarded_seen_untrusted = False


def request_context(request: HttpRequest) -> RequestContext:
    global forwarded_seen_untrusted
    meta = request.META
    trusted = client.trusted_proxies()
    if not trusted and meta.get("HTTP_X_FORWARDED_FOR") and not forwarded_seen_untrusted:
        forwarded_seen_untrusted = True
        logger.warning(
            "pg-audit: X-Forwarded-For received but PG_AUDIT_TRUSTED_PROXIES is not set; "
            "recording REMOTE_ADDR (check pg_audit.W030)"
        )
    header = getattr(settings, "PG_AUDIT_REQUEST_ID_HEADER", None)
    request_id = clean(meta.get(header), LIMITS["request_id"]) if header else ""
    request_id = request_id or new_request_id()
    request.audit_request_id = request_id  # type: ignore[attr-defined]
    return RequestContext(
        request,
        ip=client.client_ip(meta, trusted),
        user_agent=meta.get("HTTP_USER_AGENT", ""),
        request_id=request_id,
    )


class AuditContextMiddleware:
    sync_capable = True
    async_capable = True

    def __init__(self, get_response: Callable[[HttpRequest], Any]) -> None:
        self.get_response = get_response
        client.trusted_proxies()  # a bad setting fails at startup, not per request
        self._async = iscoroutinefunction(get_response)
        if self._async:
            markcoroutinefunction(self)

    def __call__(self, request: HttpRequest) -> Any:
        if self._async:
            return self.__acall__(request)
        ctx = request_context(request)
        token = _current.set(ctx)
        try:
            return self.get_response(request)
        finally:
            _current.reset(token)
            clear_leftovers(ctx)
            flush_pending(ctx)

    async def __acall__(self, request: HttpRequest) -> HttpResponse:
        ctx = request_context(request)
        token = _current.set(ctx)
        try:
            response: Awaitable[HttpResponse] = self.get_response(request)
            return await response
        finally:
            _current.reset(token)
            if ctx.sent or ctx.pending:
                # The connections live in the thread that ran the ORM calls.
                await sync_to_async(_end, thread_sensitive=True)(ctx)


def _end(ctx: RequestContext) -> None:
    clear_leftovers(ctx)
    flush_pending(ctx)
