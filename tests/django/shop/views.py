"""Views exercising every way a request can write (the middleware test matrix)."""

from __future__ import annotations

from django.contrib.auth import get_user_model
from django.db import connection, transaction
from django.http import HttpRequest, HttpResponse

from .models import Order, Product


def home(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


def _name(request: HttpRequest) -> str:
    return request.GET.get("name", "thing")


def create(request: HttpRequest) -> HttpResponse:
    """Autocommit (or ATOMIC_REQUESTS when the test turns it on)."""
    product = Product.objects.create(name=_name(request), price=1)
    return HttpResponse(str(product.pk))


def atomic_savepoint(request: HttpRequest) -> HttpResponse:
    """A savepoint that rolls back (taking its settings with it), then more writes."""
    with transaction.atomic():
        try:
            with transaction.atomic():
                Product.objects.create(name=_name(request) + "-rolled-back")
                raise RuntimeError("roll back the savepoint")
        except RuntimeError:
            pass
        product = Product.objects.create(name=_name(request) + "-kept")
    return HttpResponse(str(product.pk))


def raw_cursor(request: HttpRequest) -> HttpResponse:
    with connection.cursor() as cursor:
        cursor.execute("INSERT INTO shop_product (name, price, secret_note) VALUES (%s, 5, '')",
                       [_name(request)])
        # No parameters: the % is literal and must stay so.
        cursor.execute("UPDATE shop_product SET name = name || '%' WHERE name = 'nothing-matches'")
    return HttpResponse("ok")


def bulk(request: HttpRequest) -> HttpResponse:
    Product.objects.bulk_create([Product(name=f"{_name(request)}-{i}") for i in range(3)])
    return HttpResponse("ok")


def queryset_update(request: HttpRequest) -> HttpResponse:
    count = Product.objects.filter(name__startswith=_name(request)).update(price=99)
    return HttpResponse(str(count))


def select_for_update(request: HttpRequest) -> HttpResponse:
    with transaction.atomic():
        product = Product.objects.select_for_update().get(name=_name(request))
        Order.objects.create(product=product, quantity=2)
    return HttpResponse("ok")


def late_user(request: HttpRequest) -> HttpResponse:
    """Authenticates in the view, as DRF does, between two writes of one transaction."""
    with transaction.atomic():
        Product.objects.create(name=_name(request) + "-before")
        request.user = get_user_model().objects.get(username=request.GET["as"])
        Product.objects.create(name=_name(request) + "-after")
    return HttpResponse("ok")


def fail_after_write(request: HttpRequest) -> HttpResponse:
    Product.objects.create(name=_name(request))
    raise RuntimeError("the view fails after writing")


def fail_after_login_attempt(request: HttpRequest) -> HttpResponse:
    """Authenticates (a failed login writes LOGIN_FAILED), then fails."""
    from django.contrib.auth import authenticate

    authenticate(request, username=request.POST["username"], password=request.POST["password"])
    raise RuntimeError("the view fails after the login attempt")


async def async_create(request: HttpRequest) -> HttpResponse:
    product = await Product.objects.acreate(name=_name(request), price=3)
    return HttpResponse(str(product.pk))
