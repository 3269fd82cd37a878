"""Subcommands maintain, seal, verify and archive of ``pg-audit``.

``register(subparsers)`` adds them to the top-level parser; each sets
``func(args) -> int`` (the exit status). The connection comes from
``args.dsn`` or, when that is empty, the PG* environment variables.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path

import psycopg

from . import retention
from .errors import PgAuditError
from .seal import newest_seal, seal, terminal_progress, verify


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
        "verify", help="recompute the seal chain and report the first difference"
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


def _dsn_option(parser: argparse.ArgumentParser) -> None:
    # Also after the subcommand (pg-audit seal --dsn ...); SUPPRESS keeps a
    # --dsn given before it when this one is absent.
    parser.add_argument("--dsn", default=argparse.SUPPRESS, help="libpq connection string")


def _connect(args: argparse.Namespace) -> psycopg.Connection:
    try:
        return psycopg.connect(getattr(args, "dsn", None) or "", autocommit=True)
    except psycopg.Error as exc:
        raise PgAuditError(f"cannot connect: {str(exc).strip().splitlines()[0]}") from exc


def _run(body: Callable[[argparse.Namespace], int], args: argparse.Namespace) -> int:
    try:
        return int(body(args))
    except PgAuditError as exc:
        print(f"pg-audit: {exc}", file=sys.stderr)
        return 2


def _maintain(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        with _connect(args) as conn:
            for operation, partition, count in retention.maintain(conn, args.months_ahead):
                print(
                    f"{operation} {partition} ({count} events)"
                    if count
                    else f"{operation} {partition}"
                )
        return 0

    return _run(body, args)


def _seal(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        with _connect(args) as conn:
            if not args.no_seal:
                batch = seal(conn)
                print(f"sealed batch {batch}" if batch else "nothing new to seal", file=sys.stderr)
            head = newest_seal(conn)
        if head is None:
            print("no seal yet", file=sys.stderr)
            return 0
        print(f"{head.batch} {head.hash}")
        if args.hash_file:
            args.hash_file.write_text(f"{head.batch} {head.hash}\n", encoding="utf-8")
        return 0

    return _run(body, args)


def _verify(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        expect = args.expect
        if args.expect_file:
            expect = args.expect_file.read_text(encoding="utf-8").split()[-1]
        with _connect(args) as conn:
            result = verify(conn, expect=expect, progress=terminal_progress)
        print(result.describe())
        return 0 if result.ok else 1

    return _run(body, args)


def _archive(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        with _connect(args) as conn:
            done = retention.archive(conn, args.dir, retire=not args.no_retire)
        for a in done:
            state = "retired" if a.retired else "exported"
            print(
                f"{state} {a.partition}: {a.row_count} events -> {a.data} "
                f"(manifest sha256 {a.manifest_sha256})"
            )
        if not done:
            print("no partition has expired", file=sys.stderr)
        return 0

    return _run(body, args)


def _archive_verify(args: argparse.Namespace) -> int:
    def body(args: argparse.Namespace) -> int:
        if args.offline:
            check = retention.verify_archive(args.file)
        else:
            with _connect(args) as conn:
                check = retention.verify_archive(args.file, conn)
        print(check.describe())
        return 0 if check.ok else 1

    return _run(body, args)


def main(argv: list[str] | None = None) -> int:
    """Standalone entry for tests and until the top-level cli wires register() in."""
    parser = argparse.ArgumentParser(prog="pg-audit")
    parser.add_argument(
        "--dsn", default=None, help="libpq connection string (default: PG* variables)"
    )
    register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(argv)
    return int(args.func(args))


if __name__ == "__main__":
    raise SystemExit(main())
