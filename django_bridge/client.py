"""The client address of a request: REMOTE_ADDR, or X-Forwarded-For behind trusted proxies."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from functools import lru_cache
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Trusted = int | tuple[Network, ...] | None


def trusted_proxies() -> Trusted:
    """PG_AUDIT_TRUSTED_PROXIES: None (default), a hop count, or CIDRs of the proxies."""
    raw = getattr(settings, "PG_AUDIT_TRUSTED_PROXIES", None)
    return _parse_trusted(raw if not isinstance(raw, list) else tuple(raw))


@lru_cache(maxsize=8)
def _parse_trusted(raw: Any) -> Trusted:
    if raw is None or raw == () or raw == 0:
        return None
    if isinstance(raw, bool):
        raise ImproperlyConfigured(
            f"PG_AUDIT_TRUSTED_PROXIES must be a count or CIDRs, not {raw!r}"
        )
    if isinstance(raw, int):
        if raw < 0:
            raise ImproperlyConfigured(f"PG_AUDIT_TRUSTED_PROXIES must not be negative: {raw}")
        return raw
    if isinstance(raw, str):
        raw = (raw,)
    nets = []
    for item in raw:
        try:
            nets.append(ipaddress.ip_network(str(item).strip(), strict=False))
        except ValueError:
            raise ImproperlyConfigured(
                f"PG_AUDIT_TRUSTED_PROXIES: {item!r} is not an address or CIDR"
            ) from None
    return tuple(nets)


def parse_address(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address from a header entry; tolerates a port ("1.2.3.4:80", "[::1]:80")."""
    text = text.strip().strip('"')
    if text.startswith("["):
        text = text[1:].split("]", 1)[0]
    elif text.count(":") == 1:
        text = text.split(":", 1)[0]
    try:
        return ipaddress.ip_address(text)
    except ValueError:
        return None


def client_ip(meta: Mapping[str, Any], trusted: Trusted) -> str:
    """The client address as text, or the raw unparseable value ('' when none).

    The database stores an unparseable value as a NULL ip (with the raw text in
    detail.ip_raw), so garbage never breaks a request nor pretends to be an address.
    X-Forwarded-For is read right to left, skipping trusted hops: the leftmost
    entries are whatever the client chose to send.
    """
    remote = str(meta.get("REMOTE_ADDR") or "")
    forwarded = meta.get("HTTP_X_FORWARDED_FOR")
    if not trusted or not forwarded:
        return _as_text(remote)
    if isinstance(forwarded, bytes):
        forwarded = forwarded.decode("latin-1")
    chain: Sequence[str] = [e.strip() for e in str(forwarded)[:4096].split(",")] + [remote]
    if isinstance(trusted, int):
        # The last `trusted` hops (REMOTE_ADDR first) are proxies we run.
        index = len(chain) - 1 - trusted
        return _as_text(chain[max(index, 0)])
    for entry in reversed(chain):
        address = parse_address(entry)
        if address is None:
            return entry  # unparseable before any untrusted hop: unknown client
        if not any(address in net for net in trusted):
            return str(address)
    return _as_text(chain[0])


def _as_text(entry: str) -> str:
    address = parse_address(entry)
    return str(address) if address is not None else entry


def forwarded_without_trust(meta: Mapping[str, Any]) -> bool:
    return bool(meta.get("HTTP_X_FORWARDED_FOR")) and trusted_proxies() is None
