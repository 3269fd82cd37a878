from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import path
from shop import views

urlpatterns = [
    path("admin/", admin.site.urls),
    path("login/", auth_views.LoginView.as_view(), name="login"),
    path("logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("", views.home, name="home"),
    path("w/create/", views.create),
    path("w/savepoint/", views.atomic_savepoint),
    path("w/cursor/", views.raw_cursor),
    path("w/bulk/", views.bulk),
    path("w/update/", views.queryset_update),
    path("w/lock/", views.select_for_update),
    path("w/late-user/", views.late_user),
    path("w/fail/", views.fail_after_write),
    path("w/async/", views.async_create),
    path("w/fail-login/", views.fail_after_login_attempt),
]
