"""export_evidence (--hold ID | --case NAME | --recording ID…) --out FILE.zip: a discovery package for counsel."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from django.core.management.base import CommandError, CommandParser

from recordings.export import EvidenceExport, evidence_recordings
from vicirec import clock
from vicirec.actors import Actor
from vicirec.commands import StageCommand


class Command(StageCommand):
    help = (
        "Write an evidence package (audio, manifests, custody log, SHA256SUMS, README) for a hold, case or recordings."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        super().add_arguments(parser)
        which = parser.add_mutually_exclusive_group(required=True)
        which.add_argument("--hold", type=int, help="a legal hold id (legal_hold list shows them)")
        which.add_argument("--case", help="a case name")
        which.add_argument("--recording", type=int, nargs="+", help="VICIdial recording_id(s)")
        parser.add_argument("--out", required=True, help="the ZIP file to write")
        parser.add_argument("--user", help="the vicirec user exporting (recorded in the access log)")

    def run(self, **options: Any) -> Any:
        from holds.models import Case, LegalHold

        accessor = Actor.command("export_evidence", self.acting_user(options["user"]))
        if options["hold"] is not None:
            hold = LegalHold.objects.filter(pk=options["hold"]).select_related("case").first()
            if hold is None:
                raise CommandError(f"no legal hold #{options['hold']} (legal_hold list shows the active ones)")
            recordings, scope = evidence_recordings(hold=hold), str(hold)
        elif options["case"]:
            case = Case.objects.filter(name=options["case"]).first()
            if case is None:
                raise CommandError(f"no case named {options['case']!r}")
            recordings, scope = evidence_recordings(case=case), f"case {case}"
        else:
            ids = sorted(set(options["recording"]))
            recordings = evidence_recordings(recording_ids=ids)
            missing = sorted(set(ids) - set(recordings.values_list("pk", flat=True)))
            if missing:
                raise CommandError(f"no recording with id {', '.join(map(str, missing[:10]))} in the catalog")
            scope = f"recordings {', '.join(map(str, ids[:20]))}{' …' if len(ids) > 20 else ''}"
        out = Path(options["out"])
        if not out.parent.is_dir():
            raise CommandError(f"{out.parent} is not a folder; choose where to write the package with --out")
        tmp = out.with_name(f".{out.name}.part")
        try:
            with tmp.open("wb") as handle:
                report = EvidenceExport(recordings, who=accessor, scope=scope, now=clock.now()).write_to(handle)
            tmp.replace(out)
        finally:
            tmp.unlink(missing_ok=True)
        data = report.as_dict()
        data["out"] = str(out)
        return data
