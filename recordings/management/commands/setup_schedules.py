from typing import Any

from django.core.management.base import CommandParser

from recordings.ops.schedules import setup_schedules
from vicirec import clock
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = (
        "Create or update the django-q2 schedules (idempotent): sync, retention, verify and stats on the central "
        "cluster; archive and cleanup per telephony server (VICIREC_NODES), routed to that server's cluster."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        parser.add_argument(
            "--nodes", help="comma list of server_ip values to schedule (default VICIREC_NODES, see docs)"
        )
        parser.add_argument("--prune", action="store_true", help="delete vicirec.* schedules no longer planned")

    def run(self, **options: Any) -> Any:
        nodes = [n for n in options["nodes"].split(",") if n] if options["nodes"] else None
        return setup_schedules(now=clock.now(), nodes=nodes, prune=options["prune"])

    def summary(self, data: dict[str, Any]) -> str:
        lines = [
            f"nodes: {', '.join(n or '(all servers, this machine)' for n in data['nodes'])}",
            f"created: {len(data['created'])}, updated: {len(data['updated'])}",
        ]
        if data["stale"]:
            lines.append(f"stale (not planned; --prune deletes them): {', '.join(data['stale'])}")
        if data.get("foreign"):
            lines.append(f"not running a vicirec task (--prune deletes them): {', '.join(data['foreign'])}")
        if data["deleted"]:
            lines.append(f"deleted: {', '.join(data['deleted'])}")
        return "\n".join(lines)
