"""Seals: finished transactions in hash-chained batches; verify finds every kind of tampering."""

from __future__ import annotations

import psycopg
import pytest

from pg_audit_schema.cli_retention import main as cli
from pg_audit_schema.seal import newest_seal, seal, verify


def _events(conn: psycopg.Connection, n: int, prefix: str = "E") -> list[int]:
    return [
        conn.execute(
            "SELECT audit.log_event(%s, %s, %s, %s::jsonb)",
            [f"{prefix}_{i}", str(i), f'user|{i},"x"', '{"k": "a|b"}'],
        ).fetchone()[0]
        for i in range(n)
    ]


def _tamper(conn: psycopg.Connection, statement: str, params: list[object] | None = None) -> None:
    """Run a change as the superuser with the append-only triggers off (they fire ALWAYS)."""
    tables = [
        "audit.seal",
        *[r[0] for r in conn.execute("SELECT partition::text FROM audit.event_partition")],
    ]
    with conn.transaction():
        for t in tables:
            conn.execute(f"ALTER TABLE {t} DISABLE TRIGGER ALL")
        conn.execute(statement, params)
        for t in tables:
            conn.execute(
                f"ALTER TABLE {t} ENABLE ALWAYS TRIGGER audit_append_only, "
                "ENABLE ALWAYS TRIGGER audit_no_truncate"
            )


@pytest.fixture
def sealed(db):
    """Three batches of events, all sealed."""
    conn = db.connect()
    ids = []
    for _ in range(3):
        ids += _events(conn, 4)
        assert seal(conn) is not None
    yield conn, ids
    conn.close()


def test_untouched_log_verifies_clean_and_names_the_newest_hash(sealed):
    conn, ids = sealed
    result = verify(conn)
    assert result.ok, result.describe()
    assert (result.batches, result.events) == (3, len(ids))
    assert result.newest_hash == newest_seal(conn).hash
    assert verify(conn, expect=newest_seal(conn).hash).ok
    assert conn.execute("SELECT ok FROM audit.verify()").fetchone()[0] is True


def test_seal_with_nothing_new_adds_no_batch(sealed):
    conn, _ = sealed
    assert seal(conn) is None
    assert conn.execute("SELECT count(*) FROM audit.seal").fetchone()[0] == 3


def test_changed_value_is_reported_with_batch_and_event(sealed):
    conn, ids = sealed
    _tamper(conn, "UPDATE audit.event SET actor_name = 'mallory' WHERE id = %s", [ids[5]])
    result = verify(conn)
    assert not result.ok
    assert (result.batch, result.event_id) == (2, ids[5])
    assert "changed" in result.problem
    sql_row = conn.execute("SELECT ok, batch, event_id FROM audit.verify()").fetchone()
    assert sql_row == (False, 2, ids[5])


def test_changed_detail_key_order_or_spacing_cannot_hide(sealed):
    conn, ids = sealed
    # Same text after a separator shift: 'user|0' + ',"x"' vs moving the separator.
    _tamper(
        conn,
        "UPDATE audit.event SET actor_id = actor_id || 'u', actor_name = substr(actor_name, 2) "
        "WHERE id = %s",
        [ids[0]],
    )
    result = verify(conn)
    assert (result.batch, result.event_id) == (1, ids[0])


def test_deleted_row_is_reported(sealed):
    conn, ids = sealed
    _tamper(conn, "DELETE FROM audit.event WHERE id = %s", [ids[9]])
    result = verify(conn)
    assert (result.batch, result.event_id) == (3, ids[9])
    assert "deleted" in result.problem


def test_inserted_row_in_a_sealed_range_is_reported(sealed):
    conn, ids = sealed
    txid = conn.execute("SELECT txid FROM audit.event WHERE id = %s", [ids[6]]).fetchone()[0]
    _tamper(
        conn,
        "INSERT INTO audit.event (id, action, txid) VALUES (%s, 'FORGED', %s)",
        [ids[6] + 100000, txid],
    )
    result = verify(conn)
    assert (result.batch, result.event_id) == (2, ids[6] + 100000)
    assert "inserted" in result.problem


def test_rewritten_seal_is_reported(sealed):
    conn, _ = sealed
    _tamper(
        conn, "UPDATE audit.seal SET event_count = event_count WHERE batch = 2"
    )  # a no-op passes
    assert verify(conn).ok
    _tamper(conn, "UPDATE audit.seal SET sealed_by = 'x', to_xid = to_xid WHERE batch = 2")
    assert verify(conn).ok  # sealed_by is bookkeeping, not sealed content
    _tamper(conn, "UPDATE audit.seal SET hash = sha256(hash) WHERE batch = 2")
    result = verify(conn)
    assert result.batch == 2 and "rewritten" in result.problem


def test_reordered_seals_are_reported(sealed):
    conn, _ = sealed
    _tamper(
        conn,
        "UPDATE audit.seal SET batch = -1 WHERE batch = 1; "
        "UPDATE audit.seal SET batch = 1 WHERE batch = 2; "
        "UPDATE audit.seal SET batch = 2 WHERE batch = -1",
    )
    result = verify(conn)
    assert not result.ok and result.batch == 1
    assert result.event_id is None


def test_deleted_seal_in_the_middle_is_reported(sealed):
    conn, _ = sealed
    _tamper(conn, "DELETE FROM audit.seal WHERE batch = 2")
    result = verify(conn)
    assert result.batch == 2 and "missing" in result.problem


def test_full_rewrite_is_caught_only_by_the_external_hash(sealed):
    conn, ids = sealed
    kept = newest_seal(conn).hash
    # A superuser changes an event and rebuilds the whole chain: internally consistent again.
    _tamper(conn, "UPDATE audit.event SET actor_name = 'mallory' WHERE id = %s", [ids[0]])
    _tamper(conn, "DELETE FROM audit.seal")
    assert seal(conn) == 1
    assert verify(conn).ok
    result = verify(conn, expect=kept)
    assert not result.ok and "expected seal hash" in result.problem
    assert conn.execute("SELECT ok FROM audit.verify(%s)", [kept]).fetchone()[0] is False


def test_cut_back_chain_is_caught_by_the_external_hash(sealed):
    conn, _ = sealed
    kept = newest_seal(conn).hash
    _tamper(conn, "DELETE FROM audit.seal WHERE batch = 3")
    assert verify(conn).ok
    assert not verify(conn, expect=kept).ok


def test_an_older_external_hash_still_verifies_after_more_seals(sealed):
    conn, _ = sealed
    kept = newest_seal(conn).hash
    _events(conn, 2)
    seal(conn)
    assert verify(conn, expect=kept).ok


def test_only_finished_transactions_are_sealed(db):
    conn = db.connect()
    open_tx = psycopg.connect(db.conninfo())
    try:
        early = open_tx.execute("SELECT audit.log_event('EARLY')").fetchone()[
            0
        ]  # xid taken, not committed
        later = _events(conn, 2)  # commit after the open transaction began
        seal(conn)
        sealed_ids = conn.execute(
            "SELECT coalesce(array_agg(u), '{}') FROM audit.seal, unnest(event_ids) u"
        ).fetchone()[0]
        assert early not in sealed_ids
        assert not set(later) & set(sealed_ids)  # newer xids than the oldest running one wait too
        open_tx.commit()
        seal(conn)
        sealed_ids = conn.execute(
            "SELECT array_agg(u) FROM audit.seal, unnest(event_ids) u"
        ).fetchone()[0]
        assert {early, *later} <= set(sealed_ids)
        assert verify(conn).ok
    finally:
        open_tx.close()
        conn.close()


def test_an_aborted_transaction_leaves_nothing_to_verify(db):
    conn = db.connect()
    with pytest.raises(psycopg.errors.RaiseException):
        with conn.transaction():
            conn.execute("SELECT audit.log_event('DOOMED')")
            conn.execute("DO $$ BEGIN RAISE EXCEPTION 'boom'; END $$")
    _events(conn, 1)
    seal(conn)
    assert verify(conn).ok


def test_writers_do_not_wait_for_a_running_seal(db, roles):
    sealer = psycopg.connect(db.conninfo())
    writer = db.connect(roles["app"])
    try:
        sealer.execute("SELECT audit.seal()")  # transaction left open, seal lock held
        writer.execute("SET lock_timeout = '5s'")
        assert writer.execute("SELECT audit.log_event('WHILE_SEALING')").fetchone()[0] > 0
        sealer.commit()
    finally:
        sealer.close()
        writer.close()


def test_seal_and_verify_privileges(db, roles):
    with db.connect(roles["stranger"]) as stranger:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            stranger.execute("SELECT audit.seal()")
    with db.connect(roles["app"]) as app:
        app.execute("SELECT audit.log_event('X')")
        assert app.execute("SELECT audit.seal()").fetchone()[0] == 1
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("UPDATE audit.seal SET hash = hash")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT audit.verify_batch(1)")
    with db.connect(roles["reader"]) as reader:
        assert reader.execute("SELECT ok FROM audit.verify()").fetchone()[0] is True
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            reader.execute("SELECT audit.seal()")
    with db.connect() as su:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            su.execute("DELETE FROM audit.seal")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            su.execute("UPDATE audit.seal SET hash = hash")


def test_cli_seal_verify_and_expect(db, tmp_path, capsys):
    conn = db.connect()
    _events(conn, 3)
    head = tmp_path / "head"
    assert cli(["--dsn", db.conninfo(), "seal", "--hash-file", str(head)]) == 0
    batch, digest = head.read_text().split()
    assert capsys.readouterr().out.split() == [batch, digest]
    assert cli(["seal", "--no-seal", "--dsn", db.conninfo()]) == 0
    assert capsys.readouterr().out.split() == [batch, digest]
    assert cli(["--dsn", db.conninfo(), "verify", "--expect", digest]) == 0
    assert cli(["--dsn", db.conninfo(), "verify", "--expect-file", str(head)]) == 0
    assert "ok:" in capsys.readouterr().out
    assert cli(["--dsn", db.conninfo(), "verify", "--expect", "00" * 32]) == 1
    _tamper(conn, "UPDATE audit.event SET ip = '10.6.6.6' WHERE action = 'E_1'")
    assert cli(["--dsn", db.conninfo(), "verify"]) == 1
    out = capsys.readouterr().out
    assert "TAMPERED at batch 1, event" in out and "changed" in out
    conn.close()


def test_a_forged_retirement_record_does_not_excuse_a_deletion(sealed):
    conn, ids = sealed
    conn.execute(
        "INSERT INTO audit.retired (partition, range_from, range_to, row_count, content_sha256, "
        "manifest_sha256) SELECT partition::text, range_from, range_to, 0, '', '' "
        "FROM audit.event_partition WHERE range_from <= now() AND range_to > now()"
    )
    _tamper(conn, "DELETE FROM audit.event WHERE id = %s", [ids[2]])
    result = verify(conn)
    assert (result.batch, result.event_id) == (1, ids[2])


def test_concurrent_writers_and_seals_cover_every_event_exactly_once(db, roles):
    import random
    import threading

    stop = threading.Event()
    errors: list[BaseException] = []

    def writer(seed: int) -> None:
        rnd = random.Random(seed)
        try:
            with psycopg.connect(db.conninfo(roles["app"])) as conn:
                for i in range(60):
                    for _ in range(rnd.randint(1, 3)):
                        conn.execute("SELECT audit.log_event(%s)", [f"W{seed}_{i}"])
                    if rnd.random() < 0.2:
                        conn.rollback()
                    else:
                        conn.commit()
        except BaseException as exc:  # surfaced below
            errors.append(exc)

    def sealer() -> None:
        try:
            with db.connect() as conn:
                while not stop.is_set():
                    conn.execute("SELECT audit.seal()")
        except BaseException as exc:
            errors.append(exc)

    writers = [threading.Thread(target=writer, args=(n,)) for n in range(3)]
    sealing = threading.Thread(target=sealer)
    sealing.start()
    for t in writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    sealing.join()
    assert errors == []
    with db.connect() as conn:
        seal(conn)
        sealed = conn.execute(
            "SELECT u, count(*) FROM audit.seal, unnest(event_ids) u GROUP BY u"
        ).fetchall()
        assert all(n == 1 for _, n in sealed)
        all_ids = {r[0] for r in conn.execute("SELECT id FROM audit.event")}
        assert {u for u, _ in sealed} == all_ids
        assert verify(conn).ok


def test_the_pg_audit_command_carries_seal_and_verify(db, capsys):
    from pg_audit_schema.cli import main as pg_audit

    with db.connect() as conn:
        _events(conn, 2)
    assert pg_audit(["--dsn", db.conninfo(), "seal"]) == 0
    assert pg_audit(["verify", "--dsn", db.conninfo()]) == 0
    assert "ok: 1 batches, 2 events intact" in capsys.readouterr().out


def _replace_verification_with_liars(conn: psycopg.Connection) -> None:
    """What a superuser can do inside the database: every SQL check says intact."""
    conn.execute(
        "CREATE OR REPLACE FUNCTION audit.verify_batch(target_batch bigint, "
        "retirements audit.retirement_proof[]) RETURNS TABLE (batch bigint, event_id bigint, "
        "problem text) LANGUAGE sql AS $$ SELECT NULL::bigint, NULL::bigint, NULL::text "
        "WHERE false $$"
    )
    conn.execute(
        "CREATE OR REPLACE FUNCTION audit.verify_batch(target_batch bigint) RETURNS TABLE "
        "(batch bigint, event_id bigint, problem text) LANGUAGE sql AS $$ "
        "SELECT NULL::bigint, NULL::bigint, NULL::text WHERE false $$"
    )
    # The canonical text of each event becomes whatever was sealed for it.
    conn.execute(
        "CREATE TABLE public.sealed_text AS SELECT id, audit.event_canonical(e) AS t "
        "FROM audit.event e"
    )
    conn.execute(
        "CREATE OR REPLACE FUNCTION audit.event_canonical(e audit.event) RETURNS text "
        "LANGUAGE sql STABLE AS $$ SELECT t FROM public.sealed_text WHERE id = e.id $$"
    )


def test_replaced_verification_functions_do_not_fool_pg_audit_verify(sealed, capsys):
    conn, ids = sealed
    kept = newest_seal(conn).hash
    _replace_verification_with_liars(conn)
    _tamper(conn, "UPDATE audit.event SET actor_name = 'mallory' WHERE id = %s", [ids[5]])
    _tamper(conn, "DELETE FROM audit.event WHERE id = %s", [ids[9]])
    # The database's own verification now lies ...
    assert conn.execute("SELECT ok FROM audit.verify(%s)", [kept]).fetchone()[0] is True
    # ... the client's does not: it recomputes from raw values.
    result = verify(conn, expect=kept)
    assert (result.ok, result.batch, result.event_id) == (False, 2, ids[5])
    assert result.problem == f"event {ids[5]} was changed"
    assert cli(["--dsn", conn.info.dsn, "verify", "--expect", kept]) == 1
    assert f"TAMPERED at batch 2, event {ids[5]}" in capsys.readouterr().out


def test_a_rewritten_seal_hash_function_does_not_fool_pg_audit_verify(sealed):
    conn, ids = sealed
    kept = newest_seal(conn).hash
    # Rebuild the chain with a different hash function: internally consistent,
    # and the SQL verify agrees with it, but the hashes are not the documented ones.
    conn.execute(
        "CREATE OR REPLACE FUNCTION audit.seal_hash(batch bigint, from_xid bigint, to_xid bigint, "
        "event_count bigint, event_ids bigint[], event_times timestamptz[], row_hashes bytea, "
        "prev_hash bytea) RETURNS bytea LANGUAGE sql AS $$ SELECT sha256(prev_hash || "
        "convert_to(batch::text, 'UTF8')) $$"
    )
    _tamper(conn, "DELETE FROM audit.seal")
    _tamper(conn, "DELETE FROM audit.event WHERE id = %s", [ids[0]])
    assert seal(conn) == 1
    assert conn.execute("SELECT ok FROM audit.verify()").fetchone()[0] is True
    result = verify(conn)
    assert (result.ok, result.batch) == (False, 1) and "rewritten" in result.problem
    assert not verify(conn, expect=kept).ok


def test_format_2_events_are_sealed_and_their_old_row_key_is_verified(db):
    with db.connect() as conn:
        moved = conn.execute(
            "INSERT INTO audit.event (action, table_name, row_key, old_row_key, old_values, "
            "new_values) VALUES ('UPDATE', 'public.item', '{\"id\": \"2\"}', '{\"id\": \"1\"}', "
            '\'{"id": "1"}\', \'{"id": "2"}\') RETURNING id'
        ).fetchone()[0]
        _events(conn, 2)
        seal(conn)
        assert verify(conn).ok
        _tamper(conn, 'UPDATE audit.event SET old_row_key = \'{"id": "9"}\' WHERE id = %s', [moved])
        result = verify(conn)
        assert (result.event_id, result.problem) == (moved, f"event {moved} was changed")
        _tamper(conn, "UPDATE audit.event SET old_row_key = NULL WHERE id = %s", [moved])
        assert verify(conn).event_id == moved  # back to format 1: still not what was sealed
        assert conn.execute("SELECT event_id FROM audit.verify()").fetchone()[0] == moved


def test_the_application_login_seals_with_a_hash_file_as_the_docs_say(db, roles, tmp_path, capsys):
    from pg_audit_schema.cli import main as pg_audit

    head = tmp_path / "head"
    with db.connect(roles["app"]) as app:
        _events(app, 2)
    # docs/retention.md: the cron runs pg-audit seal as the application's login.
    assert pg_audit(["--dsn", db.conninfo(roles["app"]), "seal", "--hash-file", str(head)]) == 0
    batch, digest = head.read_text().split()
    assert capsys.readouterr().out.split() == [batch, digest]
    assert pg_audit(["seal", "--no-seal", "--dsn", db.conninfo(roles["app"])]) == 0
    assert capsys.readouterr().out.split() == [batch, digest]
    with db.connect(roles["app"]) as app:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            app.execute("SELECT count(*) FROM audit.seal")  # still only the head
    assert (
        pg_audit(["--dsn", db.conninfo(roles["reader"]), "verify", "--expect-file", str(head)]) == 0
    )
    with db.connect(roles["stranger"]) as stranger:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            stranger.execute("SELECT * FROM audit.newest_seal()")


def test_bad_expected_hashes_are_one_line_usage_errors(sealed, tmp_path, capsys):
    from pg_audit_schema._common import EXIT_ERROR

    conn, _ = sealed
    dsn = conn.info.dsn
    empty = tmp_path / "empty.txt"
    empty.write_text("\n")
    cases = [
        (["verify", "--expect-file", str(tmp_path / "missing.txt")], "cannot read --expect-file"),
        (["verify", "--expect-file", str(tmp_path)], "cannot read --expect-file"),
        (["verify", "--expect-file", str(empty)], "holds no seal hash"),
        (["verify", "--expect", "not-a-hash"], "--expect holds no seal hash"),
    ]
    for argv, message in cases:
        assert cli(["--dsn", dsn, *argv]) == EXIT_ERROR, argv
        captured = capsys.readouterr()
        assert captured.out == ""
        lines = captured.err.splitlines()
        assert len(lines) == 1 and lines[0].startswith("pg-audit: ") and message in lines[0]
    assert EXIT_ERROR != 1  # 1 means tampered


def test_verify_reports_progress_per_batch(sealed):
    conn, _ = sealed
    seen: list[tuple[int, int]] = []
    assert verify(conn, progress=lambda done, total: seen.append((done, total))).ok
    assert seen == [(1, 3), (2, 3), (3, 3)]


def test_seal_and_verify_show_progress_on_a_terminal_only(sealed):
    import os
    import pty
    import subprocess
    import sys

    conn, _ = sealed
    command = [sys.executable, "-m", "pg_audit_schema.cli", "--dsn", conn.info.dsn]

    def on_terminal(*argv: str) -> str:
        leader, follower = pty.openpty()
        proc = subprocess.Popen(
            [*command, *argv], stdin=follower, stdout=follower, stderr=follower, close_fds=True
        )
        os.close(follower)
        chunks = []
        while True:
            try:
                chunk = os.read(leader, 4096)
            except OSError:
                break
            if not chunk:
                break
            chunks.append(chunk)
        assert proc.wait(timeout=60) == 0
        os.close(leader)
        return b"".join(chunks).decode("utf-8", "replace")

    assert "verifying seal batches" in on_terminal("verify")
    assert "sealing finished events" in on_terminal("seal")
    piped = subprocess.run([*command, "verify"], capture_output=True, text=True, check=True)
    assert piped.stderr == "" and piped.stdout.startswith("ok: 3 batches")


def test_verify_inside_a_callers_transaction_leaves_its_settings_alone(sealed):
    conn, _ = sealed
    conn.autocommit = False
    conn.execute("SET TimeZone = 'Asia/Kathmandu'")
    conn.execute("SET search_path = public")
    assert verify(conn).ok
    assert conn.execute(
        "SELECT current_setting('TimeZone'), current_setting('search_path')"
    ).fetchone() == ("Asia/Kathmandu", "public")
    conn.rollback()
