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
    newest_seal: tuple[int, str, str] | None = None  # batch, hash, sealed at
    unsealed: int = 0
    unsealed_capped: bool = False
    keep_months: int | None = None
    partitions_ahead: list[str] = field(default_factory=list)
    expired: list[str] = field(default_factory=list)
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
    _seals(conn, st)
    _retention(conn, st)
    return st


def _default_partition_has_rows(conn: psycopg.Connection) -> bool:
    """Whether audit.event_default holds rows, asked through audit.event itself
    (readers may read the log but not its partitions): the times no monthly
    partition covers, which the planner prunes to the default partition alone."""
    ranges = conn.execute(
        "SELECT range_from, range_to FROM audit.event_partition WHERE NOT is_default "
        "ORDER BY range_from"
    ).fetchall()
    if not ranges:
        row = conn.execute("SELECT EXISTS (SELECT FROM audit.event)").fetchone()
        return bool(row and row[0])
    gaps = ["occurred_at < %s"]
    params: list[object] = [ranges[0][0]]
    for (_, end), (start, _) in zip(ranges, ranges[1:], strict=False):
        if end < start:
            gaps.append("(occurred_at >= %s AND occurred_at < %s)")
            params += [end, start]
    gaps.append("occurred_at >= %s")
    params.append(ranges[-1][1])
    row = conn.execute(
        f"SELECT EXISTS (SELECT FROM audit.event WHERE {' OR '.join(gaps)})", params
    ).fetchone()
    return bool(row and row[0])


# Past this many unsealed events status says "more than".
UNSEALED_CAP = 1_000_000
# Unsealed events older than this deserve a warning (seal runs every minute).
UNSEALED_WARN_AFTER = "1 day"


def _seals(conn: psycopg.Connection, st: Status) -> None:
    head = conn.execute(
        "SELECT batch, hash, sealed_at::text, to_xid FROM audit.newest_seal() "
        "WHERE batch IS NOT NULL"
    ).fetchone()
    since = 0
    if head:
        st.newest_seal = (int(head[0]), str(head[1]), str(head[2]))
        since = int(head[3])
    # Events of transactions the newest seal does not cover (event_txid_idx).
    row = conn.execute(
        "SELECT count(*), min(occurred_at) < now() - %s::interval FROM ("
        "SELECT occurred_at FROM audit.event WHERE txid >= %s::text::xid8 LIMIT %s) u",
        [UNSEALED_WARN_AFTER, since, UNSEALED_CAP + 1],
    ).fetchone()
    assert row is not None
    st.unsealed, old = min(int(row[0]), UNSEALED_CAP), bool(row[1])
    st.unsealed_capped = int(row[0]) > UNSEALED_CAP
    if old:
        st.warnings.append(
            f"events older than {UNSEALED_WARN_AFTER} are not sealed: run pg-audit seal "
            "regularly (docs/retention.md)"
        )


def _retention(conn: psycopg.Connection, st: Status) -> None:
    row = conn.execute("SELECT keep_months FROM audit.retention_policy").fetchone()
    st.keep_months = int(row[0]) if row else None
    st.partitions_ahead = [
        r[0]
        for r in conn.execute(
            "SELECT audit.table_name(partition) FROM audit.event_partition "
            "WHERE NOT is_default AND range_to > now() ORDER BY range_from"
        )
    ]
    next_month = conn.execute(
        "SELECT EXISTS (SELECT FROM audit.event_partition WHERE NOT is_default "
        "AND range_from <= date_trunc('month', now()) + interval '1 month' "
        "AND range_to > date_trunc('month', now()) + interval '1 month')"
    ).fetchone()
    if not (next_month and next_month[0]):
        st.warnings.append(
            "no partition for next month yet: run pg-audit maintain (daily, from cron)"
        )
    st.expired = [
        r[0] for r in conn.execute("SELECT audit.table_name(p) FROM audit.expired_partitions() p")
    ]
    if st.expired:
        st.warnings.append(
            f"{len(st.expired)} partition(s) past the retention policy wait to be archived: "
            "run pg-audit archive --dir DIR"
        )


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
    if st.newest_seal:
        batch, digest, sealed_at = st.newest_seal
        lines.append(f"sealed:   batch {batch} at {sealed_at}, hash {digest}")
    else:
        lines.append("sealed:   nothing yet")
    lines.append(
        f"unsealed: {'more than ' if st.unsealed_capped else ''}{st.unsealed:,} "
        f"event{'s' if st.unsealed != 1 else ''}"
    )
    lines.append(
        "retention: "
        + (f"keep {st.keep_months} months" if st.keep_months else "no policy")
        + (f"; expired, to archive: {', '.join(st.expired)}" if st.expired else "")
    )
    lines.append(
        "partitions ahead: " + (", ".join(st.partitions_ahead) if st.partitions_ahead else "none")
    )
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
