"""The docs say what the code does, where that is cheap to check: the commands
and flags of docs/cli.md exist, its version examples are the current version,
every page is listed in the README and every relative link resolves, the
uninstall steps work, and the files a release needs are there."""

from __future__ import annotations

import argparse
import re
from pathlib import Path
from typing import Any

import pytest

from pg_audit_schema.cli import build_parser
from pg_audit_schema.installer import available_steps, latest_version

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


def _subparsers(parser: argparse.ArgumentParser) -> dict[str, argparse.ArgumentParser]:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return dict(action.choices)
    return {}


def _flags(parser: argparse.ArgumentParser) -> set[str]:
    flags = set(parser._option_string_actions)
    for sub in _subparsers(parser).values():
        flags |= _flags(sub)
    return flags


def test_every_command_and_flag_in_cli_md_exists() -> None:
    parser = build_parser()
    commands = _subparsers(parser)
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    for command in commands:
        assert f"pg-audit {command}" in text or f"`{command}`" in text, f"{command} undocumented"
    checked = 0
    for section in re.split(r"^## ", text, flags=re.M)[1:]:
        heading = section.splitlines()[0]
        names = [n for n in re.findall(r"[a-z]+", heading) if n in commands]
        if not names:
            continue
        # Flags of other commands the section mentions (`pg-audit archive --dir DIR`).
        names += [n for n in re.findall(r"pg-audit ([a-z]+)", section) if n in commands]
        known = set(parser._option_string_actions)
        for name in names:
            known |= _flags(commands[name])
        for flag in set(re.findall(r"(?<![\w-])--[a-z][a-z-]*", section)):
            assert flag in known, f"docs/cli.md, section {heading!r}: {flag} does not exist"
            checked += 1
        for line in re.findall(r"^\s+pg-audit (?:--dsn \S+ |--dsn \"[^\"]*\" )?([a-z]+)", section,
                               flags=re.M):
            assert line in commands, f"docs/cli.md: pg-audit {line} does not exist"
    assert checked > 15


def test_cli_md_shows_the_current_schema_version() -> None:
    text = (DOCS / "cli.md").read_text(encoding="utf-8")
    found = re.findall(r"(?:to|at) version (\d+)|version (\d+) installed", text)
    versions = {int(a or b) for a, b in found}
    assert versions == {latest_version()}, versions
    steps = ", ".join(f"{s.version:04d}_{s.name}" for s in available_steps())
    assert f"to version {latest_version()} ({steps})" in text


def test_readme_lists_every_doc_and_every_relative_link_resolves() -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    for page in DOCS.glob("*.md"):
        assert f"](docs/{page.name})" in readme, f"README does not list docs/{page.name}"
    for source in [ROOT / "README.md", ROOT / "CHANGELOG.md", *DOCS.glob("*.md")]:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", source.read_text("utf-8")):
            if "://" in target:
                continue
            assert (source.parent / target).exists(), f"{source.name}: broken link {target}"


def test_no_doc_speaks_of_the_issue_or_of_removed_options() -> None:
    for page in [ROOT / "README.md", *DOCS.glob("*.md")]:
        text = page.read_text(encoding="utf-8")
        assert not re.search(r"\bthe issue\b", text), f"{page.name} speaks of 'the issue'"
        assert "--fake" not in text, f"{page.name} describes --fake"


def test_license_is_the_mit_license_pyproject_names() -> None:
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'license = "MIT"' in pyproject
    assert (ROOT / "LICENSE").read_text(encoding="utf-8").startswith("MIT License")
    changelog = (ROOT / "CHANGELOG.md").read_text(encoding="utf-8")
    assert f"schema version {latest_version()}" in changelog
    for step in available_steps():
        assert f"**{step.version} `{step.name}`**" in changelog, step


def test_uninstall_steps_remove_the_schema_and_leave_tracked_tables_working(
    db: Any, roles: dict[str, str]
) -> None:
    text = (DOCS / "uninstall.md").read_text(encoding="utf-8")
    blocks = re.findall(r"```sql\n(.*?)```", text, flags=re.S)
    drop_schema = re.sub(r"^\s+", "", blocks[0], flags=re.M)
    assert drop_schema.strip() == "DROP SCHEMA audit CASCADE;"
    with db.connect(roles["app"]) as app:
        app.execute("CREATE TABLE t (id int PRIMARY KEY)")
        app.execute("SELECT audit.enable_tracking('t')")
        app.execute("INSERT INTO t VALUES (1)")
    with db.connect() as su:
        su.execute(drop_schema)
        assert su.execute(
            "SELECT count(*) FROM pg_namespace WHERE nspname = 'audit'"
        ).fetchone() == (0,)
        assert su.execute(
            "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'audit%'"
        ).fetchone() == (0,)
        assert su.execute(
            "SELECT count(*) FROM pg_trigger WHERE tgrelid = 'public.t'::regclass"
        ).fetchone() == (0,)
    with db.connect(roles["app"]) as app:
        app.execute("INSERT INTO t VALUES (2)")
        assert app.execute("SELECT count(*) FROM t").fetchone() == (2,)
    roles_step = blocks[1].strip()
    assert roles_step.startswith("DROP ROLE IF EXISTS") and "audit_owner" in roles_step


@pytest.mark.parametrize("page", ["dba-guide.md", "demo.md"])
def test_the_outside_the_application_recipe_is_the_one_the_demo_checks(page: str) -> None:
    from pg_audit_schema.demo import OUTSIDE_THE_APP

    text = " ".join((DOCS / page).read_text(encoding="utf-8").split())
    assert " ".join(OUTSIDE_THE_APP.rstrip(";").split()) in text


def test_every_index_the_dba_guide_names_exists(db: Any) -> None:
    """The plans of "Indexes and plans" name indexes of audit.event and of its
    November 2026 partition (bench/plans.py): each must exist on the schema as
    installed, so a dropped or renamed index shows up here."""
    text = (DOCS / "dba-guide.md").read_text(encoding="utf-8")
    named = set(re.findall(r"\bevent_\w*(?:_idx\d*|_pkey)\b", text))
    assert {"event_action_idx", "event_auth_idx", "event_privilege_idx"} <= named
    with db.connect() as su:
        su.execute(
            "CREATE TABLE audit.event_2026_11 PARTITION OF audit.event "
            "FOR VALUES FROM ('2026-11-01') TO ('2026-12-01')"
        )
        existing = {
            r[0]
            for r in su.execute(
                "SELECT relname FROM pg_class WHERE relnamespace = 'audit'::regnamespace "
                "AND relkind IN ('i', 'I')"
            ).fetchall()
        }
        # The guide says which partition index stands for which index of audit.event.
        parents = dict(
            su.execute(
                "SELECT c.relname, p.relname FROM pg_inherits h "
                "JOIN pg_class c ON c.oid = h.inhrelid JOIN pg_class p ON p.oid = h.inhparent "
                "WHERE c.relname LIKE 'event_2026_11%' AND c.relkind = 'i'"
            ).fetchall()
        )
    assert sorted(named - existing) == []
    assert parents["event_2026_11_action_occurred_at_idx"] == "event_action_idx"
    assert parents["event_2026_11_occurred_at_idx1"] == "event_auth_idx"
    assert parents["event_2026_11_occurred_at_idx2"] == "event_privilege_idx"
