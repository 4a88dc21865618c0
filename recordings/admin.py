"""The compliance desk's recordings pages: search among millions, the detail page, playback, holds, export.

Fast at any size: no full COUNT(*) (BoundedPaginator counts at most CAP keys of a filtered list and reads a
page keys first, and show_full_result_count is off), search is exact matches on indexed columns (phone,
lead, recording id, filename read as ids; agents, by user id or name, as one agent list) instead of LIKE
scans, campaigns come with one join, and "held" is one expression over
the page's rows. Nothing here is editable: recordings change only through the pipeline's domain functions.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.auth import admin as auth_admin
from django.contrib.auth import get_user_model
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import BooleanField, ExpressionWrapper, Model, Q, QuerySet
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect, StreamingHttpResponse
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django_q.admin import ScheduleAdmin as DjangoQScheduleAdmin
from django_q.models import Schedule
from simple_history.admin import SimpleHistoryAdmin

from holds.actions import place_hold
from holds.models import Case, LegalHold, held_condition, held_covered
from recordings import desk, views
from recordings.export import EvidenceExport, evidence_recordings
from recordings.lib import phones
from recordings.models import AccessEvent, Campaign, Recording, RecordingEvent
from recordings.ops.schedules import validate_schedule_func
from retention.models import RetentionPolicy
from vicirec import clock
from vicirec.actors import Actor
from vicirec.admin_kit import BoundedPaginator, ReadOnlyAdmin, ReadOnlyHistoryMixin
from vicirec.date_range import DateRangeFilter

EXPORT_PERMISSION = "recordings.export_evidence"
HOLD_PERMISSION = "holds.add_legalhold"
ACTION_LIMIT = 5000  # recordings one admin action may take; larger sets go through a case


def search_condition(term: str) -> Q | None:
    """Exact, indexed matches for one search term; ``phone:``, ``lead:``, ``agent:``, ``id:``, ``file:`` narrow it.

    A phone number as people write it (``(773) 555-7219``, ``+1 773 555 7219``) matches the catalog's form;
    digits also match a recording id or a lead id; anything else matches an agent (VICIdial user id, or the
    start of the agent's full name) or a filename (VICIdial link forms like ``MP3/NAME-all.mp3`` included).
    """
    term = term.strip()
    if not term:
        return None
    field, _, value = term.partition(":")
    field = field.lower().strip()
    if value and field in {"phone", "lead", "agent", "id", "file"}:
        value = value.strip()
        digits = re.sub(r"\D", "", value)
        if field == "phone":
            return _phone(value)
        if field == "agent":
            return desk.search_lookup([value, *desk.agent_users(value)], [])
        if field == "file":
            return Q(filename__in=views.link_candidates(value))
        if not digits or len(digits) > 18:
            return Q(pk__in=[])
        return Q(lead_id=int(digits)) if field == "lead" else Q(pk=int(digits))
    digits = re.sub(r"[\s()+.-]", "", term)
    agents, exact = [term], [Q(filename__in=views.link_candidates(term))]
    if digits.isdigit() and len(digits) <= 18:
        number = int(digits)
        exact += [_phone(term), Q(pk=number), Q(lead_id=number)]
    else:
        agents += desk.agent_users(term)
    return desk.search_lookup(agents, exact)


def _phone(text: str) -> Q:
    """The catalog's form of a typed phone number, and its bare digits (a number stored otherwise)."""
    digits = re.sub(r"\D", "", text)
    numbers = {n for n in (digits, phones.try_catalog_form(text, settings.VICIREC_PHONE_REGION)) if n}
    return Q(phone_number__in=sorted(numbers)) if numbers else Q(pk__in=[])


class HeldFilter(admin.SimpleListFilter):
    title = "legal hold"
    parameter_name = "held"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [("yes", "Held"), ("no", "Not held")]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        """The held recordings as ids and campaigns read now (``held_covered``): a lookup, not a row-by-row test."""
        if self.value() == "yes":
            return queryset.filter(held_covered())
        if self.value() == "no":
            return queryset.exclude(held_covered())
        return queryset


class CaseFilter(admin.SimpleListFilter):
    """Recordings of one case (picked by hand or matching its criteria); linked from the case page."""

    title = "case"
    parameter_name = "case"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [(str(pk), name) for pk, name in Case.objects.order_by("-created_at").values_list("pk", "name")[:50]]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        if not self.value():
            return queryset
        case = Case.objects.filter(pk=self.value()).first() if str(self.value()).isdigit() else None
        return queryset.filter(case.covered()) if case else queryset.none()


class PlaceHoldForm(forms.Form):
    reason = forms.CharField(
        widget=forms.Textarea(attrs={"rows": 3, "cols": 60}),
        help_text="Why: the matter, request or complaint (kept in the hold's history).",
    )

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("A legal hold needs a reason.")
        return reason


def place_hold_from_post(
    model_admin: admin.ModelAdmin, request: HttpRequest, back: str, *, on: str = "", **covers: Any
) -> HttpResponse:
    """Place a hold from a posted PlaceHoldForm (a reason is required) on what ``covers`` names (``on`` says
    it in the confirmation); back to ``back``."""
    if not request.user.has_perm(HOLD_PERMISSION):
        raise PermissionDenied("Placing a legal hold needs the 'Can add legal hold' permission.")
    if request.method != "POST":
        return HttpResponseRedirect(back)
    form = PlaceHoldForm(request.POST)
    if not form.is_valid():
        model_admin.message_user(request, "A legal hold needs a reason: nothing was placed.", messages.ERROR)
        return HttpResponseRedirect(back)
    hold = place_hold(reason=form.cleaned_data["reason"], actor=Actor.person(request.user), **covers)
    model_admin.message_user(request, f"{hold} placed{f' on {on}' if on else ''}.", messages.SUCCESS)
    if getattr(hold, "object_lock_problem", ""):
        model_admin.message_user(
            request, f"The bucket refused its Object Lock legal hold: {hold.object_lock_problem}", messages.WARNING
        )
    return HttpResponseRedirect(back)


def export_response(request: HttpRequest, recordings: QuerySet, scope: str) -> StreamingHttpResponse:
    """Stream an evidence package; the access is logged before the first byte."""
    export = EvidenceExport(recordings, who=Actor.from_request(request), scope=scope, now=clock.now())
    response = StreamingHttpResponse(export.stream(), content_type="application/zip")
    response["Content-Disposition"] = f'attachment; filename="{export.filename}"'
    response["Cache-Control"] = "private, no-store"
    return response


def object_or_404(queryset: QuerySet, object_id: str) -> Any:
    """The object with this primary key; 404 also for an id its primary key cannot be (e.g. not a number)."""
    try:
        return get_object_or_404(queryset, pk=object_id)
    except (ValueError, ValidationError):
        raise Http404("No such object.")


class EvidenceExportMixin:
    """An object's evidence-export view, for any model admin whose objects stand for a set of recordings.

    Adds ``<object id>/export/`` (URL name ``<app>_<model>_export``, ahead of the admin's catch-all URLs).
    The view needs the export permission whatever the model; a GET only goes back to the object's page, so
    following a link never exports (the page's button POSTs); a POST streams the package of
    ``export_recordings(obj)`` named by ``export_scope(obj)``, every access logged before the first byte.
    """

    model: type[Model]
    admin_site: admin.AdminSite

    def export_queryset(self) -> QuerySet:
        """Where the object is looked up (404 if absent); override to fetch what export_scope reads."""
        return self.model._default_manager.all()

    def export_recordings(self, obj: Any) -> QuerySet:
        """The recordings the package holds (recordings.export.evidence_recordings)."""
        raise NotImplementedError

    def export_scope(self, obj: Any) -> str:
        """What the package covers, in its README, manifest and access log (e.g. "case Smith")."""
        raise NotImplementedError

    def get_urls(self) -> list[Any]:
        opts = self.model._meta
        name = f"{opts.app_label}_{opts.model_name}_export"
        export = path("<path:object_id>/export/", self.admin_site.admin_view(self.export_view), name=name)
        return [export, *super().get_urls()]  # type: ignore[misc]

    def export_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied("Exporting evidence needs the 'Can export evidence packages' permission.")
        obj = object_or_404(self.export_queryset(), object_id)
        if request.method != "POST":
            opts = self.model._meta
            return HttpResponseRedirect(reverse(f"admin:{opts.app_label}_{opts.model_name}_change", args=[obj.pk]))
        return export_response(request, self.export_recordings(obj), self.export_scope(obj))


@admin.register(Campaign)
class CampaignAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = ("campaign_id", "name", "kind", "active", "policy_link")
    list_filter = ("kind", "active")
    search_fields = ("=campaign_id", "name")
    list_select_related = ("policy",)

    @admin.display(description="retention policy")
    def policy_link(self, obj: Campaign) -> str:
        policy = getattr(obj, "policy", None)
        return f"{policy.retain_days} days ({policy.klass.label})" if policy else "default policy"

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("<path:object_id>/hold/", wrap(self.hold_view), name="recordings_campaign_hold"),
            *super().get_urls(),
        ]

    def hold_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        campaign = object_or_404(Campaign.objects.all(), object_id)
        back = reverse("admin:recordings_campaign_change", args=[campaign.pk])
        return place_hold_from_post(self, request, back, on=f"campaign {campaign}", campaign=campaign)

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        campaign = Campaign.objects.filter(pk=object_id).first() if str(object_id).isdigit() else None
        if campaign is not None and self.has_view_permission(request, campaign):
            extra_context = {**(extra_context or {}), **self.campaign_context(request, campaign)}
        return super().change_view(request, object_id, form_url, extra_context)

    def campaign_context(self, request: HttpRequest, campaign: Campaign) -> dict[str, Any]:
        """Its retention policy (its own, else the default), the holds on it (on the whole campaign, or on a
        case naming it), links to its recordings, and the "hold this campaign" button."""
        own = RetentionPolicy.objects.filter(campaign=campaign).first()
        policy = own or RetentionPolicy.objects.default()
        holds = LegalHold.objects.select_related("case", "campaign").filter(
            Q(campaign=campaign) | Q(case__campaigns=campaign)
        )
        recordings = reverse("admin:recordings_recording_changelist") + f"?campaign__id__exact={campaign.pk}"
        return {
            "campaign": campaign,
            "policy": policy,
            "own_policy": own is not None,
            "policy_url": reverse("admin:retention_retentionpolicy_change", args=[policy.pk]) if policy.pk else "",
            "campaign_holds": list(holds.distinct().order_by("released_at", "-placed_at")[:50]),
            "recordings_url": recordings,
            "held_url": recordings + "&held=yes",
            "can_hold": request.user.has_perm(HOLD_PERMISSION),
            "hold_url": reverse("admin:recordings_campaign_hold", args=[campaign.pk]),
            "hold_form": PlaceHoldForm(),
        }


@admin.register(Recording)
class RecordingAdmin(EvidenceExportMixin, ReadOnlyHistoryMixin, SimpleHistoryAdmin, ReadOnlyAdmin):
    list_display = (
        "recording_id",
        "start_time",
        "campaign",
        "phone",
        "agent_with_name",
        "length_in_sec",
        "state",
        "held",
    )
    list_display_links = ("recording_id",)
    list_filter = (
        HeldFilter,
        desk.HoldFilter,
        desk.ExpiryFilter,
        "state",
        ("start_time", DateRangeFilter),
        "campaign",
        CaseFilter,
    )
    list_select_related = ("campaign",)
    search_fields = ("phone_number",)  # shows the search box; get_search_results does the matching
    search_help_text = (
        "Exact match on phone number (as you write it: (773) 555-7219), lead id, recording id, agent (user id or "
        "the start of the name) or filename (or narrow it: phone:3125551212, lead:501, agent:1001, id:1001, "
        "file:NAME)."
    )
    sortable_by = ("recording_id", "start_time")
    show_full_result_count = False
    paginator = BoundedPaginator
    list_per_page = 50
    actions = ["place_hold_action", "export_action"]
    fieldsets = (
        (
            "Call",
            {
                "fields": (
                    ("recording_id", "start_time", "length_in_sec"),
                    ("campaign", "direction"),
                    ("phone_number", "lead_id", "agent"),
                    ("server_ip", "channel", "extension"),
                    ("filename", "vicidial_id"),
                    "vicidial_location",
                )
            },
        ),
        (
            "Pipeline",
            {"fields": (("state", "state_changed_at", "cataloged_at"), ("attempts", "next_attempt_at"), "error")},
        ),
    )

    def get_ordering(self, request: HttpRequest) -> list[str]:
        """Newest call first; under a call-date filter by call time, so the database reads only that range
        of the start_time index instead of walking the catalog by id until the range comes up."""
        if any(key.startswith("start_time__") for key in request.GET):
            return ["-start_time", "-recording_id"]
        return list(super().get_ordering(request) or [])

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        # "held" for the rows of a page: one boolean expression evaluated with the page's SELECT.
        return (
            super()
            .get_queryset(request)
            .annotate(is_held=ExpressionWrapper(held_condition(), BooleanField()), agent_full_name=desk.agent_name())
        )

    def get_search_results(self, request: HttpRequest, queryset: QuerySet, search_term: str) -> tuple[QuerySet, bool]:
        condition = search_condition(search_term)
        return (queryset.filter(condition) if condition is not None else queryset), False

    @admin.display(boolean=True, description="held")
    def held(self, obj: Recording) -> bool:
        return bool(getattr(obj, "is_held", False))

    @admin.display(description="phone number")
    def phone(self, obj: Recording) -> str:
        return phones.display(obj.phone_number, settings.VICIREC_PHONE_REGION)

    @admin.display(description="agent")
    def agent_with_name(self, obj: Recording) -> str:
        name = getattr(obj, "agent_full_name", None)
        return f"{obj.agent} ({name})" if name else obj.agent

    # --- permissions of the desk's own actions -------------------------------------------------

    def has_place_hold_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(HOLD_PERMISSION)

    def has_export_evidence_permission(self, request: HttpRequest) -> bool:
        return request.user.has_perm(EXPORT_PERMISSION)

    def _bounded_ids(self, request: HttpRequest, queryset: QuerySet) -> list[int] | None:
        ids = list(queryset.order_by("pk").values_list("pk", flat=True)[: ACTION_LIMIT + 1])
        if len(ids) > ACTION_LIMIT:
            self.message_user(
                request,
                f"More than {ACTION_LIMIT} recordings are selected. Describe them as a case (phone numbers, "
                "leads, agents, dates) and hold or export the case instead.",
                messages.ERROR,
            )
            return None
        return ids

    @admin.action(description="Place a legal hold on the selected recordings", permissions=["place_hold"])
    def place_hold_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        ids = self._bounded_ids(request, queryset)
        if ids is None:
            return None
        form = PlaceHoldForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                hold = place_hold(
                    reason=form.cleaned_data["reason"], actor=Actor.person(request.user), recording_ids=ids
                )
            except ValidationError as exc:
                self.message_user(request, "; ".join(exc.messages), messages.ERROR)
                return None
            self.message_user(request, f"{hold} placed on {len(ids)} recording(s).", messages.SUCCESS)
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": "Place a legal hold",
            "opts": self.model._meta,
            "form": form,
            "ids": ids,
            "count": len(ids),
            "select_across": request.POST.get("select_across", "0"),
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/recordings/recording/place_hold.html", context)

    @admin.action(description="Export evidence for the selected recordings", permissions=["export_evidence"])
    def export_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        ids = self._bounded_ids(request, queryset)
        if ids is None:
            return None
        scope = f"{len(ids)} recordings selected in the admin"
        return export_response(request, evidence_recordings(recording_ids=ids), scope)

    # --- the detail page and its views -----------------------------------------------------------

    def get_urls(self) -> list[Any]:
        wrap = self.admin_site.admin_view
        return [
            path("export-csv/", wrap(self.csv_view), name="recordings_recording_csv"),
            path("<path:object_id>/play/", wrap(views.play), name="recordings_recording_play"),
            path("<path:object_id>/hold/", wrap(self.hold_view), name="recordings_recording_hold"),
            *super().get_urls(),  # EvidenceExportMixin adds <id>/export/
        ]

    def changelist_view(self, request: HttpRequest, extra_context: dict[str, Any] | None = None) -> HttpResponse:
        query = request.GET.urlencode()
        extra_context = {
            **(extra_context or {}),
            "can_export_csv": request.user.has_perm(EXPORT_PERMISSION),
            "csv_url": reverse("admin:recordings_recording_csv") + (f"?{query}" if query else ""),
            "csv_limit": desk.CSV_LIMIT,
        }
        return super().changelist_view(request, extra_context)

    def csv_view(self, request: HttpRequest) -> HttpResponse:
        """The list's current result (search and filters of the query string) as CSV; a POST from the list's
        button (a link never exports), at most desk.CSV_LIMIT rows, each access logged before the first byte."""
        if not request.user.has_perm(EXPORT_PERMISSION):
            raise PermissionDenied("Exporting recordings needs the 'Can export evidence packages' permission.")
        back = reverse("admin:recordings_recording_changelist") + (f"?{request.GET.urlencode()}" if request.GET else "")
        if request.method != "POST":
            return HttpResponseRedirect(back)
        try:
            ids = desk.csv_ids(self.get_changelist_instance(request).get_queryset(request))
        except IncorrectLookupParameters:
            self.message_user(request, "Those filters are not valid: nothing was exported.", messages.ERROR)
            return HttpResponseRedirect(back)
        if len(ids) > desk.CSV_LIMIT:
            self.message_user(
                request,
                f"More than {desk.CSV_LIMIT} recordings match: narrow the search or the filters, nothing was exported.",
                messages.ERROR,
            )
            return HttpResponseRedirect(back)
        return desk.csv_response(
            request, ids, f"{len(ids)} recordings of the search {request.GET.urlencode() or '(all)'}"
        )

    def hold_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        recording = views.recording_or_404(object_id)
        back = reverse("admin:recordings_recording_change", args=[recording.pk])
        return place_hold_from_post(self, request, back, on=str(recording), recording_ids=[recording.pk])

    def export_recordings(self, obj: Recording) -> QuerySet:
        return evidence_recordings(recording_ids=[obj.pk])

    def export_scope(self, obj: Recording) -> str:
        return f"recording {obj.pk}"

    def change_view(
        self, request: HttpRequest, object_id: str, form_url: str = "", extra_context: dict[str, Any] | None = None
    ) -> HttpResponse:
        recording = (
            Recording.objects.select_related("campaign", "certificate").filter(pk=object_id).first()
            if str(object_id).isdigit()
            else None
        )
        if recording is not None and self.has_view_permission(request, recording):
            extra_context = {**(extra_context or {}), **self.detail_context(request, recording)}
        return super().change_view(request, object_id, form_url, extra_context)

    def detail_context(self, request: HttpRequest, recording: Recording) -> dict[str, Any]:
        user = request.user
        expiry = recording.expiry()
        stored = recording.state in Recording.STORED_STATES and recording.object_key
        local = recording.state in Recording.LOCAL_STATES and recording.local_path
        can_play = user.has_perm(views.PLAY_PERMISSION) and bool(stored or local)
        events = list(RecordingEvent.objects.filter(recording=recording).order_by("at", "id")[:500])
        return {
            **desk.hold_history(recording, events),
            "recording": recording,
            "expiry": expiry,
            "expiry_text": expiry.explain(),
            "stored": stored,
            "local": local,
            "certificate": getattr(recording, "certificate", None),
            "cases": list(Case.objects.filter(recordings=recording).order_by("name")[:50]),
            "events": events,
            "access_events": (
                list(AccessEvent.objects.filter(recording=recording).select_related("user")[:100])
                if user.has_perm("recordings.view_accessevent")
                else None
            ),
            "history": list(recording.history.select_related("history_user").order_by("-history_date")[:50]),
            "can_play": can_play,
            "play_url": reverse("admin:recordings_recording_play", args=[recording.pk]),
            "listen_token": views.listen_token(user, recording.pk) if can_play else "",
            "can_hold": user.has_perm(HOLD_PERMISSION) and recording.state != Recording.State.EXPIRED,
            "hold_url": reverse("admin:recordings_recording_hold", args=[recording.pk]),
            "hold_form": PlaceHoldForm(),
            "can_export": user.has_perm(EXPORT_PERMISSION),
            "export_url": reverse("admin:recordings_recording_export", args=[recording.pk]),
        }


@admin.register(RecordingEvent)
class RecordingEventAdmin(ReadOnlyAdmin):
    """The custody log: every state change of every recording, read-only."""

    list_display = ("at", "recording", "from_state", "to_state", "actor", "detail")
    list_filter = ("to_state", ("at", admin.DateFieldListFilter))
    raw_id_fields = ("recording",)
    search_fields = ("=recording__recording_id",)
    search_help_text = "Recording id (exact)."
    show_full_result_count = False
    paginator = BoundedPaginator
    sortable_by = ("at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).order_by("-at", "-id")


@admin.register(AccessEvent)
class AccessEventAdmin(ReadOnlyAdmin):
    """Who played, downloaded, opened or exported which recording, when and from where. Nobody edits it."""

    list_display = ("at", "username", "action", "recording", "ip", "detail")
    list_filter = ("action", ("at", admin.DateFieldListFilter))
    raw_id_fields = ("recording", "user")
    search_fields = ("=recording__recording_id", "=username")
    search_help_text = "Recording id or user name (exact)."
    show_full_result_count = False
    paginator = BoundedPaginator
    sortable_by = ("at",)


class UserAdmin(auth_admin.UserAdmin):
    """People are deactivated, never deleted: their names stay on the history, holds and access logs."""

    def has_delete_permission(self, request: HttpRequest, obj: Model | None = None) -> bool:
        return False


admin.site.unregister(get_user_model())
admin.site.register(get_user_model(), UserAdmin)


class ScheduleForm(forms.ModelForm):
    def clean_func(self) -> str:
        func = self.cleaned_data["func"]
        validate_schedule_func(func)
        return func


class ScheduleAdmin(DjangoQScheduleAdmin):
    """django-q2's schedules, which can only be pointed at vicirec's own tasks (recordings.ops.schedules)."""

    form = ScheduleForm


admin.site.unregister(Schedule)
admin.site.register(Schedule, ScheduleAdmin)
