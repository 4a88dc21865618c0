"""Claims: how two workers never take the same recording, and nothing is lost.

A worker claims a batch with one conditional UPDATE that only touches rows nobody holds (or whose lease
ran out: a claim left by ``kill -9`` expires after VICIREC_CLAIM_LEASE_SECONDS) and stamps them with a
token of its own; it then works only on the rows carrying its token. Its state changes then go through
recordings.custody (a conditional UPDATE on id, expected state and token, with the custody event), so a
change happens exactly once and the custody log always matches the catalog. No transaction is ever held
open across file or network I/O.
"""

from __future__ import annotations

import functools
import os
import socket
import uuid
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import connections, router, transaction
from django.db.models import Field

from recordings.custody import transition
from recordings.models import Recording, RecordingQuerySet


def new_token(stage: str) -> str:
    """A claim token naming the stage, host and process, unique per run."""
    return f"{_host_prefix(stage)}{os.getpid()}:{uuid.uuid4().hex[:8]}"[:100]


def _pid_alive(pid: int) -> bool:
    """Whether a process still runs; a zombie (killed, not yet reaped by its parent) counts as gone."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True  # no /proc: trust kill(0)
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def _host_prefix(stage: str) -> str:
    """How the tokens of this stage's runs on this host begin."""
    return f"{stage}@{socket.gethostname()}:"


def ended(token: str, stage: str) -> bool:
    """Whether ``token`` names a run of ``stage`` on this host whose process has ended (never this one)."""
    prefix = _host_prefix(stage)
    pid = token[len(prefix) :].split(":", 1)[0] if token.startswith(prefix) else ""
    return pid.isdigit() and int(pid) != os.getpid() and not _pid_alive(int(pid))


def live_claims(stage: str, *, now: datetime) -> RecordingQuerySet:
    """This host's live claims of ``stage``: a few hundred rows found through the claimed_until index. No
    order and no DISTINCT: either makes a planner walk the primary key over the whole catalog instead."""
    return Recording.objects.filter(claimed_until__gte=now, claimed_by__startswith=_host_prefix(stage)).order_by()


def release_dead_claims(stage: str, *, now: datetime) -> int:
    """Release live leases held by processes of this stage on this host that no longer exist.

    A worker killed with ``kill -9`` leaves its claims behind; other hosts wait for the lease to run out,
    but a restart on the same host can tell the process is gone and take the work back at once.
    """
    released = 0
    for token in sorted(set(live_claims(stage, now=now).values_list("claimed_by", flat=True))):
        if ended(token, stage):
            released += Recording.objects.filter(claimed_by=token).update(claimed_by="", claimed_until=None)
    return released


def claim(
    candidates: RecordingQuerySet, *, token: str, now: datetime, limit: int, order: tuple[str, ...] = ("start_time",)
) -> list[Recording]:
    """Claim up to ``limit`` of ``candidates`` for this token (oldest call first unless ``order`` says
    otherwise); returns those won."""
    ordering = (*order, "recording_id") if "recording_id" not in order else order
    ids = list(candidates.unclaimed(now).order_by(*ordering).values_list("pk", flat=True)[:limit])
    if not ids:
        return []
    lease = now + timedelta(seconds=settings.VICIREC_CLAIM_LEASE_SECONDS)
    candidates.model.objects.filter(pk__in=ids).unclaimed(now).update(claimed_by=token, claimed_until=lease)
    return list(Recording.objects.filter(pk__in=ids, claimed_by=token).select_related("campaign").order_by(*ordering))


def release(recording: Recording, *, token: str) -> None:
    """Give a claimed recording back untouched (e.g. its file is still being written)."""
    Recording.objects.filter(pk=recording.pk, claimed_by=token).update(claimed_by="", claimed_until=None)


def record(changes: Sequence[tuple[Recording, dict[str, Any]]], *, token: str) -> list[bool]:
    """Save fields on claimed recordings without changing their state (e.g. the hash chain before their
    upload), in one transaction; returns for each whether it was saved (False: the claim was lost).

    The same conditions as a transition (the id, the state and this worker's claim), as one parameterised
    UPDATE per set of fields, built once and sent with executemany: it runs on every upload thread, and an
    ORM-compiled statement committed per recording cost more than anything else but the upload itself.
    """
    if not changes:
        return []
    alias = router.db_for_write(Recording)
    connection = connections[alias]
    groups: dict[tuple[str, ...], list[int]] = {}
    for index, (_, fields) in enumerate(changes):
        groups.setdefault(tuple(fields), []).append(index)
    saved = [True] * len(changes)
    with transaction.atomic(using=alias), connection.cursor() as cursor:
        for names, indexes in groups.items():
            sql, columns = _record_sql(alias, names)
            rows = []
            for index in indexes:
                recording, fields = changes[index]
                values = [field.get_db_prep_save(fields[field.name], connection) for field in columns]
                rows.append([*values, recording.pk, recording.state, token])
            cursor.executemany(sql, rows)
            if cursor.rowcount != len(rows):  # a claim was lost: find out which (the others match again)
                for index, row in zip(indexes, rows, strict=True):
                    cursor.execute(sql, row)
                    saved[index] = cursor.rowcount == 1
    for (recording, fields), ok in zip(changes, saved, strict=True):
        if ok:
            for name, value in fields.items():
                setattr(recording, name, value)
    return saved


@functools.cache
def _record_sql(alias: str, names: tuple[str, ...]) -> tuple[str, list[Field]]:
    quote, meta = connections[alias].ops.quote_name, Recording._meta
    columns = [meta.get_field(name) for name in names]
    sql = "UPDATE {} SET {} WHERE {} = %s AND {} = %s AND {} = %s".format(
        quote(meta.db_table),
        ", ".join(f"{quote(field.column)} = %s" for field in columns),
        *(quote(meta.get_field(name).column) for name in ("recording_id", "state", "claimed_by")),
    )
    return sql, columns


def fail(recording: Recording, *, token: str, actor: str, error: str, now: datetime, permanent: bool = False) -> bool:
    """Record a failure with its error, count the attempt and set the back-off before the next one.

    A permanent failure (one a retry cannot fix, such as a key holding different content) waits the
    longest back-off and says that it needs a person.
    """
    attempts = recording.attempts + 1
    recording.attempts = attempts
    delay = timedelta(days=1) if permanent else recording.retry_delay()
    message = f"needs a person: {error}" if permanent else error
    # A recording already in the bucket keeps its state; one still waiting for upload becomes "failed".
    to = recording.state if recording.state in Recording.STORED_STATES else Recording.State.FAILED
    return transition(
        recording,
        to=to,
        token=token,
        actor=actor,
        detail=message,
        now=now,
        error=message[:4000],
        needs_person=permanent,
        attempts=attempts,
        next_attempt_at=now + delay,
    )
