"""The attack suite of the trust boundary: one module per threat.

| threat | module |
|---|---|
| application code running with the log's rights | test_attack_app_code.py |
| forged database verbs | test_attack_forged_verbs.py |
| capture switched off or bent by the table owner | test_attack_capture_switched_off.py |
| DDL that changes or hides tracked data | test_attack_ddl.py |
| a member of audit_owner (a misconfiguration) | test_attack_owner_member.py |
| the guard standing in the way of legitimate use | test_attack_legitimate_use.py |
| bad input aborting the application's write | test_attack_bad_input.py |
| installing without a superuser | test_attack_managed_install.py |
| verification fooled | test_attack_verification.py (references) |

Every module shares one database (``module_db``): each test starts from an
empty public schema and no schema of its own, and compares the log before and
after its attack (attack_support.watch), so earlier tests' events do not
matter. Attacks that would wreck the database if they succeeded use a fresh
one (``db``).
"""

from __future__ import annotations

import pytest
from attack_support import fresh_schemas, grant_create_on_database
from pgtest import Database


@pytest.fixture(scope="module")
def shared(module_db: Database, roles: dict[str, str]) -> Database:
    """The module's database; every test role may create schemas in it (an
    application that owns a schema of its own is common)."""
    grant_create_on_database(module_db, *roles.values())
    return module_db


@pytest.fixture
def fresh(shared: Database, roles: dict[str, str]) -> Database:
    """The module's database with an empty public schema and no test schema
    (and the right to create schemas again: DROP OWNED takes it away)."""
    fresh_schemas(shared, roles)
    grant_create_on_database(shared, *roles.values())
    return shared
