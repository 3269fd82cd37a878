"""Tamper evidence: seal finished events into a hash chain, verify it, export its head.

The hashing lives in SQL (``audit.seal``, ``audit.verify_batch``); this module
drives it batch by batch so long runs can show progress.
"""

from __future__ import annotations

import sys
from collections.abc import Callable
from dataclasses import dataclass

import psycopg

from .errors import PgAuditError
from .installer import require_installed


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


def seal(conn: psycopg.Connection) -> int | None:
    """Seal the events of every finished transaction; the new batch number or None."""
    require_installed(conn)
    try:
        row = conn.execute("SELECT audit.seal()").fetchone()
    except psycopg.Error as exc:
        raise PgAuditError(f"sealing failed: {exc.diag.message_primary or exc}") from exc
    return row[0] if row else None


def newest_seal(conn: psycopg.Connection) -> NewestSeal | None:
    row = conn.execute(
        "SELECT batch, hash FROM audit.newest_seal() WHERE batch IS NOT NULL"
    ).fetchone()
    return NewestSeal(row[0], row[1]) if row else None


def verify(
    conn: psycopg.Connection,
    expect: str | None = None,
    progress: Callable[[int, int], None] | None = None,
) -> VerifyResult:
    """Recompute every batch in order; stop at the first problem.

    ``expect`` is a seal hash kept outside the database: it must still be in
    the chain, which a rewrite of the whole chain cannot achieve.
    """
    require_installed(conn)
    # One snapshot for the whole run, so batches and events agree with each other.
    with conn.transaction():
        if conn.autocommit:
            conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        newest = conn.execute(
            "SELECT max(batch), encode((array_agg(hash ORDER BY batch DESC))[1], 'hex') "
            "FROM audit.seal"
        ).fetchone()
        total, newest_hash = (newest[0] or 0, newest[1]) if newest else (0, None)
        events = 0
        for number in range(1, total + 1):
            problem = conn.execute(
                "SELECT batch, event_id, problem FROM audit.verify_batch(%s) LIMIT 1", [number]
            ).fetchone()
            if problem:
                return VerifyResult(
                    False, number - 1, events, problem[0], problem[1], problem[2], newest_hash
                )
            row = conn.execute(
                "SELECT event_count FROM audit.seal WHERE batch = %s", [number]
            ).fetchone()
            events += row[0] if row else 0
            if progress:
                progress(number, total)
        if expect is not None:
            found = conn.execute(
                "SELECT batch FROM audit.seal WHERE encode(hash, 'hex') = %s",
                [expect.strip().lower()],
            ).fetchone()
            if not found:
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


def terminal_progress(done: int, total: int) -> None:
    """A one-line counter on stderr, only when stderr is a terminal."""
    if not sys.stderr.isatty():
        return
    end = "\n" if done == total else ""
    print(f"\rverifying batch {done}/{total}", end=end, file=sys.stderr, flush=True)
