"""Retention policies and deletion certificates in the admin.

A policy page shows its record class, the legal minimum and its source, and — before a change that
shortens retention is saved — the impact of that change (retention.forecast.shortening_impact): the
first save shows it, a second save with "I have reviewed the impact" ticked applies it. Whether a change
shortens retention is decided by the domain (retention.approval, compared with the policy that applies
today: a new campaign policy, a policy moved to another campaign, a lower record class all count), and
RetentionPolicy.save() enforces it; the form only explains it first. Shortening retention or going below the
legal minimum needs retention.approve_policy_override (Legal approver); Ops are refused and file such a
change as a policy proposal, and save changes that keep recordings as long or longer. Every save carries
a change reason into the policy's history.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import QuerySet
from django.http import HttpRequest
from django.template.defaultfilters import filesizeformat
from simple_history.admin import SimpleHistoryAdmin

from recordings.lib import phones
from recordings.pipeline.erasure import approve_request as approve_erasure
from recordings.pipeline.erasure import open_request as open_erasure
from recordings.pipeline.erasure import preview as preview_erasure
from recordings.pipeline.erasure import reject_request as reject_erasure
from retention.approval import APPROVE_PERMISSION, describe, is_approver, shortenings
from retention.forecast import shortening_impact
from retention.models import (
    DeletionCertificate,
    ErasureCertificate,
    ErasureItem,
    ErasureRequest,
    PolicyProposal,
    RetentionPolicy,
)
from vicirec import clock
from vicirec.actors import Actor
from vicirec.admin_kit import BoundedPaginator, ReadOnlyAdmin, ReadOnlyHistoryMixin
from vicirec.date_range import DateRangeFilter


def impact_sentence(impact: dict[str, Any]) -> str:
    if impact.get("note"):
        return f"Impact: {impact['note']}."
    return (
        f"Impact: {impact['newly_eligible_now']} recording(s) ({filesizeformat(impact['bytes_now'])}) become "
        f"deletable at once, {impact['held_now']} of them held (kept while held); "
        f"{impact['eligible_within_90_days']} more ({filesizeformat(impact['bytes_within_90_days'])}) within 90 days."
    )


class PolicyForm(forms.ModelForm):
    change_reason = forms.CharField(
        max_length=90, help_text="Why this change (kept in the policy's history, with your name)."
    )
    impact_reviewed = forms.BooleanField(
        required=False, label="I have reviewed the impact", help_text="Needed to save a change that shortens retention."
    )
    user: Any = None  # set per request by RetentionPolicyAdmin.get_form

    class Meta:
        model = RetentionPolicy
        fields = ["campaign", "record_class", "retain_days", "override_reason", "keep_local_days", "codec"]

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        if data.get("retain_days") is None:
            return data
        candidate = RetentionPolicy(
            pk=self.instance.pk,
            campaign=data.get("campaign"),
            retain_days=data["retain_days"],
            record_class=data.get("record_class") or "general",
        )
        changes = shortenings(candidate)
        impact = impact_sentence(shortening_impact(changes, now=clock.now()))
        if (changes or candidate.below_floor) and not is_approver(self.user):
            what = f"shorter than today ({describe(changes)})" if changes else "below the record class's legal minimum"
            raise ValidationError(
                f"Nothing was saved. Retention {what} needs a Legal approver: file it as a policy proposal "
                f"(Retention › Policy proposals › Add) — {impact}"
            )
        if "_preview" in self.data:
            self.add_error(None, f"Preview only, nothing saved. {impact}")
        elif changes and not data.get("impact_reviewed"):
            self.add_error("impact_reviewed", f"{impact} Tick “I have reviewed the impact” and save again to apply it.")
        return data


@admin.register(RetentionPolicy)
class RetentionPolicyAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin):
    form = PolicyForm
    list_display = (
        "__str__",
        "record_class_label",
        "legal_minimum",
        "retain_days",
        "keep_local_days",
        "codec",
        "below",
    )
    list_select_related = ("campaign",)
    raw_id_fields = ("campaign",)
    readonly_fields = ("legal_minimum", "legal_source")
    fieldsets = (
        (None, {"fields": ("campaign", "record_class", ("legal_minimum", "legal_source"))}),
        ("Retention", {"fields": ("retain_days", "override_reason", "keep_local_days", "codec")}),
        ("This change", {"fields": ("change_reason", "impact_reviewed")}),
    )

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        if not self.has_change_permission(request, obj) and obj is not None:
            return self.fieldsets[:2]
        return self.fieldsets

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        form = super().get_form(request, obj, change=change, **kwargs)
        return type(form.__name__, (form,), {"user": request.user})

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="record class")
    def record_class_label(self, obj: RetentionPolicy) -> str:
        return obj.klass.label

    @admin.display(description="legal minimum")
    def legal_minimum(self, obj: RetentionPolicy) -> str:
        if obj.pk is None:
            return "—"
        klass = obj.klass
        return f"{klass.floor_years} years ({klass.floor_days} days)" if klass.floor_years else "none"

    @admin.display(description="source")
    def legal_source(self, obj: RetentionPolicy) -> str:
        return obj.klass.source if obj.pk else "—"

    @admin.display(boolean=True, description="below minimum (override)")
    def below(self, obj: RetentionPolicy) -> bool:
        return obj.below_floor

    def save_model(self, request: HttpRequest, obj: RetentionPolicy, form: Any, change: bool) -> None:
        reason = form.cleaned_data["change_reason"]
        obj._change_reason = reason  # type: ignore[attr-defined]
        obj.save(approved_by=request.user if is_approver(request.user) else None, reason=reason)


@admin.register(DeletionCertificate)
class DeletionCertificateAdmin(ReadOnlyAdmin):
    """Proof of each defensible deletion: permanent, read-only for everyone."""

    list_display = (
        "recording",
        "deleted_at",
        "phone",
        "campaign",
        "run",
        "cloud_deleted",
        "local_deleted",
        "stored_sha256",
    )
    list_filter = ("cloud_deleted", "local_deleted", ("deleted_at", DateRangeFilter))
    raw_id_fields = ("recording",)
    search_fields = ("=recording__recording_id", "=run")
    search_help_text = "Recording id or run (exact)."
    show_full_result_count = False
    paginator = BoundedPaginator
    sortable_by = ("deleted_at",)

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("recording__campaign")

    @admin.display(description="phone number")
    def phone(self, obj: DeletionCertificate) -> str:
        return phones.display(obj.recording.phone_number, settings.VICIREC_PHONE_REGION)

    @admin.display(description="campaign")
    def campaign(self, obj: DeletionCertificate) -> str:
        campaign = obj.recording.campaign
        return campaign.campaign_id if campaign else "—"


class ProposalForm(forms.ModelForm):
    class Meta:
        model = PolicyProposal
        fields = ["campaign", "record_class", "retain_days", "override_reason", "keep_local_days", "codec", "reason"]


class DecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(choices=[("approve", "Approve and apply"), ("reject", "Reject")])

    class Meta:
        model = PolicyProposal
        fields = ["decision_reason"]

    def clean_decision_reason(self) -> str:
        reason = self.cleaned_data["decision_reason"].strip()
        if not reason:
            raise ValidationError("A decision needs a reason.")
        return reason


@admin.register(PolicyProposal)
class PolicyProposalAdmin(ReadOnlyHistoryMixin, SimpleHistoryAdmin):
    """Ops propose, Legal approvers decide; a proposal itself is never edited."""

    list_display = ("__str__", "status", "retain_days", "record_class", "proposed_by", "proposed_at", "decided_by")
    list_filter = ("status",)
    list_select_related = ("campaign", "proposed_by", "decided_by")
    raw_id_fields = ("campaign",)
    show_full_result_count = False
    PROPOSAL_FIELDS = (
        "campaign",
        "record_class",
        "retain_days",
        "override_reason",
        "keep_local_days",
        "codec",
        "reason",
    )
    DECIDED_FIELDS = (
        "impact_text",
        "proposed_by",
        "proposed_at",
        "status",
        "decided_by",
        "decided_at",
        "decision_reason",
    )

    def _deciding(self, request: HttpRequest, obj: PolicyProposal | None) -> bool:
        return (
            obj is not None
            and obj.status == PolicyProposal.Status.PENDING
            and request.user.has_perm(APPROVE_PERMISSION)
        )

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ProposalForm
        elif self._deciding(request, obj):
            kwargs["form"] = DecisionForm
            kwargs["fields"] = ["decision", "decision_reason"]
        return super().get_form(request, obj, change=change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return self.PROPOSAL_FIELDS
        decision = ("decision", "decision_reason") if self._deciding(request, obj) else ()
        shown = [f for f in self.DECIDED_FIELDS if not (decision and f == "decision_reason")]
        return (*self.PROPOSAL_FIELDS, *shown, *decision)

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ()
        editable = {"decision", "decision_reason"} if self._deciding(request, obj) else set()
        return [f for f in self.get_fields(request, obj) if f not in editable]

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return super().has_change_permission(request, obj) and (obj is None or self._deciding(request, obj))

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="impact when proposed")
    def impact_text(self, obj: PolicyProposal) -> str:
        return impact_sentence(obj.impact) if obj.impact else "—"

    def save_model(self, request: HttpRequest, obj: PolicyProposal, form: Any, change: bool) -> None:
        if not change:
            obj.proposed_by, obj.proposed_at = request.user, clock.now()
            proposed = obj.target_policy()
            for name in ("keep_local_days", "retain_days", "record_class", "codec", "override_reason"):
                setattr(proposed, name, getattr(obj, name))
            obj.impact = shortening_impact(shortenings(proposed), now=obj.proposed_at)
            obj._change_reason = f"proposed: {obj.reason}"[:100]  # type: ignore[attr-defined]
            super().save_model(request, obj, form, change)
            return
        reason = form.cleaned_data["decision_reason"]
        fresh = PolicyProposal.objects.get(pk=obj.pk)  # decide on the stored proposal, not the form's copy
        try:
            if form.cleaned_data["decision"] == "approve":
                fresh.approve(user=request.user, reason=reason)
            else:
                fresh.reject(user=request.user, reason=reason)
        except ValidationError as exc:
            request._proposal_not_applied = True  # type: ignore[attr-defined]
            messages.error(request, "Not applied: " + " ".join(exc.messages))

    def message_user(
        self, request: HttpRequest, message: Any, level: int = messages.INFO, *args: Any, **kw: Any
    ) -> None:
        if level == messages.SUCCESS and getattr(request, "_proposal_not_applied", False):
            return  # the decision was not applied: no "changed successfully" next to "Not applied"
        super().message_user(request, message, level, *args, **kw)


# --- erasure requests (GDPR Art. 17 / CCPA): opened by Legal, carried out with an approver's approval -----


class ErasureRequestForm(forms.ModelForm):
    class Meta:
        model = ErasureRequest
        fields = ["subject_phone", "subject_lead_id", "legal_basis", "reason"]


class ErasureDecisionForm(forms.ModelForm):
    decision = forms.ChoiceField(choices=[("approve", "Approve and erase"), ("reject", "Reject")])
    decision_reason = forms.CharField(widget=forms.Textarea, help_text="Kept with the request.")

    class Meta:
        model = ErasureRequest
        fields: list[str] = []


class ErasureItemInline(admin.TabularInline):
    model = ErasureItem
    fields = ("recording_id", "status", "refusal", "refused_at", "erased_at", "error")
    readonly_fields = fields
    extra = 0
    can_delete = False

    def has_add_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False


@admin.register(ErasureRequest)
class ErasureRequestAdmin(admin.ModelAdmin):
    """A data subject's request (by phone number or lead), previewed, then approved by a second person who
    is a Legal approver; and the requests VICIdial's GDPR purge queued, with their refusals under hold."""

    list_display = ("__str__", "status", "requested_by_name", "requested_at", "decided_by_name", "legal_basis")
    list_filter = ("source", "status")
    inlines = [ErasureItemInline]
    paginator = BoundedPaginator
    show_full_result_count = False
    READ_ONLY = ("source", "status", "legal_basis", "reason", "requested_by_name", "requested_at")
    READ_ONLY += ("decided_by_name", "decided_at", "decision_reason", "preview_text")

    def _deciding(self, request: HttpRequest, obj: ErasureRequest | None) -> bool:
        return obj is not None and obj.status == ErasureRequest.Status.AWAITING_APPROVAL and is_approver(request.user)

    def get_form(self, request: HttpRequest, obj: Any = None, change: bool = False, **kwargs: Any) -> Any:
        if obj is None:
            kwargs["form"] = ErasureRequestForm
        elif self._deciding(request, obj):
            kwargs["form"] = ErasureDecisionForm
        return super().get_form(request, obj, change, **kwargs)

    def get_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        if obj is None:
            return ErasureRequestForm.Meta.fields
        return [*self.READ_ONLY, *(["decision", "decision_reason"] if self._deciding(request, obj) else [])]

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> Any:
        return () if obj is None else self.READ_ONLY

    def has_change_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return obj is None or self._deciding(request, obj)

    def has_delete_permission(self, request: HttpRequest, obj: Any = None) -> bool:
        return False

    @admin.display(description="what it covers now")
    def preview_text(self, obj: ErasureRequest) -> str:
        if obj.status != ErasureRequest.Status.AWAITING_APPROVAL:
            return "—"
        found = preview_erasure(obj)
        text = f"{found.recordings} recording(s), {filesizeformat(found.bytes)} in the archive"
        if found.held:
            text += f"; {found.held} under legal hold will be refused: " + "; ".join(found.holds)
        return text

    def save_model(self, request: HttpRequest, obj: ErasureRequest, form: Any, change: bool) -> None:
        now = clock.now()
        try:
            if not change:
                opened = open_erasure(
                    actor=Actor.person(request.user),  # type: ignore[arg-type]
                    phone=obj.subject_phone,
                    lead_id=obj.subject_lead_id,
                    legal_basis=obj.legal_basis,
                    reason=obj.reason,
                    now=now,
                )
                obj.pk = opened.pk
                return
            fresh = ErasureRequest.objects.get(pk=obj.pk)
            reason = form.cleaned_data["decision_reason"]
            if form.cleaned_data["decision"] == "approve":
                report = approve_erasure(fresh, approver=request.user, reason=reason, now=now)
                messages.info(request, f"{report.erased} erased, {report.refused_held} refused under legal hold.")
            else:
                reject_erasure(fresh, approver=request.user, reason=reason, now=now)
        except (ValidationError, PermissionDenied) as exc:
            request._erasure_not_applied = True  # type: ignore[attr-defined]
            messages.error(request, "Not applied: " + " ".join(getattr(exc, "messages", [str(exc)])))

    def message_user(
        self, request: HttpRequest, message: Any, level: int = messages.INFO, *args: Any, **kw: Any
    ) -> None:
        if level == messages.SUCCESS and getattr(request, "_erasure_not_applied", False):
            return
        super().message_user(request, message, level, *args, **kw)


@admin.register(ErasureCertificate)
class ErasureCertificateAdmin(ReadOnlyAdmin):
    """Proof of each erasure: permanent, read-only for everyone; names no caller."""

    list_display = ("recording", "erased_at", "requested_by", "legal_basis", "cloud_versions_deleted", "local_deleted")
    raw_id_fields = ("recording", "request")
    search_fields = ("=recording__recording_id", "=run")
    paginator = BoundedPaginator
    show_full_result_count = False


from retention import review_admin  # noqa: E402, F401  disposition review (its own module)
