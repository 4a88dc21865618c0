"""HTTP byte ranges as the audio player sends them (recordings.lib.ranges, no Django)."""

from __future__ import annotations

import io

import pytest

from recordings.lib.ranges import ByteRange, Unsatisfiable, parse_range
from recordings.lib.storage import CHUNK, iter_file


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        ("bytes=0-", ByteRange(0, 999, 1000)),
        ("bytes=500-", ByteRange(500, 999, 1000)),
        ("bytes=0-0", ByteRange(0, 0, 1000)),
        ("bytes=10-19", ByteRange(10, 19, 1000)),
        ("bytes=990-5000", ByteRange(990, 999, 1000)),
        ("bytes=-100", ByteRange(900, 999, 1000)),
        ("bytes=-5000", ByteRange(0, 999, 1000)),
        ("BYTES = 1 - 2", ByteRange(1, 2, 1000)),
    ],
)
def test_one_range_is_read(header: str, expected: ByteRange) -> None:
    part = parse_range(header, 1000)
    assert part == expected
    assert part.content_range == f"bytes {expected.start}-{expected.end}/1000"
    assert part.length == expected.end - expected.start + 1


@pytest.mark.parametrize("header", [None, "", "bytes=0-1,5-6", "items=0-1", "bytes=-", "bytes=9-3", "bytes=a-b"])
def test_what_cannot_be_read_as_one_range_means_the_whole_file(header: str | None) -> None:
    assert parse_range(header, 1000) is None


def test_an_unknown_size_means_the_whole_file() -> None:
    assert parse_range("bytes=0-", None) is None


@pytest.mark.parametrize(("header", "size"), [("bytes=1000-", 1000), ("bytes=5000-6000", 1000), ("bytes=-0", 1000)])
def test_a_range_outside_the_file_is_unsatisfiable(header: str, size: int) -> None:
    with pytest.raises(Unsatisfiable) as caught:
        parse_range(header, size)
    assert caught.value.content_range == f"bytes */{size}"


def test_iter_file_reads_only_the_range_in_bounded_chunks() -> None:
    data = bytes(range(256)) * (3 * CHUNK // 256 + 7)
    chunks = list(iter_file(io.BytesIO(data), start=CHUNK - 3, end=2 * CHUNK + 10))
    assert b"".join(chunks) == data[CHUNK - 3 : 2 * CHUNK + 11]
    assert max(len(c) for c in chunks) <= CHUNK
