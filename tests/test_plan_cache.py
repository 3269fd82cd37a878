"""The plan-cache trap: PL/pgSQL keeps the plan of a trigger's query from its first
calls, so single-row UPDATEs could leave a nested loop over the transition tables in
place for a later bulk UPDATE (measured: 20k rows, 39 s instead of 0.13 s).

Checked on the plans themselves, not on timings: auto_explain reports every plan the
capture runs, and none of the INSERT INTO audit.event plans may hold a Nested Loop.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from pgtest import Database

ROWS = 20_000


def capture_plans(notices: list[str]) -> list[str]:
    return [n for n in notices if "INSERT INTO audit.event" in n and "'UPDATE'" in n]


def test_bulk_update_after_single_row_updates_is_paired_without_nested_loops(db: Database) -> None:
    with db.connect() as conn:
        conn.execute("CREATE TABLE public.item (id int PRIMARY KEY, qty int, note text)")
        conn.execute("INSERT INTO item SELECT g, 0, 'n' || g FROM generate_series(1, %s) g", [ROWS])
        conn.execute("ANALYZE item")
        conn.execute("SELECT audit.enable_tracking('public.item')")

        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = notice")
        conn.execute("SET client_min_messages = notice")

        # Enough single-row statements for PL/pgSQL to settle on a generic plan.
        for i in range(1, 8):
            conn.execute("UPDATE item SET qty = qty + 1 WHERE id = %s", [i])
        conn.execute("UPDATE item SET qty = qty + 1, note = 'bulk-' || id")
        # And a bulk key change: old and new images must still be paired.
        conn.execute("UPDATE item SET id = id + %s, note = note || '*'", [ROWS])

        plans = capture_plans(notices)
        assert len(plans) == 9, f"auto_explain reported {len(plans)} capture plans"
        for plan in plans:
            assert "Nested Loop" not in plan, plan

        conn.execute("RESET client_min_messages")
        singles, bulk, moved = conn.execute(
            """
            SELECT count(*) FILTER (WHERE new_values = jsonb_build_object('qty', '1')
                                      AND old_values = jsonb_build_object('qty', '0')
                                      AND (row_key->>'id')::int BETWEEN 1 AND 7),
                   count(DISTINCT row_key) FILTER (
                       WHERE new_values->>'note' = 'bulk-' || (row_key->>'id')
                         AND old_values->>'note' = 'n' || (row_key->>'id')
                         AND (new_values->>'qty')::int = (old_values->>'qty')::int + 1),
                   count(DISTINCT row_key) FILTER (
                       WHERE (row_key->>'id')::int = (old_values->>'id')::int + %s
                         AND new_values->>'note' = 'bulk-' || (old_values->>'id') || '*'
                         AND old_values->>'note' = 'bulk-' || (old_values->>'id'))
            FROM audit.event WHERE action = 'UPDATE' AND table_name = 'public.item'
            """,
            [ROWS],
        ).fetchone() or (0, 0, 0)
        (total,) = conn.execute(
            "SELECT count(*) FROM audit.event WHERE action = 'UPDATE'"
        ).fetchone() or (0,)
    assert (singles, bulk, moved) == (7, ROWS, ROWS)
    assert total == 7 + 2 * ROWS


def test_auto_explain_sees_a_nested_loop_when_there_is_one(db: Database) -> None:
    # Proves the check above can fail: a join of the transition tables forced
    # into a nested loop shows up in the same notices.
    with db.connect() as conn:
        conn.execute("CREATE TABLE public.item (id int PRIMARY KEY, qty int)")
        conn.execute("INSERT INTO item SELECT g, 0 FROM generate_series(1, 50) g")
        conn.execute(
            "CREATE FUNCTION public.joiner() RETURNS trigger LANGUAGE plpgsql AS $$BEGIN "
            "PERFORM count(*) FROM o JOIN n ON o.id = n.id; RETURN NULL; END$$"
        )
        conn.execute("CREATE TRIGGER joiner AFTER UPDATE ON item REFERENCING OLD TABLE AS o "
                     "NEW TABLE AS n FOR EACH STATEMENT EXECUTE FUNCTION public.joiner()")
        notices: list[str] = []
        conn.add_notice_handler(lambda d: notices.append(d.message_primary or ""))
        conn.execute("LOAD 'auto_explain'")
        conn.execute("SET auto_explain.log_min_duration = 0")
        conn.execute("SET auto_explain.log_nested_statements = on")
        conn.execute("SET auto_explain.log_level = notice")
        conn.execute("SET enable_hashjoin = off")
        conn.execute("SET enable_mergejoin = off")
        conn.execute("UPDATE item SET qty = 1")
    assert any("JOIN n" in n and "Nested Loop" in n for n in notices), notices

