from typing import Any

from django.conf import settings
from django.core.management.base import CommandError, CommandParser

from recordings.demo.generate import DemoReport, gdpr_purge, generate_demo
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Generate the demo VICIdial database (SQLite under VICIREC_HOME), its spool of WAV files and campaigns."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--calls", type=int, default=120, help="number of recorded calls (default 120)")
        parser.add_argument("--seed", type=int, default=7)
        parser.add_argument(
            "--gdpr-purge",
            action="store_true",
            help="do what VICIdial's 'Confirm purge' does to one lead (GDPR setting on); erase_recordings finishes it",
        )

    def run(self, **options: Any) -> Any:
        database = settings.DATABASES["vicidial"]
        if database["ENGINE"] != "vicirec.db.vicidial_sqlite":
            raise CommandError(
                "demo only writes the embedded SQLite VICIdial database; unset VICIDIAL_DATABASE_URL to use it."
            )
        if options["gdpr_purge"]:
            return gdpr_purge(now=clock.now())
        path = settings.DEMO_DIR / "vicidial.sqlite3"
        if path.exists():
            self.stderr.write(
                f"The demo already exists in {settings.DEMO_DIR}; left as it is "
                f"(remove {settings.VICIREC_HOME} to start over)."
            )
            return DemoReport()
        settings.DEMO_DIR.mkdir(parents=True, exist_ok=True)
        spool = settings.VICIREC_SPOOL_DIRS[0]
        return generate_demo(spool=spool, now=clock.now(), calls=options["calls"], seed=options["seed"])
