import json
from typing import Any

from django.core.management.base import CommandError

from recordings.ops.status import pipeline_status
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = (
        "Show backlog per server, the last successful run of each scheduled stage, failures and disk usage. "
        "Exits 1 (with the reasons on stderr) when something needs a person, for cron or monitoring."
    )

    def handle(self, *args: Any, **options: Any) -> None:
        status = pipeline_status(now=clock.now())
        data = status.as_dict()
        if options["json"]:
            self.stdout.write(json.dumps(data, default=str, sort_keys=True))
        else:
            self.stdout.write(self.summary(data))
        if status.needs_person:
            raise CommandError("the pipeline needs a person: " + "; ".join(status.problems))

    def summary(self, data: dict[str, Any]) -> str:
        lines = ["backlog (server: due for upload / in local window / missing / failed / to clear, oldest due)"]
        for server, b in data["backlog"].items():
            age = f"{b['oldest_due_age_hours']} h" if b["oldest_due_age_hours"] is not None else "-"
            lines.append(
                f"  {server or '(no server)'}: {b['due_for_upload']} / {b['in_local_window']} / {b['missing']} / "
                f"{b['failed']} / {b['to_clear']}, {age}"
            )
        lines.append("stages (last success)")
        for s in data["stages"]:
            flag = "  STALLED" if s["stalled"] else ""
            lines.append(f"  {s['name']} [{s['cluster']}] every {s['interval_minutes']} min: {s['last_success']}{flag}")
        lines.append("disks")
        for node, d in data["disks"].items():
            forecast = f", full in {d['days_to_full']} days" if d["days_to_full"] is not None else ""
            lines.append(f"  {node or 'this machine'}: {d['percent']}% of {d['path']}{forecast}")
        lines += [f"failed: {f['recording_id']} ({f['server_ip']}): {f['error'][:120]}" for f in data["failures"][:5]]
        e = data.get("erasures") or {}
        if e:
            lines.append(
                f"erasures: {e['pending']} pending, {e['awaiting_approval']} awaiting approval, "
                f"{e['refused_under_hold']} refused under hold, {e['erased_30_days']} erased in 30 days"
            )
        lines += [f"note: {n}" for n in data["notices"]]
        lines.append("OK" if not data["needs_person"] else f"{len(data['problems'])} problem(s), see stderr")
        return "\n".join(lines)
