import json
from typing import Any

from django.core.exceptions import PermissionDenied, ValidationError
from django.core.management.base import CommandError, CommandParser

from holds.actions import place_hold, release_hold
from holds.models import Case, LegalHold
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
        sub.add_parser("list", help="list active holds")
        for p in (place, release, sub.choices["list"]):
            p.add_argument("--json", action="store_true", help="print one JSON object on stdout")

    def run(self, **options: Any) -> Any:
        user = self.acting_user(options["user"])
        actor = Actor.command("legal_hold", user)
        try:
            return getattr(self, options["action"])(actor, options)
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
            case.phone_numbers = sorted(set(case.phone_numbers) | set(options["phone"]))
            case.lead_ids = sorted(set(case.lead_ids) | set(options["lead"]))
            case.agents = sorted(set(case.agents) | set(options["agent"]))
            case._history_user = actor.user  # type: ignore[attr-defined]
            case._change_reason = f"criteria set for a hold [{actor.name}]"[:100]  # type: ignore[attr-defined]
            case.save()
        hold = place_hold(
            reason=options["reason"], actor=actor, recording_ids=options["recording"], campaign=campaign, case=case
        )
        from recordings.models import Recording

        return {
            "hold_id": hold.pk,
            "scope": hold.scope,
            "covers_now": Recording.objects.filter(hold.condition()).count(),
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
