"""The audit context of the running request or job, kept in a contextvar.

A context is five strings (empty means unset), cleaned before they are sent:
NUL bytes removed, invalid UTF-8 and lone surrogates replaced, lengths
bounded to what audit.event keeps. The execute wrapper (sending.py) sends
them with the first write of each transaction.
"""

from __future__ import annotations

import contextvars
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, NamedTuple

# The bounds of audit.current_context(); cut here too, so a 64 KB header is
# never sent to the database at all.
LIMITS = {"actor_id": 256, "actor_name": 256, "ip": 100, "user_agent": 512, "request_id": 128}


class ContextValues(NamedTuple):
    actor_id: str = ""
    actor_name: str = ""
    ip: str = ""
    user_agent: str = ""
    request_id: str = ""


def clean(value: Any, limit: int) -> str:
    """A value as PostgreSQL text can hold it: no NUL, valid UTF-8, at most limit characters."""
    if value is None:
        return ""
    if isinstance(value, (bytes, bytearray)):
        value = bytes(value[: limit * 4]).decode("utf-8", "replace")
    text = str(value)[: limit * 2]
    text = text.replace("\x00", "").encode("utf-8", "replace").decode("utf-8")
    return text[:limit].strip()


def new_request_id() -> str:
    return uuid.uuid4().hex


def actor_of(user: Any) -> tuple[str, str]:
    """(id, user name) of a Django user; empty strings for anonymous or missing users."""
    if user is None or not getattr(user, "is_authenticated", False):
        return "", ""
    try:
        name = user.get_username()
    except AttributeError:
        name = str(user)
    return clean(user.pk, LIMITS["actor_id"]), clean(name, LIMITS["actor_name"])


class AuditContext:
    """Base: what the wrapper needs from any context (request or job)."""

    def __init__(self) -> None:
        # The database connections this context sent its settings on; see sending.py.
        self.sent: set[Any] = set()
        self.busy = False
        # Events to write when the context ends (handlers.flush_pending): (alias, context, params).
        self.pending: list[tuple[str, list[str], list[Any]]] = []

    def values(self) -> ContextValues:
        raise NotImplementedError


class FixedContext(AuditContext):
    def __init__(self, values: ContextValues) -> None:
        super().__init__()
        self._values = values

    def values(self) -> ContextValues:
        return self._values


class RequestContext(AuditContext):
    """The context of one HTTP request. The actor is read from request.user at
    each send, so a user authenticated late (in the view, by DRF, by login())
    is carried by the writes that follow."""

    def __init__(self, request: Any, ip: str, user_agent: str, request_id: str) -> None:
        super().__init__()
        self.request = request
        self.ip = clean(ip, LIMITS["ip"])
        self.user_agent = clean(user_agent, LIMITS["user_agent"])
        self.request_id = clean(request_id, LIMITS["request_id"])

    def values(self) -> ContextValues:
        actor_id, actor_name = actor_of(getattr(self.request, "user", None))
        return ContextValues(actor_id, actor_name, self.ip, self.user_agent, self.request_id)


_current: contextvars.ContextVar[AuditContext | None] = contextvars.ContextVar(
    "pg_audit_context", default=None
)


def current() -> AuditContext | None:
    return _current.get()


def current_values() -> ContextValues | None:
    ctx = _current.get()
    return None if ctx is None else ctx.values()


@contextmanager
def audit_context(
    actor: Any = None,
    *,
    reason: str | None = None,
    actor_id: str | None = None,
    actor_name: str | None = None,
    ip: str | None = None,
    user_agent: str | None = None,
    request_id: str | None = None,
) -> Iterator[ContextValues]:
    """Sets the audit context for work outside requests (commands, jobs, the shell).

    ``actor`` is a Django user, or a string taken as the actor's name. The
    ``reason`` is recorded as the user agent (a job has no browser; its reason
    is what tells its events apart), unless user_agent is given. Every event
    written inside the block carries a shared request id (given or generated).
    """
    if actor is not None and not isinstance(actor, str):
        aid, aname = actor_of(actor)
    else:
        aid, aname = "", clean(actor, LIMITS["actor_name"])
    values = ContextValues(
        clean(actor_id, LIMITS["actor_id"]) if actor_id is not None else aid,
        clean(actor_name, LIMITS["actor_name"]) if actor_name is not None else aname,
        clean(ip, LIMITS["ip"]),
        clean(user_agent if user_agent is not None else reason, LIMITS["user_agent"]),
        clean(request_id or new_request_id(), LIMITS["request_id"]),
    )
    ctx = FixedContext(values)
    token = _current.set(ctx)
    try:
        yield values
    finally:
        _current.reset(token)
        from .handlers import flush_pending
        from .sending import clear_leftovers

        clear_leftovers(ctx)
        flush_pending(ctx)
