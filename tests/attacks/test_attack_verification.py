"""Threat 9: verification fooled.

Attacks on the seals and on verify live with the seals and retention tests;
this module names them, by threat, and fails when one is renamed or removed,
so the reference stays true.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

TESTS = Path(__file__).resolve().parents[1]

COVERED_ELSEWHERE = {
    "a changed, deleted or inserted event in a sealed range": [
        "test_seal.py::test_changed_value_is_reported_with_batch_and_event",
        "test_seal.py::test_changed_detail_key_order_or_spacing_cannot_hide",
        "test_seal.py::test_deleted_row_is_reported",
        "test_seal.py::test_inserted_row_in_a_sealed_range_is_reported",
        "test_seal.py::test_format_2_events_are_sealed_and_their_old_row_key_is_verified",
    ],
    "rewritten, reordered, deleted or cut-back seals": [
        "test_seal.py::test_rewritten_seal_is_reported",
        "test_seal.py::test_reordered_seals_are_reported",
        "test_seal.py::test_deleted_seal_in_the_middle_is_reported",
        "test_seal.py::test_full_rewrite_is_caught_only_by_the_external_hash",
        "test_seal.py::test_cut_back_chain_is_caught_by_the_external_hash",
    ],
    "verification functions replaced inside the database checked": [
        "test_seal.py::test_replaced_verification_functions_do_not_fool_pg_audit_verify",
        "test_seal.py::test_a_rewritten_seal_hash_function_does_not_fool_pg_audit_verify",
    ],
    "forged retirement rows excusing deleted events": [
        "test_seal.py::test_a_forged_retirement_record_does_not_excuse_a_deletion",
        "test_retention.py::test_an_unbounded_retirement_naming_no_partition_excuses_nothing",
        "test_retention.py::"
        "test_a_monthly_retirement_whose_counts_the_seals_contradict_excuses_nothing",
        "test_retention.py::test_a_retirement_without_its_retention_event_excuses_nothing",
        "test_retention.py::"
        "test_a_forged_retirement_of_a_partition_still_in_the_kept_months_is_detected",
        "test_retention.py::test_a_retention_event_moved_out_of_the_range_still_betrays_its_date",
        "test_retention.py::test_a_retention_event_dated_in_the_future_proves_nothing",
        "test_retention.py::test_a_retention_event_dated_after_later_seals_proves_nothing",
        "test_retention.py::test_a_superuser_forging_a_whole_retirement_of_an_old_month_is_not_detected",
    ],
    "rewritten archives": [
        "test_retention.py::test_a_consistently_rewritten_archive_fails_against_the_seal",
        "test_retention.py::test_a_rewritten_unretired_archive_fails_against_the_row_seals",
        "test_retention.py::test_archive_verify_finds_a_changed_or_missing_line",
    ],
    "retention policy changed unseen": [
        "test_retention.py::test_every_change_of_the_retention_policy_is_an_event",
        "test_attack_owner_member.py::"
        "test_retention_policy_changes_by_an_audit_owner_member_are_recorded",
    ],
    "sealing as the role the docs name": [
        "test_seal.py::test_the_application_login_seals_with_a_hash_file_as_the_docs_say",
        "test_seal.py::test_seal_and_verify_privileges",
    ],
}


def defined_tests(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {node.name for node in tree.body
            if isinstance(node, ast.FunctionDef) and node.name.startswith("test_")}


@pytest.mark.parametrize("threat", sorted(COVERED_ELSEWHERE))
def test_each_attack_on_verification_has_its_test(threat: str) -> None:
    for reference in COVERED_ELSEWHERE[threat]:
        module, name = reference.split("::")
        found = next(TESTS.rglob(module))
        assert name in defined_tests(found), f"{reference} is gone: update this list"
