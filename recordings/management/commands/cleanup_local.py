from typing import Any

from django.core.management.base import CommandParser

from recordings.pipeline.cleanup import cleanup_local
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Delete local files whose cloud copy the bucket confirms again (and whose hash still matches)."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit", type=int, help="clear at most this many recordings")

    def run(self, **options: Any) -> Any:
        return cleanup_local(now=clock.now(), limit=options["limit"])
