"""The part of an evidence package that proves itself: ledger entries, their paths to a signed checkpoint,
the public key, VERIFY.txt and a stdlib-only verify.py (docs/custody-ledger.md).

Written after the audio, manifests, custody log and README: their SHA-256 go into one ledger entry of the
export's own (kind ``evidence_export``), a checkpoint is signed and anchored right after, and the package
carries, under ``custody/``:

* ``entries/<seq>.json`` — the canonical content of every ledger entry of the exported recordings, and of
  the export's entry; ``entries.sha256`` lists their SHA-256 (``sha256sum -c entries.sha256``);
* ``entries.txt`` — ``seq kind prev_sha256 content_sha256 entry_sha256`` of each of those entries, and
  ``proofs/<seq>.txt`` — its inclusion path in the Merkle tree whose root the checkpoint signs (log2(n)
  lines ``L|R <sibling hash>``, so a package stays small however long ago its recordings were made);
* ``checkpoint.txt`` / ``checkpoint.sig`` / ``public_key.pem`` — the signed head, its raw Ed25519
  signature and the key (``openssl pkeyutl -verify -pubin -inkey … -rawin -in … -sigfile …``).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import zipfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from recordings import ledger, ledger_tree
from recordings.lib import ledger as chain
from recordings.models import Checkpoint, LedgerEntry
from recordings.pipeline.checkpoints import make_checkpoint
from vicirec import clock

VERIFIER = Path(__file__).resolve().parent / "lib" / "offline_verify.py"

VERIFY = """\
HOW TO VERIFY THIS PACKAGE (standard tools only; no vicirec needed)
=================================================================

Open a terminal in this folder (evidence-{export_id}/).

1. The files are the files exported:
       sha256sum -c SHA256SUMS                          (macOS: shasum -a 256 -c SHA256SUMS)
   Every line must end in "OK".

2. The custody ledger entries are intact:
       cd custody && sha256sum -c entries.sha256 && cd ..

3. The checkpoint was signed by vicirec's custody key (OpenSSL 3.0 or later):
       openssl pkeyutl -verify -pubin -inkey custody/public_key.pem -rawin \\
               -in custody/checkpoint.txt -sigfile custody/checkpoint.sig
   It must answer "Signature Verified Successfully". The key id named in checkpoint.txt is the first 16
   hex digits of the SHA-256 of the raw 32-byte public key:
       openssl pkey -pubin -in custody/public_key.pem -outform DER | tail -c 32 | sha256sum | cut -c1-16
   The same checkpoint was written to the archive bucket under {object_key}
   (with Object Lock retention where the bucket has it), where it can be compared.

4. Every ledger entry is in the signed ledger. Each line of custody/entries.txt is
       seq kind prev_sha256 content_sha256 entry_sha256
   where entry_sha256 = SHA-256 of the text "seq kind prev_sha256 content_sha256" and a newline, and
   content_sha256 is the SHA-256 of custody/entries/SEQ.json (listed in entries.sha256). The checkpoint
   signs the "root" of a Merkle tree whose leaves are the entry_sha256 of all "count" entries in order;
   custody/proofs/SEQ.txt is the path from the entry up to that root, one sibling a line: "L h" means
   the next hash is SHA-256 of "node h <current>" and a newline, "R h" of "node <current> h" and a newline.
   With a POSIX shell:
       root=$(sed -n 's/^root //p' custody/checkpoint.txt)
       while read seq kind p c e; do
         h=$(printf '%s %s %s %s\\n' "$seq" "$kind" "$p" "$c" | sha256sum | cut -c1-64)
         [ "$h" = "$e" ] || echo "BROKEN entry $seq"
         while read side s; do
           if [ "$side" = L ]; then h=$(printf 'node %s %s\\n' "$s" "$h" | sha256sum | cut -c1-64)
           else h=$(printf 'node %s %s\\n' "$h" "$s" | sha256sum | cut -c1-64); fi
         done < "custody/proofs/$seq.txt"
         [ "$h" = "$root" ] && echo "entry $seq: in the signed tree" || echo "NOT IN THE SIGNED TREE: $seq"
       done < custody/entries.txt

5. The export is what vicirec recorded: the entry of kind "evidence_export" lists the SHA-256 of the audio
   files, manifests, custody log and README, which must equal those in SHA256SUMS.

All of the above in one go (Python 3.8+, standard library only):
       python3 verify.py
It prints one line per check and "VERIFIED" at the end, or says what failed.

Canonical content: JSON with sorted keys, no whitespace, UTF-8; times in UTC ISO 8601.
"""


def _write(zf: zipfile.ZipFile, name: str, chunks: Iterable[bytes], date_time: Any) -> str:
    info = zipfile.ZipInfo(name, date_time)
    info.compress_type = zipfile.ZIP_DEFLATED
    digest = hashlib.sha256()
    with zf.open(info, "w", force_zip64=True) as entry:
        for chunk in chunks:
            digest.update(chunk)
            entry.write(chunk)
    return digest.hexdigest()


def _entries(
    zf: zipfile.ZipFile, folder: str, ids: Iterable[int], extra: int, date_time: Any, sums: list[tuple[str, str]]
) -> tuple[list[tuple[int, str]], Any, Any]:
    """custody/entries/<seq>.json for the recordings' entries and the export's (listed in SHA256SUMS too, which
    covers every file); returns ((seq, entry hash) of each, the entries.sha256 listing, the entries.txt lines)."""
    listing, lines = tempfile.TemporaryFile("w+b"), tempfile.TemporaryFile("w+b")
    included: list[tuple[int, str]] = []
    columns = ("seq", "kind", "content", "content_sha256", "prev_sha256", "entry_sha256")

    def add(seq: int, kind: str, content: str, digest: str, prev: str, entry: str) -> None:
        name = f"custody/entries/{seq}.json"
        sums.append((name, _write(zf, f"{folder}/{name}", [content.encode("utf-8")], date_time)))
        listing.write(f"{digest}  entries/{seq}.json\n".encode("ascii"))
        lines.write(f"{seq} {kind} {prev} {digest} {entry}\n".encode("ascii"))
        included.append((seq, entry))

    batch: list[int] = []
    for recording_id in ids:
        batch.append(recording_id)
        if len(batch) >= 1000:
            for row in LedgerEntry.objects.filter(recording_id__in=batch).order_by("seq").values_list(*columns):
                add(*row)
            batch = []
    for row in LedgerEntry.objects.filter(recording_id__in=batch).order_by("seq").values_list(*columns):
        add(*row)
    add(*LedgerEntry.objects.filter(seq=extra).values_list(*columns).get())
    listing.seek(0)
    lines.seek(0)
    return included, listing, lines


def _proof(tree: ledger_tree.Tree, seq: int, leaf: str, root: str) -> list[bytes]:
    """custody/proofs/<seq>.txt, checked against the signed root before it is written."""
    path = tree.path(seq - 1)
    if chain.audit_path_root(leaf, seq - 1, tree.size, path) != root:
        raise RuntimeError(f"ledger entry {seq} does not lead to the root just signed: run verify_custody")
    return ["".join(f"{side} {sibling}\n" for side, sibling in path).encode("ascii")]


def write_custody(export: Any, zf: zipfile.ZipFile, date_time: Any, sums: list[tuple[str, str]]) -> Iterator[None]:
    """Append the export's ledger entry, sign a checkpoint, and add the custody/ files, VERIFY.txt, verify.py."""
    own = ledger.append_record(
        "evidence_export",
        {
            "export_id": export.report.export_id,
            "scope": export.scope,
            "exported_by": export.who.name,
            "created_at": export.now,
            "files": dict(sums),
        },
    )
    made = make_checkpoint(now=clock.now())
    checkpoint = Checkpoint.objects.get(object_key=made.object_key)
    key = LedgerEntry.objects.get(kind="custody_key", ref=checkpoint.key_id)
    folder = export.folder
    ids = export.recordings.values_list("pk", flat=True).iterator(chunk_size=2000)
    included, listing, lines = _entries(zf, folder, ids, own.seq, date_time, sums)
    yield None
    tree = ledger_tree.Tree(checkpoint.count)
    for seq, leaf in included:
        name = f"custody/proofs/{seq}.txt"
        sums.append((name, _write(zf, f"{folder}/{name}", _proof(tree, seq, leaf, checkpoint.root_sha256), date_time)))
    yield None
    with listing, lines:
        files = {
            "custody/entries.sha256": iter(lambda: listing.read(1 << 20), b""),
            "custody/entries.txt": iter(lambda: lines.read(1 << 20), b""),
            "custody/checkpoint.txt": [checkpoint.text.encode("ascii")],
            "custody/checkpoint.sig": [bytes.fromhex(checkpoint.signature)],
            "custody/public_key.pem": [json.loads(key.content)["public_key"].encode("ascii")],
            "VERIFY.txt": [VERIFY.format(export_id=export.report.export_id, object_key=made.object_key).encode()],
            "verify.py": [VERIFIER.read_bytes()],
        }
        for name, chunks in files.items():
            sums.append((name, _write(zf, f"{folder}/{name}", chunks, date_time)))
            yield None
