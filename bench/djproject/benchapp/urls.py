from __future__ import annotations

from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone

from .models import Item


def write_one(request: HttpRequest) -> HttpResponse:
    item = Item.objects.create(qty=1, name="from a request", updated_at=timezone.now())
    return HttpResponse(str(item.pk))


urlpatterns = [path("write/", write_one)]
