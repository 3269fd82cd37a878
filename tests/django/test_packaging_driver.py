"""Installing the bridge never brings psycopg 3 (Django would switch a psycopg2 project to it)."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib")
PYPROJECT = Path(__file__).resolve().parent.parent.parent / "pyproject.toml"


def test_the_django_extra_and_the_package_bring_no_driver() -> None:
    project = tomllib.loads(PYPROJECT.read_text())["project"]
    extras = project["optional-dependencies"]
    for requirement in [*project["dependencies"], *extras["django"]]:
        assert "psycopg" not in requirement and "pg-audit[" not in requirement, requirement
    assert any(r.startswith("psycopg[binary]") for r in extras["cli"])
