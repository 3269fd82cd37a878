"""Off-host copy: logical replication of the log and its seals to a second server.

Two servers of the test's own (not the shared fixture server), because the
subscriber must reach the publisher over libpq, here through its Unix socket.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import psycopg
import pytest

from pg_audit_schema import install
from pg_audit_schema.embedded import Server, temporary_server
from pg_audit_schema.seal import newest_seal, seal, verify

PUBLICATION_SQL = (
    "CREATE PUBLICATION pg_audit_pub FOR TABLE audit.event, audit.seal, audit.retired "
    "WITH (publish = 'insert', publish_via_partition_root = true)"
)


def _db(server: Server, name: str) -> psycopg.Connection:
    with psycopg.connect(server.dsn(), autocommit=True) as conn:
        conn.execute(f"CREATE DATABASE {name}")
    conn = psycopg.connect(server.dsn(name), autocommit=True)
    install(conn)
    return conn


@pytest.fixture(scope="module")
def pair() -> Iterator[tuple[psycopg.Connection, psycopg.Connection]]:
    with (
        temporary_server(port=55441) as primary_server,
        temporary_server(port=55442) as replica_server,
    ):
        primary = _db(primary_server, "app")
        replica = _db(replica_server, "offhost")
        primary.execute("SELECT audit.log_event('BEFORE_PUBLICATION', '1', 'alice')")
        seal(primary)
        primary.execute(PUBLICATION_SQL)
        # PostgreSQL 16+ applies changes as the table's owner unless told otherwise,
        # and audit_owner may not insert into the log: the subscription's owner does.
        options = " WITH (run_as_owner = true)" if replica.info.server_version >= 160000 else ""
        replica.execute(
            "CREATE SUBSCRIPTION pg_audit_sub CONNECTION %s PUBLICATION pg_audit_pub".replace(
                "%s", "'" + primary_server.dsn("app") + "'"
            ) + options
        )
        try:
            yield primary, replica
        finally:
            replica.execute("DROP SUBSCRIPTION pg_audit_sub")
            primary.close()
            replica.close()


def _caught_up(primary: psycopg.Connection, replica: psycopg.Connection) -> None:
    # Counted by seal and by the newest event id: the primary may have retired partitions.
    want = primary.execute(
        "SELECT (SELECT max(id) FROM audit.event), (SELECT count(*) FROM audit.seal)"
    ).fetchone()
    for _ in range(600):
        if (
            replica.execute(
                "SELECT (SELECT max(id) FROM audit.event), (SELECT count(*) FROM audit.seal)"
            ).fetchone()
            == want
        ):
            return
        time.sleep(0.1)
    raise AssertionError(f"replica did not catch up: primary has {want}")


def _snapshot(conn: psycopg.Connection) -> list[tuple[int, str]]:
    return conn.execute(
        "SELECT id, audit.event_canonical(e) FROM audit.event e ORDER BY id"
    ).fetchall()


def test_replica_receives_every_event_and_seal_and_verifies(pair):
    primary, replica = pair
    with primary.transaction():
        for i in range(50):
            primary.execute("SELECT audit.set_context(actor_id => %s, ip => '192.0.2.1')", [str(i)])
            primary.execute(
                "SELECT audit.log_event('REPLICATED', detail => %s::jsonb)", [f'{{"i": {i}}}']
            )
    primary.execute("CREATE TABLE public.item (id int PRIMARY KEY, name text)")
    primary.execute("SELECT audit.enable_tracking('public.item')")
    primary.execute("INSERT INTO public.item SELECT g, 'n' || g FROM generate_series(1, 20) g")
    primary.execute("UPDATE public.item SET name = 'changed' WHERE id <= 5")
    seal(primary)
    _caught_up(primary, replica)
    assert _snapshot(replica) == _snapshot(primary)
    result = verify(replica, expect=newest_seal(primary).hash)
    assert result.ok, result.describe()
    assert result.events == primary.execute("SELECT count(*) FROM audit.event").fetchone()[0]


def test_retention_on_the_primary_leaves_the_replica_whole(pair, tmp_path):
    from pg_audit_schema.retention import archive, maintain

    primary, replica = pair
    primary.execute(
        "INSERT INTO audit.event (action, occurred_at) "
        "VALUES ('ANCIENT', now() - interval '3 years')"
    )
    maintain(primary)
    done = archive(primary, tmp_path)
    assert [a.row_count for a in done] == [1] and done[0].retired
    seal(primary)
    _caught_up(primary, replica)
    assert (
        replica.execute("SELECT count(*) FROM audit.event WHERE action = 'ANCIENT'").fetchone()[0]
        == 1
    )
    assert replica.execute("SELECT count(*) FROM audit.retired").fetchone()[0] == 1
    assert verify(replica).ok and verify(primary).ok


def test_replica_is_append_only_even_for_its_superuser(pair):
    primary, replica = pair
    _caught_up(primary, replica)
    for statement in [
        "DELETE FROM audit.event",
        "UPDATE audit.event SET actor_id = 'x'",
        "TRUNCATE audit.event",
        "DELETE FROM audit.seal",
    ]:
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            replica.execute(statement)
    with replica.transaction():
        replica.execute("SET LOCAL session_replication_role = replica")
        with pytest.raises(psycopg.errors.InsufficientPrivilege):
            replica.execute("DELETE FROM audit.event")


def test_the_replica_refuses_to_seal_on_its_own(pair):
    _, replica = pair
    with pytest.raises(psycopg.errors.ObjectNotInPrerequisiteState, match="seal on the publisher"):
        replica.execute("SELECT audit.seal()")


def test_tampering_on_the_replica_is_found_by_verify_there(pair):
    primary, replica = pair
    primary.execute("SELECT audit.log_event('LATER')")
    seal(primary)
    _caught_up(primary, replica)
    victim = replica.execute(
        "SELECT max(id) FROM audit.event WHERE action = 'REPLICATED'"
    ).fetchone()[0]
    parts = [r[0] for r in replica.execute("SELECT partition::text FROM audit.event_partition")]
    with replica.transaction():
        for p in parts:
            replica.execute(f"ALTER TABLE {p} DISABLE TRIGGER audit_append_only")
        replica.execute("UPDATE audit.event SET actor_id = 'mallory' WHERE id = %s", [victim])
        for p in parts:
            replica.execute(f"ALTER TABLE {p} ENABLE ALWAYS TRIGGER audit_append_only")
    result = verify(replica)
    assert not result.ok and result.event_id == victim
    assert verify(primary).ok  # the copy is independent of the original
