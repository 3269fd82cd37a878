"""pghistory's middleware records user and URL; its docs add more by subclassing.

The benchmark adds the client address, so pghistory carries the same context
(user and IP) as the other libraries.
"""

from __future__ import annotations

from typing import Any

from pghistory.middleware import HistoryMiddleware


class HistoryWithIpMiddleware(HistoryMiddleware):
    def get_context(self, request: Any) -> dict[str, Any]:
        return {**super().get_context(request), "ip": request.META.get("REMOTE_ADDR")}
