"""A read-only admin viewer for ``audit.event``, for users with its view permission.

Built for a log of millions of rows: pages never run an unbounded COUNT,
the search and every filter but the request use a column that an index of
audit.event serves (the request's links bound it by time instead), and the
CSV export streams.
"""

from __future__ import annotations

import csv
import datetime
import ipaddress
import json
import logging
import re
from collections.abc import Iterable, Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import urlencode

from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.db import DatabaseError, connections, router, transaction
from django.db.models import Model, Q, QuerySet
from django.db.models.expressions import RawSQL
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils import timezone
from django.utils.functional import cached_property
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString, mark_safe

from pg_audit_schema.events import EXPORT_COLUMNS, actor_label, ip_text

from .display import plain, summary, to_json
from .models import AuditEvent, ExactJSONDecoder
from .routing import viewer_database

logger = logging.getLogger(__name__)

KNOWN_ACTIONS = (
    "INSERT", "UPDATE", "DELETE", "TRUNCATE",
    "LOGIN", "LOGOUT", "LOGIN_FAILED",
    "ADMIN_CREATE", "ADMIN_UPDATE", "ADMIN_DELETE",
    "DDL", "TRACKING_ENABLED", "TRACKING_DISABLED",
)

# Past this many matching rows the list says "more than N" instead of counting.
COUNT_CAP = 10_000

# The columns and order of `pg-audit export` (pg_audit_schema.events), one spelling.
CSV_COLUMNS = EXPORT_COLUMNS

# A spreadsheet runs a cell that starts with one of these as a formula.
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value: Any) -> str | int:
    """A value as a CSV cell that no spreadsheet runs as a formula and that stays on one line."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return value
    if isinstance(value, datetime.datetime):
        return value.isoformat()
    if isinstance(value, (dict, list, Decimal)):
        text = to_json(value)
    else:
        text = str(value)
    if text.lstrip(" ").startswith(_FORMULA_START):
        text = "'" + text
    # Quoted newlines are valid CSV, but line-oriented tools and careless
    # importers split records on them; an audit export must not be forgeable so.
    return text.replace("\r", "\\r").replace("\n", "\\n")


def access_problem(using: str | None) -> str | None:
    """Why the database role of ``using`` cannot read audit.event, or None when it can."""
    if using is None:
        return ("No PostgreSQL database holds the audit schema: add one and let django_bridge "
                "migrate there (check pg_audit.E002).")
    with connections[using].cursor() as cursor:
        # CASE evaluates in order, so a missing schema never reaches the privilege checks.
        cursor.execute(
            """
            SELECT CASE
                WHEN pg_catalog.to_regnamespace('audit') IS NULL THEN 'schema'
                WHEN NOT pg_catalog.has_schema_privilege('audit', 'USAGE') THEN 'usage'
                WHEN pg_catalog.to_regclass('audit.event') IS NULL THEN 'schema'
                WHEN NOT pg_catalog.has_table_privilege('audit.event', 'SELECT') THEN 'select'
                END,
                current_user
            """
        )
        problem, role = cursor.fetchone()
    if problem is None:
        return None
    if problem == "schema":
        return "The audit schema is not installed in this database: run python manage.py migrate."
    return (
        f'The database role "{role}" may not read audit.event. '
        f'A database superuser can allow it with: GRANT audit_reader TO "{role}";'
    )


class CappedCountPaginator(Paginator):
    """Counts at most COUNT_CAP + 1 rows, so no page asks for a COUNT(*) of the whole log."""

    @cached_property
    def count(self) -> int:  # type: ignore[override]
        found = self.object_list.order_by()[: COUNT_CAP + 1].count()
        self._capped = found > COUNT_CAP
        return min(found, COUNT_CAP)

    @property
    def capped(self) -> bool:
        self.count  # noqa: B018 - computes _capped
        return self._capped


class AuditChangeList(ChangeList):
    def get_ordering(self, request: HttpRequest, queryset: QuerySet[Any]) -> list[Any]:
        # sortable_by only hides the other column headers; ?o= in the URL would
        # still sort the whole log on an unindexed column. Only the key orders.
        ordering = super().get_ordering(request, queryset)
        kept = [o for o in ordering if isinstance(o, str) and o.lstrip("-") in ("id", "pk")]
        return kept or ["-id"]


class InputFilter(admin.ListFilter):
    """A sidebar filter with text inputs instead of a list of values.

    Listing the distinct actors, addresses or tables would read the whole log
    on every page; a typed value is looked up through an index instead.
    """

    template = "admin/django_bridge/auditevent/input_filter.html"
    inputs: tuple[tuple[str, str, str], ...] = ()  # (parameter, label, input type)

    def __init__(self, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any):
        super().__init__(request, params, model, model_admin)
        self.request = request
        self.values: dict[str, str] = {}
        for name, _label, _kind in self.inputs:
            if name in params:
                value = params.pop(name)
                # Django 5 passes lists of values, 4.2 single strings.
                value = value[-1] if isinstance(value, list) else value
                self.used_parameters[name] = value
                if value.strip():
                    self.values[name] = value.strip()

    def has_output(self) -> bool:
        return True

    def expected_parameters(self) -> list[str]:
        return [name for name, _label, _kind in self.inputs]

    def choices(self, changelist: Any) -> Iterator[dict[str, Any]]:
        mine = set(self.expected_parameters())
        yield {
            "inputs": [(n, label, kind, self.values.get(n, "")) for n, label, kind in self.inputs],
            "hidden": [
                (k, v) for k, v in changelist.get_filters_params().items()
                if k not in mine and k != "p"
                for v in (v if isinstance(v, list) else [v])
            ] + ([("q", changelist.query)] if changelist.query else []),
            "clear_url": changelist.get_query_string(remove=[*mine, "p"]),
            "active": bool(self.values),
        }

    def reject(self, queryset: QuerySet[Any], message: str) -> QuerySet[Any]:
        messages.warning(self.request, message)
        return queryset.none()


class ActionFilter(admin.SimpleListFilter):
    title = "action"
    parameter_name = "action"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        # A fixed list: SELECT DISTINCT action would scan the whole log. Any
        # other verb still filters through ?action=VERB.
        return [(a, a) for a in KNOWN_ACTIONS]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        value = self.value()
        return queryset.filter(action=value) if value else queryset


class ActorFilter(InputFilter):
    title = "actor id"
    inputs = (("actor", "Actor id", "text"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        actor = self.values.get("actor")
        return queryset.filter(actor_id=actor) if actor else queryset


class TableFilter(InputFilter):
    title = "table"
    inputs = (("table", "schema.table", "text"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        table = self.values.get("table")
        return queryset.filter(table_name=qualified(table)) if table else queryset


class IpFilter(InputFilter):
    title = "IP address"
    inputs = (("ip", "Address or CIDR", "text"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        raw = self.values.get("ip")
        if not raw:
            return queryset
        try:
            network = ipaddress.ip_network(raw, strict=False)
        except ValueError:
            return self.reject(queryset, f"Not an IP address or network: {raw[:60]!r}")
        return queryset.filter(ip__net_contained_or_equal=str(network))


class RequestFilter(InputFilter):
    """Exact request id. No index serves request_id (step 0006 keeps the log's index set
    lean): pair it with a time range, as the links from an event do (request_query)."""

    title = "request"
    inputs = (("request", "Request id", "text"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        request_id = self.values.get("request")
        return queryset.filter(request_id=request_id) if request_id else queryset


def qualified(table: str) -> str:
    # "shop_order" means "public.shop_order", as audit.table_name() spells it.
    return table if "." in table else f"public.{table}"


class RowFilter(InputFilter):
    """Every event of one row, through audit.row_history(): the table as written, the key
    by value ({"id": 42} or {"id": "42"}), the row's earlier keys and a dropped table's
    events included."""

    title = "row"
    inputs = (("row", 'Row key (JSON, e.g. {"id": "42"}) with a table', "text"),)

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        raw = self.values.get("row")
        if not raw:
            return queryset
        table = (self.request.GET.get("table") or "").strip()
        try:
            key = json.loads(raw, cls=ExactJSONDecoder)
        except ValueError:
            key = None
        if not isinstance(key, dict) or not key or not table:
            return self.reject(queryset, f"A row is a JSON object key and a table: {raw[:60]!r}")
        problem = _unknown_table(queryset.db, table)
        if problem:
            return self.reject(queryset, problem)
        return queryset.filter(id__in=RawSQL(
            "SELECT id FROM audit.row_history(%s, %s::jsonb)", [table, to_json(key)]))


def _unknown_table(using: str, table: str) -> str | None:
    """audit.resolve_table's refusal (never tracked, ambiguous, not a name), or None."""
    try:
        with transaction.atomic(using=using), connections[using].cursor() as cursor:
            cursor.execute("SELECT audit.resolve_table(%s)", [table])
    except DatabaseError as exc:
        return str(exc).strip().splitlines()[0][:200]
    return None


class DateRangeFilter(InputFilter):
    title = "time range (occurred at)"
    inputs = (("occurred_from", "From", "datetime-local"),
              ("occurred_to", "To (inclusive)", "datetime-local"))

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        bounds: dict[str, datetime.datetime] = {}
        for name, lookup in (("occurred_from", "gte"), ("occurred_to", "lt")):
            raw = self.values.get(name)
            if not raw:
                continue
            try:
                moment, step = _moment(raw)
            except ValueError:
                return self.reject(
                    queryset, f"Not a date or time (YYYY-MM-DD[THH:MM[:SS]]): {raw[:30]!r}")
            # "To" includes its whole day, minute or second. In the site's time zone;
            # a range on occurred_at prunes the monthly partitions and uses the BRIN index.
            if lookup == "lt":
                moment += step
            bounds[f"occurred_at__{lookup}"] = (
                timezone.make_aware(moment) if _use_tz() and timezone.is_naive(moment)
                else moment)
        return queryset.filter(**bounds)


def _moment(raw: str) -> tuple[datetime.datetime, datetime.timedelta]:
    """A typed date or date-time and the precision it was given with."""
    raw = raw.strip().replace(" ", "T")
    if "T" not in raw:
        day = datetime.date.fromisoformat(raw)
        return datetime.datetime.combine(day, datetime.time.min), datetime.timedelta(days=1)
    moment = datetime.datetime.fromisoformat(raw).replace(microsecond=0)
    seconds = re.match(r"\d\d:\d\d:\d\d", raw.split("T", 1)[1]) is not None
    return moment, datetime.timedelta(seconds=1 if seconds else 60)


def _use_tz() -> bool:
    from django.conf import settings

    return bool(settings.USE_TZ)


@admin.register(AuditEvent)
class AuditEventAdmin(admin.ModelAdmin):  # type: ignore[type-arg]
    # Who (user or database role, with the address) and where (table, key) take one
    # column each, so the list fits 1440 px beside the admin's navigation.
    list_display = ("id", "occurred", "verb", "actor", "object", "what_changed", "request")
    list_display_links = ("id",)
    list_filter = (ActionFilter, DateRangeFilter, ActorFilter, IpFilter, TableFilter, RowFilter,
                   RequestFilter)
    # Only the primary key orders cheaply (newest first is ORDER BY id DESC).
    sortable_by = ("id",)
    ordering = ("-id",)
    search_fields = ("actor_name", "ip", "actor_id")
    search_help_text = (
        "Exact actor id, user name prefix (case-sensitive), IP address or CIDR range. "
        "A request's events: its link in the list, or the request filter with a time range."
    )
    list_per_page = 100
    list_max_show_all = 200
    show_full_result_count = False
    paginator = CappedCountPaginator
    actions = None
    fieldsets = (
        (None, {"fields": ("id", "when", "action", "outcome", "table_name", "row_key_json",
                           "old_row_key_json", "changes_table", "statement")}),
        ("Who and where", {"fields": ("actor_id", "actor_name", "ip", "user_agent", "request_id",
                                      "db_role", "application_name")}),
        ("Other", {"fields": ("detail_json", "txid", "tx_started_at")}),
    )
    readonly_fields = (
        "id", "occurred_at", "tx_started_at", "action", "outcome", "actor_id", "actor_name", "ip",
        "user_agent", "request_id", "db_role", "application_name", "table_name", "txid",
        "row_key_json", "old_row_key_json", "changes_table", "statement", "detail_json", "when",
    )
    change_list_template = "admin/django_bridge/auditevent/change_list.html"
    change_form_template = "admin/django_bridge/auditevent/change_form.html"

    if hasattr(admin, "ShowFacets"):  # Django 5.0+: facet counts would scan the log
        show_facets = admin.ShowFacets.NEVER

    # --- who may see it -----------------------------------------------------

    def has_module_permission(self, request: HttpRequest) -> bool:
        return may_view(request)

    def has_view_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return may_view(request)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False

    # --- list ---------------------------------------------------------------

    def get_queryset(self, request: HttpRequest) -> QuerySet[Any]:
        # The routers' database for AuditEvent reads, else the one holding the schema.
        return super().get_queryset(request).using(viewer_database())

    def get_changelist(self, request: HttpRequest, **kwargs: Any) -> type[ChangeList]:
        return AuditChangeList

    @admin.display(description="occurred at")
    def when(self, event: AuditEvent) -> str:
        # Seconds matter in an audit trail; the default format stops at minutes.
        value = event.occurred_at
        if timezone.is_aware(value):
            value = timezone.localtime(value)
        return value.strftime("%Y-%m-%d %H:%M:%S %Z").rstrip()

    @admin.display(description="occurred at")
    def occurred(self, event: AuditEvent) -> str:
        day, _, rest = self.when(event).partition(" ")
        return format_html('{}<br><span class="audit-time">{}</span>', day, rest)

    @admin.display(description="action")
    def verb(self, event: AuditEvent) -> str:
        # TRACKING_ENABLED and ADMIN_UPDATE may wrap after their underscores.
        return format_html_join(mark_safe("_<wbr>"), "{}", ((p,) for p in event.action.split("_")))

    @admin.display(description="who")
    def actor(self, event: AuditEvent) -> str:
        # Spelled as the CLI and the demo spell it (events.actor_label): the user,
        # "anonymous" for a request or job without one, or, when nobody set any
        # context (a DBA in psql, a cron job), the database login that made the change.
        label = actor_label(event.actor_id, event.actor_name, event.db_role, event.ip,
                            event.user_agent, event.request_id)
        if event.actor_id is not None:
            who = format_html('<a href="?{}" title="All events of actor id {}">{}</a>',
                              urlencode({"actor": event.actor_id}), event.actor_id, label)
        elif label == event.db_role and not event.actor_name:
            who = format_html('<span class="audit-role" title="database role (no application '
                              'context)">{} <small>(db role)</small></span>', label)
        else:
            who = format_html("{}", label)
        ip = ip_text(event.ip)
        if ip is None:
            return who
        return format_html('{}<br><a href="?{}" class="audit-ip" title="All events from {}">'
                           '{}</a>', who, urlencode({"ip": ip}), ip, ip)

    @admin.display(description="row")
    def object(self, event: AuditEvent) -> str:
        if not event.table_name:
            return ""
        if not isinstance(event.row_key, dict) or not event.row_key:
            return event.table_name
        key = ", ".join(f"{k}={plain(v)}" for k, v in event.row_key.items())
        return format_html('<a href="?{}" title="Every event of this row">{}<br>{}</a>',
                           row_query(event.table_name, event.row_key), event.table_name, key)

    @admin.display(description="what changed")
    def what_changed(self, event: AuditEvent) -> str:
        return summary(event, self._content_type_name(event))

    @admin.display(description="request")
    def request(self, event: AuditEvent) -> str:
        if not event.request_id:
            return ""
        return format_html('<a href="?{}" title="Every event of request {}">{}</a>',
                           request_query(event), event.request_id, event.request_id[:8])

    def get_search_results(
        self, request: HttpRequest, queryset: QuerySet[Any], search_term: str
    ) -> tuple[QuerySet[Any], bool]:
        term = search_term.strip()
        if not term:
            return queryset, False
        # Equality and a LIKE 'prefix%' only: a leading-wildcard ILIKE cannot use
        # an index and would read every row of the log.
        # request_id has no index (step 0006): a request is found through its links.
        match = Q(actor_id=term) | Q(actor_name__startswith=term)
        try:
            match |= Q(ip__net_contained_or_equal=str(ipaddress.ip_network(term, strict=False)))
        except ValueError:
            pass
        return queryset.filter(match), False

    # --- detail -------------------------------------------------------------

    @admin.display(description="changes")
    def changes_table(self, event: AuditEvent) -> SafeString | str:
        changes = event.changes()
        if not changes:
            return "-"
        absent = format_html('<span class="audit-absent">{}</span>', "\u2014")
        rows = format_html_join(
            "\n",
            '<tr><th scope="row">{}</th><td class="audit-old">{}</td>'
            '<td class="audit-new">{}</td></tr>',
            (
                (c.column,
                 _value_cell(c.old) if c.has_old else absent,
                 _value_cell(c.new) if c.has_new else absent)
                for c in changes
            ),
        )
        return format_html(
            '<table class="audit-changes"><thead><tr><th scope="col">column</th>'
            '<th scope="col">old</th><th scope="col">new</th></tr></thead>'
            '<tbody>{}</tbody></table>',
            rows,
        )

    @admin.display(description="row key")
    def row_key_json(self, event: AuditEvent) -> SafeString | str:
        if event.row_key is None:
            return "-"
        if not event.table_name or not isinstance(event.row_key, dict):
            return _json_cell(event.row_key)
        return format_html('{} <a href="{}?{}" class="audit-row-history">every event of this '
                           'row</a>', _json_cell(event.row_key), self._changelist_url(),
                           row_query(event.table_name, event.row_key))

    @admin.display(description="row key before")
    def old_row_key_json(self, event: AuditEvent) -> SafeString | str:
        key = getattr(event, "old_row_key", None)
        if not isinstance(key, dict) or not event.table_name:
            return "-"
        return format_html('{} <a href="{}?{}">every event under this key</a>', _json_cell(key),
                           self._changelist_url(), row_query(event.table_name, key))

    @admin.display(description="SQL statement")
    def statement(self, event: AuditEvent) -> SafeString | str:
        # Changes made without application context (psql, cron) carry their statement.
        text = event.detail.get("statement") if isinstance(event.detail, dict) else None
        if not isinstance(text, str):
            return "-"
        return format_html('<pre class="audit-json">{}</pre>', text)

    @admin.display(description="detail")
    def detail_json(self, event: AuditEvent) -> SafeString | str:
        if event.detail is None:
            return "-"
        name = self._content_type_name(event)
        note = format_html('<p>content type: {}</p>', name) if name else ""
        return format_html('{}<pre class="audit-json">{}</pre>', note,
                           to_json(event.detail, indent=2))

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        refused = self._unless_unreadable(request)
        if refused:
            return refused
        event = self.get_object(request, object_id)
        links = []
        if event is not None and event.request_id:
            links.append(("every event of this request",
                          f"{self._changelist_url()}?{request_query(event)}"))
        if event is not None and event.table_name and isinstance(event.row_key, dict):
            links.append(("every event of this row",
                          f"{self._changelist_url()}?{row_query(event.table_name, event.row_key)}"))
        context = {**(extra_context or {}), "audit_links": links}
        return super().change_view(request, object_id, form_url, context)

    def _changelist_url(self) -> str:
        return reverse("admin:django_bridge_auditevent_changelist",
                       current_app=self.admin_site.name)

    def _content_type_name(self, event: AuditEvent) -> str | None:
        """app_label.model of an ADMIN_* event, read from django_content_type by id (newer
        events carry only the id)."""
        detail = event.detail if isinstance(event.detail, dict) else {}
        if not event.action.startswith("ADMIN_") or detail.get("content_type_id") is None:
            return None
        from django.contrib.contenttypes.models import ContentType

        try:
            ct = ContentType.objects.get_for_id(int(detail["content_type_id"]))
        except (ContentType.DoesNotExist, ValueError, TypeError):
            return detail.get("content_type")
        return f"{ct.app_label}.{ct.model}"

    # --- views --------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        export = path(
            "export.csv",
            self.admin_site.admin_view(self.export_csv_view),
            name="django_bridge_auditevent_export",
        )
        return [export, *super().get_urls()]

    def changelist_view(
        self, request: HttpRequest, extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        return self._unless_unreadable(request) or super().changelist_view(request, extra_context)

    def export_csv_view(self, request: HttpRequest) -> HttpResponse:
        """The changelist's filtered and searched rows, newest first, as CSV."""
        if not self.has_view_permission(request):
            raise PermissionDenied
        refused = self._unless_unreadable(request)
        if refused:
            return refused
        # The export is every page of the list, whichever page it was started from.
        request.GET = request.GET.copy()
        request.GET.pop("p", None)
        try:
            changelist = self.get_changelist_instance(request)
        except IncorrectLookupParameters:
            return HttpResponse("Invalid filter parameters.", status=400, content_type="text/plain")
        queryset = changelist.get_queryset(request)
        writer = csv.writer(_Echo())
        response = StreamingHttpResponse(
            (writer.writerow(row) for row in _csv_rows(queryset)),
            content_type="text/csv; charset=utf-8",
        )
        stamp = timezone.now().strftime("%Y%m%d-%H%M%S")
        response["Content-Disposition"] = f'attachment; filename="audit-events-{stamp}.csv"'
        return response

    def _unless_unreadable(self, request: HttpRequest) -> HttpResponse | None:
        """A clear page instead of a 500 when the database role cannot read the log."""
        if not self.has_view_permission(request):
            return None  # the admin's own 403 comes first
        problem = access_problem(viewer_database())
        if problem is None:
            return None
        logger.warning("pg-audit admin viewer: %s", problem)
        context = {**self.admin_site.each_context(request), "opts": self.opts,
                   "title": "Audit events unavailable", "problem": problem}
        return TemplateResponse(request, "admin/django_bridge/auditevent/unavailable.html",
                                context, status=503)


class AuditHistoryMixin:
    """For the ModelAdmin of a tracked model: an "Audit trail" button on each object's
    page, next to History, opening every event of that row in the audit viewer.

        @admin.register(Order)
        class OrderAdmin(AuditHistoryMixin, admin.ModelAdmin):
            ...
    """

    change_form_template = "admin/django_bridge/audit_trail_change_form.html"

    def change_view(self, request: HttpRequest, object_id: str, form_url: str = "",
                    extra_context: dict[str, Any] | None = None) -> HttpResponse:
        context = {**(extra_context or {}), "audit_trail_url": self.audit_trail_url(request,
                                                                                    object_id)}
        return super().change_view(request, object_id, form_url, context)  # type: ignore[misc]

    def audit_trail_url(self, request: HttpRequest, object_id: str) -> str | None:
        if not may_view(request):
            return None
        model = self.model  # type: ignore[attr-defined]
        obj = self.get_object(request, object_id)  # type: ignore[attr-defined]
        if obj is None:
            return None
        alias = router.db_for_read(model)
        try:
            # As capture spells it (schema.table, whatever the search_path); a savepoint,
            # so a database without the schema costs the button, not the page.
            with transaction.atomic(using=alias), connections[alias].cursor() as cursor:
                cursor.execute("SELECT audit.table_name(%s::regclass)",
                               [connections[alias].ops.quote_name(model._meta.db_table)])
                (table,) = cursor.fetchone()
        except DatabaseError:
            return None
        # The key as capture writes it: the primary key column's text.
        key = {model._meta.pk.column: str(obj.pk)}
        changelist = reverse("admin:django_bridge_auditevent_changelist",
                             current_app=self.admin_site.name)  # type: ignore[attr-defined]
        return f"{changelist}?{row_query(table, key)}"


def may_view(request: HttpRequest) -> bool:
    """Active users with the view permission on audit events (superusers have it)."""
    user = getattr(request, "user", None)
    return bool(user is not None and user.is_active
                and user.has_perm("django_bridge.view_auditevent"))


# A request's or job's events are near each other in time: its links look this far
# either side of the event they start from (the BRIN index on occurred_at and the
# monthly partitions then bound the read); widen the range in the sidebar if needed.
REQUEST_WINDOW = datetime.timedelta(hours=1)


def request_query(event: AuditEvent) -> str:
    """The list's query string for every event of the event's request, near it in time."""
    at = timezone.localtime(event.occurred_at) if timezone.is_aware(event.occurred_at) else (
        event.occurred_at)
    return urlencode({
        "request": event.request_id,
        "occurred_from": (at - REQUEST_WINDOW).strftime("%Y-%m-%dT%H:%M"),
        "occurred_to": (at + REQUEST_WINDOW).strftime("%Y-%m-%dT%H:%M"),
    })


def row_query(table: str, key: dict[str, Any]) -> str:
    """The list's query string for every event of one row."""
    return urlencode({"table": table, "row": to_json(key)})


def _json_cell(value: Any) -> SafeString:
    return format_html('<code class="audit-json">{}</code>', to_json(value))


def _value_cell(value: Any) -> SafeString:
    """One column value: text as recorded, numbers exact; NULL and the empty string marked."""
    if value is None:
        return format_html('<span class="audit-null">{}</span>', "NULL")
    if value == "":
        return format_html('<span class="audit-empty">{}</span>', "(empty)")
    return format_html('<span class="audit-value">{}</span>', plain(value))


class _Echo:
    """A file-like object whose write returns the line, for streaming csv.writer output."""

    def write(self, value: str) -> str:
        return value


def _csv_rows(queryset: QuerySet[Any]) -> Iterable[list[Any]]:
    yield list(CSV_COLUMNS)
    # iterator() reads through a server-side cursor in chunks, so a large
    # export never holds the whole result in memory.
    for event in queryset.iterator(chunk_size=2000):
        yield [csv_cell(getattr(event, column)) for column in CSV_COLUMNS]
