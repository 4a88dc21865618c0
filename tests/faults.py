"""Faults injected at vicirec's own boundaries (the archive target's body stream)."""

from __future__ import annotations

import io


class FlipOneByte(io.FileIO):
    """A file whose 100th byte reads back inverted: corruption between our hash and the server."""

    OFFSET = 100

    def read(self, size: int | None = -1) -> bytes:
        start = self.tell()
        data = super().read(-1 if size is None else size)
        index = self.OFFSET - start
        if 0 <= index < len(data):
            data = data[:index] + bytes([data[index] ^ 0xFF]) + data[index + 1 :]
        return data
