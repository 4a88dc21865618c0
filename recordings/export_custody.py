"""The part of an evidence package that proves itself: ledger entries, the chain to a signed checkpoint,
the public key, VERIFY.txt and a stdlib-only verify.py (docs/custody-ledger.md).

Written after the audio, manifests, custody log and README: their SHA-256 go into one ledger entry of the
export's own (kind ``evidence_export``), a checkpoint is signed and anchored right after, and the package
carries, under ``custody/``:

* ``entries/<seq>.json`` — the canonical content of every ledger entry of the exported recordings, and of
  the export's entry; ``entries.sha256`` lists their SHA-256 (``sha256sum -c entries.sha256``);
* ``chain.txt`` — ``seq kind prev_sha256 content_sha256 entry_sha256`` for every entry from the first one
  included up to the checkpoint: the inclusion path of each entry to the signed head;
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

from recordings import ledger
from recordings.models import Checkpoint, LedgerEntry
from recordings.pipeline.checkpoints import make_checkpoint
from vicirec import clock

PAGE = 5000
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

4. Every ledger entry is in the signed chain. Each line of custody/chain.txt is
       seq kind prev_sha256 content_sha256 entry_sha256
   where entry_sha256 = SHA-256 of the text "seq kind prev_sha256 content_sha256" and a newline, and
   prev_sha256 is the entry_sha256 of the line before. The last line's entry_sha256 is the "head" of
   checkpoint.txt and its seq the "count". With a POSIX shell:
       prev=""; while read seq kind p c e; do
         [ -z "$prev" ] || [ "$p" = "$prev" ] || echo "BROKEN at $seq";
         h=$(printf '%s %s %s %s\\n' "$seq" "$kind" "$p" "$c" | sha256sum | cut -d' ' -f1);
         [ "$h" = "$e" ] || echo "BROKEN at $seq"; prev=$h; done < custody/chain.txt; echo "last: $prev"
   For an entry custody/entries/SEQ.json, its SHA-256 (from entries.sha256) is the content_sha256 on the
   chain line of that seq.

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
) -> tuple[int, Any]:
    """custody/entries/<seq>.json for the recordings' entries and the export's (listed in SHA256SUMS too, which
    covers every file); returns (first seq, the entries.sha256 listing)."""
    listing = tempfile.TemporaryFile("w+b")
    first = extra
    batch: list[int] = []

    def flush() -> None:
        nonlocal first
        rows = LedgerEntry.objects.filter(recording_id__in=batch).order_by("seq")
        for seq, content, digest in rows.values_list("seq", "content", "content_sha256"):
            name = f"custody/entries/{seq}.json"
            sums.append((name, _write(zf, f"{folder}/{name}", [content.encode("utf-8")], date_time)))
            listing.write(f"{digest}  entries/{seq}.json\n".encode("ascii"))
            first = min(first, seq)

    for recording_id in ids:
        batch.append(recording_id)
        if len(batch) >= 1000:
            flush()
            batch = []
    flush()
    own = LedgerEntry.objects.get(seq=extra)
    name = f"custody/entries/{extra}.json"
    sums.append((name, _write(zf, f"{folder}/{name}", [own.content.encode("utf-8")], date_time)))
    listing.write(f"{own.content_sha256}  entries/{extra}.json\n".encode("ascii"))
    listing.seek(0)
    return first, listing


def _chain(first: int, last: int) -> Iterator[bytes]:
    after = first - 1
    while after < last:
        rows = list(
            LedgerEntry.objects.filter(seq__gt=after, seq__lte=last)
            .order_by("seq")
            .values_list("seq", "kind", "prev_sha256", "content_sha256", "entry_sha256")[:PAGE]
        )
        if not rows:
            return
        yield "".join(" ".join(map(str, row)) + "\n" for row in rows).encode("ascii")
        after = rows[-1][0]


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
    first, listing = _entries(zf, folder, ids, own.seq, date_time, sums)
    yield None
    with listing:
        files = {
            "custody/entries.sha256": iter(lambda: listing.read(1 << 20), b""),
            "custody/chain.txt": _chain(first, checkpoint.count),
            "custody/checkpoint.txt": [checkpoint.text.encode("ascii")],
            "custody/checkpoint.sig": [bytes.fromhex(checkpoint.signature)],
            "custody/public_key.pem": [json.loads(key.content)["public_key"].encode("ascii")],
            "VERIFY.txt": [VERIFY.format(export_id=export.report.export_id, object_key=made.object_key).encode()],
            "verify.py": [VERIFIER.read_bytes()],
        }
        for name, chunks in files.items():
            sums.append((name, _write(zf, f"{folder}/{name}", chunks, date_time)))
            yield None
