from __future__ import annotations

from django.contrib import admin

from django_bridge.admin import AuditHistoryMixin

from .models import Order, Product


@admin.register(Product)
class ProductAdmin(AuditHistoryMixin, admin.ModelAdmin):  # Audit trail button
    list_display = ["sku", "name", "price", "stock"]


@admin.register(Order)
class OrderAdmin(AuditHistoryMixin, admin.ModelAdmin):
    list_display = ["id", "product", "quantity", "customer_email", "status"]
    exclude = ["card_token"]
