"""The admin site: the desk's pages need a verified second factor from those who must have one."""

from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest

from vicirec.signin.forms import SigninForm
from vicirec.signin.policy import is_verified, two_factor_required


class AdminSite(admin.AdminSite):
    login_form = SigninForm
    login_template = "admin/signin/login.html"

    def has_permission(self, request: HttpRequest) -> bool:
        """Staff as usual; superusers and Legal approvers only in a session opened with an authenticator code."""
        if not super().has_permission(request):
            return False
        return not two_factor_required(request.user) or is_verified(request.user)
