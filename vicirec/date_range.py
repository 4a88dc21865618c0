"""A date-range filter for the admin's lists: the admin's presets (today, past 7 days, this month, this
year) plus a "from" and a "to" date, each a whole day in the desk's time zone (VICIREC_TIME_ZONE).

``?start_time__from=2026-03-01&start_time__to=2026-03-31`` keeps the rows from 1 March 00:00 up to, not
including, 1 April 00:00 local time: the "to" day is included whole. Either end may be left out. A date
that cannot be read sends the admin's usual "invalid filter" answer. Generic: it knows no app.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import Any

from django import forms
from django.contrib import admin
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.widgets import AdminSplitDateTime
from django.db.models import QuerySet
from django.http import HttpRequest
from django.utils import timezone


def day_start(day: date) -> datetime:
    """00:00 of the day in the current time zone, as an aware datetime."""
    return timezone.make_aware(datetime.combine(day, time.min), timezone.get_current_timezone())


def day_bounds(first: date | None, last: date | None) -> tuple[datetime | None, datetime | None]:
    """[start of `first`, start of the day after `last`): whole days, either end open."""
    return (day_start(first) if first else None, day_start(last + timedelta(days=1)) if last else None)


class DateRangeFilter(admin.DateFieldListFilter):
    """The presets' links drop a range (they remove every ``<field>__`` parameter) and the range's form
    drops the presets, so one of them is in force at a time."""

    template = "admin/vicirec/date_range_filter.html"

    def __init__(
        self, field: Any, request: HttpRequest, params: dict[str, Any], model: Any, model_admin: Any, field_path: str
    ) -> None:
        self.from_param, self.to_param = f"{field_path}__from", f"{field_path}__to"
        self.range_values = {}
        for name in (self.from_param, self.to_param):
            value = params.pop(name, None)
            self.range_values[name] = (value[-1] if isinstance(value, list) else value or "").strip()
        super().__init__(field, request, params, model, model_admin, field_path)
        mine = {self.from_param, self.to_param, *super().expected_parameters(), "p", "e"}
        self.kept_params = [(k, v) for k, values in request.GET.lists() if k not in mine for v in values]
        for name, value in self.range_values.items():
            if value:
                self.used_parameters[name] = value

    def expected_parameters(self) -> list[str]:
        return [*super().expected_parameters(), self.from_param, self.to_param]

    def _date(self, name: str) -> date | None:
        value = self.range_values[name]
        if not value:
            return None
        try:
            return date.fromisoformat(value)
        except ValueError as exc:
            raise IncorrectLookupParameters(f"{name}: {value!r} is not a date (YYYY-MM-DD)") from exc

    def queryset(self, request: HttpRequest, queryset: QuerySet[Any]) -> QuerySet[Any]:
        presets = self.used_parameters
        self.used_parameters = {k: v for k, v in presets.items() if k not in self.range_values}
        try:
            queryset = super().queryset(request, queryset)
        finally:
            self.used_parameters = presets
        start, end = day_bounds(self._date(self.from_param), self._date(self.to_param))
        if start:
            queryset = queryset.filter(**{f"{self.field_path}__gte": start})
        if end:
            queryset = queryset.filter(**{f"{self.field_path}__lt": end})
        return queryset

    @property
    def from_value(self) -> str:
        return self.range_values[self.from_param]

    @property
    def to_value(self) -> str:
        return self.range_values[self.to_param]

    @property
    def zone_name(self) -> str:
        return str(timezone.get_current_timezone_name())


class DayOrMomentField(forms.SplitDateTimeField):
    """A date and an optional time (the admin's two boxes). A date alone is that day's midnight in the
    desk's time zone: as a case's "calls from" the whole day is in; as its "calls until" the model reads a
    midnight as the whole day too (holds.models.until_end)."""

    widget = AdminSplitDateTime

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("required", False)
        kwargs.setdefault("help_text", "A date alone covers that whole day; add a time to stop at that moment.")
        super().__init__(require_all_fields=False, **kwargs)
        self.fields[1].required = False  # the time

    def compress(self, data_list: Any) -> datetime | None:
        if data_list and data_list[0] not in self.empty_values and data_list[1] in self.empty_values:
            data_list = [data_list[0], time.min]
        return super().compress(data_list)
