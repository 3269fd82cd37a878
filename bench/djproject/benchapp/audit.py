"""auditrum discovers <app>/audit.py and registers what it finds here (its documented way)."""

from auditrum.integrations.django.tracking import register

from .models import Item

register(Item)
