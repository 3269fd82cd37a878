"""Subcommands maintain, seal, verify and archive of ``pg-audit``.

``register(subparsers)`` adds them to the top-level parser; each sets
``func(args) -> int`` (the exit status). The connection comes from
``args.dsn`` or, when that is empty, the PG* environment variables. Expected
failures raise ``PgAuditError``, which ``pg_audit_schema.cli.main`` reports as
one line; a check that finds tampering or a damaged archive exits 1.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from . import retention
from ._common import connect
from .errors import PgAuditError
from .seal import newest_seal, parse_expected_hash, seal, verify

if TYPE_CHECKING:
    from rich.progress import TaskID


def register(subparsers: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = subparsers.add_parser("maintain", help="create monthly partitions ahead and move strays")
    p.add_argument(
        "--months-ahead", type=int, default=3, help="partitions to keep ready (default 3)"
    )
    _dsn_option(p)
    p.set_defaults(func=_maintain)

    p = subparsers.add_parser(
        "seal", help="seal finished events into the hash chain, print the newest hash"
    )
    p.add_argument("--no-seal", action="store_true", help="only print the newest seal hash")
    p.add_argument(
        "--hash-file", type=Path, help="also write 'BATCH HASH' to this file (keep it off-host)"
    )
    _dsn_option(p)
    p.set_defaults(func=_seal)

    p = subparsers.add_parser(
        "verify",
        help="recompute the seal chain here, from raw values, and report the first difference",
    )
    p.add_argument("--expect", metavar="HASH", help="a seal hash kept outside the database")
    p.add_argument(
        "--expect-file", type=Path, metavar="FILE", help="a file written by seal --hash-file"
    )
    _dsn_option(p)
    p.set_defaults(func=_verify)

    p = subparsers.add_parser("archive", help="archive and drop expired partitions (retention)")
    p.add_argument("--dir", type=Path, default=Path("."), help="where archives go (default: .)")
    p.add_argument("--no-retire", action="store_true", help="export and check only; drop nothing")
    _dsn_option(p)
    p.set_defaults(func=_archive)
    sub = p.add_subparsers(dest="archive_command", required=False)
    v = sub.add_parser(
        "verify", help="re-check an archive file against its manifest (and seal, with a DSN)"
    )
    v.add_argument("file", type=Path, help="NAME.jsonl.gz or NAME.manifest.json")
    v.add_argument("--offline", action="store_true", help="do not compare with the database's seal")
    _dsn_option(v)
    v.set_defaults(func=_archive_verify)
    s = sub.add_parser(
        "show", help="check an archive, then print its events as JSON with named fields"
    )
    s.add_argument("file", type=Path, help="NAME.jsonl.gz or NAME.manifest.json")
    s.set_defaults(func=_archive_show)


def _dsn_option(parser: argparse.ArgumentParser) -> None:
    # Also after the subcommand (pg-audit seal --dsn ...); SUPPRESS keeps a
    # --dsn given before it when this one is absent.
    parser.add_argument("--dsn", default=argparse.SUPPRESS, help="libpq connection string")


@contextmanager
def _progress() -> Iterator[Callable[[str, int, int], None]]:
    """Progress bars on stderr when it is a terminal, one per step:
    update(step, done, total). rich is imported only here: other commands start faster."""
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    console = Console(stderr=True)
    with Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeRemainingColumn(),
        console=console,
        transient=True,
        disable=not console.is_terminal,
    ) as bar:
        tasks: dict[str, TaskID] = {}

        def update(step: str, done: int, total: int) -> None:
            if step not in tasks:
                tasks[step] = bar.add_task(step, total=total)
            bar.update(tasks[step], completed=done, total=total)

        yield update


@contextmanager
def _spinner(text: str) -> Iterator[None]:
    from rich.console import Console

    console = Console(stderr=True)
    if not console.is_terminal:
        yield
        return
    with console.status(text, spinner="dots"):
        yield


def _maintain(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        for operation, partition, count in retention.maintain(conn, args.months_ahead):
            print(f"{operation} {partition}" + (f" ({count} events)" if count else ""))
    return 0


def _seal(args: argparse.Namespace) -> int:
    with connect(args) as conn:
        if not args.no_seal:
            with _spinner("sealing finished events"):
                batch = seal(conn)
            print(f"sealed batch {batch}" if batch else "nothing new to seal", file=sys.stderr)
        head = newest_seal(conn)
    if head is None:
        print("no seal yet", file=sys.stderr)
        return 0
    print(f"{head.batch} {head.hash}")
    if args.hash_file:
        try:
            args.hash_file.write_text(f"{head.batch} {head.hash}\n", encoding="utf-8")
        except OSError as exc:
            raise PgAuditError(f"cannot write {args.hash_file}: {exc.strerror or exc}") from exc
    return 0


def _verify(args: argparse.Namespace) -> int:
    expect = args.expect
    if args.expect_file:
        try:
            text = args.expect_file.read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = getattr(exc, "strerror", None) or exc
            raise PgAuditError(f"cannot read --expect-file {args.expect_file}: {reason}") from exc
        expect = parse_expected_hash(text, f"--expect-file {args.expect_file}")
    with connect(args) as conn, _progress() as update:
        result = verify(
            conn,
            expect=expect,
            progress=lambda done, total: update("verifying seal batches", done, total),
        )
    print(result.describe())
    return 0 if result.ok else 1


def _archive(args: argparse.Namespace) -> int:
    with _progress() as update, connect(args) as conn:
        done = retention.archive(conn, args.dir, retire=not args.no_retire, progress=update)
    for a in done:
        state = "retired" if a.retired else "exported"
        print(
            f"{state} {a.partition}: {a.row_count} events -> {a.data} "
            f"(manifest sha256 {a.manifest_sha256})"
        )
    if not done:
        print("no partition has expired", file=sys.stderr)
    return 0


def _archive_verify(args: argparse.Namespace) -> int:
    if args.offline:
        check = retention.verify_archive(args.file)
    else:
        with connect(args) as conn:
            check = retention.verify_archive(args.file, conn)
    print(check.describe())
    return 0 if check.ok else 1


def _archive_show(args: argparse.Namespace) -> int:
    check = retention.verify_archive(args.file)
    print(check.describe(), file=sys.stderr)
    for line in retention.show_archive(check.data):
        print(line)
    return 0 if check.ok else 1


def main(argv: list[str] | None = None) -> int:
    """``pg-audit`` itself (tests call this module's commands through it)."""
    from .cli import main as pg_audit

    return pg_audit(argv)


if __name__ == "__main__":
    raise SystemExit(main())
