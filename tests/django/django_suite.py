"""Runs parts of Django's own test suite with the bridge installed, on PostgreSQL.

    python tests/django/django_suite.py DJANGO_SOURCE/tests auth_tests admin_views ...

DJANGO_SOURCE is the source of the installed Django version (its sdist has the
tests). The server: PG_AUDIT_TEST_DSN (a superuser DSN), else an embedded
PostgreSQL started here. DJANGO_SUITE_PARALLEL: worker processes (2). Exits
with runtests.py's status; .ci/run calls it.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from contextlib import ExitStack
from pathlib import Path

HERE = Path(__file__).resolve().parent


def main() -> int:
    tests_dir, labels = Path(sys.argv[1]).resolve(), sys.argv[2:]
    with ExitStack() as stack:
        dsn = os.environ.get("PG_AUDIT_TEST_DSN")
        if not dsn:
            from pg_audit_schema.embedded import temporary_server

            bindir = os.environ.get("PG_AUDIT_PG_BINDIR")
            dsn = stack.enter_context(temporary_server(bindir and Path(bindir), port=55433)).dsn()
        env = {**os.environ, "PG_AUDIT_DJANGO_DSN": dsn,
               "PYTHONPATH": os.pathsep.join([str(HERE), str(HERE.parent.parent)])}
        started = time.monotonic()
        result = subprocess.run(
            [sys.executable, str(tests_dir / "runtests.py"), "--settings=django_suite_settings",
             "--noinput", f"--parallel={os.environ.get('DJANGO_SUITE_PARALLEL', '2')}", *labels],
            cwd=tests_dir, env=env)
        print(f"Django's own tests ({' '.join(labels)}): {time.monotonic() - started:.0f} s")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
