"""``pg-audit status``: what is installed, what is tracked, how big the log is, what is wrong."""

from __future__ import annotations

import argparse
from dataclasses import dataclass, field

import psycopg

from ._common import connect, require_schema
from .installer import latest_version

# Below this many estimated rows an exact count is cheap enough.
EXACT_COUNT_BELOW = 1_000_000

ROLES = ("audit_owner", "audit_writer", "audit_reader")


@dataclass
class Status:
    installed: int
    available: int
    tracked: list[tuple[str, list[str]]] = field(default_factory=list)
    events: int = 0
    events_estimated: bool = False
    size_bytes: int = 0
    newest: tuple[int, str, str] | None = None
    members: dict[str, list[str]] = field(default_factory=dict)
    warnings: list[str] = field(default_factory=list)


def collect(conn: psycopg.Connection, exact_count_below: int = EXACT_COUNT_BELOW) -> Status:
    st = Status(installed=require_schema(conn), available=latest_version())
    if st.installed < st.available:
        st.warnings.append(
            f"schema version {st.installed} is older than {st.available}: run pg-audit upgrade"
        )

    rows = conn.execute(
        "SELECT table_name, excluded_columns, enabled_always, has_primary_key "
        "FROM audit.tracked_table ORDER BY table_name"
    ).fetchall()
    for name, excluded, always, has_pk in rows:
        st.tracked.append((name, list(excluded or [])))
        if not always:
            st.warnings.append(
                f"capture triggers of {name} are not ENABLE ALWAYS: changes made with "
                "session_replication_role = replica are not logged; run pg-audit track again"
            )
        if not has_pk:
            st.warnings.append(f"tracked table {name} has no primary key: events cannot name rows")
    # A capture set with a trigger missing or disabled (a superuser's doing).
    for (name,) in conn.execute(
        "SELECT audit.table_name(tgrelid) FROM pg_trigger WHERE tgname LIKE 'audit\\_capture\\_%' "
        "GROUP BY tgrelid HAVING count(*) FILTER (WHERE tgenabled = 'A') < 4 ORDER BY 1"
    ):
        st.warnings.append(f"{name} has capture triggers missing or not firing always")
    for table, trigger, enabled in conn.execute(
        "SELECT t.tgrelid::regclass::text, t.tgname, t.tgenabled FROM pg_trigger t "
        "JOIN pg_class c ON c.oid = t.tgrelid "
        "WHERE c.relnamespace = 'audit'::regnamespace AND NOT t.tgisinternal "
        # audit_notify is off by default (it serialises commits): not a warning.
        "AND t.tgenabled <> 'A' AND t.tgname <> 'audit_notify' ORDER BY 1, 2"
    ):
        st.warnings.append(
            f"trigger {trigger} on {table} is "
            + ("disabled" if enabled == "D" else "not ENABLE ALWAYS")
        )

    # reltuples is -1 until the first ANALYZE; the statistics collector's live
    # count stands in, so a freshly loaded log is not counted row by row.
    estimate, size = conn.execute(
        "SELECT coalesce(sum(CASE WHEN c.reltuples >= 0 THEN c.reltuples "
        "ELSE coalesce(s.n_live_tup, 0) END), 0)::bigint, "
        "coalesce(sum(pg_total_relation_size(p.relid)), 0)::bigint "
        "FROM pg_partition_tree('audit.event') p JOIN pg_class c ON c.oid = p.relid "
        "LEFT JOIN pg_stat_all_tables s ON s.relid = p.relid WHERE p.isleaf"
    ).fetchone() or (0, 0)
    st.size_bytes = int(size)
    if estimate < exact_count_below:
        st.events = int(conn.execute("SELECT count(*) FROM audit.event").fetchone()[0])  # type: ignore[index]
    else:
        st.events, st.events_estimated = int(estimate), True
    newest = conn.execute(
        "SELECT id, occurred_at::text, action FROM audit.event ORDER BY id DESC LIMIT 1"
    ).fetchone()
    st.newest = tuple(newest) if newest else None  # type: ignore[assignment]

    for role in ROLES:
        st.members[role] = [
            r[0]
            for r in conn.execute(
                "SELECT m.rolname || CASE WHEN m.rolcanlogin THEN '' ELSE ' (nologin)' END "
                "FROM pg_auth_members a JOIN pg_roles g ON g.oid = a.roleid "
                "JOIN pg_roles m ON m.oid = a.member WHERE g.rolname = %s ORDER BY 1",
                [role],
            )
        ]

    me, superuser = conn.execute(
        "SELECT current_user, rolsuper FROM pg_roles WHERE rolname = current_user"
    ).fetchone() or ("?", False)
    if superuser:
        st.warnings.append(
            f"connected as superuser {me}: right for install, but applications must not log in "
            "as a superuser (a superuser can alter the log)"
        )
    for (login,) in conn.execute(
        "SELECT r.rolname FROM pg_roles r WHERE r.rolcanlogin AND NOT r.rolsuper "
        "AND pg_has_role(r.oid, 'audit_owner', 'USAGE') ORDER BY 1"
    ):
        st.warnings.append(
            f"login role {login} holds audit_owner: it can change the audit schema; "
            f"REVOKE audit_owner FROM {login}"
        )
    guards = {
        name: enabled
        for name, enabled in conn.execute(
            "SELECT evtname, evtenabled FROM pg_event_trigger "
            "WHERE evtname LIKE 'audit\\_guard\\_%'"
        )
    }
    missing = [
        g
        for g in ("audit_guard_ddl_start", "audit_guard_ddl_end", "audit_guard_drop")
        if guards.get(g) != "A"
    ]
    if missing:
        st.warnings.append(
            "DDL guards missing or not ENABLE ALWAYS: "
            + ", ".join(missing)
            + " (install as a superuser to add them)"
        )
    if _default_partition_has_rows(conn):
        st.warnings.append(
            "events wait in audit.event_default (no monthly partition): run pg-audit maintain"
        )
    return st


def _default_partition_has_rows(conn: psycopg.Connection) -> bool:
    # Readers hold SELECT on the parent only; they get the planner's estimate.
    row = conn.execute(
        "SELECT has_table_privilege('audit.event_default', 'SELECT'), reltuples > 0 "
        "FROM pg_class WHERE oid = 'audit.event_default'::regclass"
    ).fetchone()
    if not row:
        return False
    if not row[0]:
        return bool(row[1])
    found = conn.execute("SELECT EXISTS (SELECT FROM audit.event_default)").fetchone()
    return bool(found and found[0])


def _size(n: int) -> str:
    value = float(n)
    for unit in ("bytes", "kB", "MB", "GB", "TB"):
        if value < 1024 or unit == "TB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} bytes"


def render(st: Status) -> str:
    lines = [
        f"schema:   version {st.installed} installed, {st.available} available"
        + (" (up to date)" if st.installed >= st.available else " (upgrade needed)"),
        f"events:   {'~' if st.events_estimated else ''}{st.events:,} "
        f"({_size(st.size_bytes)} with indexes)",
        "newest:   "
        + (f"#{st.newest[0]} {st.newest[2]} at {st.newest[1]}" if st.newest else "none"),
        f"tracked:  {len(st.tracked)} table{'s' if len(st.tracked) != 1 else ''}",
    ]
    for name, excluded in st.tracked:
        lines.append(f"  {name}" + (f" (excluded: {', '.join(excluded)})" if excluded else ""))
    lines.append("roles:")
    for role, members in st.members.items():
        lines.append(f"  {role}: {', '.join(members) if members else '(no members)'}")
    if st.warnings:
        lines.append(f"warnings: {len(st.warnings)}")
        lines.extend(f"  ! {w}" for w in st.warnings)
    else:
        lines.append("warnings: none")
    return "\n".join(lines)


def command(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        st = collect(conn)
    print(render(st))
    return 0
