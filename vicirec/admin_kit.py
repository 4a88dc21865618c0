"""The admin kit: the pieces every app's admin shares, so each admin page behaves the same way.

A catalog of hundreds of millions of rows must never be counted in full (BoundedPaginator), and what is
part of the record (recordings, custody and access logs, deletion certificates, histories) is shown but
never edited from the admin (ReadOnlyAdmin, ReadOnlyHistoryMixin). The kit is generic: it imports no app
of this project, so any app's admin can use it without depending on another app.
"""

from __future__ import annotations

from typing import Any

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.paginator import Paginator
from django.db.models import QuerySet
from django.http import Http404, HttpRequest, HttpResponse
from django.utils.functional import cached_property


class BoundedPaginator(Paginator):
    """Counts at most CAP rows (SELECT COUNT(*) FROM (… LIMIT CAP)); pages beyond that need a narrower search.

    Both the count and a page read only the primary keys first: the count is of the filtered keys, with no
    ordering and none of the list's computed columns (an expression per row, such as "held", would be
    evaluated for every counted row), and a page is its keys in the list's order, then the full rows of
    just those keys (the list's columns, joins and annotations, in the same order). Reading keys alone lets
    the database answer from an index that holds them instead of fetching every matching row to sort it."""

    CAP = 10_000

    @cached_property
    def count(self) -> int:
        items = self.object_list
        if _keys_first(items):
            return items.order_by().values("pk")[: self.CAP].count()
        return items[: self.CAP].count()

    def page(self, number: Any) -> Any:
        items = self.object_list
        if not _keys_first(items):
            return super().page(number)
        number = self.validate_number(number)
        bottom = (number - 1) * self.per_page
        top = bottom + self.per_page
        if top + self.orphans >= self.count:
            top = self.count
        keys = list(items.values_list("pk", flat=True)[bottom:top])
        return self._get_page(items.filter(pk__in=keys), number, self)


def _keys_first(items: Any) -> bool:
    """A queryset whose rows are one per primary key (no DISTINCT, not sliced): it can be read keys first."""
    return isinstance(items, QuerySet) and not items.query.distinct and not items.query.is_sliced


def require_valid_pk(model: Any, object_id: str) -> None:
    """404 for an object id the model's primary key cannot be (e.g. letters for a number), not a server error."""
    try:
        model._meta.pk.to_python(unquote(object_id))
    except ValidationError:
        raise Http404("No such object.")


class ReadOnlyHistoryMixin:
    """History pages for reading only: no revert button, and a POST to a history page is refused."""

    model: Any

    def revert_disabled(self, request: HttpRequest, obj: Any = None) -> bool:
        return True

    def history_view(self, request: HttpRequest, object_id: str, extra_context: Any = None) -> HttpResponse:
        require_valid_pk(self.model, object_id)
        return super().history_view(request, object_id, extra_context)  # type: ignore[misc]

    def history_form_view(
        self, request: HttpRequest, object_id: str, version_id: str, extra_context: Any = None
    ) -> HttpResponse:
        require_valid_pk(self.model, object_id)
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
