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


# -- retirements that the seals must prove ------------------------------------


def _tamper(conn: psycopg.Connection, *statements: str) -> None:
    """As the superuser, with the log's append-only triggers off for a moment."""
    parts = [r[0] for r in conn.execute("SELECT partition::text FROM audit.event_partition")]
    with conn.transaction():
        for t in parts:
            conn.execute(f"ALTER TABLE {t} DISABLE TRIGGER audit_append_only")
        for statement in statements:
            conn.execute(statement)
        for t in parts:
            conn.execute(f"ALTER TABLE {t} ENABLE ALWAYS TRIGGER audit_append_only")


def _both_verifies(conn: psycopg.Connection, expect: str | None = None):
    """The client's verify and the database's audit.verify(), which must agree."""
    result = verify(conn, expect=expect)
    row = conn.execute(
        "SELECT ok, batch, event_id, problem FROM audit.verify(%s)", [expect]
    ).fetchone()
    assert (result.ok, result.batch, result.event_id) == row[:3], (result, row)
    assert result.problem == row[3]
    return result


def _drop_partition(conn: psycopg.Connection, part: str) -> None:
    conn.execute(f"ALTER TABLE audit.event DETACH PARTITION {part}")
    conn.execute(f"DROP TABLE {part}")


def _forge_retirement(
    conn: psycopg.Connection,
    part: str,
    occurred_at: str = "clock_timestamp()",
    tx_started_at: str = "now()",
    **overrides: object,
) -> None:
    """What audit.retire_partition() does, done by hand: drop the partition, write the
    retired row and the RETENTION event, consistent with the seals unless overridden."""
    manifest = json.loads(
        conn.execute("SELECT audit.archive_manifest(%s::regclass)::text", [part]).fetchone()[0]
    )
    _drop_partition(conn, part)
    digest = hashlib.sha256(json.dumps(manifest).encode()).hexdigest()
    row = {
        "partition": part,
        "range_from": manifest["range_from"] + "+00",
        "range_to": manifest["range_to"] + "+00",
        "row_count": manifest["row_count"],
        "content_sha256": manifest["content_sha256"],
        "manifest_sha256": digest,
        **overrides,
    }
    conn.execute(
        "INSERT INTO audit.retired (partition, range_from, range_to, row_count, content_sha256, "
        "manifest_sha256) VALUES (%(partition)s, %(range_from)s, %(range_to)s, %(row_count)s, "
        "%(content_sha256)s, %(manifest_sha256)s)",
        row,
    )
    detail = {**manifest, "operation": "drop", "manifest_sha256": digest}
    conn.execute(
        f"INSERT INTO audit.event (action, table_name, detail, occurred_at, tx_started_at) "
        f"VALUES ('RETENTION', 'audit.event', %s::jsonb, {occurred_at}, {tx_started_at})",
        [json.dumps(detail)],
    )


def _this_month(conn: psycopg.Connection) -> tuple[str, str]:
    """The partition of this month, and a time just after it (in the next month's)."""
    return conn.execute(
        "SELECT partition::text, (range_to + interval '1 hour')::text FROM audit.event_partition "
        "WHERE range_from <= now() AND range_to > now()"
    ).fetchone()


@pytest.fixture
def sealed_log(log):
    conn, parts = log
    seal(conn)
    head = conn.execute("SELECT hash FROM audit.newest_seal()").fetchone()[0]
    return conn, parts, head


def test_an_unbounded_retirement_naming_no_partition_excuses_nothing(sealed_log, capsys):
    # The attack of issue 9: a superuser claims everything was retired, then deletes.
    conn, parts, head = sealed_log
    conn.execute(
        "INSERT INTO audit.retired (partition, range_from, range_to, row_count, content_sha256, "
        "manifest_sha256) VALUES ('audit.event_1999_01', '-infinity', 'infinity', 0, '', '')"
    )
    victim = conn.execute("SELECT min(id) FROM audit.event WHERE actor_name = 'near1'").fetchone()[
        0
    ]
    _tamper(conn, f"DELETE FROM audit.event WHERE id = {victim}")
    result = _both_verifies(conn, head)
    assert (result.ok, result.event_id) == (False, victim)
    assert result.problem == (
        f"event {victim} was deleted (retired partition audit.event_1999_01 does not account "
        "for it: its range is not exactly one monthly partition)"
    )
    assert cli(["--dsn", conn.info.dsn, "verify", "--expect", head]) == 1
    assert "TAMPERED" in capsys.readouterr().out


def test_a_monthly_retirement_whose_counts_the_seals_contradict_excuses_nothing(sealed_log):
    conn, parts, head = sealed_log
    part = parts["recent"]
    _forge_retirement(conn, part, row_count=2)
    result = _both_verifies(conn, head)
    assert not result.ok and "was deleted" in result.problem
    assert "the seals hold 3 events of its range" in result.problem


def test_a_retirement_without_its_retention_event_excuses_nothing(log, tmp_path):
    conn, parts = log
    archive(conn, tmp_path)  # a real retirement; its RETENTION event is not sealed yet
    _tamper(
        conn, "DELETE FROM audit.event WHERE action = 'RETENTION' AND detail->>'operation' = 'drop'"
    )
    result = _both_verifies(conn)
    assert not result.ok and result.problem.endswith(
        "does not account for it: no RETENTION event records this retirement)"
    )


def test_a_forged_retirement_of_a_partition_still_in_the_kept_months_is_detected(sealed_log):
    conn, parts, head = sealed_log
    part, _ = _this_month(conn)
    _forge_retirement(conn, part)  # everything consistent, dated now
    seal(conn)
    result = _both_verifies(conn, head)
    # Its own RETENTION event lies in the range it claims is gone.
    assert not result.ok and "events of its range are still in the log" in result.problem


def test_a_retention_event_moved_out_of_the_range_still_betrays_its_date(sealed_log):
    conn, parts, head = sealed_log
    part, after = _this_month(conn)
    _forge_retirement(conn, part, occurred_at=f"'{after}'")
    seal(conn)
    result = _both_verifies(conn, head)
    assert not result.ok
    assert "is dated before the range was old enough to retire" in result.problem


def test_a_retention_event_dated_in_the_future_proves_nothing(sealed_log):
    conn, parts, head = sealed_log
    part, after = _this_month(conn)
    # Transaction start three months ahead, so the age check passes.
    _forge_retirement(
        conn, part, occurred_at=f"'{after}'", tx_started_at="now() + interval '3 months'"
    )
    result = _both_verifies(conn, head)
    assert not result.ok and "is dated in the future" in result.problem


def test_a_retention_event_dated_after_later_seals_proves_nothing(sealed_log):
    # Seen from the day a future-dated RETENTION event stops being in the future:
    # here the event is dated now and the events sealed after it three days earlier.
    conn, parts, head = sealed_log
    _forge_retirement(conn, parts["near"])
    seal(conn)  # the RETENTION event's batch
    conn.execute(
        "INSERT INTO audit.event (action, occurred_at) VALUES ('AFTER', now() - interval '3 days')"
    )
    seal(conn)  # the next batch
    result = _both_verifies(conn, head)
    assert not result.ok and "is dated after events sealed later" in result.problem


def test_a_superuser_forging_a_whole_retirement_of_an_old_month_is_not_detected(sealed_log):
    # The limit, as docs/retention.md says: indistinguishable from retention itself.
    conn, parts, head = sealed_log
    part = parts["recent"]  # 11 months old: older than the three months always kept
    _forge_retirement(conn, part)
    seal(conn)
    assert _both_verifies(conn, head).ok
    assert conn.execute("SELECT problem FROM audit.retirement_proofs()").fetchall() == [(None,)]


def test_a_real_retirement_is_proven_before_and_after_sealing(log, tmp_path):
    conn, parts = log
    archive(conn, tmp_path)
    assert _both_verifies(conn).ok  # RETENTION event not sealed yet
    seal(conn)
    conn.execute("SELECT audit.log_event('LATER')")
    seal(conn)
    assert _both_verifies(conn).ok
    assert conn.execute("SELECT partition, problem FROM audit.retirement_proofs()").fetchall() == [
        (parts["old"], None)
    ]
    # A deletion next to the retired month is still a deletion.
    victim = conn.execute(
        "SELECT min(id) FROM audit.event WHERE actor_name = 'recent0'"
    ).fetchone()[0]
    _tamper(conn, f"DELETE FROM audit.event WHERE id = {victim}")
    result = _both_verifies(conn)
    assert (result.event_id, result.problem) == (victim, f"event {victim} was deleted")


# -- retention policy changes are events ---------------------------------------


def _policy_events(conn: psycopg.Connection) -> list[dict[str, object]]:
    return [
        r[0]
        for r in conn.execute(
            "SELECT detail || jsonb_build_object('db_role', db_role) FROM audit.event "
            "WHERE action = 'RETENTION' AND detail->>'operation' = 'policy' ORDER BY id"
        )
    ]


def test_every_change_of_the_retention_policy_is_an_event(db, roles):
    with db.connect() as su:
        su.execute("SELECT audit.set_retention(keep_months => 24)")
        su.execute("UPDATE audit.retention_policy SET keep_months = 6")
        su.execute("SET session_replication_role = replica")
        su.execute("UPDATE audit.retention_policy SET keep_months = 7")
        su.execute("SET session_replication_role = DEFAULT")
        su.execute("DELETE FROM audit.retention_policy")
        su.execute("INSERT INTO audit.retention_policy (keep_months) VALUES (9)")
        su.execute("TRUNCATE audit.retention_policy")
        su.execute("INSERT INTO audit.retention_policy DEFAULT VALUES")
        su.execute(f'GRANT audit_owner TO "{roles["ownermember"]}"')
    with db.connect(roles["ownermember"]) as member:
        member.execute("SET ROLE audit_owner")
        member.execute("UPDATE audit.retention_policy SET keep_months = 5")
    for role in ("app", "reader", "stranger"):
        with db.connect(roles[role]) as other:
            with pytest.raises(psycopg.errors.InsufficientPrivilege):
                other.execute("UPDATE audit.retention_policy SET keep_months = 4")
    with db.connect() as su:
        events = _policy_events(su)
    assert [(e["change"], e.get("previous_keep_months"), e.get("keep_months")) for e in events] == [
        ("update", 12, 24),
        ("update", 24, 6),
        ("update", 6, 7),
        ("delete", 7, None),
        ("insert", None, 9),
        ("truncate", None, None),
        ("insert", None, 12),
        ("update", 12, 5),
    ]
    assert events[-1]["db_role"] == roles["ownermember"]


# -- archive show ----------------------------------------------------------------


def test_archive_show_names_the_fields_of_format_1_and_2_lines(log, tmp_path, capsys):
    from decimal import Decimal

    from pg_audit_schema.canonical import FIELDS_1, FIELDS_2

    conn, parts = log
    moved = conn.execute(
        f"INSERT INTO audit.event (action, occurred_at, table_name, row_key, old_row_key, "
        f"old_values, new_values) VALUES ('UPDATE', {OLD}, 'public.price', '{{\"id\": \"2\"}}', "
        '\'{"id": "1"}\', \'{"amount": 12345678901234567890.1234567891}\', '
        "'{\"amount\": 12.50}') RETURNING id"
    ).fetchone()[0]
    done = archive(conn, tmp_path, retire=False)[0]
    assert done.row_count == 4
    assert cli(["archive", "show", str(done.data)]) == 0
    captured = capsys.readouterr()
    assert captured.err.startswith("ok: ")
    lines = captured.out.splitlines()
    events = [json.loads(line, parse_float=Decimal) for line in lines]
    assert [list(e) for e in events[:3]] == [list(FIELDS_1)] * 3
    assert [e["actor_name"] for e in events[:3]] == ["old0", "old1", "old2"]
    (shown,) = [e for e in events if e["id"] == moved]
    assert list(shown) == list(FIELDS_2) and shown["format"] == 2
    assert shown["old_row_key"] == {"id": "1"} and shown["row_key"] == {"id": "2"}
    # Values exactly as archived: no float on the way.
    raw = [line for line in lines if f'"id": {moved},' in line][0]
    assert '{"amount": 12345678901234567890.1234567891}' in raw and '{"amount": 12.50}' in raw
    assert verify_archive(done.data, conn).ok  # format 2 lines check against the seal too
    # A changed line: shown all the same, but the check fails.
    data = gzip.open(done.data, "rt").read().replace('"old1"', '"mallory"')
    with gzip.open(done.data, "wt") as f:
        f.write(data)
    assert cli(["archive", "show", str(done.manifest)]) == 1
    captured = capsys.readouterr()
    assert captured.err.startswith("BAD: ") and '"mallory"' in captured.out


def test_archive_show_of_a_missing_file_is_one_line(tmp_path, capsys):
    from pg_audit_schema._common import EXIT_ERROR

    assert cli(["archive", "show", str(tmp_path / "audit.event_2020_01.jsonl.gz")]) == EXIT_ERROR
    err = capsys.readouterr().err.splitlines()
    assert len(err) == 1 and err[0].startswith("pg-audit: cannot read the manifest")


def test_archive_reports_progress_while_exporting_and_checking(log, tmp_path):
    conn, parts = log
    seen: list[tuple[str, int, int]] = []
    archive(conn, tmp_path, retire=False, progress=lambda *a: seen.append(a))
    assert (f"export {parts['old']}", 3, 3) in seen
