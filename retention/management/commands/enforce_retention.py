from typing import Any

from django.core.management.base import CommandError, CommandParser

from recordings.pipeline.retention import SAFETY_STOP_EXIT_CODE, enforce_retention
from retention.forecast import forecast
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Delete expired copies (local and cloud) of recordings no legal hold covers, with a certificate for each."

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="list what would be deleted; delete nothing")
        parser.add_argument(
            "--confirm", action="store_true", help="allow a run larger than VICIREC_RETENTION_MAX_SHARE"
        )
        parser.add_argument("--limit", type=int, help="delete at most this many recordings in this run")
        parser.add_argument("--forecast", action="store_true", help="print what expires in the next 30 and 90 days")

    def run(self, **options: Any) -> Any:
        now = clock.now()
        if options["forecast"]:
            return forecast(now=now)
        return enforce_retention(
            now=now, dry_run=options["dry_run"], confirm=options["confirm"], limit=options["limit"]
        )

    def refusal(self, data: dict[str, Any]) -> CommandError | None:
        """The safety stop: printed as the run's result, then exit SAFETY_STOP_EXIT_CODE (README)."""
        if data.get("stopped"):
            return CommandError(data["stopped"], returncode=SAFETY_STOP_EXIT_CODE)
        return None

    def summary(self, data: dict[str, Any]) -> str:
        if "windows" in data:
            lines = []
            for window in data["windows"]:
                lines.append(
                    f"next {window['days']} days: {window['recordings']} recordings, {window['bytes']} bytes "
                    f"({window['held_recordings']} held)"
                )
                lines.extend(
                    f"  {c['campaign']}: {c['recordings']} recordings, {c['bytes']} bytes, {c['held_recordings']} held"
                    for c in window["by_campaign"]
                )
            return "\n".join(lines)
        if data["dry_run"]:
            going = data["expired_total"] - data["held"]
            ids = ", ".join(map(str, data["would_delete"][:50])) + (" …" if going > 50 else "")
            return (
                f"dry run, nothing deleted: {data['expired_total']} expired, {data['held']} of them held; "
                f"would delete {going}: {ids}"
            )
        if data["stopped"]:
            return data["stopped"]
        return super().summary({k: v for k, v in data.items() if k != "would_delete"})
