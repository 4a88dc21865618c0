"""The custody ledger's arithmetic, with no Django: canonical content, entry hashes, checkpoints, keys.

The exact formulas are documented in docs/custody-ledger.md; the offline verifier shipped in evidence
packages (``offline_verify.py``, stdlib only) recomputes the same values and must stay in step with these.

* canonical content: JSON, keys sorted, no whitespace (``separators=(",", ":")``), UTF-8, non-ASCII kept;
* ``content_sha256`` = SHA-256 of those bytes;
* ``entry_sha256`` = SHA-256 of the ASCII line ``"<seq> <kind> <prev_sha256> <content_sha256>\\n"``;
  the first entry's ``prev_sha256`` is 64 zeros (``GENESIS``);
* the Merkle tree: its leaves are the entries' ``entry_sha256`` in ``seq`` order, an inner node is the
  SHA-256 of the ASCII line ``"node <left> <right>\n"``, and its shape is RFC 9162's (the left subtree of
  ``n`` leaves holds the largest power of two below ``n``), so an entry's inclusion in a signed root is a
  path of log2(n) hashes (``audit_path_root``);
* a checkpoint is the text of ``CheckpointBody.text`` signed with raw Ed25519 (the signature is 64 bytes).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

GENESIS = "0" * 64
CHECKPOINT_HEADER = "vicirec-checkpoint v1"  # count, head, time, key
CHECKPOINT_HEADER_V2 = "vicirec-checkpoint v2"  # and the Merkle root of the entries
EMPTY_ROOT = hashlib.sha256(b"").hexdigest()
_KIND = re.compile(r"^[a-z_.]{1,40}$")


def plain(value: Any) -> Any:
    """A value as it goes into canonical JSON: times in UTC ISO 8601 (microseconds), decimals as text."""
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC)
        return value.isoformat(timespec="microseconds")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, bytes):
        return value.hex()
    return value


ENCODER = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=plain)


def canonical(content: dict[str, Any]) -> str:
    return ENCODER.encode(content)  # json.dumps with these options, its encoder built once


def sha256_hex(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def content_sha256(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


@functools.cache
def _checked_kind(kind: str) -> str:
    if not _KIND.match(kind):
        raise ValueError(f"not a ledger kind: {kind!r}")
    return kind


def entry_sha256(seq: int, kind: str, prev: str, content_hash: str) -> str:
    _checked_kind(kind)
    return hashlib.sha256(f"{seq} {kind} {prev} {content_hash}\n".encode("ascii")).hexdigest()


# --- the Merkle tree over the entries -------------------------------------------------------------


def node(left: str, right: str) -> str:
    return hashlib.sha256(f"node {left} {right}\n".encode("ascii")).hexdigest()


def split(size: int) -> int:
    """The size of the left subtree of a tree of ``size`` (> 1) leaves: the largest power of two below it."""
    return 1 << ((size - 1).bit_length() - 1)


def tree_root(leaves: list[str]) -> str:
    """The root of the tree over ``leaves`` (in memory; for a few hundred leaves at a time)."""
    if not leaves:
        return EMPTY_ROOT
    if len(leaves) == 1:
        return leaves[0]
    k = split(len(leaves))
    return node(tree_root(leaves[:k]), tree_root(leaves[k:]))


class Frontier:
    """The root of a growing tree from its leaves as they come, with memory of log2(n) hashes: the roots
    of its perfect subtrees, largest first (what verify_custody compares with each signed root)."""

    def __init__(self) -> None:
        self.size = 0
        self.peaks: list[tuple[int, str]] = []  # (leaves, root) of each perfect subtree, largest first

    def add(self, leaf: str) -> None:
        self.size += 1
        width, digest = 1, leaf
        while self.peaks and self.peaks[-1][0] == width:
            digest = node(self.peaks.pop()[1], digest)
            width *= 2
        self.peaks.append((width, digest))

    def root(self) -> str:
        if not self.peaks:
            return EMPTY_ROOT
        digest = self.peaks[-1][1]
        for _, left in reversed(self.peaks[:-1]):
            digest = node(left, digest)
        return digest


def audit_path_root(leaf: str, index: int, size: int, path: list[tuple[str, str]]) -> str | None:
    """The root that ``path`` ((side, hash) pairs from the leaf up; side "L" or "R" is where the sibling
    sits) leads to from leaf ``index`` (0-based) of a tree of ``size`` leaves, or None when the path does
    not have the shape of that leaf's path (RFC 9162, 2.1.3.2)."""
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


# --- checkpoints --------------------------------------------------------------------------------


@dataclass(frozen=True)
class CheckpointBody:
    count: int
    head: str
    time: str
    key_id: str
    root: str = ""  # the Merkle root of the ``count`` entries; empty in the first version of checkpoints

    def text(self) -> str:
        if not self.root:
            return f"{CHECKPOINT_HEADER}\ncount {self.count}\nhead {self.head}\ntime {self.time}\nkey {self.key_id}\n"
        return (
            f"{CHECKPOINT_HEADER_V2}\ncount {self.count}\nhead {self.head}\nroot {self.root}\ntime {self.time}\n"
            f"key {self.key_id}\n"
        )


def parse_checkpoint(text: str) -> CheckpointBody:
    """The fields of a checkpoint's signed text (either version); ValueError if it is not one."""
    lines = text.split("\n")
    names = {
        CHECKPOINT_HEADER: ["count", "head", "time", "key"],
        CHECKPOINT_HEADER_V2: ["count", "head", "root", "time", "key"],
    }
    expected = names.get(lines[0])
    if expected is None or len(lines) != len(expected) + 2 or lines[-1] != "":
        raise ValueError("not a vicirec checkpoint")
    pairs = [line.split(" ", 1) for line in lines[1:-1]]
    if [pair[0] for pair in pairs] != expected or any(len(pair) != 2 for pair in pairs):
        raise ValueError("not a vicirec checkpoint")
    fields = dict(pairs)
    hashes = [fields["head"], fields.get("root", "0" * 64)]
    if not all(re.fullmatch(r"[0-9a-f]{64}", h) for h in hashes) or not fields["count"].isdigit():
        raise ValueError("not a vicirec checkpoint")
    return CheckpointBody(int(fields["count"]), fields["head"], fields["time"], fields["key"], fields.get("root", ""))


# --- keys ---------------------------------------------------------------------------------------


def key_id(public_pem: bytes) -> str:
    """The first 16 hex digits of the SHA-256 of the raw 32-byte public key."""
    public = serialization.load_pem_public_key(public_pem)
    if not isinstance(public, Ed25519PublicKey):
        raise ValueError("not an Ed25519 public key")
    raw = public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


@dataclass(frozen=True)
class SigningKey:
    private: Ed25519PrivateKey

    @property
    def public_pem(self) -> bytes:
        return self.private.public_key().public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    @property
    def key_id(self) -> str:
        return key_id(self.public_pem)

    def sign(self, data: bytes) -> bytes:
        return self.private.sign(data)


def generate_key_file(path: Path) -> None:
    """A new Ed25519 private key (PKCS#8 PEM) at ``path``, readable by its owner only (0600)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as handle:
        handle.write(pem)
    path.chmod(0o600)


def load_key(path: Path, *, create: bool = True) -> SigningKey:
    """The signing key kept at ``path``, generated there (mode 0600) on first use when ``create``."""
    if not path.exists() and create:
        try:
            generate_key_file(path)
        except FileExistsError:  # another process made it first
            pass
    private = serialization.load_pem_private_key(path.read_bytes(), password=None)
    if not isinstance(private, Ed25519PrivateKey):
        raise ValueError(f"{path} does not hold an Ed25519 private key")
    return SigningKey(private)


def signature_ok(public_pem: bytes, data: bytes, signature: bytes) -> bool:
    public = serialization.load_pem_public_key(public_pem)
    if not isinstance(public, Ed25519PublicKey):
        return False
    try:
        public.verify(signature, data)
    except InvalidSignature:
        return False
    return True
