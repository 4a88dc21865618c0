from typing import Any

from django.core.management.base import CommandParser

from recordings.pipeline.catalog import sync_recordings
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Catalog new recording_log rows and campaigns from VICIdial's database (read-only)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit", type=int, help="catalog at most this many rows in this run")
        parser.add_argument("--batch-size", type=int, help="rows per batch (default VICIREC_SYNC_BATCH)")

    def run(self, **options: Any) -> Any:
        return sync_recordings(
            now=clock.now(),
            limit=options["limit"],
            batch_size=options["batch_size"],
            progress=self.progress("cataloging"),
        )
