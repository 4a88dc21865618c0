import json
from typing import Any

from django.core.management.base import CommandError

from recordings.pipeline.lifecycle import run_lifecycle
from recordings.pipeline.retention import SAFETY_STOP_EXIT_CODE
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Run the pipeline once: sync, archive, cleanup, retention, in that order."

    def run(self, **options: Any) -> Any:
        return run_lifecycle(now=clock.now())

    def refusal(self, data: dict[str, Any]) -> CommandError | None:
        """Retention's safety stop: the other stages' results are printed, then exit SAFETY_STOP_EXIT_CODE."""
        stopped = data.get("retention", {}).get("stopped")
        return CommandError(f"retention {stopped}", returncode=SAFETY_STOP_EXIT_CODE) if stopped else None

    def summary(self, data: dict[str, Any]) -> str:
        lines = []
        for stage, report in data.items():
            counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items() if not isinstance(v, list))
            lines.append(f"{stage:>8}  {counts}")
            lines.extend(f"          ! {error}" for error in report.get("errors", [])[:5])
            if report.get("stopped"):
                lines.append(f"          ! {report['stopped']}")
        return "\n".join(lines) if lines else json.dumps(data)
