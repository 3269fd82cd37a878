"""Declarative tracking with django-pgtrigger: a model's capture triggers, by enable_tracking.

    class Invoice(models.Model):
        ...
        class Meta:
            triggers = tracked(exclude=["card_token"])

makemigrations then writes pgtrigger AddTrigger operations, one per capture
trigger (audit_capture_insert/update/delete/truncate). Each installs by calling
audit.enable_tracking(table, excluded columns), which creates all four the first
time and finds nothing to do after, and uninstalls by audit.disable_tracking(),
so events are identical to the SQL function's, audit.tracked_table lists the
table, TRACKING_* events record each change, and the DDL guard protects the
triggers. The hash pgtrigger keeps identifies the declaration (table, operation,
excluded columns), computed as in the first release, so a new pg-audit needs no
new migration.
"""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pgtrigger
from pgtrigger import compiler, utils

from pg_audit_schema.errors import PgAuditError

_OPERATIONS = {
    "insert": (pgtrigger.Insert, pgtrigger.Referencing(new="audit_new")),
    "update": (pgtrigger.Update, pgtrigger.Referencing(old="audit_old", new="audit_new")),
    "delete": (pgtrigger.Delete, pgtrigger.Referencing(old="audit_old")),
    "truncate": (pgtrigger.Truncate, None),
}


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def array_literal(columns: list[str]) -> str:
    """A text[] literal as enable_tracking writes it: distinct, sorted, quoted when needed."""
    items = []
    for column in sorted(set(columns)):
        if column == "" or any(ch in column for ch in ' ,{}"\\\'') or column.upper() == "NULL":
            column = '"' + column.replace("\\", "\\\\").replace('"', '\\"') + '"'
        items.append(column)
    return "{" + ",".join(items) + "}"


# The SQL the first release ran, kept for the hash of a declaration: migrations
# written then carry that hash, and an unchanged declaration must keep it.
_DECLARATION = """
            SELECT pg_catalog.set_config('audit.untracking',
                                         {table_literal}::regclass::oid::text, true);
            DROP TRIGGER IF EXISTS {trigger} ON {table};
            CREATE TRIGGER {trigger}
                {when} {operation} ON {table}
                {referencing}
                FOR EACH STATEMENT
                EXECUTE FUNCTION {execute};
            ALTER TABLE {table} ENABLE ALWAYS TRIGGER {trigger};
            COMMENT ON TRIGGER {trigger} ON {table} IS '{hash}';
            SELECT pg_catalog.set_config('audit.untracking', '', true);
            {record}
        """

_EXCLUDED = re.compile(r"^audit\.capture\(('(?:[^']|'')*')\)$")


class CaptureTriggerSql(compiler.UpsertTriggerSql):
    """Installs the capture of one operation (migrations refer to this class by
    path and pass these keyword arguments: keep both)."""

    def get_template(self) -> str:
        return """
            SELECT audit.enable_tracking({table_literal}::regclass, {excluded}::text[]);
            COMMENT ON TRIGGER {trigger} ON {table} IS '{hash}';
        """

    def __init__(  # noqa: PLR0913 - mirrors pgtrigger's keyword arguments
        self, *, pgid: str, func: str, table: str, when: Any, operation: Any,
        referencing: Any = "", level: Any = "STATEMENT", execute: str,
        table_literal: str, trigger: str, record: str = "",
        hash: str | None = None,  # noqa: A002
    ) -> None:
        self.kwargs = {
            "pgid": pgid, "trigger": trigger, "func": str(func), "table": table, "when": str(when),
            "operation": str(operation), "referencing": str(referencing), "level": str(level),
            "execute": execute, "table_literal": table_literal, "record": record,
        }
        self.defaults: dict[str, str] = {}
        args = {**self.kwargs, "table": utils.quote(table)}
        self.hash = hash or hashlib.sha1(_DECLARATION.format(**args, hash="").encode()).hexdigest()
        excluded = _EXCLUDED.match(execute)
        if not excluded:
            raise PgAuditError(f"pg-audit: unexpected capture function call {execute!r}")
        self.data = self.get_template().format(**args, excluded=excluded[1], hash=self.hash)
        self.pgid = pgid
        self.table = table


class CompiledCapture(compiler.Trigger):
    @property
    def uninstall_sql(self) -> str:
        return f"SELECT audit.disable_tracking({self.sql.kwargs['table_literal']}::regclass);"


class AuditCapture(pgtrigger.Trigger):
    """One of the four capture triggers of a model (use ``tracked()`` for all four)."""

    def __init__(self, *, operation: str, exclude: list[str] | tuple[str, ...] = ()) -> None:
        if operation not in _OPERATIONS:
            raise ValueError(f"operation must be one of {sorted(_OPERATIONS)}, got {operation!r}")
        if isinstance(exclude, str):
            raise ValueError(f"exclude must be a list of field names, got the string {exclude!r}")
        self.op = operation
        self.exclude = tuple(exclude)
        op, referencing = _OPERATIONS[operation]
        super().__init__(
            name=f"audit_capture_{operation}", level=pgtrigger.Statement, when=pgtrigger.After,
            operation=op, referencing=referencing, func="RETURN NULL;",
        )

    def get_pgid(self, model: Any) -> str:
        # pgtrigger wants an id unique across models; the trigger itself is
        # named audit_capture_<op> on every table, as enable_tracking names it.
        return f"{super().get_pgid(model)}"

    def excluded_columns(self, model: Any) -> list[str]:
        columns = []
        for name in self.exclude:
            try:
                field = model._meta.get_field(name)
            except Exception:  # noqa: BLE001
                raise PgAuditError(
                    f"pg-audit: {model._meta.label} has no field {name!r} to exclude"
                ) from None
            if getattr(field, "primary_key", False):
                raise PgAuditError(
                    f"pg-audit: primary key {model._meta.label}.{name} cannot be excluded"
                )
            if field.column:
                columns.append(field.column)
        return columns

    def render_execute(self, model: Any) -> str:
        return f"audit.capture({_sql_literal(array_literal(self.excluded_columns(model)))})"

    def compile(self, model: Any) -> CompiledCapture:
        table = model._meta.db_table
        quoted = '"' + table.replace('"', '""') + '"'
        record = (
            f"SELECT audit.record_tracking({_sql_literal(quoted)}::regclass);"
            if self.op == "update" else ""
        )
        return CompiledCapture(
            name=self.name,
            sql=CaptureTriggerSql(
                pgid=self.get_pgid(model),
                trigger=f"audit_capture_{self.op}",
                func="RETURN NULL;",
                table=table,
                when=self.when,
                operation=self.operation,
                referencing=self.referencing or "",
                level=self.level,
                execute=self.render_execute(model),
                table_literal=_sql_literal(quoted),
                record=record,
            ),
        )


def tracked(exclude: list[str] | tuple[str, ...] = ()) -> list[AuditCapture]:
    """The four capture triggers for ``Meta.triggers``; ``exclude`` names fields never logged."""
    return [AuditCapture(operation=op, exclude=exclude) for op in _OPERATIONS]
