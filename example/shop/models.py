"""A tiny shop whose tables are audited by PostgreSQL."""

from __future__ import annotations

from django.db import models

from django_bridge.tracking import tracked


class Product(models.Model):
    sku = models.CharField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    price = models.DecimalField(max_digits=10, decimal_places=2)
    stock = models.PositiveIntegerField(default=0)

    class Meta:
        ordering = ["sku"]
        # Every INSERT, UPDATE, DELETE and TRUNCATE is recorded by PostgreSQL.
        triggers = tracked()

    def __str__(self) -> str:
        return f"{self.name} ({self.sku})"


class Order(models.Model):
    product = models.ForeignKey(Product, on_delete=models.PROTECT)
    quantity = models.PositiveIntegerField(default=1)
    customer_email = models.EmailField()
    status = models.CharField(max_length=16, default="new")
    # A payment token: it must never reach the audit log (excluded below).
    card_token = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        triggers = tracked(exclude=["card_token"])

    def __str__(self) -> str:
        return f"order {self.pk}: {self.quantity} x {self.product.sku}"
