"""The test project with every app's migrations turned off, as pytest-django's
--nomigrations does (its DisableMigrations mapping)."""

from __future__ import annotations

from .settings import *  # noqa: F403


class _DisableMigrations(dict):  # type: ignore[type-arg]
    def __contains__(self, item: object) -> bool:
        return True

    def __getitem__(self, item: str) -> None:
        return None


MIGRATION_MODULES = _DisableMigrations()
