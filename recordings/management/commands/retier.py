from typing import Any

from django.core.management.base import CommandParser

from recordings.pipeline.tiering import retier
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = (
        "Move objects already in the bucket to their policy's storage class: a server-side copy with the "
        "SHA-256 kept and verified, then the old version removed. Held recordings are left alone."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--limit", type=int, default=None, help="move at most this many objects")
        parser.add_argument("--dry-run", action="store_true", help="count what is due; move nothing")

    def run(self, **options: Any) -> Any:
        return retier(now=clock.now(), limit=options["limit"], dry_run=options["dry_run"])
