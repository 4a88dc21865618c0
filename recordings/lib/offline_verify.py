#!/usr/bin/env python3
"""Check a vicirec evidence package with nothing but Python's standard library (3.8 or later).

    python3 verify.py [FOLDER]        (FOLDER: the unzipped evidence-<id>/ folder; default: where this file is)

It checks, and prints one line per check:

1. every file listed in SHA256SUMS has that SHA-256 (what ``sha256sum -c SHA256SUMS`` does);
2. every custody ledger entry in custody/entries/ hashes to the value custody/entries.sha256 lists;
3. custody/checkpoint.txt carries a valid Ed25519 signature (custody/checkpoint.sig) by the key in
   custody/public_key.pem, whose id is the one the checkpoint names (what ``openssl pkeyutl -verify`` does);
4. each entry of custody/entries.txt hashes to its entry hash, and custody/proofs/<seq>.txt leads from
   that hash to the Merkle root the checkpoint signs, along the path an entry at that place must take;
5. the export's own ledger entry (kind evidence_export) lists the same SHA-256 for the audio, manifests,
   custody log and README as SHA256SUMS: the package is what vicirec recorded, and signed, when exporting.

Exit status 0 when everything holds, 1 otherwise. The formulas are described in VERIFY.txt.
"""

import base64
import hashlib
import json
import sys
from pathlib import Path

# --- Ed25519 signature verification (RFC 8032, section 6), pure Python --------------------------
P = 2**255 - 19
L = 2**252 + 27742317777372353535851937790883648493
D = -121665 * pow(121666, P - 2, P) % P
SQRT_M1 = pow(2, (P - 1) // 4, P)


def _recover_x(y, sign):
    if y >= P:
        return None
    x2 = (y * y - 1) * pow(D * y * y + 1, P - 2, P)
    if x2 % P == 0:
        return None if sign else 0
    x = pow(x2, (P + 3) // 8, P)
    if (x * x - x2) % P:
        x = x * SQRT_M1 % P
    if (x * x - x2) % P:
        return None
    return P - x if (x & 1) != sign else x


def _add(a, b):
    e1 = (a[1] - a[0]) * (b[1] - b[0]) % P
    e2 = (a[1] + a[0]) * (b[1] + b[0]) % P
    c = 2 * a[3] * b[3] * D % P
    dd = 2 * a[2] * b[2] % P
    e, f, g, h = e2 - e1, dd - c, dd + c, e2 + e1
    return (e * f % P, g * h % P, f * g % P, e * h % P)


def _mul(s, point):
    result = (0, 1, 1, 0)
    while s:
        if s & 1:
            result = _add(result, point)
        point = _add(point, point)
        s >>= 1
    return result


def _decompress(data):
    if len(data) != 32:
        return None
    y = int.from_bytes(data, "little")
    sign, y = y >> 255, y & ((1 << 255) - 1)
    x = _recover_x(y, sign)
    return None if x is None else (x, y, 1, x * y % P)


_GY = 4 * pow(5, P - 2, P) % P
_GX = _recover_x(_GY, 0)
BASE = (_GX, _GY, 1, _GX * _GY % P)


def ed25519_verify(public, message, signature):
    if len(public) != 32 or len(signature) != 64:
        return False
    a, r = _decompress(public), _decompress(signature[:32])
    s = int.from_bytes(signature[32:], "little")
    if a is None or r is None or s >= L:
        return False
    h = int.from_bytes(hashlib.sha512(signature[:32] + public + message).digest(), "little") % L
    left, right = _mul(s, BASE), _add(r, _mul(h, a))
    return (left[0] * right[2] - right[0] * left[2]) % P == 0 and (left[1] * right[2] - right[1] * left[2]) % P == 0


def raw_public_key(pem):
    """The 32 raw bytes of an Ed25519 public key in PEM (SubjectPublicKeyInfo) form."""
    body = "".join(line for line in pem.decode("ascii").splitlines() if line and not line.startswith("-----"))
    der = base64.b64decode(body)
    if len(der) != 44 or der[:12] != bytes.fromhex("302a300506032b6570032100"):
        raise ValueError("not an Ed25519 public key")
    return der[12:]


# --- the package ---------------------------------------------------------------------------------


def sha256_file(path):
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sums_file(path):
    """{name: sha256} of a sha256sum-style file."""
    listed = {}
    for line in path.read_text("utf-8").splitlines():
        digest, name = line.split("  ", 1)
        listed[name] = digest
    return listed


class Check:
    def __init__(self):
        self.failures = 0

    def __call__(self, ok, what):
        print(("OK    " if ok else "FAIL  ") + what)
        self.failures += 0 if ok else 1
        return ok


def check_files(folder, check):
    listed = sums_file(folder / "SHA256SUMS")
    bad = [name for name, digest in listed.items() if sha256_file(folder / name) != digest]
    check(not bad, f"{len(listed)} files match SHA256SUMS" + (f"; changed: {', '.join(bad[:5])}" if bad else ""))
    entries = sums_file(folder / "custody" / "entries.sha256")
    bad = [n for n, digest in entries.items() if sha256_file(folder / "custody" / n) != digest]
    check(
        not bad,
        f"{len(entries)} ledger entries match custody/entries.sha256" + (f"; changed: {bad[:5]}" if bad else ""),
    )
    return listed, entries


def check_checkpoint(folder, check):
    text = (folder / "custody" / "checkpoint.txt").read_bytes()
    signature = (folder / "custody" / "checkpoint.sig").read_bytes()
    public = raw_public_key((folder / "custody" / "public_key.pem").read_bytes())
    fields = dict(line.split(" ", 1) for line in text.decode("ascii").splitlines()[1:])
    check(hashlib.sha256(public).hexdigest()[:16] == fields.get("key"), f"public key is key {fields.get('key')}")
    check(ed25519_verify(public, text, signature), "checkpoint signature verifies (Ed25519)")
    return int(fields["count"]), fields["root"]


def node(left, right):
    return hashlib.sha256(f"node {left} {right}\n".encode("ascii")).hexdigest()


def path_root(leaf, index, size, path):
    """Where an inclusion path leads from leaf ``index`` of ``size`` leaves (RFC 9162, 2.1.3.2), or None
    when a step is on the wrong side for that place in the tree."""
    if index >= size:
        return None
    fn, sn, digest = index, size - 1, leaf
    for side, sibling in path:
        if sn == 0:
            return None
        if fn & 1 or fn == sn:
            if side != "L":
                return None
            digest = node(sibling, digest)
            while not fn & 1 and fn:
                fn, sn = fn >> 1, sn >> 1
        else:
            if side != "R":
                return None
            digest = node(digest, sibling)
        fn, sn = fn >> 1, sn >> 1
    return digest if sn == 0 else None


def check_tree(folder, count, root, check):
    """Each line of custody/entries.txt: its entry hash recomputes and its proof leads to the signed root.
    Returns {seq: (kind, content_sha256)} of the entries that hold."""
    lines, broken = {}, []
    with open(folder / "custody" / "entries.txt", encoding="ascii") as handle:
        for line in handle:
            seq, kind, before, content, entry = line.split()
            computed = hashlib.sha256(f"{seq} {kind} {before} {content}\n".encode("ascii")).hexdigest()
            proof = (folder / "custody" / "proofs" / f"{seq}.txt").read_text("ascii").split("\n")
            path = [tuple(step.split(" ")) for step in proof if step]
            if computed != entry or path_root(computed, int(seq) - 1, count, path) != root:
                broken.append(seq)
            else:
                lines[int(seq)] = (kind, content)
    check(
        not broken,
        f"{len(lines)} ledger entries lead to the signed Merkle root of {count} entries"
        + (f"; not entry {broken[0]}" if broken else ""),
    )
    return lines


def check_export_entry(folder, listed, entries, lines, check):
    found = False
    for name in entries:
        seq = int(Path(name).stem)
        content = (folder / "custody" / name).read_bytes()
        in_chain = lines.get(seq, ("", ""))[1] == hashlib.sha256(content).hexdigest()
        check(in_chain, f"ledger entry {seq} is in the signed ledger")
        if in_chain and lines[seq][0] == "evidence_export":
            files = json.loads(content)["files"]
            found = check(all(listed.get(n) == d for n, d in files.items()), "files match the export's ledger entry")
    check(found, "the export's own ledger entry is in the package")


def main(argv):
    folder = Path(argv[1]) if len(argv) > 1 else Path(__file__).resolve().parent
    check = Check()
    try:
        listed, entries = check_files(folder, check)
        count, root = check_checkpoint(folder, check)
        lines = check_tree(folder, count, root, check)
        check_export_entry(folder, listed, entries, lines, check)
    except (OSError, ValueError, KeyError) as exc:
        check(False, f"the package is incomplete or malformed: {exc}")
    print("VERIFIED" if not check.failures else f"NOT VERIFIED: {check.failures} check(s) failed")
    return 0 if not check.failures else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv))
