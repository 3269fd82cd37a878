"""The read-only audit viewer in the Django admin, driven through the real admin views.

Events are made the way production makes them: a tracked table written under
audit.set_context, and audit.log_event. Other tests (and the app's own
migrations) may have left events too, so every assertion is scoped to this
test's request ids or compares relative order.
"""

from __future__ import annotations

import csv
import io
import re
import uuid
from typing import Any

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from django_bridge.admin import COUNT_CAP, csv_cell
from django_bridge.models import AuditEvent, ReadOnlyAuditLog

pytestmark = pytest.mark.django_db

CHANGELIST = "admin:django_bridge_auditevent_changelist"
CHANGE = "admin:django_bridge_auditevent_change"
EXPORT = "admin:django_bridge_auditevent_export"
FORMULA = "=cmd|' /C calc'!A0"


def _context(cursor: Any, actor_id: str, actor_name: str, ip: str, request_id: str,
             user_agent: str = "pytest") -> None:
    cursor.execute(
        "SELECT audit.set_context(actor_id => %s, actor_name => %s, ip => %s, "
        "user_agent => %s, request_id => %s)",
        [actor_id, actor_name, ip, user_agent, request_id],
    )


def record_events() -> dict[str, Any]:
    """A login by alice, then a tracked table: bob inserts a widget, alice renames it.

    Returns the request ids and the table name, for scoping assertions.
    """
    tag = uuid.uuid4().hex[:10]
    table = f"viewer_widget_{tag}"
    req = {name: f"req-{name}-{tag}" for name in ("login", "insert", "update")}
    with connection.cursor() as c:
        c.execute(f"CREATE TABLE public.{table} (id int PRIMARY KEY, name text, price int)")
        c.execute("SELECT audit.enable_tracking(target => %s::regclass)", [f"public.{table}"])
        _context(c, "7", "alice", "10.1.2.3", req["login"])
        c.execute("SELECT audit.log_event(action => 'LOGIN', actor_id => '7', "
                  "actor_name => 'alice')")
        _context(c, "8", "bob", "192.168.5.9", req["insert"])
        c.execute(f"INSERT INTO public.{table} VALUES (1, 'old name', 10)")
        _context(c, "7", "alice", "2001:db8::1", req["update"])
        c.execute(f"UPDATE public.{table} SET name = %s, price = 12 WHERE id = 1", ["new name"])
    return {"table": f"public.{table}", "short_table": table, "req": req, "tag": tag}


@pytest.fixture
def superuser(django_user_model: Any) -> Any:
    return django_user_model.objects.create_superuser("root", "root@example.com", "pw-root-1")


@pytest.fixture
def staff(django_user_model: Any) -> Any:
    return django_user_model.objects.create_user("clerk", "clerk@example.com", "pw-clerk-1",
                                                 is_staff=True)


@pytest.fixture
def auditor(django_user_model: Any) -> Any:
    """Staff with the view permission on audit events, and nothing else."""
    from django.contrib.auth.models import Permission

    user = django_user_model.objects.create_user("auditor", "auditor@example.com",
                                                 "pw-auditor-1", is_staff=True)
    user.user_permissions.add(Permission.objects.get(codename="view_auditevent"))
    return user


def _listed(client: Any, **params: str) -> list[AuditEvent]:
    response = client.get(reverse(CHANGELIST), params)
    assert response.status_code == 200, response.content[:500]
    return list(response.context["cl"].result_list)


def _text(html: str) -> str:
    return re.sub("<[^>]+>", "", html)


def _ids(events: list[AuditEvent]) -> list[int]:
    return [e.id for e in events]


def test_superuser_sees_events_newest_first(client: Any, superuser: Any) -> None:
    data = record_events()
    client.force_login(superuser)
    response = client.get(reverse(CHANGELIST))
    assert response.status_code == 200
    listed = _ids(list(response.context["cl"].result_list))
    assert listed == sorted(listed, reverse=True)
    mine = AuditEvent.objects.filter(request_id__in=data["req"].values()).values_list("id",
                                                                                       flat=True)
    newest = max(mine)
    assert newest in listed
    assert listed.index(newest) < min(listed.index(i) for i in mine if i != newest)
    assert "alice" in response.content.decode()


def test_filters_by_action_actor_ip_table_and_date(client: Any, superuser: Any) -> None:
    data = record_events()
    client.force_login(superuser)
    req = data["req"]

    by_action = _listed(client, action="UPDATE", table=data["table"])
    assert [(e.action, e.request_id) for e in by_action] == [("UPDATE", req["update"])]

    logins = _listed(client, action="LOGIN", actor="7")
    assert req["login"] in {e.request_id for e in logins}
    assert {e.action for e in logins} == {"LOGIN"}

    bob = _listed(client, actor="8", table=data["table"])
    assert [e.request_id for e in bob] == [req["insert"]]

    assert _ids(_listed(client, ip="192.168.5.9", table=data["table"])) == _ids(bob)
    in_net = _listed(client, ip="192.168.0.0/16", table=data["table"])
    assert [e.request_id for e in in_net] == [req["insert"]]
    v6 = _listed(client, ip="2001:db8::/32", table=data["table"])
    assert [e.request_id for e in v6] == [req["update"]]

    whole_table = _listed(client, table=data["table"])
    # TRACKING_ENABLED, INSERT, UPDATE; the schema-less spelling means public.
    assert [e.action for e in whole_table] == ["UPDATE", "INSERT", "TRACKING_ENABLED"]
    assert _ids(_listed(client, table=data["short_table"])) == _ids(whole_table)

    today = AuditEvent.objects.get(request_id=req["update"]).occurred_at.date().isoformat()
    same_day = _listed(client, table=data["table"], occurred_from=today, occurred_to=today)
    assert _ids(same_day) == _ids(whole_table)
    assert _listed(client, table=data["table"],
                   occurred_from="2001-01-01", occurred_to="2001-12-31") == []
    assert _listed(client, table=data["table"], occurred_to="2001-12-31") == []
    assert len(_listed(client, table=data["table"], occurred_from=today)) == 3


def test_bad_filter_values_warn_instead_of_failing(client: Any, superuser: Any) -> None:
    record_events()
    client.force_login(superuser)
    for params in ({"ip": "not-an-ip'; --"}, {"occurred_from": "2024-13-45"}):
        response = client.get(reverse(CHANGELIST), params)
        assert response.status_code == 200
        assert list(response.context["cl"].result_list) == []
        assert any("Not a" in str(m) for m in response.context["messages"])


def test_search_by_actor_id_user_name_prefix_and_ip(client: Any, superuser: Any) -> None:
    data = record_events()
    client.force_login(superuser)
    req = data["req"]

    # No index serves request_id (step 0006): the search leaves it to the request filter.
    assert _listed(client, q=req["insert"]) == []
    assert [e.request_id for e in _listed(client, request=req["insert"])] == [req["insert"]]
    assert {e.request_id for e in _listed(client, q="8")} >= {req["insert"]}
    by_name = _listed(client, q="ali", table=data["table"])
    assert [e.request_id for e in by_name] == [req["update"]]
    by_ip = _listed(client, q="10.1.2.3")
    assert req["login"] in {e.request_id for e in by_ip}
    assert {e.ip for e in by_ip} == {"10.1.2.3"}
    assert _listed(client, q="2001:db8::1", table=data["table"])[0].request_id == req["update"]
    # A substring in the middle is not a match: that would need a scan of the whole log.
    assert _listed(client, q="lice", table=data["table"]) == []
    assert _listed(client, q=data["tag"]) == []


def test_list_never_counts_or_searches_the_whole_log(client: Any, superuser: Any) -> None:
    data = record_events()
    client.force_login(superuser)
    for params in ({}, {"q": "alice"}, {"action": "INSERT"}, {"table": data["table"]}):
        with CaptureQueriesContext(connection) as queries:
            assert client.get(reverse(CHANGELIST), params).status_code == 200
        on_log = [q["sql"] for q in queries.captured_queries if '"audit"."event"' in q["sql"]]
        assert on_log, params
        for statement in on_log:
            if "COUNT(" in statement.upper():
                assert f"LIMIT {COUNT_CAP + 1}" in statement, statement
            assert "ILIKE" not in statement.upper() and "UPPER(" not in statement.upper(), statement
            assert not re.search(r"LIKE\s+'%", statement), statement


def test_only_the_key_orders_the_list(client: Any, superuser: Any) -> None:
    record_events()
    client.force_login(superuser)
    for o in ("5", "-2.5", "0"):
        with CaptureQueriesContext(connection) as queries:
            listed = _ids(_listed(client, o=o))
        assert listed == sorted(listed, reverse=(o != "0")), o
        for q in queries.captured_queries:
            if "ORDER BY" in q["sql"] and '"audit"."event"' in q["sql"]:
                order = q["sql"].split("ORDER BY", 1)[1]
                assert "table_name" not in order and "action" not in order, order


def test_values_are_escaped(client: Any, superuser: Any) -> None:
    tag = uuid.uuid4().hex[:10]
    with connection.cursor() as c:
        c.execute(f"CREATE TABLE public.viewer_xss_{tag} (id int PRIMARY KEY, body text)")
        c.execute("SELECT audit.enable_tracking(target => %s::regclass)",
                  [f"public.viewer_xss_{tag}"])
        _context(c, "<i>6</i>", "<script>alert(1)</script>", "10.0.0.6", f"req-xss-{tag}")
        c.execute(f"INSERT INTO public.viewer_xss_{tag} VALUES (1, '<img src=x onerror=alert(2)>')")
    client.force_login(superuser)
    page = client.get(reverse(CHANGELIST), {"request": f"req-xss-{tag}"}).content.decode()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page and "<script>alert(1)" not in page
    assert "<i>6</i>" not in page and 'href="?actor=%3Ci%3E6%3C%2Fi%3E"' in page
    event = AuditEvent.objects.get(request_id=f"req-xss-{tag}")
    page = client.get(reverse(CHANGE, args=[event.id])).content.decode()
    assert "&lt;img src=x onerror=alert(2)&gt;" in page and "<img src=x" not in page
    assert "<i>6</i>" not in page


def test_detail_shows_old_and_new_values_side_by_side(client: Any, superuser: Any) -> None:
    data = record_events()
    client.force_login(superuser)
    update = AuditEvent.objects.get(request_id=data["req"]["update"])
    response = client.get(reverse(CHANGE, args=[update.id]))
    assert response.status_code == 200
    html = response.content.decode()
    table = re.search(r'<table class="audit-changes">.*?</table>', html, re.S)
    assert table, html[:2000]
    rows = re.findall(
        r'<tr><th scope="row">(.*?)</th><td class="audit-old">(.*?)</td>'
        r'<td class="audit-new">(.*?)</td></tr>',
        table.group(0),
    )
    cells = {col: (_text(old), _text(new)) for col, old, new in rows}
    assert cells == {"name": ("old name", "new name"), "price": ("10", "12")}
    # Read-only: no form to save, nothing to delete.
    assert 'name="_save"' not in html and "deletelink" not in html

    insert = AuditEvent.objects.get(request_id=data["req"]["insert"])
    html = client.get(reverse(CHANGE, args=[insert.id])).content.decode()
    assert '<td class="audit-old"><span class="audit-absent">' in html
    assert '<span class="audit-value">old name</span>' in html


def test_csv_export_has_the_filtered_rows_and_neutralises_formulas(
    client: Any, superuser: Any
) -> None:
    tag = uuid.uuid4().hex[:10]
    table = f"viewer_note_{tag}"
    with connection.cursor() as c:
        c.execute(f"CREATE TABLE public.{table} (id int PRIMARY KEY, body text)")
        c.execute("SELECT audit.enable_tracking(target => %s::regclass)", [f"public.{table}"])
        _context(c, "9", "@SUM(A1:A9)", "10.9.9.9", f"req-csv-{tag}",
                 user_agent=FORMULA + "\r\nforged,row,1")
        c.execute(f"INSERT INTO public.{table} VALUES (1, %s)", [FORMULA])
        c.execute(f"UPDATE public.{table} SET body = %s WHERE id = 1", ["-2+3"])
        _context(c, "9", "carol", "10.9.9.9", f"req-other-{tag}")
        c.execute(f"INSERT INTO public.{table} VALUES (2, 'plain')")
    client.force_login(superuser)

    response = client.get(reverse(EXPORT),
                          {"table": f"public.{table}", "actor": "9", "request": f"req-csv-{tag}"})
    assert response.status_code == 200
    assert response.streaming
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    lines = body.splitlines()
    records = list(csv.DictReader(io.StringIO(body)))
    # Newest first, only the filtered rows, and one physical line per record.
    assert [r["action"] for r in records] == ["UPDATE", "INSERT"]
    assert len(lines) == len(records) + 1
    for record in records:
        for column, cell in record.items():
            assert not cell.lstrip(" ").startswith(("=", "+", "-", "@", "\t", "\r")), (column, cell)
        assert record["actor_name"] == "'@SUM(A1:A9)"
        assert record["user_agent"] == "'" + FORMULA + "\\r\\nforged,row,1"
        assert record["table_name"] == f"public.{table}"
    assert FORMULA in records[1]["new_values"] and records[1]["new_values"].startswith("{")
    assert records[0]["new_values"] == '{"body": "-2+3"}'

    # Started from a page number past the last page, the export still has every row.
    again = client.get(reverse(EXPORT), {"request": f"req-csv-{tag}", "p": "7"})
    assert again.status_code == 200
    assert len(list(csv.DictReader(io.StringIO(b"".join(again.streaming_content).decode())))) == 2

    # The changelist links the export with its own filters.
    page = client.get(reverse(CHANGELIST), {"table": f"public.{table}"}).content.decode()
    assert re.search(r'href="[^"]*export\.csv\?table=public\.' + table, page)


@pytest.mark.parametrize("value, cell", [
    ("=1+1", "'=1+1"), ("+1", "'+1"), ("-1", "'-1"), ("@x", "'@x"), ("\tx", "'\tx"),
    ("\rx", "'\\rx"), (" =1", "' =1"), ("a\nb", "a\\nb"), ("ok", "ok"), (None, ""), (-5, -5),
    ({"k": "=1"}, '{"k": "=1"}'),
])
def test_csv_cell(value: Any, cell: Any) -> None:
    assert csv_cell(value) == cell


def test_staff_with_the_view_permission_reads_the_log(client: Any, auditor: Any) -> None:
    data = record_events()
    event = AuditEvent.objects.get(request_id=data["req"]["update"])
    client.force_login(auditor)
    assert event.id in _ids(_listed(client, table=data["table"]))
    assert client.get(reverse(CHANGE, args=[event.id])).status_code == 200
    assert client.get(reverse(EXPORT), {"table": data["table"]}).status_code == 200
    assert "auditevent" in client.get(reverse("admin:index")).content.decode()
    # Reading is all the permission gives.
    assert client.post(reverse(CHANGE, args=[event.id]), {"action": "LOGIN"}).status_code == 403


def test_staff_without_the_view_permission_is_refused(client: Any, staff: Any) -> None:
    data = record_events()
    event = AuditEvent.objects.get(request_id=data["req"]["update"])
    client.force_login(staff)
    assert client.get(reverse(CHANGELIST)).status_code == 403
    assert client.get(reverse(CHANGE, args=[event.id])).status_code == 403
    assert client.get(reverse(EXPORT)).status_code == 403
    index = client.get(reverse("admin:index"))
    assert index.status_code == 200 and "auditevent" not in index.content.decode()


def test_nobody_may_add_change_or_delete_through_the_admin(client: Any, superuser: Any) -> None:
    data = record_events()
    event = AuditEvent.objects.get(request_id=data["req"]["update"])
    client.force_login(superuser)
    assert client.get(reverse("admin:django_bridge_auditevent_add")).status_code == 403
    delete = reverse("admin:django_bridge_auditevent_delete", args=[event.id])
    assert client.post(delete, {"post": "yes"}).status_code == 403
    change = reverse(CHANGE, args=[event.id])
    assert client.post(change, {"action": "LOGIN", "actor_name": "mallory"}).status_code == 403
    event_after = AuditEvent.objects.get(id=event.id)
    assert (event_after.action, event_after.actor_name) == ("UPDATE", "alice")


def test_model_refuses_every_write(superuser: Any) -> None:
    data = record_events()
    event = AuditEvent.objects.get(request_id=data["req"]["update"])
    event.actor_name = "mallory"
    with pytest.raises(ReadOnlyAuditLog):
        event.save()
    with pytest.raises(ReadOnlyAuditLog):
        event.delete()
    mine = AuditEvent.objects.filter(request_id=data["req"]["update"])
    with pytest.raises(ReadOnlyAuditLog):
        mine.update(actor_name="mallory")
    with pytest.raises(ReadOnlyAuditLog):
        mine.delete()
    with pytest.raises(ReadOnlyAuditLog):
        AuditEvent.objects.create(id=1, action="LOGIN")
    with pytest.raises(ReadOnlyAuditLog):
        AuditEvent.objects.bulk_create([AuditEvent(id=1, action="LOGIN")])
    assert AuditEvent.objects.get(id=event.id).actor_name == "alice"


def test_columns_load_with_their_types() -> None:
    data = record_events()
    event = AuditEvent.objects.get(request_id=data["req"]["update"])
    assert event.ip == "2001:db8::1"
    # Values as PostgreSQL prints them (text), as capture records them.
    assert event.row_key == {"id": "1"}
    assert event.old_values == {"name": "old name", "price": "10"}
    assert event.new_values == {"name": "new name", "price": "12"}
    assert isinstance(event.txid, int) and event.txid > 0
    assert AuditEvent.objects.filter(txid=event.txid, id=event.id).exists()
    assert event.db_role and event.table_name == data["table"]


def test_role_without_select_on_the_log_gets_a_clear_page(client: Any, superuser: Any) -> None:
    data = record_events()
    event = AuditEvent.objects.get(request_id=data["req"]["update"])
    client.force_login(superuser)
    role = f"viewer_noaudit_{uuid.uuid4().hex[:8]}"
    with connection.cursor() as c:
        # Rolled back with the test: an application login that may use its own
        # tables but was never granted audit_reader.
        c.execute(f'CREATE ROLE "{role}" NOLOGIN')
        c.execute(f'GRANT ALL ON ALL TABLES IN SCHEMA public TO "{role}"')
        c.execute(f'GRANT ALL ON ALL SEQUENCES IN SCHEMA public TO "{role}"')
        c.execute(f'SET LOCAL ROLE "{role}"')
    for url in (reverse(CHANGELIST), reverse(CHANGE, args=[event.id]), reverse(EXPORT)):
        response = client.get(url)
        assert response.status_code == 503, url
        text = response.content.decode()
        assert "may not read audit.event" in text
        assert f"GRANT audit_reader TO &quot;{role}&quot;" in text
