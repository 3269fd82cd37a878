"""A read-only model over ``audit.event``.

The table belongs to the database, not to Django: it is created by the SQL
steps, it is append-only for everyone but a superuser, and it is partitioned
by month. So the model is unmanaged, and every write path Django offers
(save, delete, QuerySet.update/delete, bulk_create) raises before reaching it.
"""

from __future__ import annotations

import json
from decimal import Decimal
from typing import Any, NamedTuple, NoReturn

from django.db import models

from pg_audit_schema.errors import PgAuditError


class ReadOnlyAuditLog(PgAuditError):
    """Raised by every attempt to write audit.event through the ORM."""


def _refuse(what: str) -> NoReturn:
    raise ReadOnlyAuditLog(
        f"pg-audit: {what} is not allowed: audit.event is append-only and read-only in Django"
    )


class TransactionIdField(models.Field):  # type: ignore[type-arg]
    """An ``xid8`` column, read as an int.

    psycopg has no loader for xid8 and hands over its text; filter values are
    sent as text too, because PostgreSQL has no ``xid8 = bigint`` operator but
    casts an untyped literal to xid8.
    """

    description = "PostgreSQL xid8 transaction id"

    def db_type(self, connection: Any) -> str:
        return "xid8"

    def from_db_value(self, value: Any, expression: Any, connection: Any) -> int | None:
        return None if value is None else int(value)

    def to_python(self, value: Any) -> int | None:
        return None if value is None else int(value)

    def get_prep_value(self, value: Any) -> str | None:
        return None if value is None else str(int(value))


class ExactJSONDecoder(json.JSONDecoder):
    """JSON numbers as Decimal: 12.50 stays 12.50, no digit is lost to a float."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("parse_float", Decimal)
        super().__init__(*args, **kwargs)


class AuditEventQuerySet(models.QuerySet):  # type: ignore[type-arg]
    def update(self, **kwargs: Any) -> NoReturn:
        _refuse("QuerySet.update()")

    def delete(self) -> NoReturn:  # type: ignore[override]
        _refuse("QuerySet.delete()")

    def bulk_create(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        _refuse("bulk_create()")

    def bulk_update(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        _refuse("bulk_update()")

    def create(self, **kwargs: Any) -> NoReturn:
        _refuse("create()")

    def get_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        _refuse("get_or_create()")

    def update_or_create(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        _refuse("update_or_create()")


AuditEventManager = models.Manager.from_queryset(AuditEventQuerySet)


class AuditEvent(models.Model):
    """One row of ``audit.event``: a data change, login, admin action or application event."""

    # The table's primary key is (id, occurred_at), as partitioning requires;
    # id alone comes from one sequence and is unique.
    id = models.BigIntegerField(primary_key=True)
    occurred_at = models.DateTimeField()
    tx_started_at = models.DateTimeField()
    action = models.TextField()
    outcome = models.TextField(null=True)
    actor_id = models.TextField(null=True)
    actor_name = models.TextField(null=True)
    ip = models.GenericIPAddressField("IP address", null=True)
    user_agent = models.TextField(null=True)
    request_id = models.TextField(null=True)
    db_role = models.TextField()
    application_name = models.TextField(null=True)
    table_name = models.TextField(null=True)
    row_key = models.JSONField(null=True, decoder=ExactJSONDecoder)
    old_values = models.JSONField(null=True, decoder=ExactJSONDecoder)
    new_values = models.JSONField(null=True, decoder=ExactJSONDecoder)
    detail = models.JSONField(null=True, decoder=ExactJSONDecoder)
    # For an UPDATE that changed the primary key: the key before (row_key is the new one).
    old_row_key = models.JSONField(null=True, decoder=ExactJSONDecoder)
    txid = TransactionIdField("transaction id")

    objects = AuditEventManager()

    class Meta:
        managed = False
        db_table = '"audit"."event"'
        ordering = ["-id"]
        verbose_name = "audit event"
        verbose_name_plural = "audit events"
        default_permissions = ("view",)

    def __str__(self) -> str:
        where = f" on {self.table_name}" if self.table_name else ""
        return f"#{self.id} {self.action}{where}"

    def save(self, *args: Any, **kwargs: Any) -> NoReturn:
        _refuse("save()")

    def delete(self, *args: Any, **kwargs: Any) -> NoReturn:  # type: ignore[override]
        _refuse("delete()")

    def changes(self) -> list[Change]:
        """One row per column in old_values or new_values: INSERT has no old, DELETE no new."""
        old = self.old_values if isinstance(self.old_values, dict) else {}
        new = self.new_values if isinstance(self.new_values, dict) else {}
        columns = list(new) + [c for c in old if c not in new]
        return [Change(c, c in old, old.get(c), c in new, new.get(c)) for c in columns]


class Change(NamedTuple):
    column: str
    has_old: bool
    old: Any
    has_new: bool
    new: Any


class NetContainedOrEqual(models.Lookup):  # type: ignore[type-arg]
    """``ip <<= 'net'``: the address is inside the network (or is that address).

    A btree index on ip serves it, as PostgreSQL turns ``<<=`` into a range.
    The right-hand side goes to the server as text: Django's IP field would
    reject a CIDR.
    """

    lookup_name = "net_contained_or_equal"
    prepare_rhs = False

    def as_sql(self, compiler: Any, connection: Any) -> tuple[str, list[Any]]:
        lhs, lhs_params = self.process_lhs(compiler, connection)
        return f"{lhs} <<= %s::inet", [*lhs_params, str(self.rhs)]


AuditEvent._meta.get_field("ip").register_lookup(NetContainedOrEqual)
