import json
from typing import Any

from recordings.pipeline.lifecycle import run_lifecycle
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = "Run the pipeline once: sync, archive, cleanup, retention, in that order."

    def run(self, **options: Any) -> Any:
        return run_lifecycle(now=clock.now())

    def summary(self, data: dict[str, Any]) -> str:
        lines = []
        for stage, report in data.items():
            counts = ", ".join(f"{k.replace('_', ' ')}: {v}" for k, v in report.items() if not isinstance(v, list))
            lines.append(f"{stage:>8}  {counts}")
            lines.extend(f"          ! {error}" for error in report.get("errors", [])[:5])
        return "\n".join(lines) if lines else json.dumps(data)
