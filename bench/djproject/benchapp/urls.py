from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.urls import path
from django.utils import timezone

from .models import Item


# A write view for a logged-in user, as audited views are: every variant loads
# the session and the user. (Without login_required the unaudited baseline
# never loads them, while every audit library must, to know who acted: that
# difference, not auditing, made the request 3-4.7x in an earlier run.)
@login_required
def write_one(request: HttpRequest) -> HttpResponse:
    item = Item.objects.create(qty=1, name="from a request", updated_at=timezone.now())
    return HttpResponse(str(item.pk))


urlpatterns = [path("write/", write_one)]
