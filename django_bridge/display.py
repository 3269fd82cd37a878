"""Showing audit values exactly as they were recorded.

Capture records every column as PostgreSQL's text output of the value (a JSON
string: "12.50", "13"), SQL NULL as JSON null; events written before that keep
typed JSON (12.50 as a JSON number). Both are read with JSON numbers as
Decimal (models.ExactJSONDecoder), never float, so 12.50 stays 12.50 and
12345678901234567890.1234567891 stays exact, and written back by to_json().
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any

from pg_audit_schema.events import value_text

VALUE_LIMIT = 40  # characters of one value in the list's summary
SUMMARY_LIMIT = 140  # characters of the whole summary


def to_json(value: Any, indent: int | None = None, _level: int = 0) -> str:
    """JSON text of a decoded value; a Decimal is written as the number it was read from."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (dict, list)) and value:
        pad, inner = ("", "") if indent is None else (
            "\n" + " " * indent * _level, "\n" + " " * indent * (_level + 1))
        if isinstance(value, dict):
            items = [f"{inner}{json.dumps(str(k), ensure_ascii=False)}: "
                     f"{to_json(v, indent, _level + 1)}" for k, v in value.items()]
            return "{" + ", ".join(items).replace(", \n", ",\n") + pad + "}"
        items = [inner + to_json(v, indent, _level + 1) for v in value]
        return "[" + ", ".join(items).replace(", \n", ",\n") + pad + "]"
    return json.dumps(value, ensure_ascii=False)


def plain(value: Any) -> str:
    """A column value as a person reads it: text as is, numbers exact, NULL as NULL."""
    if value is None:
        return "NULL"
    if isinstance(value, str):
        return value
    return to_json(value)


def _short(value: Any) -> str:
    # One line, spelled as `pg-audit tail` spells it (events.value_text): text as
    # itself, quoted only where it would not read as one word; NULL as null.
    text = value_text(value).replace("\n", " ")
    return text if len(text) <= VALUE_LIMIT else text[: VALUE_LIMIT - 1] + "\u2026"


def summary(event: Any, content_type_name: str | None = None) -> str:
    """One line saying what changed, for the list (the detail page has everything)."""
    parts: list[str] = []
    if event.action == "UPDATE":
        parts = [f"{c.column}: {_short(c.old)} \u2192 {_short(c.new)}" for c in event.changes()]
    elif event.action in ("INSERT", "DELETE"):
        parts = [f"{c.column}={_short(c.new if c.has_new else c.old)}" for c in event.changes()]
    elif isinstance(event.detail, dict):
        detail = event.detail
        if event.action.startswith("ADMIN_"):
            what = content_type_name or detail.get("content_type") or ""
            parts = [f"{what} {_short(detail.get('object_repr'))}".strip()]
        elif event.action == "DDL":
            parts = [" ".join(str(detail[k]) for k in ("command_tag", "object_identity")
                              if detail.get(k))]
        elif "username" in detail:
            parts = [f"user name: {_short(detail['username'])}"]
        elif "statement" in detail:
            parts = [_short(detail["statement"])]
    text = ", ".join(p for p in parts if p)
    return text if len(text) <= SUMMARY_LIMIT else text[: SUMMARY_LIMIT - 1] + "\u2026"
