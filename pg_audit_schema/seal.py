"""Tamper evidence: seal finished events into a hash chain, verify it, export its head.

Sealing runs in the database (``audit.seal()``). Verification runs here: it
reads raw column values of ``audit.seal``, ``audit.event`` and ``audit.retired``
and recomputes every row hash, batch hash and chain link itself
(``canonical``), so a superuser who replaces ``audit.verify_batch()`` or
``audit.event_canonical()`` cannot make a rewritten log look intact. The
database is trusted only to return what its tables hold, through builtin
functions (comparisons, ``unnest``, ``substring``, sorting).
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from decimal import Decimal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import psycopg

from . import canonical
from .errors import PgAuditError
from .installer import require_installed

_HASH = re.compile(r"[0-9a-f]{64}")
# A RETENTION event lies at most this far in the future, or after later seals.
_CLOCK_SLACK = dt.timedelta(days=1)
# retire_partition keeps the newest three months: a retired range ended at least
# two whole months (58 days or more) before its RETENTION event's transaction.
_RETIRE_AGE = dt.timedelta(days=58)


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    batches: int  # batches checked and found intact
    events: int  # events in those batches
    batch: int | None = None  # first batch with a problem
    event_id: int | None = None  # first event with a problem, when the problem is an event
    problem: str | None = None
    newest_hash: str | None = None

    def describe(self) -> str:
        if self.ok:
            head = self.newest_hash or "none (nothing sealed yet)"
            return (
                f"ok: {self.batches} batches, {self.events} events intact; newest seal hash {head}"
            )
        where = f"batch {self.batch}" if self.batch is not None else "seal chain"
        if self.event_id is not None:
            where += f", event {self.event_id}"
        return f"TAMPERED at {where}: {self.problem}"


@dataclass(frozen=True)
class NewestSeal:
    batch: int
    hash: str


@dataclass(frozen=True)
class Retirement:
    """A row of audit.retired and, when the seals do not prove it, why."""

    partition: str
    range_from: dt.datetime  # canonical.bound(): infinities as datetime.min and max
    range_to: dt.datetime
    problem: str | None

    def covers(self, when: dt.datetime) -> bool:
        return self.range_from <= when < self.range_to


def seal(conn: psycopg.Connection) -> int | None:
    """Seal the events of every finished transaction; the new batch number or None."""
    require_installed(conn)
    try:
        row = conn.execute("SELECT audit.seal()").fetchone()
    except psycopg.Error as exc:
        raise PgAuditError(f"sealing failed: {exc.diag.message_primary or exc}") from exc
    return row[0] if row else None


def newest_seal(conn: psycopg.Connection) -> NewestSeal | None:
    try:
        row = conn.execute(
            "SELECT batch, hash FROM audit.newest_seal() WHERE batch IS NOT NULL"
        ).fetchone()
    except psycopg.Error as exc:
        raise PgAuditError(
            f"reading the newest seal failed: {exc.diag.message_primary or exc}"
        ) from exc
    return NewestSeal(row[0], row[1]) if row else None


def parse_expected_hash(text: str, source: str) -> str:
    """A seal hash as given on the command line or in a --hash-file ('BATCH HASH')."""
    words = text.split()
    value = words[-1].lower() if words else ""
    if not _HASH.fullmatch(value):
        raise PgAuditError(
            f"{source} holds no seal hash (64 hex digits, as pg-audit seal prints it)"
        )
    return value


def verify(
    conn: psycopg.Connection,
    expect: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResult:
    """Recompute every batch in order, in this process; stop at the first problem.

    ``expect`` is a seal hash kept outside the database: it must be the
    recomputed hash of one of the batches, which a rewrite of the whole chain
    cannot achieve.
    """
    require_installed(conn)
    expected = parse_expected_hash(expect, "--expect") if expect is not None else None
    # One snapshot for the whole run, so batches and events agree with each other;
    # rolled back at the end, so the session settings it pins end with it.
    with conn.transaction(force_rollback=True):
        if conn.autocommit:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        zone = conn.execute("SELECT current_setting('TimeZone')").fetchone()
        canonical.pin_session(conn)
        return _Verifier(conn, zone[0] if zone else "UTC").run(expected, progress)


class _Verifier:
    def __init__(self, conn: psycopg.Connection, zone: str) -> None:
        self.conn = conn
        self.zone = zone
        self.old_row_key = _has_old_row_key(conn)

    def cursor(self, name: str = "") -> psycopg.Cursor:  # type: ignore[type-arg]
        cur = self.conn.cursor(name=name) if name else self.conn.cursor()
        return canonical.raw_text_cursor(cur)

    def run(
        self, expected: str | None, progress: Callable[[int, int], None] | None
    ) -> VerifyResult:
        row = self.cursor().execute("SELECT max(batch) FROM audit.seal").fetchone()
        total = (row[0] if row else None) or 0
        retirements = self.retirements()
        good: set[str] = set()
        previous: tuple[bytes, int] = (canonical.ZERO_HASH, 0)  # hash and to_xid of batch - 1
        events = 0
        newest_hash: str | None = None
        seals = self.cursor("pg_audit_verify_seals")
        seals.itersize = 20
        seals.execute(
            "SELECT batch, from_xid, to_xid, event_count, event_ids, event_times, row_hashes, "
            "prev_hash, hash FROM audit.seal WHERE batch BETWEEN 1 AND %s ORDER BY batch",
            [total],
        )
        rows = iter(seals)
        number = 0
        for number in range(1, total + 1):
            s = next(rows, None)
            while s is not None and s[0] < number:  # a duplicate batch number
                s = next(rows, None)
            if s is None or s[0] != number:
                return self._bad(number, events, f"seal batch {number} is missing", newest_hash)
            batch, from_xid, to_xid, count, ids, times, hashes, prev_hash, stored = s
            times = [canonical.json_timestamp(t) for t in times]
            if prev_hash != previous[0]:
                return self._bad(
                    number,
                    events,
                    f"seal chain broken: prev_hash of batch {number} is not the hash of "
                    f"batch {number - 1}",
                    newest_hash,
                )
            if from_xid != previous[1] or to_xid <= from_xid:
                return self._bad(
                    number,
                    events,
                    f"seal batch {number} covers transactions [{from_xid}, {to_xid}), "
                    f"not following batch {number - 1}",
                    newest_hash,
                )
            computed = canonical.seal_hash(
                batch, from_xid, to_xid, count, ids, times, hashes, prev_hash
            )
            if (
                computed != stored
                or count != len(ids)
                or count != len(times)
                or count * 32 != len(hashes)
                or any(a > b for a, b in zip(ids, ids[1:], strict=False))
            ):
                return self._bad(
                    number,
                    events,
                    f"seal batch {number} was rewritten: its hash does not match its contents",
                    newest_hash,
                )
            sealed = [(ids[i], times[i], hashes[i * 32 : i * 32 + 32]) for i in range(count)]
            problem = self.compare(from_xid, to_xid, sealed, retirements)
            if problem is not None:
                return VerifyResult(
                    False, number - 1, events, number, problem[0], problem[1], newest_hash
                )
            events += count
            newest_hash = computed.hex()
            good.add(newest_hash)
            previous = (computed, to_xid)
            if progress:
                progress(number, total)
        seals.close()
        if expected is not None and expected not in good:
            return VerifyResult(
                False,
                total,
                events,
                None,
                None,
                "the expected seal hash is not in the seal chain: "
                "the chain was rewritten or cut back",
                newest_hash,
            )
        return VerifyResult(True, total, events, newest_hash=newest_hash)

    @staticmethod
    def _bad(number: int, events: int, problem: str, newest_hash: str | None) -> VerifyResult:
        return VerifyResult(False, number - 1, events, number, None, problem, newest_hash)

    def current(self, from_xid: int, to_xid: int) -> Iterator[tuple[int, str, bytes]]:
        """(id, occurred_at, row hash) of the events in a batch's transactions, in id order."""
        columns = ", ".join(
            c if c != "old_row_key" or self.old_row_key else "NULL::jsonb"
            for c in canonical.COLUMNS
        )
        with self.cursor("pg_audit_verify_events") as cur:
            cur.itersize = 5000
            cur.execute(
                f"SELECT {columns} FROM audit.event "  # fixed column names
                "WHERE txid >= %s::text::xid8 AND txid < %s::text::xid8 ORDER BY id, occurred_at",
                [str(from_xid), str(to_xid)],
            )
            for row in cur:
                yield (
                    row[0],
                    canonical.json_timestamp(row[1]),
                    canonical.row_hash(canonical.canonical(row)),
                )

    def compare(
        self,
        from_xid: int,
        to_xid: int,
        sealed: list[tuple[int, str, bytes]],
        retirements: list[Retirement],
    ) -> tuple[int, str] | None:
        """The first difference, by id, between a batch's sealed and current events."""
        current = self.current(from_xid, to_xid)
        now = next(current, None)
        i = 0
        while i < len(sealed) or now is not None:
            # All entries of the smallest id on either side.
            low = min(x[0] for x in (sealed[i] if i < len(sealed) else None, now) if x)
            was: dict[str, bytes] = {}
            while i < len(sealed) and sealed[i][0] == low:
                was[sealed[i][1]] = sealed[i][2]
                i += 1
            is_: dict[str, bytes] = {}
            while now is not None and now[0] == low:
                is_[now[1]] = now[2]
                now = next(current, None)
            for when, digest in sorted(was.items()):
                if when not in is_:
                    problem = self.deleted(low, when, retirements)
                    if problem:
                        return low, problem
                elif is_[when] != digest:
                    return low, f"event {low} was changed"
            if set(is_) - set(was):
                return low, f"event {low} was inserted after sealing"
        return None

    @staticmethod
    def deleted(event_id: int, when: str, retirements: list[Retirement]) -> str | None:
        at = canonical.bound(when)
        for r in retirements:
            if r.covers(at):
                if r.problem is None:
                    return None  # retired, and the seals prove it
                return (
                    f"event {event_id} was deleted (retired partition {r.partition} "
                    f"does not account for it: {r.problem})"
                )
        return f"event {event_id} was deleted"

    # -- retirements ------------------------------------------------------------

    def retirements(self) -> list[Retirement]:
        rows = (
            self.cursor()
            .execute(
                "SELECT partition, range_from, range_to, row_count, content_sha256, "
                "manifest_sha256 FROM audit.retired ORDER BY range_from, partition"
            )
            .fetchall()
        )
        if not rows:
            return []
        drops = self.drop_events()
        result = []
        for partition, raw_from, raw_to, row_count, content, manifest in rows:
            text_from = canonical.json_timestamp(raw_from)
            text_to = canonical.json_timestamp(raw_to)
            start, end = canonical.instant(text_from), canonical.instant(text_to)
            matching = [
                d
                for d in drops
                if _records(d[3], partition, text_from, text_to, row_count, content, manifest)
            ]
            if start is None or end is None or not self.is_month(partition, start, end):
                problem: str | None = "its range is not exactly one monthly partition"
            else:
                problem = self.disproof(start, end, raw_from, raw_to, row_count, content, matching)
            result.append(
                Retirement(partition, canonical.bound(text_from), canonical.bound(text_to), problem)
            )
        return result

    def drop_events(self) -> list[tuple[int, int, dt.datetime | None, dict[str, object]]]:
        """(id, txid, tx_started_at, detail) of the RETENTION events that dropped a partition."""
        found = []
        for event_id, txid, started, detail in self.cursor().execute(
            "SELECT id, txid, tx_started_at, detail FROM audit.event WHERE action = 'RETENTION'"
        ):
            parsed = json.loads(detail, parse_float=Decimal) if detail else None
            if isinstance(parsed, dict) and parsed.get("operation") == "drop":
                when = canonical.instant(canonical.json_timestamp(started))
                found.append((event_id, int(txid), when, parsed))
        return sorted(found, key=lambda d: d[0])

    def disproof(
        self,
        start: dt.datetime,
        end: dt.datetime,
        raw_from: str,
        raw_to: str,
        row_count: int,
        content: str,
        drops: list[tuple[int, int, dt.datetime | None, dict[str, object]]],
    ) -> str | None:
        """Why the seals do not prove this monthly retirement, or None when they do."""
        row = (
            self.cursor()
            .execute(
                "SELECT EXISTS (SELECT FROM audit.event WHERE occurred_at >= %s::timestamptz "
                "AND occurred_at < %s::timestamptz)",
                [raw_from, raw_to],
            )
            .fetchone()
        )
        if row and row[0]:
            return "events of its range are still in the log"
        count = 0
        digest = hashlib.sha256()
        with self.cursor("pg_audit_verify_retired") as cur:
            cur.itersize = 10000
            cur.execute(
                "SELECT substring(s.row_hashes FROM ((u.o - 1) * 32 + 1)::int FOR 32) "
                "FROM audit.seal s, "
                "unnest(s.event_ids, s.event_times) WITH ORDINALITY AS u(id, t, o) "
                "WHERE u.t >= %s::timestamptz AND u.t < %s::timestamptz ORDER BY u.id, u.t",
                [raw_from, raw_to],
            )
            for (h,) in cur:
                count += 1
                digest.update(h)
        if count != row_count or digest.hexdigest() != content:
            return (
                f"the seals hold {count} events of its range (content sha256 "
                f"{digest.hexdigest()}), it claims {row_count} ({content})"
            )
        if not drops:
            return "no RETENTION event records this retirement"
        event_id, txid, started, _ = drops[0]
        if started is None or started - _RETIRE_AGE < end:
            return (
                f"its RETENTION event {event_id} is dated before the range was old enough to retire"
            )
        if started > dt.datetime.now(dt.timezone.utc) + _CLOCK_SLACK:
            return f"its RETENTION event {event_id} is dated in the future"
        cur = self.cursor()
        row = cur.execute(
            "SELECT n.event_times FROM audit.seal s JOIN audit.seal n ON n.batch = s.batch + 1 "
            "WHERE s.from_xid <= %s AND s.to_xid > %s",
            [txid, txid],
        ).fetchone()
        later = [canonical.instant(canonical.json_timestamp(t)) for t in (row[0] if row else [])]
        first = min((t for t in later if t is not None), default=None)
        if first is not None and first < started - _CLOCK_SLACK:
            return f"its RETENTION event {event_id} is dated after events sealed later"
        return None

    def is_month(self, partition: str, start: dt.datetime, end: dt.datetime) -> bool:
        """[start, end) is one calendar month named by the partition, in the database's
        time zone (where partitions are made) or in UTC."""
        for name in dict.fromkeys([self.zone, "UTC"]):
            try:
                zone = ZoneInfo(name)
            except (ZoneInfoNotFoundError, ValueError):
                continue
            local = start.astimezone(zone)
            if local.replace(tzinfo=None) != dt.datetime(local.year, local.month, 1):
                continue
            year, month0 = divmod(local.year * 12 + local.month, 12)  # the month after, 0-based
            following = dt.datetime(year, month0 + 1, 1, tzinfo=zone)
            if following == end and partition == f"audit.event_{local.year:04d}_{local.month:02d}":
                return True
        return False


def _records(
    detail: dict[str, object],
    partition: str,
    text_from: str,
    text_to: str,
    row_count: int,
    content: str,
    manifest: str,
) -> bool:
    """Whether a RETENTION drop event's detail describes this retired row."""
    return (
        detail.get("partition") == partition
        and detail.get("range_from") == text_from
        and detail.get("range_to") == text_to
        and str(detail.get("row_count")) == str(row_count)
        and detail.get("content_sha256") == content
        and detail.get("manifest_sha256") == manifest
    )


def _has_old_row_key(conn: psycopg.Connection) -> bool:
    row = conn.execute(
        "SELECT EXISTS (SELECT FROM pg_attribute WHERE attrelid = 'audit.event'::regclass "
        "AND attname = 'old_row_key' AND NOT attisdropped)"
    ).fetchone()
    return bool(row and row[0])
