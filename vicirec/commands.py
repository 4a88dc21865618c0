"""The shape every vicirec management command shares: parse options, call one stage, print its report.

``--json`` prints one JSON object of counts on stdout and nothing else; otherwise a short human summary
(and progress on a terminal). Errors go to stderr with a non-zero exit and a sentence a person can act on.
"""

from __future__ import annotations

import json
import sys
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError


class StageCommand(BaseCommand):
    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--json", action="store_true", help="print one JSON object of counts on stdout")

    def run(self, **options: Any) -> Any:  # pragma: no cover - each command defines it
        raise NotImplementedError

    def handle(self, *args: Any, **options: Any) -> None:
        self.as_json = options["json"]
        try:
            report = self.run(**options)
        except DatabaseError as exc:
            raise CommandError(
                f"database error: {exc}. Check VICIREC_DATABASE_URL / VICIDIAL_DATABASE_URL and that the server is up."
            )
        data = report.as_dict() if hasattr(report, "as_dict") else report
        if self.as_json:
            self.stdout.write(json.dumps(data, default=str, sort_keys=True))
        else:
            self.stdout.write(self.summary(data))
        refused = self.refusal(data)
        if refused is not None:
            raise refused

    def refusal(self, data: dict[str, Any]) -> CommandError | None:
        """An outcome that is a result, printed like any other, but must still end the command non-zero
        (a safety stop waiting for a person); None by default."""
        return None

    def acting_user(self, username: str | None) -> Any:
        """The vicirec user named by ``--user`` (recorded in history and access logs), or None."""
        if not username:
            return None
        from django.contrib.auth import get_user_model

        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"no vicirec user {username!r}")
        return user

    def summary(self, data: dict[str, Any]) -> str:
        """``key: value, …``; a list shows its items (and an empty one nothing)."""
        return ", ".join(
            f"{key.replace('_', ' ')}: {'; '.join(map(str, value)) if isinstance(value, list) else value}"
            for key, value in data.items()
            if value != []
        )

    def progress(self, label: str) -> Any:
        """A progress callback drawing one line on a terminal; silent under --json or when piped."""
        if self.as_json or not sys.stderr.isatty():
            return None

        def show(done: int, total: int) -> None:
            sys.stderr.write(f"\r{label}: {done}/{total or '?'}")
            if total and done >= total:
                sys.stderr.write("\n")
            sys.stderr.flush()

        return show
