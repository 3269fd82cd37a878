"""The schema has one source, sql/, and every runner sees the same steps."""

from __future__ import annotations

import re
import subprocess
import sys
import zipfile
from pathlib import Path

from pg_audit_schema.installer import available_steps, sql_dir

ROOT = Path(__file__).resolve().parent.parent


def test_psql_runner_applies_every_step_in_order() -> None:
    text = (ROOT / "sql" / "install.sql").read_text()
    included = re.findall(r"^\\ir (\d{4}_\w+\.sql)$", text, flags=re.M)
    assert included == [step.path.name for step in available_steps()]
    for step in available_steps():
        guard = (
            f"WHERE version = {step.version}) AS pending \\gset\n"
            f"\\if :pending\n\\ir {step.path.name}"
        )
        assert guard in text, f"install.sql does not guard {step.path.name} by its version"


def test_every_step_records_its_own_version_and_runs_as_the_owner() -> None:
    for step in available_steps():
        text = step.text()
        assert f"VALUES ({step.version}, '{step.name}');" in text, step.path.name
        # Objects are made as audit_owner (or audit_appender), the version row as
        # the installer.
        switches = re.findall(r"^(SET LOCAL ROLE audit_\w+|RESET ROLE);", text, flags=re.M)
        assert switches[0] == "SET LOCAL ROLE audit_owner", step.path.name
        assert switches[-1] == "RESET ROLE", step.path.name
        assert not re.search(r"^\s*(BEGIN|COMMIT|ROLLBACK)\s*;", text, flags=re.M | re.I), (
            f"{step.path.name}: the runner owns the transaction"
        )


def test_the_wheel_ships_the_same_sql_files(tmp_path: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w", str(tmp_path),
         str(ROOT)],
        check=True, capture_output=True,
    )
    (wheel,) = tmp_path.glob("*.whl")
    with zipfile.ZipFile(wheel) as archive:
        shipped = {
            Path(name).name: archive.read(name)
            for name in archive.namelist()
            if name.startswith("pg_audit_schema/sql/")
        }
    source = {path.name: path.read_bytes() for path in sql_dir().glob("*.sql")}
    assert shipped == source
