"""Reading audit.event from the Django tests (import from here, not from
conftest: the suite has two conftest modules)."""

from __future__ import annotations

from typing import Any


def fetch_events(where: str = "TRUE", params: list[Any] | None = None) -> list[dict[str, Any]]:
    """audit.event rows as dicts (ip as text, jsonb decoded), oldest first."""
    import json

    from django.db import connection

    columns = ["id", "action", "outcome", "actor_id", "actor_name", "ip", "user_agent",
               "request_id", "db_role", "table_name", "row_key", "old_values", "new_values",
               "detail"]
    select = ", ".join("host(ip) AS ip" if c == "ip" else c for c in columns)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {select} FROM audit.event WHERE {where} ORDER BY id", params or [])
        rows = [dict(zip(columns, row, strict=True)) for row in cursor.fetchall()]
    for row in rows:
        for key in ("row_key", "old_values", "new_values", "detail"):
            if isinstance(row[key], str):
                row[key] = json.loads(row[key])
    return rows


def product_events(name: str) -> list[dict[str, Any]]:
    return fetch_events(
        "table_name = 'public.shop_product' AND (new_values->>'name' = %s "
        "OR old_values->>'name' = %s)", [name, name])
