"""Who acts: the one description of the person or command behind a change or an access.

Changes of record (placing or releasing a legal hold, setting a retention policy) stamp ``user`` and
``name`` into their history; the access log (playback, downloads, evidence exports) also records where the
access came from (``ip``, ``user_agent``). ``name`` is what people read in those logs, so its wording is
part of the record: a signed-in person is their user name, a command is "<user> via <command>".

Django-light on purpose: it only reads the user and request it is handed (nothing is imported from Django at
run time), so every app, the recordings pipeline included, can use it without importing another app.
"""

from __future__ import annotations

import getpass
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from django.contrib.auth.models import AbstractBaseUser
    from django.http import HttpRequest

USER_AGENT_LIMIT = 300  # AccessEvent.user_agent's length


@dataclass(frozen=True)
class Actor:
    """Who is acting: a signed-in user (with the request's address when there is one), or a command run by a
    vicirec user (``--user``) or by an operating-system user."""

    user: AbstractBaseUser | None
    name: str
    ip: str | None = None
    user_agent: str = ""

    @classmethod
    def person(cls, user: AbstractBaseUser) -> Actor:
        """A signed-in user, when where they act from is not recorded (holds, policies)."""
        return cls(user=user, name=user.get_username())

    @classmethod
    def from_request(cls, request: HttpRequest) -> Actor:
        """The request's signed-in user, with its client address and browser, for the access log."""
        return cls(
            user=request.user,  # type: ignore[arg-type]
            name=request.user.get_username(),
            ip=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:USER_AGENT_LIMIT],
        )

    @classmethod
    def command(cls, command: str, user: AbstractBaseUser | None = None) -> Actor:
        """A management command run for ``user`` (its --user), else by whoever runs it on this machine; the
        access log names the command as the client (there is no address)."""
        who = user.get_username() if user is not None else f"OS user {getpass.getuser()}"
        return cls(user=user, name=f"{who} via {command}", user_agent=f"manage.py {command}")
