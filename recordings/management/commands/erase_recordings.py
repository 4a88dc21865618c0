from typing import Any

from django.core.management.base import CommandParser

from recordings.pipeline.erasure import erase_recordings
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = (
        "Finish erasures: take up VICIdial's recording_log_deletion_queue, delete the cloud objects and local "
        "copies of the recordings no legal hold covers, scrub the caller from vicirec's records, certify each."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="show what would be erased; change nothing")
        parser.add_argument("--limit", type=int, help="erase at most this many recordings in this run")

    def run(self, **options: Any) -> Any:
        return erase_recordings(now=clock.now(), dry_run=options["dry_run"], limit=options["limit"])
