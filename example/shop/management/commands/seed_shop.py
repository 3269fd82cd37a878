"""Create the shop's admin user and a few products, once."""

from __future__ import annotations

import os
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from django_bridge.context import audit_context
from shop.models import Order, Product

PRODUCTS = [
    ("MUG-01", "Mug", Decimal("12.50"), 30),
    ("TEE-01", "T-shirt", Decimal("20.00"), 0),
    ("CAP-01", "Cap", Decimal("15.00"), 8),
]


class Command(BaseCommand):
    help = "Create the admin user (SHOP_ADMIN_USER / SHOP_ADMIN_PASSWORD) and sample products."

    def handle(self, *args: Any, **options: Any) -> None:
        user = os.environ.get("SHOP_ADMIN_USER", "alice")
        password = os.environ.get("SHOP_ADMIN_PASSWORD")
        if not password:
            raise CommandError("set SHOP_ADMIN_PASSWORD to the admin user's password")
        with audit_context("seed_shop", reason="manage.py seed_shop"), transaction.atomic():
            if not get_user_model().objects.filter(username=user).exists():
                get_user_model().objects.create_superuser(user, f"{user}@example.com", password)
            for sku, name, price, stock in PRODUCTS:
                Product.objects.get_or_create(
                    sku=sku, defaults={"name": name, "price": price, "stock": stock}
                )
            if not Order.objects.exists():
                Order.objects.create(
                    product=Product.objects.get(sku="MUG-01"), quantity=2,
                    customer_email="bob@example.com", card_token="tok_4242_secret",
                )
