"""The admin kit: the pieces every app's admin shares, so each admin page behaves the same way.

A catalog of hundreds of millions of rows must never be counted in full (BoundedPaginator), and what is
part of the record (recordings, custody and access logs, deletion certificates, histories) is shown but
never edited from the admin (ReadOnlyAdmin, ReadOnlyHistoryMixin). The kit is generic: it imports no app
of this project, so any app's admin can use it without depending on another app.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.core.exceptions import PermissionDenied
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.utils.functional import cached_property


class BoundedPaginator(Paginator):
    """Counts at most CAP rows (SELECT COUNT(*) FROM (… LIMIT CAP)); pages beyond that need a narrower search."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        return self.object_list[: self.CAP].count()


class ReadOnlyHistoryMixin:
    """History pages for reading only: no revert button, and a POST to a history page is refused."""

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        if request.method == "POST":
            raise PermissionDenied("History is read-only.")
        return super().history_form_view(request, object_id, version_id, extra_context)  # type: ignore[misc]


class ReadOnlyAdmin(admin.ModelAdmin):
    """A model admin that lists and shows rows but never adds, changes or deletes them, for anybody."""

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False
