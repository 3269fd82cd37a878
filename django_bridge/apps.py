from __future__ import annotations

from django.apps import AppConfig


class DjangoBridgeConfig(AppConfig):
    name = "django_bridge"
    label = "django_bridge"
    verbose_name = "Audit trail"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.db.models.signals import post_migrate, pre_migrate

        from . import checks, handlers  # noqa: F401  (registers checks and receivers)
        from .install import install_without_migrations, refuse_unapplying, track_without_migrations

        handlers.connect()
        pre_migrate.connect(refuse_unapplying, sender=self, dispatch_uid="pg_audit_refuse_unapply")
        pre_migrate.connect(install_without_migrations, sender=self,
                            dispatch_uid="pg_audit_install_without_migrations")
        post_migrate.connect(track_without_migrations, sender=self,
                             dispatch_uid="pg_audit_track_without_migrations")
