from typing import Any

from django.core.management.base import CommandParser

from recordings.pipeline.archive import archive_due
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Compress, upload and verify the recordings past their campaign's local window (this node's disk)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit", type=int, help="archive at most this many recordings")
        parser.add_argument("--threads", type=int, help="parallel uploads (default VICIREC_UPLOAD_THREADS)")

    def run(self, **options: Any) -> Any:
        return archive_due(
            now=clock.now(), limit=options["limit"], threads=options["threads"], progress=self.progress("archiving")
        )
