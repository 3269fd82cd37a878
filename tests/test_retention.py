"""Retention: only expired partitions leave, only through an archive that matches their seal."""

from __future__ import annotations

import gzip
import hashlib
import json
from pathlib import Path

import psycopg
import pytest

from pg_audit_schema.cli_retention import main as cli
from pg_audit_schema.errors import PgAuditError
from pg_audit_schema.retention import archive, export_partition, maintain, verify_archive
from pg_audit_schema.seal import seal, verify

# Relative to the month the test runs in, so the policy (12 months) always cuts the same way.
OLD = "date_trunc('month', now()) - interval '17 months' + interval '3 days'"  # expired
RECENT = "date_trunc('month', now()) - interval '11 months' + interval '3 days'"  # kept
NEAR = "date_trunc('month', now()) - interval '4 months' + interval '3 days'"  # kept


def _partition(conn: psycopg.Connection, expr: str) -> str:
    return conn.execute(f"SELECT 'audit.event_' || to_char({expr}, 'YYYY_MM')").fetchone()[0]


def _populate(conn: psycopg.Connection) -> dict[str, str]:
    parts = {}
    for name, expr in [("old", OLD), ("recent", RECENT), ("near", NEAR)]:
        for i in range(3):
            conn.execute(
                f"INSERT INTO audit.event (action, occurred_at, actor_name) "
                f"VALUES ('OLD_EVENT', {expr} + %s * interval '1 hour', %s)",
                [i, f"{name}{i}"],
            )
        parts[name] = _partition(conn, expr)
    conn.execute("SELECT audit.log_event('TODAY', 'u1', 'alice')")
    maintain(conn)
    return parts


def _partitions(conn: psycopg.Connection) -> set[str]:
    return {r[0] for r in conn.execute("SELECT partition::text FROM audit.event_partition")}


def _manifest_hash(conn: psycopg.Connection, part: str) -> str:
    return conn.execute(
        "SELECT encode(sha256(convert_to(audit.archive_manifest(%s::regclass)::text, "
        "'UTF8')), 'hex')",
        [part],
    ).fetchone()[0]


@pytest.fixture
def log(db):
    conn = db.connect()
    parts = _populate(conn)
    yield conn, parts
    conn.close()


def test_archive_retires_exactly_the_expired_partitions(log, tmp_path):
    conn, parts = log
    before = _partitions(conn)
    assert [r[0] for r in conn.execute("SELECT p::text FROM audit.expired_partitions() p")] == [
        parts["old"]
    ]
    done = archive(conn, tmp_path)
    assert [(a.partition, a.row_count, a.retired) for a in done] == [(parts["old"], 3, True)]
    assert _partitions(conn) == before - {parts["old"]}
    assert (
        conn.execute("SELECT count(*) FROM audit.event WHERE action = 'OLD_EVENT'").fetchone()[0]
        == 6
    )
    event = conn.execute(
        "SELECT detail FROM audit.event WHERE action = 'RETENTION' "
        "AND detail->>'operation' = 'drop'"
    ).fetchone()[0]
    assert event["partition"] == parts["old"]
    assert event["manifest_sha256"] == done[0].manifest_sha256
    assert event["row_count"] == 3
    assert (
        conn.execute("SELECT manifest_sha256 FROM audit.retired").fetchone()[0]
        == done[0].manifest_sha256
    )
    # The retired events are excused; everything else still verifies, including the RETENTION event.
    seal(conn)
    assert verify(conn).ok
    assert archive(conn, tmp_path) == []  # nothing else is expired


def test_archive_holds_every_event_and_verifies(log, tmp_path):
    conn, parts = log
    seal(conn)
    expected = [
        r[0]
        for r in conn.execute(
            "SELECT audit.event_canonical(e) FROM audit.event e "
            "WHERE actor_name LIKE 'old%%' ORDER BY id"
        )
    ]
    done = archive(conn, tmp_path)
    with gzip.open(done[0].data, "rt", encoding="utf-8") as f:
        assert f.read().splitlines() == expected
    manifest = json.loads(done[0].manifest.read_text())
    assert manifest["row_count"] == 3 and manifest["seal_batch"] >= 1
    assert verify_archive(done[0].data).ok
    assert verify_archive(done[0].manifest, conn).ok
    assert cli(["--dsn", conn.info.dsn, "archive", "verify", str(done[0].data)]) == 0


def test_retire_refuses_without_the_matching_manifest(log):
    conn, parts = log
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="manifest hash"):
        conn.execute("SELECT audit.retire_partition(%s::regclass, %s)", [parts["old"], "0" * 64])
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("SELECT audit.retire_partition(%s::regclass, NULL)", [parts["old"]])
    seal(conn)
    stale = _manifest_hash(conn, parts["old"])
    # An event arrives after the archive was made: the archive no longer describes the partition.
    conn.execute(f"INSERT INTO audit.event (action, occurred_at) VALUES ('LATE', {OLD})")
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState):
        conn.execute("SELECT audit.retire_partition(%s::regclass, %s)", [parts["old"], stale])
    assert parts["old"] in _partitions(conn)
    assert conn.execute("SELECT count(*) FROM audit.retired").fetchone()[0] == 0


def test_retire_refuses_partitions_the_policy_keeps(log):
    conn, parts = log
    seal(conn)
    for key in ("recent", "near"):
        with pytest.raises(psycopg.errors.InvalidParameterValue, match="not expired"):
            conn.execute(
                "SELECT audit.retire_partition(%s::regclass, %s)",
                [parts[key], _manifest_hash(conn, parts[key])],
            )
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT audit.retire_partition('audit.event_default', 'x')")
    assert {parts["recent"], parts["near"]} <= _partitions(conn)


def test_a_failed_export_drops_nothing(log, tmp_path):
    conn, parts = log
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("")
    with pytest.raises(PgAuditError):
        archive(conn, blocker)
    assert parts["old"] in _partitions(conn)
    assert (
        conn.execute(
            "SELECT count(*) FROM audit.event WHERE action = 'RETENTION' "
            "AND detail->>'operation' = 'drop'"
        ).fetchone()[0]
        == 0
    )
    assert cli(["--dsn", conn.info.dsn, "archive", "--dir", str(blocker / "x")]) != 0
    assert parts["old"] in _partitions(conn)


def test_no_retire_exports_without_dropping(log, tmp_path, capsys):
    conn, parts = log
    assert cli(["--dsn", conn.info.dsn, "archive", "--dir", str(tmp_path), "--no-retire"]) == 0
    assert "exported " + parts["old"] in capsys.readouterr().out
    assert parts["old"] in _partitions(conn)


def test_policy_change_widens_retention_but_keeps_three_months(log, tmp_path):
    conn, parts = log
    conn.execute("SELECT audit.set_retention(keep_months => 3)")
    expired = [r[0] for r in conn.execute("SELECT p::text FROM audit.expired_partitions() p")]
    assert expired == [parts["old"], parts["recent"], parts["near"]]
    with pytest.raises(psycopg.errors.InvalidParameterValue):
        conn.execute("SELECT audit.set_retention(keep_months => 2)")
    with pytest.raises(psycopg.errors.CheckViolation):
        conn.execute("UPDATE audit.retention_policy SET keep_months = 1")
    assert (
        conn.execute(
            "SELECT count(*) FROM audit.event WHERE action = 'RETENTION' "
            "AND detail->>'operation' = 'policy'"
        ).fetchone()[0]
        == 1
    )


def test_archive_verify_finds_a_changed_or_missing_line(log, tmp_path):
    conn, parts = log
    done = archive(conn, tmp_path, retire=False)[0]
    lines = gzip.open(done.data, "rt").read().splitlines()
    changed = [lines[0].replace('"old0"', '"old9"'), *lines[1:]]
    with gzip.open(done.data, "wt") as f:
        f.write("\n".join(changed) + "\n")
    check = verify_archive(done.data)
    assert not check.ok and "content hash" in check.problems[0]
    with gzip.open(done.data, "wt") as f:
        f.write("\n".join(lines[1:]) + "\n")
    check = verify_archive(done.data)
    assert not check.ok and "2 events" in check.problems[0]
    assert cli(["archive", "verify", "--offline", str(done.data)]) == 1


def test_a_consistently_rewritten_archive_fails_against_the_seal(log, tmp_path):
    conn, parts = log
    done = archive(conn, tmp_path)[0]
    lines = gzip.open(done.data, "rt").read().splitlines()
    lines[1] = lines[1].replace('"old1"', '"mallory"')
    with gzip.open(done.data, "wt") as f:
        f.write("\n".join(lines) + "\n")
    manifest = json.loads(done.manifest.read_text())
    manifest["content_sha256"] = hashlib.sha256(
        b"".join(hashlib.sha256(x.encode()).digest() for x in lines)
    ).hexdigest()
    done.manifest.write_text(json.dumps(manifest) + "\n")
    assert verify_archive(done.data).ok  # self-consistent on its own
    check = verify_archive(done.data, conn)
    assert not check.ok
    assert "recorded when the partition was retired" in check.problems[0]


def test_only_the_retention_function_removes_partitions(db, log, roles):
    conn, parts = log
    seal(conn)
    good = _manifest_hash(conn, parts["old"])
    for role in ("app", "reader", "stranger"):
        with db.connect(roles[role]) as other:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                other.execute(
                    "SELECT audit.retire_partition(%s::regclass, %s)", [parts["old"], good]
                )
    with pytest.raises(psycopg.errors.InsufficientPrivilege, match="reserved"):
        conn.execute("SELECT audit.log_event('RETENTION')")
    assert parts["old"] in _partitions(conn)


def test_export_needs_a_sealed_partition(log, tmp_path):
    conn, parts = log
    with pytest.raises(PgAuditError, match="not fully sealed"):
        export_partition(conn, parts["old"], Path(tmp_path))


def test_a_rewritten_unretired_archive_fails_against_the_row_seals(log, tmp_path):
    conn, parts = log
    done = archive(conn, tmp_path, retire=False)[0]
    lines = gzip.open(done.data, "rt").read().splitlines()
    lines[2] = lines[2].replace('"old2"', '"mallory"')
    with gzip.open(done.data, "wt") as f:
        f.write("\n".join(lines) + "\n")
    manifest = json.loads(done.manifest.read_text())
    manifest["content_sha256"] = hashlib.sha256(
        b"".join(hashlib.sha256(x.encode()).digest() for x in lines)
    ).hexdigest()
    done.manifest.write_text(json.dumps(manifest) + "\n")
    assert verify_archive(done.data).ok
    check = verify_archive(done.data, conn)
    event_id = json.loads(lines[2])[1]
    assert check.problems == [f"event {event_id} differs from its seal"]


def test_a_granted_operator_login_runs_retention_inside_the_ddl_guard(db, log, roles, tmp_path):
    conn, parts = log
    operator = roles["reader"]  # not an audit_owner member; gets exactly the three functions
    for fn in ("audit.seal()", "audit.retire_partition(regclass, text)"):
        conn.execute(f'GRANT EXECUTE ON FUNCTION {fn} TO "{operator}"')
    with db.connect(operator) as ops:
        done = archive(ops, tmp_path)
    assert [(a.partition, a.retired) for a in done] == [(parts["old"], True)]
    assert parts["old"] not in _partitions(conn)
    assert conn.execute("SELECT retired_by FROM audit.retired").fetchone()[0] == operator
