"""Disposition review in the admin: batches of a reviewed record class, their items, and the decisions.

Batches, items and decisions are permanent records: nobody edits or deletes them here. On the items list
(one batch's items through the batch filter, bounded and paginated) a Legal approver approves or excludes the
selected items, with a reason (recordings.pipeline.disposition.decide, which checks the approver and the
reason again); everyone else only reads.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied, ValidationError
from django.db.models import Count, Q, QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.defaultfilters import filesizeformat
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.html import format_html

from recordings.pipeline.disposition import decide
from retention.approval import is_approver
from retention.models import DispositionBatch, DispositionDecision, DispositionItem
from vicirec import clock
from vicirec.admin_kit import BoundedPaginator, ReadOnlyAdmin

ACTION_LIMIT = 1000  # items decided at once (one page of the list is 100)


def _items_url(batch_id: int) -> str:
    return reverse("admin:retention_dispositionitem_changelist") + f"?batch__id__exact={batch_id}"


@admin.register(DispositionBatch)
class DispositionBatchAdmin(ReadOnlyAdmin):
    list_display = ("__str__", "record_class", "opened_at", "items", "waiting", "review")
    list_filter = ("record_class",)
    paginator = BoundedPaginator
    show_full_result_count = False
    readonly_fields = ("record_class", "number", "opened_at", "run", "review")

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return (
            super()
            .get_queryset(request)
            .annotate(
                n_items=Count("items", distinct=True),
                n_decided=Count("items", filter=Q(items__decisions__step=DispositionDecision.REVIEW), distinct=True),
            )
        )

    @admin.display(description="recordings")
    def items(self, obj: DispositionBatch) -> int:
        return obj.n_items  # type: ignore[attr-defined]

    @admin.display(description="waiting for a decision")
    def waiting(self, obj: DispositionBatch) -> int:
        return obj.n_items - obj.n_decided  # type: ignore[attr-defined]

    @admin.display(description="items")
    def review(self, obj: DispositionBatch) -> str:
        return format_html('<a href="{}">Review the items of this batch</a>', _items_url(obj.pk))


class DecisionFilter(admin.SimpleListFilter):
    title = "decision"
    parameter_name = "decision"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        return [
            ("waiting", "Waiting for a decision"),
            ("approve", "Approved"),
            ("exclude", "Excluded"),
            ("lapsed", "Approval lapsed"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet) -> QuerySet:
        value = self.value()
        if value == "waiting":
            return queryset.exclude(decisions__step=DispositionDecision.REVIEW)
        if value == "lapsed":
            return queryset.filter(decisions__step=DispositionDecision.LAPSE)
        if value in ("approve", "exclude"):
            return queryset.filter(decisions__step=DispositionDecision.REVIEW, decisions__decision=value)
        return queryset


class ReasonForm(forms.Form):
    reason = forms.CharField(widget=forms.Textarea, help_text="Kept with each decision, with your name.")

    def clean_reason(self) -> str:
        reason = self.cleaned_data["reason"].strip()
        if not reason:
            raise ValidationError("A disposition decision needs a reason.")
        return reason


@admin.register(DispositionItem)
class DispositionItemAdmin(ReadOnlyAdmin):
    list_display = ("recording", "batch", "call_time", "size", "reason", "decision", "decided")
    list_filter = (DecisionFilter, "batch")
    raw_id_fields = ("recording", "batch")
    search_fields = ("=recording__recording_id",)
    search_help_text = "Recording id (exact)."
    paginator = BoundedPaginator
    list_per_page = 100
    show_full_result_count = False
    actions = ["approve_action", "exclude_action"]

    def get_queryset(self, request: HttpRequest) -> QuerySet:
        return super().get_queryset(request).select_related("batch", "recording").prefetch_related("decisions")

    def has_decide_permission(self, request: HttpRequest) -> bool:
        return is_approver(request.user)

    @admin.display(description="bytes")
    def size(self, obj: DispositionItem) -> str:
        return filesizeformat(obj.bytes)

    def _decisions(self, obj: DispositionItem) -> list[DispositionDecision]:
        return sorted(obj.decisions.all(), key=lambda d: d.step)

    @admin.display(description="decision")
    def decision(self, obj: DispositionItem) -> str:
        made = self._decisions(obj)
        if not made:
            return "waiting"
        return "; ".join(f"{d.get_decision_display()}: {d.reason}" for d in made)

    @admin.display(description="by, at")
    def decided(self, obj: DispositionItem) -> str:
        made = self._decisions(obj)
        return "; ".join(f"{d.decided_by_name}, {d.at:%Y-%m-%d %H:%M}" for d in made) or "—"

    def _decide(self, request: HttpRequest, queryset: QuerySet, *, decision: str, action: str) -> HttpResponse | None:
        ids = list(queryset.values_list("pk", flat=True)[: ACTION_LIMIT + 1])
        if len(ids) > ACTION_LIMIT:
            self.message_user(request, f"Decide at most {ACTION_LIMIT} items at once.", messages.ERROR)
            return None
        form = ReasonForm(request.POST if "apply" in request.POST else None)
        if form.is_valid():
            try:
                made = decide(
                    DispositionItem.objects.filter(pk__in=ids),
                    approver=request.user,
                    decision=decision,
                    reason=form.cleaned_data["reason"],
                    now=clock.now(),
                )
            except (PermissionDenied, ValidationError) as exc:
                self.message_user(
                    request, "Not decided: " + " ".join(getattr(exc, "messages", [str(exc)])), messages.ERROR
                )
                return None
            skipped = len(ids) - len(made)
            text = f"{len(made)} item(s) {'approved for deletion' if decision == 'approve' else 'excluded'}"
            if skipped:
                text += f"; {skipped} already decided, left as they were"
            self.message_user(request, text + ".", messages.SUCCESS)
            return None
        verb = "Approve for deletion" if decision == "approve" else "Exclude (keep)"
        context = {
            **self.admin_site.each_context(request),
            "title": verb,
            "opts": self.model._meta,
            "form": form,
            "ids": ids,
            "count": len(ids),
            "verb": verb,
            "consequence": (
                "The next retention run deletes them if they are still expired and no legal hold covers them."
                if decision == "approve"
                else "Their batch will not delete them."
            ),
            "action": action,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/retention/dispositionitem/decide.html", context)

    @admin.action(description="Approve the selected items for deletion", permissions=["decide"])
    def approve_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._decide(request, queryset, decision="approve", action="approve_action")

    @admin.action(description="Exclude the selected items (keep them)", permissions=["decide"])
    def exclude_action(self, request: HttpRequest, queryset: QuerySet) -> HttpResponse | None:
        return self._decide(request, queryset, decision="exclude", action="exclude_action")


@admin.register(DispositionDecision)
class DispositionDecisionAdmin(ReadOnlyAdmin):
    list_display = ("item", "decision", "decided_by_name", "at", "reason")
    list_filter = ("decision",)
    raw_id_fields = ("item", "decided_by")
    paginator = BoundedPaginator
    show_full_result_count = False
