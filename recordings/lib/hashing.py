"""SHA-256 of files in one sequential pass: the hash chain's first link, and every re-check of it."""

from __future__ import annotations

import hashlib
import io
from pathlib import Path
from typing import Final

READ_CHUNK: Final = 1024 * 1024  # bytes per read when only hashing


class HashingReader:
    """Sequential, hash-every-byte reader over one open file; it cannot seek, so it cannot re-read.

    ``bytes_read`` counts every byte taken from the file; after ``drain()`` it equals the file size.
    """

    def __init__(self, raw: io.FileIO) -> None:
        self._raw = raw
        self._sha = hashlib.sha256()
        self.bytes_read = 0

    def read_exact(self, n: int) -> bytes:
        """Up to ``n`` bytes; fewer only at end of file."""
        parts: list[bytes] = []
        while n > 0:
            data = self._raw.read(n)
            if not data:
                break
            self._take(data)
            parts.append(data)
            n -= len(data)
        return b"".join(parts)

    def readinto_exact(self, buf: memoryview) -> int:
        """Fill ``buf``; returns fewer than ``len(buf)`` bytes only at end of file."""
        filled = 0
        while filled < len(buf):
            n = self._raw.readinto(buf[filled:])
            if not n:
                break
            self._take(buf[filled : filled + n])
            filled += n
        return filled

    def skip(self, n: int) -> int:
        """Read and hash ``n`` bytes without keeping them; returns how many there were."""
        buf = memoryview(bytearray(min(n, READ_CHUNK) or 1))
        skipped = 0
        while skipped < n:
            got = self.readinto_exact(buf[: min(n - skipped, len(buf))])
            if not got:
                break
            skipped += got
        return skipped

    def drain(self) -> None:
        """Read and hash the rest of the file. Each read returns a buffer of the size it got (a zeroed
        1 MiB buffer for a 90 kB recording cost more than hashing it)."""
        while data := self._raw.read(READ_CHUNK):
            self._take(data)

    def hexdigest(self) -> str:
        return self._sha.hexdigest()

    def _take(self, data: bytes | memoryview) -> None:
        self._sha.update(data)
        self.bytes_read += len(data)


def hash_file(path: Path) -> tuple[str, int]:
    """SHA-256 (hex) and size of a file in one sequential pass."""
    with io.FileIO(path, "r") as raw:
        reader = HashingReader(raw)
        reader.drain()
    return reader.hexdigest(), reader.bytes_read
