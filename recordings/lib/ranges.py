"""HTTP byte ranges (RFC 9110, section 14) for serving audio: what part of a file a request asks for.

A browser's <audio> element asks for ``Range: bytes=0-`` first and, to seek, for ``bytes=N-``; it shows a
duration and lets the listener seek only when the answer is ``206 Partial Content`` with a
``Content-Range`` and a ``Content-Length``. One range is served; a request for several ranges (rare, and
never sent by a media element) gets the whole file, which the RFC allows.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

_SINGLE = re.compile(r"^\s*bytes\s*=\s*(\d*)\s*-\s*(\d*)\s*$", re.IGNORECASE)


@dataclass(frozen=True)
class ByteRange:
    """Bytes `start` to `end` inclusive of a file of `size` bytes."""

    start: int
    end: int
    size: int

    @property
    def length(self) -> int:
        return self.end - self.start + 1

    @property
    def content_range(self) -> str:
        return f"bytes {self.start}-{self.end}/{self.size}"


class Unsatisfiable(ValueError):
    """The range lies wholly outside the file: the answer is 416 with ``Content-Range: bytes */size``."""

    def __init__(self, size: int) -> None:
        super().__init__(f"no byte of the range is inside the file of {size} bytes")
        self.content_range = f"bytes */{size}"


def parse_range(header: str | None, size: int | None) -> ByteRange | None:
    """The one range a ``Range`` header asks for, or None to send the whole file (no header, a header this
    cannot read or with several ranges, or a file of unknown size). Raises Unsatisfiable."""
    if not header or size is None:
        return None
    match = _SINGLE.match(header)
    if not match:
        return None
    first, last = match.groups()
    if not first and not last:
        return None
    if not first:  # the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise Unsatisfiable(size)
        return ByteRange(max(size - suffix, 0), size - 1, size)
    start = int(first)
    end = min(int(last), size - 1) if last else size - 1
    if last and int(last) < start:
        return None  # invalid: ignored, as the RFC says
    if start >= size:
        raise Unsatisfiable(size)
    return ByteRange(start, end, size)
