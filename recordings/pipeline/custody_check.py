"""verify_custody: recompute the custody ledger and check it against its anchors and the records it copies.

1. Checkpoints are read from the bucket (not the database): each signature is checked with the public key
   published beside it, whose id must match the key named in the signed text.
2. The chain is walked in ``seq`` order, in pages (keyset pagination, so memory stays flat at any size):
   no gap, each entry's ``prev_sha256`` is the entry before it, its content hashes to ``content_sha256``,
   its entry hash recomputes, and at every anchored count the entry hash is the anchored head and the
   Merkle root of the entries so far (built as the walk goes, log2(n) hashes of memory) the anchored root.
3. Each entry that copies a row (custody event, access, certificate, hold or policy history) is compared
   with that row as it is now; rows the ledger never saw are counted per table.
4. The catalog is cross-checked with the deletion certificates (same hashes; no deleted recording without one).

Problems name the entry (``entry 1234 (custody_event 77)``); the first one is the first broken entry.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db.models import Count, F, Q

from recordings import ledger
from recordings.lib import ledger as chain
from recordings.lib.storage import StorageError
from recordings.models import Checkpoint, CustodyCheck, LedgerEntry, Recording
from recordings.pipeline.checkpoints import PREFIX, key_object
from recordings.pipeline.target import get_target
from vicirec.reports import Report

PAGE = 5000
COLUMNS = ("seq", "kind", "ref", "content", "content_sha256", "prev_sha256", "entry_sha256", "redacted_for")


@dataclass
class CustodyReport(Report, limits={"problems": 50}):
    entries: int = 0
    checkpoints: int = 0
    keys: list[str] = field(default_factory=list)
    head: str = chain.GENESIS
    seconds: float = 0.0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def derived(self) -> dict[str, Any]:
        return {"ok": self.ok, "first_problem": self.problems[0] if self.problems else ""}


def _read(target: Any, key: str) -> bytes:
    return b"".join(target.iter_object(key))


def anchored_heads(report: CustodyReport) -> dict[int, tuple[str, str, str]]:
    """{count: (head, object key, Merkle root or "")} of every checkpoint in the bucket whose signature holds."""
    target, heads, keys = get_target(), {}, {}
    for name in sorted(k for k in target.iter_keys(PREFIX) if k.endswith(".txt")):
        try:
            text, signature = _read(target, name), _read(target, name[:-4] + ".sig")
            body = chain.parse_checkpoint(text.decode("ascii"))
            if body.key_id not in keys:
                keys[body.key_id] = _read(target, key_object(body.key_id))
            pem = keys[body.key_id]
        except (StorageError, ValueError, UnicodeDecodeError) as exc:
            report.problems.append(f"checkpoint {name}: unreadable ({exc})")
            continue
        if chain.key_id(pem) != body.key_id or not chain.signature_ok(pem, text, signature):
            report.problems.append(f"checkpoint {name}: the signature does not verify with key {body.key_id}")
            continue
        if heads.get(body.count, (body.head,))[0] != body.head:
            report.problems.append(f"checkpoint {name}: two signed heads for count {body.count}")
        heads[body.count] = (body.head, name, body.root)
    report.checkpoints, report.keys = len(heads), sorted(keys)
    for row in Checkpoint.objects.order_by("count").values("count", "head_sha256", "object_key"):
        if heads.get(row["count"], ("",))[0] != row["head_sha256"]:
            report.problems.append(f"checkpoint {row['object_key']}: in the database but not anchored in the bucket")
    return heads


def _walk_page(
    rows: list[tuple], state: dict[str, Any], heads: dict[int, tuple[str, str, str]], report: CustodyReport
) -> None:
    tree: chain.Frontier = state["tree"]
    for seq, kind, ref, content, content_hash, prev, entry_hash, redacted_for in rows:
        name = f"entry {seq} ({kind} {ref})".replace(" )", ")")
        if seq != state["seq"] + 1:
            report.problems.append(f"{name}: out of sequence, expected entry {state['seq'] + 1}")
        if prev != state["prev"]:
            report.problems.append(f"{name}: its previous-entry hash is not the hash of entry {state['seq']}")
        # A redacted entry keeps the hash of what it said before the erasure (redactions_certified checks it).
        if redacted_for is None and chain.content_sha256(content) != content_hash:
            report.problems.append(f"{name}: its content does not hash to its content_sha256")
        if chain.entry_sha256(seq, kind, prev, content_hash) != entry_hash:
            report.problems.append(f"{name}: its entry hash does not recompute")
        tree.add(entry_hash)
        if seq in heads and heads[seq][0] != entry_hash:
            report.problems.append(f"{name}: differs from the head anchored in {heads[seq][1]}")
        if seq in heads and heads[seq][2] and tree.size == seq and tree.root() != heads[seq][2]:
            report.problems.append(
                f"{name}: the entries up to it do not make the Merkle root signed in {heads[seq][1]}"
            )
        state["seq"], state["prev"] = seq, entry_hash
    report.entries = state["seq"]


def _unchanged(content: str, row: dict[str, Any], source: ledger.Source) -> bool:
    """The row still has the values recorded (fields added to the table later are not compared)."""
    if chain.canonical(source.content(row)) == content:  # the common case: same columns, same values
        return True
    recorded = json.loads(content)
    names = list(recorded.get("row", {}))
    if recorded.get("model") != source.model._meta.label_lower or any(name not in row for name in names):
        return False
    return chain.canonical({"model": recorded["model"], "row": {n: chain.plain(row[n]) for n in names}}) == content


def _cross_check(rows: list[tuple], report: CustodyReport) -> None:
    """Compare each entry that copies a row with the row as it is now (one query per kind and page)."""
    by_kind: dict[str, dict[str, tuple[int, str]]] = {}
    for seq, kind, ref, content, *_ in rows:
        if kind in ledger.sources():
            by_kind.setdefault(kind, {})[ref] = (seq, content)
    for kind, entries in by_kind.items():
        source = ledger.sources()[kind]
        what = source.model._meta.verbose_name
        current = {str(row[source.pk]): row for row in source.rows(entries)}
        for ref, (seq, content) in sorted(entries.items(), key=lambda item: item[1][0]):
            row = current.get(ref)
            if row is None:
                report.problems.append(f"entry {seq} ({kind} {ref}): the {what} is gone")
            elif not _unchanged(content, row, source):
                report.problems.append(f"entry {seq} ({kind} {ref}): the {what} was changed after it was recorded")


def walk_chain(heads: dict[int, tuple[str, str, str]], report: CustodyReport) -> None:
    state: dict[str, Any] = {"seq": 0, "prev": chain.GENESIS, "tree": chain.Frontier()}
    last = -1
    while True:
        rows = list(LedgerEntry.objects.filter(seq__gt=last).order_by("seq").values_list(*COLUMNS)[:PAGE])
        if not rows:
            break
        _walk_page(rows, state, heads, report)
        _cross_check(rows, report)
        last = rows[-1][0]
    report.head = state["prev"]
    count, head = ledger.head()
    if (count, head) != (state["seq"], state["prev"]):
        report.problems.append(f"the ledger head says {count} entries ending {head[:12]}, the chain has {state['seq']}")
    for anchored in sorted(c for c in heads if c > state["seq"]):
        report.problems.append(f"{heads[anchored][1]} anchors {anchored} entries, the ledger has only {state['seq']}")


def unledgered_rows(report: CustodyReport) -> None:
    """Rows of the copied tables that have no ledger entry (written around the ledger)."""
    counted = dict(LedgerEntry.objects.values_list("kind").annotate(n=Count("id")).order_by())
    for kind, source in ledger.sources().items():
        total = source.model._default_manager.count()
        if total == counted.get(kind, 0):
            continue
        last: Any = None
        while len(report.problems) < 100:
            page = source.model._default_manager.order_by(source.pk)
            pks = list(
                (page.filter(pk__gt=last) if last is not None else page).values_list(source.pk, flat=True)[:PAGE]
            )
            if not pks:
                break
            seen = set(
                LedgerEntry.objects.filter(kind=kind, ref__in=[str(p) for p in pks]).values_list("ref", flat=True)
            )
            report.problems += [f"{kind} {p}: a row the ledger has no entry for" for p in pks if str(p) not in seen]
            last = pks[-1]
        if total < counted.get(kind, 0):
            report.problems.append(f"{kind}: the ledger has {counted.get(kind, 0)} entries for {total} rows")


def redactions_certified(report: CustodyReport) -> None:
    """Every redacted entry is covered by the ledgered erasure certificate of the recording it names."""
    from retention.models import ErasureCertificate

    redacted = LedgerEntry.objects.exclude(redacted_for=None)
    certified = ErasureCertificate.objects.values("recording_id")
    ledgered = LedgerEntry.objects.filter(kind="erasure_certificate").values("recording_id")
    for seq, kind, ref, recording_id in (
        redacted.exclude(redacted_for__in=certified.filter(recording_id__in=ledgered))
        .order_by("seq")
        .values_list("seq", "kind", "ref", "redacted_for")[:50]
    ):
        report.problems.append(
            f"entry {seq} ({kind} {ref}): redacted, but no ledgered erasure certificate of recording {recording_id}"
        )


def certificates_match_catalog(report: CustodyReport) -> None:
    differing = Recording.objects.filter(certificate__isnull=False).filter(
        ~Q(certificate__stored_sha256=F("stored_sha256")) | ~Q(certificate__original_sha256=F("original_sha256"))
    )
    for pk in differing.values_list("pk", flat=True)[:20]:
        report.problems.append(f"recording {pk}: its catalog hashes differ from its deletion certificate")
    orphaned = Recording.objects.filter(state=Recording.State.EXPIRED, certificate__isnull=True)
    for pk in orphaned.values_list("pk", flat=True)[:20]:
        report.problems.append(f"recording {pk}: deleted under retention but has no deletion certificate")


def verify_custody(*, now: datetime, record: bool = True) -> CustodyReport:
    """Run every check; record the result (pipeline_status and the dashboard show the last one)."""
    started, report = time.monotonic(), CustodyReport()
    heads = anchored_heads(report)
    walk_chain(heads, report)
    unledgered_rows(report)
    certificates_match_catalog(report)
    redactions_certified(report)
    report.seconds = round(time.monotonic() - started, 2)
    if record:
        CustodyCheck.objects.create(
            at=now,
            ok=report.ok,
            entries=report.entries,
            checkpoints=report.checkpoints,
            seconds=report.seconds,
            first_problem=report.problems[0] if report.problems else "",
            problems=report.problems[:50],
        )
    return report
