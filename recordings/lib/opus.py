"""Ogg/Opus straight from libopus: speech mode at the recording's own rate, Ogg pages written here.

Why not libsndfile (soundfile): it runs libopus at 48 kHz behind a resampler and in its general-audio
mode, about 40x realtime on 8 kHz calls. Here the encoder takes the telephone audio as it is (8, 12, 16,
24 or 48 kHz), in ``OPUS_APPLICATION_VOIP`` with the voice signal hint, and every ``opus_encode`` call is a
ctypes call, which releases the GIL: encoding threads use every core.

The stream follows RFC 7845: an OpusHead page (beginning of stream), an OpusTags page, then audio pages of
up to a second whose granule positions count the 48 kHz samples their packets decode to (the encoder's
pre-skip included); the last page ends the stream, and its granule position (pre-skip + the recording's
length) trims the padding of the last frame, so decoders return exactly the original number of samples.

Discontinuous transmission (``dtx=True``, not the default): in a pause libopus returns a one-byte packet
(the TOC alone, no frame data) instead of coding the line noise. It is stored as it is, one packet per frame
like any other, so the granule positions still count every frame; a decoder plays a frame without data
(RFC 6716 allows frames of length 0) as comfort noise. It saves bytes in pauses, and scores worse on the
benchmark's STOI, which also compares the line noise of the pauses (README, "Choosing the codec").

No Django imports here. libopus is the system library (Debian: ``libopus0``), loaded on first use.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import struct
import zlib
from pathlib import Path
from typing import Any, Final

import numpy as np

RATES: Final = (8000, 12000, 16000, 24000, 48000)  # what libopus takes without resampling
FRAME_MS: Final = (20, 40, 60)
DEFAULT_FRAME_MS: Final = 60  # fewer packets: less framing per second and fewer calls per minute of audio
# bench/bench_codec.py: the fewest bytes whose intelligibility (STOI) is no worse than VICIdial's 16 kbps MP3
# (12 kbps: ~0.69x its bytes); complexity 6 gains what 10 does at 12 kbps and keeps ~300x realtime per core.
DEFAULT_KBPS: Final = 12
DEFAULT_COMPLEXITY: Final = 6
DEFAULT_DTX: Final = False

_APPLICATION_VOIP: Final = 2048
_SET_BITRATE: Final = 4002
_SET_VBR: Final = 4006
_SET_COMPLEXITY: Final = 4010
_SET_DTX: Final = 4016
_SET_SIGNAL: Final = 4024
_GET_LOOKAHEAD: Final = 4027
_SIGNAL_VOICE: Final = 3001
_MAX_PACKET: Final = 4000  # libopus' recommended output buffer size
_MAX_SEGMENTS: Final = 255  # lacing values in one Ogg page
_PAGE_MS: Final = 1000  # audio per page at most: the muxing delay opusinfo accepts, and fine-grained seeking
_SERIAL: Final = 0x76726563  # one logical stream per file; any fixed number will do


class OpusUnavailable(Exception):
    """The system has no libopus (install Debian's libopus0). Not a RuntimeError: a missing library is the
    machine's problem, not the recording's, so the codec does not turn it into a permanent CodecError."""


@functools.cache
def libopus() -> ctypes.CDLL:
    """The system's libopus with the prototypes used here; ``OpusUnavailable`` if it is not installed."""
    name = ctypes.util.find_library("opus") or "libopus.so.0"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise OpusUnavailable(f"libopus is not installed ({exc}); install libopus0") from exc
    lib.opus_encoder_create.restype = ctypes.c_void_p
    lib.opus_encoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
    lib.opus_encode.restype = ctypes.c_int32
    lib.opus_encode.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_int, ctypes.c_void_p, ctypes.c_int32]
    lib.opus_encoder_destroy.argtypes = [ctypes.c_void_p]
    lib.opus_get_version_string.restype = ctypes.c_char_p
    lib.opus_strerror.restype = ctypes.c_char_p
    return lib


def version() -> str:
    """libopus' own version string, e.g. "libopus 1.3.1"."""
    return libopus().opus_get_version_string().decode("ascii")


# Ogg's CRC-32 is zlib's polynomial unreflected, with no initial value or final XOR: zlib's CRC (in C, and
# without the GIL for long pages) over bit-reversed bytes, bit-reversed back, is the same number. The
# byte-at-a-time Python loop this replaces held the GIL ~13 ms per minute-long call: with two encoding
# threads it was the part that did not run in parallel.
_REVERSED: Final = bytes(int(f"{byte:08b}"[::-1], 2) for byte in range(256))


def ogg_crc(data: bytes | bytearray) -> int:
    """The Ogg page checksum: CRC-32, polynomial 0x04C11DB7, not reflected, initial value and final XOR 0."""
    reflected = zlib.crc32(bytes(data).translate(_REVERSED), 0xFFFFFFFF) ^ 0xFFFFFFFF
    return int(f"{reflected:032b}"[::-1], 2)


class OggOpusWriter:
    """Encode 16-bit PCM blocks to an Ogg/Opus file; the same ``write``/``close`` shape as the other writers."""

    name = "libopus-Ogg/Opus"

    def __init__(
        self,
        path: Path,
        *,
        sample_rate: int,
        channels: int,
        kbps: float,
        frame_ms: int = DEFAULT_FRAME_MS,
        complexity: int = DEFAULT_COMPLEXITY,
        dtx: bool = DEFAULT_DTX,
    ) -> None:
        if sample_rate not in RATES or channels not in (1, 2) or frame_ms not in FRAME_MS:
            raise ValueError(f"libopus cannot take {channels} channels at {sample_rate} Hz in {frame_ms} ms frames")
        self._lib = lib = libopus()
        error = ctypes.c_int(0)
        self._enc = lib.opus_encoder_create(sample_rate, channels, _APPLICATION_VOIP, ctypes.byref(error))
        if error.value or not self._enc:
            raise RuntimeError(f"opus_encoder_create: {lib.opus_strerror(error.value).decode()}")
        lookahead = ctypes.c_int32(0)
        for request, value in (
            (_SET_BITRATE, int(kbps * 1000)),
            (_SET_VBR, 1),
            (_SET_COMPLEXITY, complexity),
            (_SET_DTX, int(dtx)),
        ):
            self._ctl(request, ctypes.c_int32(value))
        self._ctl(_SET_SIGNAL, ctypes.c_int32(_SIGNAL_VOICE))
        self._ctl(_GET_LOOKAHEAD, ctypes.byref(lookahead))
        self._channels, self._to48 = channels, 48000 // sample_rate
        self._frame = sample_rate * frame_ms // 1000  # samples per channel per packet
        self._lookahead = lookahead.value
        self._page_packets = _PAGE_MS // frame_ms
        self._pre_skip = lookahead.value * self._to48
        self._carry = np.zeros((0, channels), dtype="<i2")
        self._out = ctypes.create_string_buffer(_MAX_PACKET)
        self._file = open(path, "wb")  # closed in close()
        self._page: list[bytes] = []
        self._segments = 0
        self._sequence, self._packets, self._samples = 0, 0, 0
        self.library = version()
        self.codec_library: str | None = self.library
        self.settings: dict[str, Any] = {
            "codec": "opus",
            "sample_rate": sample_rate,
            "channels": channels,
            "bitrate_kbps": kbps,
            "bitrate_mode": "VBR",
            "application": "voip",
            "signal": "voice",
            "frame_ms": frame_ms,
            "complexity": complexity,
            "dtx": dtx,
        }
        self._write_headers(sample_rate)

    def _ctl(self, request: int, arg: Any) -> None:
        status = self._lib.opus_encoder_ctl(ctypes.c_void_p(self._enc), ctypes.c_int(request), arg)
        if status:
            raise RuntimeError(f"opus_encoder_ctl({request}): {self._lib.opus_strerror(status).decode()}")

    def _write_headers(self, sample_rate: int) -> None:
        head = b"OpusHead" + struct.pack("<BBHIhB", 1, self._channels, self._pre_skip, sample_rate, 0, 0)
        vendor = self.library.encode("ascii")
        comment = b"ENCODER=vicirec"
        tags = b"OpusTags" + struct.pack("<I", len(vendor)) + vendor + struct.pack("<II", 1, len(comment)) + comment
        self._write_page([head], granule=0, flags=0x02)
        self._write_page([tags], granule=0, flags=0)

    def write(self, block: np.ndarray) -> None:
        """Encode every whole frame of ``carry + block``; keep the rest for the next call."""
        pcm = np.ascontiguousarray(np.concatenate((self._carry, block)) if len(self._carry) else block, dtype="<i2")
        whole = len(pcm) - len(pcm) % self._frame
        self._encode(pcm, whole)
        self._samples += len(block)
        self._carry = pcm[whole:].copy()

    def _encode(self, pcm: np.ndarray, frames: int) -> None:
        """One ``opus_encode`` per packet (each releases the GIL), the packets gathered into pages."""
        encode, enc, out = self._lib.opus_encode, self._enc, self._out
        base, step = pcm.ctypes.data, self._frame * self._channels * 2
        for offset in range(0, frames * self._channels * 2, step):
            n = encode(enc, base + offset, self._frame, out, _MAX_PACKET)
            if n < 0:
                raise RuntimeError(f"opus_encode: {self._lib.opus_strerror(n).decode()}")
            self._add_packet(out.raw[:n])

    def _add_packet(self, packet: bytes) -> None:
        segments = len(packet) // 255 + 1
        if self._segments + segments > _MAX_SEGMENTS or len(self._page) == self._page_packets:
            # a page's granule position counts every sample its packets decode to, the pre-skip's included
            self._write_page(self._page, granule=self._packets * self._frame * self._to48, flags=0)
            self._page, self._segments = [], 0
        self._page.append(packet)
        self._segments += segments
        self._packets += 1

    def _write_page(self, packets: list[bytes], *, granule: int, flags: int) -> None:
        lacing = bytearray()
        for packet in packets:
            lacing += b"\xff" * (len(packet) // 255) + bytes([len(packet) % 255])
        header = struct.pack("<4sBBqIIIB", b"OggS", 0, flags, granule, _SERIAL, self._sequence, 0, len(lacing))
        page = bytearray(header + lacing + b"".join(packets))
        page[22:26] = struct.pack("<I", ogg_crc(page))
        self._file.write(page)
        self._sequence += 1

    def close(self) -> None:
        """Flush the last frame (padded with silence, and one more if the padding does not cover the
        encoder's look-ahead), end the stream at the exact length, free the encoder."""
        try:
            if self._samples:
                pad = (-len(self._carry)) % self._frame
                if pad < self._lookahead:
                    pad += self._frame
                silence = np.zeros((pad, self._channels), dtype="<i2")
                pcm = np.ascontiguousarray(np.concatenate((self._carry, silence)))
                self._encode(pcm, len(pcm))
                end = self._pre_skip + self._samples * self._to48
                self._write_page(self._page, granule=end, flags=0x04)
        finally:
            self._file.close()
            self._lib.opus_encoder_destroy(self._enc)
