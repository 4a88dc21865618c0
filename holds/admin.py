"""Cases and legal holds in the admin. Holds are placed and released only through holds.actions
(place_hold / release_hold), which write the history, check the release permission and set the bucket's
own legal hold; nothing here edits a hold's row directly."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Max, Min, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from simple_history.admin import SimpleHistoryAdmin

from holds.actions import CASE_FIELDS, change_case, place_hold, release_hold
from holds.guards import narrowing, proposed, snapshot
from holds.models import Case, LegalHold
from recordings import desk
from recordings.admin import (
    EXPORT_PERMISSION,
    HOLD_PERMISSION,
    EvidenceExportMixin,
    PlaceHoldForm,
    place_hold_from_post,
)
from recordings.export import evidence_recordings
from recordings.lib import phones
from recordings.models import Recording
from recordings.pipeline.erasure import blocked_by_hold
from vicirec.actors import Actor
from vicirec.admin_kit import ReadOnlyHistoryMixin
from vicirec.date_range import DayOrMomentField

RELEASE_PERMISSION = "holds.release_legalhold"


class ListField(forms.CharField):
    """A JSON list edited as text: values separated by commas, spaces or new lines."""

    def __init__(self, *, integers: bool = False, **kwargs: Any) -> None:
        self.integers = integers
        kwargs.setdefault("required", False)
        kwargs.setdefault("widget", forms.Textarea(attrs={"rows": 2, "cols": 60}))
        super().__init__(**kwargs)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(str(v) for v in value)
        return value

    def to_python(self, value: Any) -> list[Any]:  # type: ignore[override]
        if isinstance(value, list):
            return value
        items = [v for v in re.split(r"[\s,;]+", value or "") if v]
        if self.integers:
            bad = [v for v in items if not v.isdigit()]
            if bad:
                raise ValidationError(f"Not a number: {', '.join(bad[:5])}")
            return [int(v) for v in items]
        return items


class PhoneListField(ListField):
    """Phone numbers as people write them (``(773) 555-7219``, ``+1 773-555-7219``), one per line or separated
    by commas or semicolons, stored in the catalog's form (``7735557219``). A value already stored on the case
    is kept exactly as it is (an older entry is never rewritten, so a held case never loses a value); a new
    entry that is not a complete phone number is refused with a message."""

    kept: frozenset[str] = frozenset()  # the case's stored values (set by CaseForm)

    def prepare_value(self, value: Any) -> Any:
        if isinstance(value, list):
            return ", ".join(phones.display(str(v), settings.VICIREC_PHONE_REGION) for v in value)
        return value

    def to_python(self, value: Any) -> list[Any]:  # type: ignore[override]
        if isinstance(value, list):
            return value
        found: list[str] = []
        refused: list[str] = []
        for entry in phones.split_entries(value):
            if entry in self.kept:
                found.append(entry)
                continue
            try:
                found.append(phones.catalog_form(entry, settings.VICIREC_PHONE_REGION))
            except phones.PhoneError as exc:
                refused.append(str(exc))
        if refused:
            raise ValidationError(
                f"Not saved: {'; '.join(refused[:5])}. Write each number in full, e.g. (773) 555-7219."
            )
        return list(dict.fromkeys(found))


class CaseForm(forms.ModelForm):
    phone_numbers = PhoneListField(
        help_text="Phone numbers as you would write them, e.g. (773) 555-7219 or +1 773 555 7219; one per line or "
        "separated by commas. Stored as VICIdial stores them (7735557219)."
    )
    lead_ids = ListField(integers=True, help_text="VICIdial lead ids.")
    agents = ListField(help_text="VICIdial user ids of agents.")
    calls_from = DayOrMomentField(label="Calls from")
    calls_until = DayOrMomentField(label="Calls until")

    class Meta:
        model = Case
        fields = [
            "name",
            "external_reference",
            "description",
            "phone_numbers",
            "lead_ids",
            "agents",
            "campaigns",
            "calls_from",
            "calls_until",
            "recordings",
        ]

    release_reason = forms.CharField(
        required=False,
        widget=forms.Textarea(attrs={"rows": 2, "cols": 60}),
        help_text="Only when a change narrows a case under an active hold: why that part is released.",
    )
    user: Any = None  # set by CaseAdmin.get_form: whose permission a narrowing change needs

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.fields["phone_numbers"].kept = frozenset(str(v) for v in self.instance.phone_numbers or [])

    def clean(self) -> dict[str, Any]:
        """A change that narrows a case under an active hold is a release of that part: refused without the
        release permission, and asks for a release reason with it (holds.actions.change_case enforces both)."""
        data = super().clean()
        if self.instance.pk is None or not self.instance.holds.filter(released_at__isnull=True).exists():
            return data
        old = snapshot(Case.objects.get(pk=self.instance.pk))
        changes = narrowing(old, proposed(old, {k: v for k, v in data.items() if k in old}))
        if not changes:
            return data
        if self.user is None or not self.user.has_perm(RELEASE_PERMISSION):
            raise ValidationError(
                "This case is under an active legal hold, so what it covers can only grow. Refused: "
                f"{'; '.join(changes)}. Removing recordings or narrowing the criteria releases part of the hold, "
                "which only a Legal approver (the 'Can release legal holds' permission) may do."
            )
        if not (data.get("release_reason") or "").strip():
            self.add_error(
                "release_reason",
                f"This change releases part of the active hold ({'; '.join(changes)}): give the reason for it.",
            )
        return data


def case_preview(case: Case) -> dict[str, Any]:
    """What a case covers now: count, bytes, call date span, already deleted, already held."""
    matching = Recording.objects.filter(case.covered())
    totals = matching.aggregate(
        n=Count("pk"),
        bytes=Coalesce(Sum(Coalesce("stored_size", "original_size")), 0),
        first=Min("start_time"),
        last=Max("start_time"),
        expired=Count("pk", filter=Q(state=Recording.State.EXPIRED)),
    )
    totals["held"] = matching.held().count() if totals["n"] else 0
    return totals


@admin.register(Case)
class CaseAdmin(EvidenceExportMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin):
    form = CaseForm
    list_display = ("name", "external_reference", "created_at", "active_holds")
    search_fields = ("name", "external_reference")
    raw_id_fields = ("recordings",)
    filter_horizontal = ("campaigns",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(n_active_holds=Count("holds", filter=Q(holds__released_at__isnull=True)))
        )

    @admin.display(description="active holds", ordering="n_active_holds")
    def active_holds(self, obj: Case) -> int:
        return getattr(obj, "n_active_holds", 0)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a case is part of the record; close it by releasing its holds

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def save_model(self, request: HttpRequest, obj: Case, form: Any, change: bool) -> None:
        if change:  # through the domain: a narrowing change is a partial release (permission, reason, history)
            data = form.cleaned_data
            fields = {k: data[k] for k in CASE_FIELDS if k in data}
            parts = change_case(
                obj,
                actor=Actor.person(request.user),
                reason=data.get("release_reason") or "",
                recordings=data.get("recordings", []),
                campaigns=data.get("campaigns", []),
                **fields,
            )
            for part in parts:
                self.message_user(request, f"Part of {part.hold} released: {part.change}.", messages.WARNING)
            return
        obj.created_by = request.user  # type: ignore[assignment]
        obj._change_reason = "case opened in the admin"  # type: ignore[attr-defined]
        super().save_model(request, obj, form, change)

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        if not change:  # a change already set recordings and campaigns through change_case
            super().save_related(request, form, formsets, change)

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/hold/", wrap(self.hold_view), name="holds_case_hold"),
            *super().get_urls(),  # EvidenceExportMixin adds <id>/export/
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        case = Case.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if case is not None and self.has_view_permission(request, case):
            extra_context = {
                **(extra_context or {}),
                "preview": case_preview(case),
                "case_holds": list(case.holds.order_by("-placed_at")[:20]),
                "recordings_url": reverse("admin:recordings_recording_changelist") + f"?case={case.pk}",
                "can_hold": request.user.has_perm(HOLD_PERMISSION),
                "hold_form": PlaceHoldForm(),
                "hold_url": reverse("admin:holds_case_hold", args=[case.pk]),
                "can_export": request.user.has_perm(EXPORT_PERMISSION),
                "export_url": reverse("admin:holds_case_export", args=[case.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def hold_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        case = get_object_or_404(Case, pk=object_id)
        return place_hold_from_post(self, request, reverse("admin:holds_case_change", args=[case.pk]), case=case)

    def export_recordings(self, obj: Case) -> QuerySet:
        return evidence_recordings(case=obj)

    def export_scope(self, obj: Case) -> str:
        return f"case {obj}"


class HoldForm(forms.ModelForm):
    """Placing a hold: one scope, its target, and a reason. Saved through holds.actions.place_hold."""

    class Meta:
        model = LegalHold
        fields = ["scope", "case", "campaign", "recordings", "reason"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        scope = data.get("scope")
        if not (data.get("reason") or "").strip():
            self.add_error("reason", "A legal hold needs a reason.")
        if scope == LegalHold.Scope.CASE and not data.get("case"):
            self.add_error("case", "A case hold names its case.")
        if scope == LegalHold.Scope.CAMPAIGN and not data.get("campaign"):
            self.add_error("campaign", "A campaign hold names its campaign.")
        if scope == LegalHold.Scope.RECORDINGS and not data.get("recordings"):
            self.add_error("recordings", "Pick the recordings this hold covers.")
        return data


class ActiveFilter(admin.SimpleListFilter):
    title = "status"
    parameter_name = "status"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("active", "Active"), ("released", "Released")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if self.value() == "active":
            return queryset.filter(released_at__isnull=True)
        if self.value() == "released":
            return queryset.filter(released_at__isnull=False)
        return queryset


class ReleaseForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea(attrs={"rows": 3, "cols": 60}), help_text="Why it is released.")


HOLD_PAGE_ROWS = 50
SORT_IN_MEMORY = 5000  # up to this many covered recordings, their ids are sorted here, not by the database


def hold_page(request: HttpRequest, hold: LegalHold, covered: QuerySet, n: int) -> dict[str, Any]:
    """One page (HOLD_PAGE_ROWS, newest recording first) of the recordings a hold covers, for its page.

    A small set (a case's few calls) is fetched whole as ids and sorted here, so the database never walks
    the catalog in id order looking for rare matches; a large one (a campaign) is read in id order, where
    matches are dense. Either way the page's rows come with their campaign in one query."""
    raw = request.GET.get("rp", "1")
    page = int(raw) if raw.isdigit() and int(raw) > 0 else 1
    start = (page - 1) * HOLD_PAGE_ROWS
    if n <= SORT_IN_MEMORY:
        ids = sorted(covered.order_by().values_list("pk", flat=True), reverse=True)[start : start + HOLD_PAGE_ROWS]
    else:
        ids = list(covered.order_by("-pk").values_list("pk", flat=True)[start : start + HOLD_PAGE_ROWS])
    rows = list(
        Recording.objects.filter(pk__in=ids)
        .select_related("campaign")
        .annotate(agent_full_name=desk.agent_name())
        .order_by("-pk")
    )
    for row in rows:
        row.phone_display = phones.display(row.phone_number, settings.VICIREC_PHONE_REGION)
    return {
        "hold_rows": rows,
        "hold_page": page,
        "hold_pages": max((n + HOLD_PAGE_ROWS - 1) // HOLD_PAGE_ROWS, 1),
        "hold_next": page + 1 if start + HOLD_PAGE_ROWS < n else None,
        "hold_previous": page - 1 if page > 1 else None,
        "hold_list_url": reverse("admin:recordings_recording_changelist") + f"?hold={hold.pk}",
    }


@admin.register(LegalHold)
class LegalHoldAdmin(EvidenceExportMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin):
    form = HoldForm
    list_display = ("id", "scope", "target", "short_reason", "placed_at", "placed_by_name", "status")
    list_filter = (ActiveFilter, "scope")
    list_select_related = ("case", "campaign")
    search_fields = ("reason", "case__name", "=campaign__campaign_id")
    raw_id_fields = ("recordings",)
    readonly_fields = (
        "placed_at",
        "placed_by_name",
        "released_at",
        "released_by_name",
        "release_reason",
    )

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False  # a hold is placed or released, never edited

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    def get_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        if obj is None:
            return ["scope", "case", "campaign", "recordings", "reason"]
        return ["scope", "case", "campaign", "reason", *self.readonly_fields]

    @admin.display(description="covers")
    def target(self, obj: LegalHold) -> str:
        if obj.scope == LegalHold.Scope.CASE:
            return f"case {obj.case}"
        if obj.scope == LegalHold.Scope.CAMPAIGN:
            return f"campaign {obj.campaign}"
        return "recordings picked by hand"

    @admin.display(description="reason")
    def short_reason(self, obj: LegalHold) -> str:
        return obj.reason if len(obj.reason) <= 80 else obj.reason[:79] + "…"

    @admin.display(description="status", ordering="released_at")
    def status(self, obj: LegalHold) -> str:
        return f"released {obj.released_at:%Y-%m-%d}" if obj.released_at else "active"

    def save_model(self, request: HttpRequest, obj: LegalHold, form: Any, change: bool) -> None:
        if change:
            raise PermissionDenied("Holds are not edited; release one and place another.")
        data = form.cleaned_data
        scope = data["scope"]
        hold = place_hold(
            reason=data["reason"],
            actor=Actor.person(request.user),
            recording_ids=[r.pk for r in data["recordings"]] if scope == LegalHold.Scope.RECORDINGS else (),
            case=data["case"] if scope == LegalHold.Scope.CASE else None,
            campaign=data["campaign"] if scope == LegalHold.Scope.CAMPAIGN else None,
        )
        obj.pk = hold.pk
        obj._state.adding = False

    def save_related(self, request: HttpRequest, form: Any, formsets: Any, change: bool) -> None:
        pass  # place_hold already attached the recordings

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/release/", wrap(self.release_view), name="holds_legalhold_release"),
            *super().get_urls(),  # EvidenceExportMixin adds <id>/export/
        ]

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        hold = LegalHold.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if hold is not None and self.has_view_permission(request, hold):
            covered = Recording.objects.filter(hold.covered())
            # COUNT(*): PostgreSQL then answers a campaign hold from its (campaign, start_time) index alone
            totals = covered.aggregate(n=Count("*"), first=Min("start_time"), last=Max("start_time"))
            extra_context = {
                **(extra_context or {}),
                **hold_page(request, hold, covered, totals["n"]),
                "hold": hold,
                "covered": totals,
                "erasures_blocked": blocked_by_hold(hold.pk),
                "can_release": hold.is_active and request.user.has_perm(RELEASE_PERMISSION),
                "release_url": reverse("admin:holds_legalhold_release", args=[hold.pk]),
                "can_export": request.user.has_perm(EXPORT_PERMISSION),
                "export_url": reverse("admin:holds_legalhold_export", args=[hold.pk]),
            }
        return super().change_view(request, object_id, form_url, extra_context)

    def release_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm(RELEASE_PERMISSION):
            raise PermissionDenied("Releasing a legal hold needs the 'Can release legal holds' permission.")
        hold = get_object_or_404(LegalHold, pk=object_id)
        back = reverse("admin:holds_legalhold_change", args=[hold.pk])
        form = ReleaseForm(request.POST if request.method == "POST" else None)
        if form.is_valid():
            try:
                release_hold(hold, reason=form.cleaned_data["reason"], actor=Actor.person(request.user))
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
            else:
                self.message_user(request, f"{hold} released.", messages.SUCCESS)
            return HttpResponseRedirect(back)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Release {hold}",
            "opts": self.model._meta,
            "hold": hold,
            "form": form,
            "back": back,
        }
        return TemplateResponse(request, "admin/holds/legalhold/release.html", context)

    def export_queryset(self) -> QuerySet:
        return LegalHold.objects.select_related("case")  # str(hold) names its case

    def export_recordings(self, obj: LegalHold) -> QuerySet:
        return evidence_recordings(hold=obj)

    def export_scope(self, obj: LegalHold) -> str:
        return str(obj)
