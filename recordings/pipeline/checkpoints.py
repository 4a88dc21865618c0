"""Signed checkpoints of the custody ledger, anchored in the bucket (docs/custody-ledger.md).

``make_checkpoint`` signs the ledger's head (count, head hash, the Merkle root of the entries, time, key id)
with the Ed25519 key of ``VICIREC_CUSTODY_KEY_FILE`` (generated on first use, mode 0600) and writes the
signed text and its raw signature to the bucket as objects of their own, under COMPLIANCE Object Lock
retention where the bucket has Object Lock. A later rewrite of the database cannot rewrite what was
anchored there. Each key's public half is published next to the checkpoints (``custody/keys/<key id>.pem``)
and introduced in the ledger once (a ``custody_key`` entry), and every checkpoint is itself a ledger entry
naming the key that signed it, so rotating the key never breaks the verification of older checkpoints.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from django.conf import settings
from django.db import transaction

from recordings import ledger, ledger_tree
from recordings.lib import ledger as chain
from recordings.models import Checkpoint, LedgerEntry
from recordings.pipeline.target import get_target
from vicirec.reports import Report

PREFIX = "custody/checkpoints/"
KEYS = "custody/keys/"


def signing_key() -> chain.SigningKey:
    return chain.load_key(Path(settings.VICIREC_CUSTODY_KEY_FILE))


def key_object(key_id: str) -> str:
    return f"{KEYS}{key_id}.pem"


def _introduce(key: chain.SigningKey, target: Any, now: datetime) -> None:
    """Publish the key's public half in the bucket and the ledger, once per key."""
    target.put_bytes(key_object(key.key_id), key.public_pem, content_type="application/x-pem-file")
    if not LedgerEntry.objects.filter(kind="custody_key", ref=key.key_id).exists():
        content = {"key_id": key.key_id, "public_key": key.public_pem.decode("ascii"), "introduced_at": now}
        ledger.append_record("custody_key", content, ref=key.key_id)


@dataclass
class CheckpointReport(Report):
    count: int
    head: str
    root: str
    key_id: str
    object_key: str
    locked_until: str | None


def make_checkpoint(*, now: datetime) -> CheckpointReport:
    """Sign the ledger's current head and anchor it in the bucket; record it as a ledger entry."""
    key, target = signing_key(), get_target()
    _introduce(key, target, now)
    count, head = ledger.head()
    root = ledger_tree.root(count)
    body = chain.CheckpointBody(count, head, now.isoformat(timespec="seconds"), key.key_id, root)
    text = body.text().encode("ascii")
    signature = key.sign(text)
    name = f"{PREFIX}{count:012d}-{now:%Y%m%dT%H%M%S%f}"
    retain = now + timedelta(days=settings.VICIREC_CUSTODY_LOCK_DAYS)
    stored, locked = target.put_bytes(f"{name}.txt", text, content_type="text/plain", retain_until=retain)
    target.put_bytes(f"{name}.sig", signature, content_type="application/octet-stream", retain_until=retain)
    with transaction.atomic():
        checkpoint = Checkpoint.objects.create(
            count=count,
            head_sha256=head,
            root_sha256=root,
            at=now,
            key_id=key.key_id,
            text=text.decode("ascii"),
            signature=signature.hex(),
            object_key=f"{name}.txt",
            version_id=stored.version_id,
            locked_until=locked,
        )
        content = {
            "count": count,
            "head": head,
            "root": root,
            "time": body.time,
            "key_id": key.key_id,
            "object": f"{name}.txt",
        }
        ledger.append_record("checkpoint", {**content, "signature": signature.hex()}, ref=str(checkpoint.pk))
    return CheckpointReport(count, head, root, key.key_id, f"{name}.txt", locked.isoformat() if locked else None)


def rotate_key() -> tuple[str, str]:
    """Retire the signing key (kept beside it as ``<file>.<key id>.retired``) and make a new one.

    Older checkpoints stay verifiable: their key's public half is in the bucket and in the ledger.
    Returns (old key id, new key id).
    """
    path = Path(settings.VICIREC_CUSTODY_KEY_FILE)
    old = chain.load_key(path)
    path.rename(path.with_name(f"{path.name}.{old.key_id}.retired"))
    return old.key_id, chain.load_key(path).key_id
