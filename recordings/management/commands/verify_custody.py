import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from recordings.pipeline.checkpoints import make_checkpoint
from recordings.pipeline.custody_check import verify_custody
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = (
        "Recompute the custody ledger's hash chain, check every signed checkpoint in the bucket and that the "
        "chain still holds each anchored head, compare the ledger with the records it copies and the catalog "
        "with the deletion certificates. Exit 1 naming the first broken entry."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--checkpoint", action="store_true", help="sign and anchor a new checkpoint first")

    def run(self, **options: Any) -> Any:
        if options["checkpoint"]:
            make_checkpoint(now=clock.now())
        report = verify_custody(now=clock.now())
        if not report.ok:
            if self.as_json:
                self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
            raise CommandError(f"custody ledger BROKEN at {report.problems[0]} ({len(report.problems)} problem(s))")
        return report
