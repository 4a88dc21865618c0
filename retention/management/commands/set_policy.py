import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from recordings.models import Campaign
from retention import classes
from retention.forecast import policy_change_impact
from retention.models import RetentionPolicy
from vicirec import clock
from vicirec.actors import Actor
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Create or change the retention policy of a campaign (or the default policy)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("campaign_id", nargs="?", help="VICIdial campaign or in-group id")
        parser.add_argument("--default", action="store_true", help="the policy of every campaign without its own")
        parser.add_argument("--keep-local-days", type=int, required=True)
        parser.add_argument("--retain-days", type=int, required=True)
        parser.add_argument(
            "--record-class", choices=sorted(classes.RECORD_CLASSES), help="what kind of record this is"
        )
        parser.add_argument("--codec", choices=["mp3", "opus", "flac", "none"])
        parser.add_argument(
            "--storage-class",
            choices=["STANDARD", "STANDARD_IA", "GLACIER_IR"],
            help="the class new uploads are written with (retier moves those already stored)",
        )
        parser.add_argument("--override-reason", default="", help="required to retain less than the class's minimum")
        parser.add_argument("--reason", default="", help="why the policy changes (kept in its history)")
        parser.add_argument("--dry-run", action="store_true", help="show the impact of the change; save nothing")

    def run(self, **options: Any) -> Any:
        if bool(options["campaign_id"]) == options["default"]:
            raise CommandError("name one CAMPAIGN_ID or give --default")
        if options["default"]:
            policy = RetentionPolicy.objects.default()
        else:
            campaigns = list(Campaign.objects.filter(campaign_id=options["campaign_id"]))
            if len(campaigns) != 1:
                raise CommandError(
                    f"{len(campaigns) or 'no'} campaigns named {options['campaign_id']!r} in the catalog"
                    + ("; run sync_recordings first" if not campaigns else "")
                )
            policy = RetentionPolicy.objects.filter(campaign=campaigns[0]).first() or RetentionPolicy(
                campaign=campaigns[0], record_class="general"
            )
        impact = (
            policy_change_impact(policy, new_retain_days=options["retain_days"], now=clock.now()) if policy.pk else {}
        )
        policy.keep_local_days = options["keep_local_days"]
        policy.retain_days = options["retain_days"]
        for option in ("record_class", "codec", "storage_class"):
            if options[option]:
                setattr(policy, option, options[option])
        policy.override_reason = options["override_reason"] or (policy.override_reason if policy.below_floor else "")
        result = {
            "policy": str(policy),
            "retain_days": policy.retain_days,
            "keep_local_days": policy.keep_local_days,
            "record_class": policy.record_class,
            "storage_class": policy.storage_class,
            "floor_days": policy.klass.floor_days,
            "impact": impact,
            "saved": False,
        }
        try:
            policy.clean()
        except ValidationError as exc:
            raise CommandError(" ".join(m for msgs in exc.message_dict.values() for m in msgs))
        if options["dry_run"]:
            return result
        actor = Actor.command("set_policy")
        policy._history_user = actor.user  # type: ignore[attr-defined]
        policy._change_reason = f"{options['reason'] or 'policy set'} [{actor.name}]"[:100]  # type: ignore[attr-defined]
        policy.save()
        return result | {"saved": True}

    def summary(self, data: dict[str, Any]) -> str:
        return json.dumps(data, indent=2, default=str)
