"""The canonical form computed in Python from raw column values is byte for byte
the one audit.event_canonical() gives, for every value a column can hold; format
2 exactly for events that carry old_row_key."""

from __future__ import annotations

import psycopg
import pytest
from psycopg import sql
from psycopg.types.json import Jsonb

from pg_audit_schema import canonical

# Control characters, quote, backslash, DEL, non-ASCII, and what looks like a separator.
NASTY = "".join(chr(c) for c in range(1, 32)) + '"\\/\x7f é ✓ 😀 ", "x'

EVENTS = [
    # (action, occurred_at, ip, detail, row_key, old_row_key, new_values)
    ("PLAIN", "now()", None, None, None, None, None),
    ("NASTY", "now()", "'203.0.113.9'", "%(nasty_json)s", None, None, None),
    (
        "NUMBERS",
        "'2026-03-04 05:06:07.120000+00'",
        "'2001:db8::1'",
        """'{"n": 12345678901234567890.1234567891, "p": 12.50, "e": 1e2, "neg": -0.0}'""",
        """'{"id": 42}'""",
        None,
        """'{"price": "12.50", "qty": null, "nested": {"bb": [1, "2"], "a": true}}'""",
    ),
    ("WHOLE_SECOND", "'2026-03-04 05:06:07+00'", "'10.0.0.0/8'", None, None, None, None),
    ("MAPPED", "'2026-03-04 05:06:07.000001+00'", "'::ffff:1.2.3.4'", None, None, None, None),
    ("FAR", "'12345-06-07 08:09:10.5+00'", None, "'\"scalar string\"'", None, None, None),
    ("ANCIENT", "'0044-03-15 12:00:00.5+00 BC'", None, "'null'", None, None, None),
    ("ENDLESS", "'infinity'", None, "'[]'", None, None, None),
    (
        "UPDATE",
        "now()",
        "'192.0.2.1/32'",
        None,
        """'{"id": "43"}'""",
        """'{"id": "42"}'""",
        """'{"id": "43"}'""",
    ),
    ("KEY_NUMBER", "now()", None, None, """'{"id": 7}'""", """'{"id": 6.0}'""", None),
]


def _insert_all(conn: psycopg.Connection) -> None:
    nasty_json = sql.Literal(Jsonb({"k" + NASTY: NASTY, "k": [NASTY]}))
    for action, when, ip, detail, row_key, old_row_key, new_values in EVENTS:
        detail_sql = (
            nasty_json.as_string(conn) if detail == "%(nasty_json)s" else (detail or "NULL")
        )
        conn.execute(
            f"INSERT INTO audit.event (action, occurred_at, tx_started_at, ip, detail, row_key, "
            f"old_row_key, new_values, actor_name, user_agent, table_name) VALUES "
            f"(%s, {when}, {when}, {ip or 'NULL'}, {detail_sql}, {row_key or 'NULL'}, "
            f"{old_row_key or 'NULL'}, {new_values or 'NULL'}, %s, %s, %s)",
            [action, NASTY, "tab\there", 'public."odd ""name"""'],
        )


def _raw_and_sql(conn: psycopg.Connection) -> list[tuple[tuple[object, ...], str]]:
    with conn.transaction():
        canonical.pin_session(conn)
        cur = canonical.raw_text_cursor(conn.cursor())
        rows = cur.execute(
            f"SELECT {', '.join(canonical.COLUMNS)}, audit.event_canonical(e) "
            "FROM audit.event e ORDER BY id"
        ).fetchall()
    return [(tuple(r[:-1]), r[-1]) for r in rows]


@pytest.mark.parametrize("zone", ["UTC", "America/St_Johns", "Asia/Kathmandu"])
def test_python_canonical_is_the_sql_canonical_for_hostile_values(db, zone):
    with db.connect() as conn:
        conn.execute(f"SET TimeZone = '{zone}'")
        conn.execute("SET DateStyle = 'German, DMY'")
        _insert_all(conn)
        rows = _raw_and_sql(conn)
        assert len(rows) == len(EVENTS)
        for raw, sql_text in rows:
            assert canonical.canonical(raw) == sql_text
        # The SQL function itself does not depend on the session's settings either.
        again = dict(conn.execute("SELECT id, audit.event_canonical(e) FROM audit.event e"))
        assert sorted(again.values()) == sorted(t for _, t in rows)


def test_format_2_exactly_when_old_row_key_is_set_and_format_1_is_unchanged(db):
    with db.connect() as conn:
        _insert_all(conn)
        rows = conn.execute(
            "SELECT e.action, e.old_row_key, audit.event_canonical(e)::jsonb, "
            "audit.event_canonical(e) = pg_catalog.jsonb_build_array(1, e.id, "
            "e.occurred_at AT TIME ZONE 'UTC', e.tx_started_at AT TIME ZONE 'UTC', e.action, "
            "e.outcome, e.actor_id, e.actor_name, e.ip::text, e.user_agent, e.request_id, "
            "e.db_role, e.application_name, e.table_name, e.row_key, e.old_values, "
            "e.new_values, e.detail, e.txid::text)::text "
            "FROM audit.event e ORDER BY id"
        ).fetchall()
    for action, old_row_key, array, same_as_format_1 in rows:
        if old_row_key is None:
            # Byte for byte the format-1 text of step 0004: older seals still verify.
            assert array[0] == 1 and len(array) == len(canonical.FIELDS_1) and same_as_format_1
        else:
            assert array[0] == 2 and len(array) == len(canonical.FIELDS_2), action
            assert array[-1] == old_row_key and array[1:-1] == array[1:19]


def test_python_seal_hash_is_the_sql_seal_hash(db):
    with db.connect() as conn:
        _insert_all(conn)
        conn.execute("SELECT audit.seal()")
        with conn.transaction():
            canonical.pin_session(conn)
            cur = canonical.raw_text_cursor(conn.cursor())
            s = cur.execute(
                "SELECT batch, from_xid, to_xid, event_count, event_ids, event_times, "
                "row_hashes, prev_hash, hash FROM audit.seal WHERE batch = 1"
            ).fetchone()
            raw = _raw_and_sql(conn)
    times = [canonical.json_timestamp(t) for t in s[5]]
    assert canonical.seal_hash(*s[:5], times, s[6], s[7]) == s[8]
    assert b"".join(canonical.row_hash(canonical.canonical(r)) for r, _ in raw) == s[6]


def test_json_helpers_follow_postgresql():
    assert canonical.json_string('a"b\\c\x01\x1f\x7f\n') == '"a\\"b\\\\c\\u0001\\u001f\x7f\\n"'
    assert canonical.json_timestamp("2026-01-02 03:04:05.120000+00") == "2026-01-02T03:04:05.12"
    assert canonical.json_timestamp("0044-03-15 12:00:00+00 BC") == "0044-03-15T12:00:00 BC"
    assert canonical.json_timestamp("infinity") == "infinity"
    assert canonical.inet_text("::ffff:1.2.3.4") == "::ffff:1.2.3.4/128"
    assert canonical.instant("0044-03-15T12:00:00 BC") is None


def test_the_documented_example_is_what_the_code_computes(db):
    from pathlib import Path

    docs = (Path(__file__).parent.parent / "docs" / "retention.md").read_text(encoding="utf-8")
    with db.connect() as conn:
        conn.execute(
            "INSERT INTO audit.event (id, occurred_at, tx_started_at, action, actor_id, "
            "actor_name, ip, db_role, application_name, table_name, row_key, old_values, "
            "new_values, old_row_key, txid) VALUES (42, '2026-11-27 06:19:55.32+00', "
            "'2026-11-27 06:19:55.300118+00', 'UPDATE', '7', 'alice', '203.0.113.9', "
            "'shop_app', NULL, 'public.shop_product', '{\"id\": \"2\"}', "
            '\'{"id": "1", "price": "12.50"}\', \'{"id": "2", "price": "13.00"}\', '
            "'{\"id\": \"1\"}', '1234')"
        )
        ((raw, text),) = _raw_and_sql(conn)
    assert canonical.canonical(raw) == text
    assert f"\n    {text}\n" in docs
    assert canonical.row_hash(text).hex() in docs
