import json
from typing import Any

from django.core.management.base import CommandError, CommandParser

from recordings.pipeline.verify import verify_archive
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Re-read cloud checksums of the N recordings verified longest ago and report mismatches (exit 1 if any)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--sample", type=int, default=100, help="how many recordings to check (default 100)")

    def run(self, **options: Any) -> Any:
        report = verify_archive(now=clock.now(), sample=options["sample"])
        if not report.clean:
            if self.as_json:
                self.stdout.write(json.dumps(report.as_dict(), sort_keys=True))
            raise CommandError(
                f"{report.missing} missing, {report.mismatched} mismatched and {report.unreachable} unreachable of "
                f"{report.checked} checked: " + "; ".join(report.problems[:5])
            )
        return report
