"""Set a retention policy from the command line.

A change that shortens the retention of any recording (retention.approval) needs ``--approved-by USER``
naming a Legal approver (recorded in the policy's history with ``--reason``); without it the change is filed
as a PolicyProposal and the command exits with code 3. ``--dry-run`` shows the impact and saves nothing.
"""

import json
from typing import Any

from django.core.exceptions import ValidationError
from django.core.management.base import CommandError, CommandParser

from recordings.models import Campaign
from retention import classes
from retention.approval import approvers, describe, is_approver, shortenings
from retention.forecast import shortening_impact
from retention.models import PolicyProposal, RetentionPolicy
from vicirec import clock
from vicirec.actors import Actor
from vicirec.commands import StageCommand

PROPOSED_FIELDS = ("keep_local_days", "retain_days", "record_class", "codec", "override_reason")


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
        parser.add_argument(
            "--approved-by", metavar="USER", help="the Legal approver who approves a change that shortens retention"
        )

    def run(self, **options: Any) -> Any:
        approver = self._approver(options["approved_by"])
        policy = self._policy(options)
        policy.keep_local_days = options["keep_local_days"]
        policy.retain_days = options["retain_days"]
        for option in ("record_class", "codec", "storage_class"):
            if options[option]:
                setattr(policy, option, options[option])
        policy.override_reason = options["override_reason"] or (policy.override_reason if policy.below_floor else "")
        changes = shortenings(policy)
        result = {
            "policy": str(policy),
            "retain_days": policy.retain_days,
            "keep_local_days": policy.keep_local_days,
            "record_class": policy.record_class,
            "storage_class": policy.storage_class,
            "floor_days": policy.klass.floor_days,
            "shortens": describe(changes),
            "needs_approval": bool(changes),
            "impact": shortening_impact(changes, now=clock.now()),
            "saved": False,
        }
        try:
            policy.clean()
        except ValidationError as exc:
            raise CommandError(" ".join(m for msgs in exc.message_dict.values() for m in msgs))
        if options["dry_run"]:
            return result
        actor = Actor.command("set_policy")
        reason = f"{options['reason'] or 'policy set'} [{actor.name}]"
        if changes and approver is None:
            self._file_proposal(policy, options, actor, result)
        policy._history_user = approver or actor.user  # type: ignore[attr-defined]
        policy._change_reason = reason[:100]  # type: ignore[attr-defined]
        if changes and not options["reason"]:
            raise CommandError("a change that shortens retention needs --reason (kept in the policy's history)")
        policy.save(approved_by=approver, reason=reason)
        return result | {"saved": True}

    def _approver(self, username: str | None) -> Any:
        user = self.acting_user(username)
        if user is not None and not is_approver(user):
            raise CommandError(
                f"{username!r} may not approve retention changes (needs retention.approve_policy_override, "
                "the Legal approver role)"
            )
        return user

    def _policy(self, options: dict[str, Any]) -> RetentionPolicy:
        if bool(options["campaign_id"]) == options["default"]:
            raise CommandError("name one CAMPAIGN_ID or give --default")
        if options["default"]:
            return RetentionPolicy.objects.default()
        campaigns = list(Campaign.objects.filter(campaign_id=options["campaign_id"]))
        if len(campaigns) != 1:
            raise CommandError(
                f"{len(campaigns) or 'no'} campaigns named {options['campaign_id']!r} in the catalog"
                + ("; run sync_recordings first" if not campaigns else "")
            )
        return RetentionPolicy.objects.filter(campaign=campaigns[0]).first() or RetentionPolicy(
            campaign=campaigns[0], record_class="general"
        )

    def _file_proposal(self, policy: RetentionPolicy, options: dict[str, Any], actor: Actor, result: dict) -> None:
        """File the shortening as a proposal for a Legal approver, and stop with exit code 3."""
        proposal = PolicyProposal(
            campaign_id=policy.campaign_id,
            proposed_by=actor.user,
            proposed_at=clock.now(),
            reason=options["reason"] or f"filed by set_policy without an approver [{actor.name}]",
            impact=result["impact"],
            **{name: getattr(policy, name) for name in PROPOSED_FIELDS},
        )
        proposal._change_reason = f"proposed: {proposal.reason}"[:100]  # type: ignore[attr-defined]
        proposal.save()
        who = ", ".join(approvers()) or "nobody yet: give a user the Legal approver role"
        raise CommandError(
            f"not applied: this change shortens retention ({result['shortens']}) and needs a Legal approver. "
            f"Policy proposal #{proposal.pk} was filed; it can be approved in the admin (Retention › Policy "
            f"proposals) by: {who}. Or run again with --approved-by USER.",
            returncode=3,
        )

    def summary(self, data: dict[str, Any]) -> str:
        return json.dumps(data, indent=2, default=str)
