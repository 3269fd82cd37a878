from __future__ import annotations

from django.db import models

from django_bridge.tracking import tracked


class Product(models.Model):
    name = models.CharField(max_length=100)
    price = models.IntegerField(default=0)
    secret_note = models.TextField(blank=True, default="")

    class Meta:
        triggers = tracked(exclude=["secret_note"])

    def __str__(self) -> str:
        return self.name


class Order(models.Model):
    product = models.ForeignKey(Product, on_delete=models.CASCADE)
    quantity = models.IntegerField(default=1)

    class Meta:
        triggers = tracked()

    def __str__(self) -> str:
        return f"order {self.pk}"
