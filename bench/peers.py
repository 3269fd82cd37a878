"""One virtualenv per Django library under bench/.venv-peers/, each from PyPI at its
current release, all on the Django and psycopg of the project's own venv."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

from .common import BENCH_DIR, ROOT, log

VENV_ROOT = BENCH_DIR / ".venv-peers"

# PyPI distribution of each library (django_bridge: this checkout, editable).
PACKAGES: dict[str, list[str]] = {
    "none": [],
    "django_bridge": ["-e", f"{ROOT}[django]"],
    "pghistory": ["django-pghistory"],
    "auditlog": ["django-auditlog"],
    "auditrum": ["auditrum[django]"],
}
DISTRIBUTIONS = {
    "django_bridge": "pg-audit",
    "pghistory": "django-pghistory",
    "auditlog": "django-auditlog",
    "auditrum": "auditrum",
}


def base_requirements() -> list[str]:
    return [f"Django=={version('Django')}", f"psycopg[binary]=={version('psycopg')}"]


def _key(library: str) -> str:
    # The bridge's venv follows this checkout's declared dependencies.
    project = (ROOT / "pyproject.toml").read_text() if library == "django_bridge" else ""
    return hashlib.sha256(
        json.dumps([base_requirements(), PACKAGES[library], project]).encode()
    ).hexdigest()


def python_for(library: str) -> Path:
    return VENV_ROOT / library / "bin" / "python"


def ensure(libraries: list[str]) -> dict[str, Path]:
    """Create missing venvs (in parallel: it is mostly download time); reuse current ones."""
    pending: dict[str, subprocess.Popen[bytes]] = {}
    for lib in libraries:
        venv = VENV_ROOT / lib
        marker = venv / ".bench-key"
        if marker.exists() and marker.read_text() == _key(lib):
            continue
        log(f"creating venv for {lib}")
        subprocess.run([sys.executable, "-m", "venv", "--clear", str(venv)], check=True)
        pending[lib] = subprocess.Popen(
            [
                str(venv / "bin" / "pip"),
                "install",
                "--quiet",
                "--disable-pip-version-check",
                *base_requirements(),
                *PACKAGES[lib],
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
    for lib, proc in pending.items():
        output, _ = proc.communicate()
        if proc.returncode != 0:
            raise RuntimeError(f"pip install for {lib} failed:\n{output.decode()[-2000:]}")
        (VENV_ROOT / lib / ".bench-key").write_text(_key(lib))
    return {lib: python_for(lib) for lib in libraries}


def versions(python: Path) -> dict[str, str]:
    out = subprocess.run(
        [str(python), "-m", "pip", "list", "--format=json", "--disable-pip-version-check"],
        capture_output=True,
        text=True,
        check=True,
    )
    wanted = {"django", "psycopg", *DISTRIBUTIONS.values(), "django-pgtrigger"}
    return {p["name"]: p["version"] for p in json.loads(out.stdout) if p["name"].lower() in wanted}
