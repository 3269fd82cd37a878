from __future__ import annotations

from django.contrib import admin

from django_bridge.admin import AuditHistoryMixin

from .models import Order, Product


@admin.register(Product, Order)
class ShopAdmin(AuditHistoryMixin, admin.ModelAdmin):  # type: ignore[type-arg]
    pass
