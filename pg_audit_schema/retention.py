"""Partition maintenance, and retention through archives.

A partition leaves only through ``audit.retire_partition``, which wants the
sha256 of the archive manifest of exactly its sealed content. ``archive`` is
the protocol: seal, export the partition as gzip JSONL (one canonical event per
line, as sealed), re-read the file and check it against the manifest, write the
manifest next to it, and only then ask the database to record and drop.

Archive lines are positional JSON arrays (``canonical.FIELDS`` names the
positions of format 1 and 2); ``show_archive`` prints them with the names.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

import psycopg

from . import canonical
from .errors import PgAuditError
from .installer import require_installed

DATA_SUFFIX = ".jsonl.gz"
MANIFEST_SUFFIX = ".manifest.json"
# progress(step, done, total), e.g. ("export audit.event_2025_10", 5000, 81234)
Progress = Callable[[str, int, int], None]
_DECODER = json.JSONDecoder(parse_float=Decimal)


@dataclass(frozen=True)
class Archive:
    partition: str
    data: Path
    manifest: Path
    manifest_sha256: str
    row_count: int
    retired: bool


@dataclass
class ArchiveCheck:
    data: Path
    manifest: dict[str, object]
    manifest_sha256: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def describe(self) -> str:
        if self.ok:
            return (
                f"ok: {self.data.name}: {self.manifest.get('row_count')} events of "
                f"{self.manifest.get('partition')}, manifest sha256 {self.manifest_sha256}"
            )
        return f"BAD: {self.data.name}: " + "; ".join(self.problems)


def _fail(what: str, exc: psycopg.Error) -> PgAuditError:
    return PgAuditError(f"{what}: {exc.diag.message_primary or str(exc).strip()}")


def maintain(conn: psycopg.Connection, months_ahead: int = 3) -> list[tuple[str, str, int]]:
    """Move strays out of the default partition and create partitions ahead."""
    require_installed(conn)
    try:
        with conn.transaction():
            rows = conn.execute(
                "SELECT operation, partition, row_count FROM audit.maintain(%s)", [months_ahead]
            ).fetchall()
    except psycopg.Error as exc:
        raise _fail("maintenance failed", exc) from exc
    return [(r[0], r[1], r[2]) for r in rows]


def expired_partitions(conn: psycopg.Connection) -> list[str]:
    return [r[0] for r in conn.execute("SELECT p::text FROM audit.expired_partitions() p")]


def paths_for(partition: str, directory: Path) -> tuple[Path, Path]:
    return directory / f"{partition}{DATA_SUFFIX}", directory / f"{partition}{MANIFEST_SUFFIX}"


def export_partition(
    conn: psycopg.Connection, partition: str, directory: Path, progress: Progress | None = None
) -> Archive:
    """Write the archive of one sealed partition and check it; nothing is dropped."""
    try:
        return _export(conn, partition, directory, progress)
    except OSError as exc:
        raise PgAuditError(f"exporting {partition} failed: {exc}") from exc


def _export(
    conn: psycopg.Connection, partition: str, directory: Path, progress: Progress | None
) -> Archive:
    directory.mkdir(parents=True, exist_ok=True)
    data, manifest_path = paths_for(partition, directory)
    tmp = data.with_name(data.name + ".partial")
    try:
        # Manifest and rows from one snapshot; read only, rolled back with its settings.
        with conn.transaction(force_rollback=True):
            if conn.autocommit:
                conn.execute("SET TRANSACTION ISOLATION LEVEL REPEATABLE READ, READ ONLY")
            conn.execute("SET LOCAL search_path = pg_catalog, pg_temp")
            row = conn.execute(
                "SELECT audit.archive_manifest(%s::regclass)::text", [partition]
            ).fetchone()
            assert row is not None
            manifest_text: str = row[0]
            manifest = json.loads(manifest_text)
            total = int(manifest["row_count"])
            step = f"export {partition}"
            with (
                gzip.open(tmp, "wt", encoding="utf-8", newline="\n") as out,
                conn.cursor(name="pg_audit_archive") as cur,
            ):
                cur.itersize = 5000
                cur.execute(
                    "SELECT audit.event_canonical(e) FROM audit.event e "
                    "WHERE e.occurred_at >= %s::timestamptz AND e.occurred_at < %s::timestamptz "
                    "ORDER BY e.id, e.occurred_at",
                    [manifest["range_from"], manifest["range_to"]],
                )
                for n, (line,) in enumerate(cur, 1):
                    out.write(line)
                    out.write("\n")
                    if progress and (n % 5000 == 0 or n == total):
                        progress(step, n, total)
    except psycopg.Error as exc:
        tmp.unlink(missing_ok=True)
        raise _fail(f"exporting {partition} failed", exc) from exc
    _fsync(tmp)
    os.replace(tmp, data)
    manifest_path.write_text(manifest_text + "\n", encoding="utf-8")
    _fsync(manifest_path)
    _fsync(directory)
    check = verify_archive(data, progress=progress)
    if not check.ok:
        raise PgAuditError(
            f"the archive of {partition} does not match its manifest: {check.problems[0]}"
        )
    return Archive(
        partition,
        data,
        manifest_path,
        check.manifest_sha256,
        int(manifest["row_count"]),
        retired=False,
    )


def archive(
    conn: psycopg.Connection,
    directory: Path,
    *,
    retire: bool = True,
    progress: Progress | None = None,
) -> list[Archive]:
    """Seal, export and check every expired partition, then retire each one.

    A partition whose export or check fails is not retired, and nothing after it.
    """
    require_installed(conn)
    try:
        conn.execute("SELECT audit.seal()")
    except psycopg.Error as exc:
        raise _fail("sealing before the archive failed", exc) from exc
    done: list[Archive] = []
    for partition in expired_partitions(conn):
        result = export_partition(conn, partition, directory, progress)
        if retire:
            try:
                with conn.transaction():
                    conn.execute(
                        "SELECT audit.retire_partition(%s::regclass, %s)",
                        [partition, result.manifest_sha256],
                    )
            except psycopg.Error as exc:
                raise _fail(f"retiring {partition} failed (its archive is kept)", exc) from exc
            result = Archive(
                result.partition,
                result.data,
                result.manifest,
                result.manifest_sha256,
                result.row_count,
                retired=True,
            )
        done.append(result)
    return done


def _locate(path: Path) -> tuple[Path, Path]:
    name = path.name
    if name.endswith(MANIFEST_SUFFIX):
        stem = name[: -len(MANIFEST_SUFFIX)]
    elif name.endswith(DATA_SUFFIX):
        stem = name[: -len(DATA_SUFFIX)]
    else:
        raise PgAuditError(f"{path} is neither a *{DATA_SUFFIX} archive nor its *{MANIFEST_SUFFIX}")
    return paths_for(stem, path.parent)


def _lines(data: Path) -> Iterator[bytes]:
    with gzip.open(data, "rb") as f:
        for raw in f:
            yield raw.rstrip(b"\n")


def elements(line: str) -> list[str]:
    """The exact text of each element of a canonical line, checked for its format."""
    if not (line.startswith("[") and line.endswith("]")):
        raise ValueError("not a JSON array")
    parts: list[str] = []
    i, end = 1, len(line) - 1
    while i < end:
        _, after = _DECODER.raw_decode(line, i)
        parts.append(line[i:after])
        i = after
        if i < end:
            if line[i : i + 2] != ", ":
                raise ValueError("not canonical spacing")
            i += 2
    fields = canonical.FIELDS.get(int(parts[0])) if parts and parts[0].isdigit() else None
    if fields is None or len(parts) != len(fields):
        raise ValueError("not a canonical event of format 1 or 2")
    return parts


def named(line: str) -> str:
    """A canonical line as a JSON object with named fields; every value exactly as archived."""
    parts = elements(line)
    names = canonical.FIELDS[int(parts[0])]
    return "{" + ", ".join(f'"{n}": {v}' for n, v in zip(names, parts, strict=True)) + "}"


def show_archive(data: Path) -> Iterator[str]:
    """The events of an archive file, each as ``named`` prints it."""
    try:
        for number, raw in enumerate(_lines(data), 1):
            try:
                yield named(raw.decode("utf-8"))
            except (ValueError, UnicodeDecodeError) as exc:
                raise PgAuditError(f"{data.name} line {number} is not a canonical event") from exc
    except (OSError, EOFError) as exc:
        raise PgAuditError(f"cannot read {data}: {exc}") from exc


def verify_archive(
    path: Path, conn: psycopg.Connection | None = None, progress: Progress | None = None
) -> ArchiveCheck:
    """Re-check an archive against its manifest and, given a connection, its seal."""
    data, manifest_path = _locate(Path(path))
    try:
        manifest_text = manifest_path.read_text(encoding="utf-8").rstrip("\n")
        manifest = json.loads(manifest_text)
    except (OSError, ValueError) as exc:
        raise PgAuditError(f"cannot read the manifest {manifest_path}: {exc}") from exc
    check = ArchiveCheck(data, manifest, hashlib.sha256(manifest_text.encode()).hexdigest())
    content = hashlib.sha256()
    count = 0
    first_id: int | None = None
    last_id: int | None = None
    previous: tuple[int, str] | None = None
    row_hashes: dict[int, bytes] = {}
    try:
        for line in _lines(data):
            count += 1
            digest = hashlib.sha256(line).digest()
            content.update(digest)
            if progress and count % 5000 == 0:
                progress(f"check {data.name}", count, int(manifest.get("row_count") or 0))
            try:
                parts = elements(line.decode("utf-8"))
                key = (int(parts[1]), json.loads(parts[2]))
                if not isinstance(key[1], str):
                    raise ValueError("occurred_at is not a timestamp")
            except (ValueError, UnicodeDecodeError):
                check.problems.append(f"line {count} is not a canonical event")
                continue
            if previous is not None and key <= previous:
                check.problems.append(f"line {count} (event {key[0]}) is out of order")
            if not manifest["range_from"] <= key[1] < manifest["range_to"]:
                check.problems.append(f"event {key[0]} lies outside {manifest['partition']}")
            previous = key
            first_id = key[0] if first_id is None else min(first_id, key[0])
            last_id = key[0] if last_id is None else max(last_id, key[0])
            if conn is not None:
                row_hashes[key[0]] = digest
    except (OSError, EOFError) as exc:
        check.problems.append(f"cannot read {data.name}: {exc}")
        return check
    if count != manifest.get("row_count"):
        check.problems.append(f"{count} events, the manifest says {manifest.get('row_count')}")
    if (first_id, last_id) != (manifest.get("first_id"), manifest.get("last_id")):
        check.problems.append(
            f"ids {first_id}..{last_id}, the manifest says "
            f"{manifest.get('first_id')}..{manifest.get('last_id')}"
        )
    if content.hexdigest() != manifest.get("content_sha256"):
        check.problems.append("content hash differs from the manifest: an event was changed")
    if conn is not None and not check.problems:
        check.problems.extend(_against_seal(conn, manifest, check.manifest_sha256, row_hashes))
    return check


def _against_seal(
    conn: psycopg.Connection,
    manifest: dict[str, object],
    manifest_sha256: str,
    row_hashes: dict[int, bytes],
) -> list[str]:
    problems: list[str] = []
    recorded = conn.execute(
        "SELECT manifest_sha256 FROM audit.retired WHERE partition = %s",
        [manifest.get("partition")],
    ).fetchone()
    if recorded and recorded[0] != manifest_sha256:
        problems.append("the manifest is not the one recorded when the partition was retired")
    batch = manifest.get("seal_batch")
    if batch is None:
        return problems
    row = conn.execute(
        "SELECT encode(hash, 'hex') FROM audit.seal WHERE batch = %s", [batch]
    ).fetchone()
    if not row or row[0] != manifest.get("seal_hash"):
        problems.append(
            f"seal batch {batch} in the database does not have the manifest's seal hash"
        )
        return problems
    sealed = dict(
        conn.execute(
            "SELECT u.id, substring(s.row_hashes FROM ((u.o - 1) * 32 + 1)::int FOR 32) "
            "FROM audit.seal s, unnest(s.event_ids) WITH ORDINALITY AS u(id, o) "
            "WHERE s.batch <= %s AND u.id BETWEEN %s AND %s",
            [batch, manifest.get("first_id"), manifest.get("last_id")],
        ).fetchall()
    )
    for event_id, digest in row_hashes.items():
        if sealed.get(event_id) != digest:
            problems.append(f"event {event_id} differs from its seal")
            break
    return problems


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
