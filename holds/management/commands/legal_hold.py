import json
from typing import Any

from django.conf import settings
from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError, CommandParser

from holds.actions import change_case, place_hold, release_hold, release_part
from holds.guards import narrowing, proposed, snapshot
from holds.models import Case, LegalHold
from recordings.lib import phones
from recordings.models import Campaign
from vicirec.actors import Actor
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Place, release or list legal holds. Placing prints the new hold's id."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--user", help="the vicirec user acting (recorded in the history); default: the OS user")
        sub = parser.add_subparsers(dest="action", required=True)
        place = sub.add_parser("place", help="place a hold")
        place.add_argument("--recording", type=int, nargs="+", default=[], help="VICIdial recording_id(s)")
        place.add_argument("--campaign", help="a campaign or in-group id")
        place.add_argument("--case", help="a case name (created if new; criteria below are added to it)")
        place.add_argument("--reference", default="", help="the case's external reference (CID, docket number)")
        place.add_argument("--phone", nargs="+", default=[], help="case criterion: phone numbers")
        place.add_argument("--lead", type=int, nargs="+", default=[], help="case criterion: lead ids")
        place.add_argument("--agent", nargs="+", default=[], help="case criterion: agents (VICIdial user)")
        place.add_argument("--reason", required=True)
        release = sub.add_parser("release", help="release a hold")
        release.add_argument("hold_id", type=int)
        release.add_argument("--reason", required=True)
        part = sub.add_parser("release-part", help="release part of an active hold (needs the release permission)")
        part.add_argument("hold_id", type=int)
        part.add_argument("--recording", type=int, nargs="+", default=[], help="recordings to take off the hold")
        part.add_argument("--phone", nargs="+", default=[], help="case hold: phone numbers to remove from the case")
        part.add_argument("--lead", type=int, nargs="+", default=[], help="case hold: lead ids to remove")
        part.add_argument("--agent", nargs="+", default=[], help="case hold: agents to remove")
        part.add_argument("--reason", required=True)
        sub.add_parser("list", help="list active holds")
        for p in (place, release, part, sub.choices["list"]):
            p.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    def run(self, **options: Any) -> Any:
        user = self.acting_user(options["user"])
        actor = Actor.command("legal_hold", user)
        try:
            return getattr(self, options["action"].replace("-", "_"))(actor, options)
        except (ValidationError, PermissionDenied) as exc:
            raise CommandError("; ".join(getattr(exc, "messages", [str(exc)])))

    def place(self, actor: Actor, options: dict[str, Any]) -> dict[str, Any]:
        campaign = case = None
        if options["campaign"]:
            campaign = Campaign.objects.filter(campaign_id=options["campaign"]).first()
            if campaign is None:
                raise CommandError(f"no campaign {options['campaign']!r} in the catalog; run sync_recordings first")
        if options["case"]:
            case, _ = Case.objects.get_or_create(
                name=options["case"], defaults={"external_reference": options["reference"], "created_by": actor.user}
            )
            self._add_criteria(case, actor, options)
        hold = place_hold(
            reason=options["reason"], actor=actor, recording_ids=options["recording"], campaign=campaign, case=case
        )
        from recordings.models import Recording

        problem = getattr(hold, "object_lock_problem", "")
        if problem:
            self.stderr.write(f"hold #{hold.pk} is in place; the bucket refused its Object Lock legal hold: {problem}")
        return {
            "hold_id": hold.pk,
            "object_lock_problem": problem,
            "scope": hold.scope,
            "covers_now": Recording.objects.filter(hold.condition()).count(),
        }

    def _add_criteria(self, case: Case, actor: Actor, options: dict[str, Any]) -> None:
        """Add the criteria given to the case, through holds.actions.change_case. On a case under an active
        hold, a value for a criterion it does not use yet narrows the hold: refused here."""
        try:
            typed = [phones.catalog_form(p, settings.VICIREC_PHONE_REGION) for p in options["phone"]]
        except phones.PhoneError as exc:
            raise CommandError(f"--phone: {exc}") from None
        criteria = {
            "phone_numbers": sorted(set(case.phone_numbers) | set(typed)),
            "lead_ids": sorted(set(case.lead_ids) | set(options["lead"])),
            "agents": sorted(set(case.agents) | set(options["agent"])),
        }
        if case.holds.filter(released_at__isnull=True).exists():
            old = snapshot(case)
            narrowed = narrowing(old, proposed(old, criteria))
            if narrowed:
                raise CommandError(
                    f"case {case.name!r} is under an active legal hold and this would narrow it "
                    f"({'; '.join(narrowed)}): open a new case for these criteria"
                )
        change_case(case, actor=actor, reason="criteria set for a hold", **criteria)

    def release_part(self, actor: Actor, options: dict[str, Any]) -> dict[str, Any]:
        hold = LegalHold.objects.filter(pk=options["hold_id"]).select_related("case").first()
        if hold is None or not hold.is_active:
            raise CommandError(f"no active legal hold #{options['hold_id']}")
        if hold.scope == LegalHold.Scope.RECORDINGS:
            part = release_part(hold, recording_ids=options["recording"], actor=actor, reason=options["reason"])
            return {"hold_id": hold.pk, "released": part.recording_ids, "change": part.change}
        if hold.case is None:
            raise CommandError(f"{hold} covers a whole campaign: release the hold instead")
        case = hold.case
        region = settings.VICIREC_PHONE_REGION
        given = set(options["phone"]) | {phones.try_catalog_form(p, region) or p for p in options["phone"]}
        parts = change_case(
            case,
            actor=actor,
            reason=options["reason"],
            phone_numbers=[p for p in case.phone_numbers if str(p) not in given],
            lead_ids=[x for x in case.lead_ids if int(x) not in set(options["lead"])],
            agents=[a for a in case.agents if str(a) not in set(options["agent"])],
            recordings=[pk for pk in case.recordings.values_list("pk", flat=True) if pk not in options["recording"]],
        )
        mine = [p for p in parts if p.hold_id == hold.pk]
        return {
            "hold_id": hold.pk,
            "released": mine[0].recording_ids if mine else [],
            "change": mine[0].change if mine else "nothing narrowed",
        }

    def release(self, actor: Actor, options: dict[str, Any]) -> dict[str, Any]:
        hold = LegalHold.objects.filter(pk=options["hold_id"]).first()
        if hold is None:
            raise CommandError(f"no legal hold #{options['hold_id']}")
        release_hold(hold, reason=options["reason"], actor=actor)
        return {"hold_id": hold.pk, "released": True}

    def list(self, actor: Actor, options: dict[str, Any]) -> dict[str, Any]:
        holds = LegalHold.objects.active().select_related("case", "campaign")
        return {
            "holds": [
                {
                    "id": h.pk,
                    "scope": h.scope,
                    "on": str(h),
                    "reason": h.reason,
                    "placed_at": h.placed_at.isoformat(),
                    "placed_by": h.placed_by_name,
                }
                for h in holds
            ]
        }

    def summary(self, data: dict[str, Any]) -> str:
        if "holds" in data:
            return (
                "\n".join(
                    f"#{h['id']}  {h['on']}  placed {h['placed_at'][:10]} by {h['placed_by']}: {h['reason']}"
                    for h in data["holds"]
                )
                or "no active holds"
            )
        if "covers_now" in data:
            return str(data["hold_id"])
        return json.dumps(data)
