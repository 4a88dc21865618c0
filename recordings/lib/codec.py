"""Turn one spool file into the bytes we archive, hashing the original on the way.

Contract (the archive stage relies on every line):

- The original is opened once and read front to back exactly once. Every byte goes through one SHA-256,
  and the same pass feeds the encoder, so the recorded original hash covers the whole file (RIFF header,
  every chunk, trailing LIST/INFO chunks) without a second read.
- 16-bit PCM WAV is encoded in blocks of ``BLOCK_FRAMES`` frames (MP3 through LAME via lameenc, Opus
  through libopus in speech mode via ``recordings.lib.opus``, FLAC through libsndfile via soundfile);
  memory stays bounded whatever the recording's length. Each libopus call releases the GIL, so threads
  encoding Opus at once use every core (lameenc holds the GIL while it encodes).
- Everything else passes through unchanged: files VICIdial already compressed (.mp3/.gsm/.ogg/.gpg …),
  WAV that is not 16-bit PCM (GSW = GSM 6.10 in WAV, µ-law, float, 24-bit, RF64), and any file when
  ``codec="none"``. A pass-through's ``output_path`` is the
  source itself and its output hash is the original hash from the same pass.
- The encoded output is one file in ``workdir``; its hash and size are taken by reading that file back
  once after the encoder closed it (libsndfile seeks back to finish FLAC STREAMINFO, so
  hashing while writing would not see the final bytes; outputs are small, ~180 KB per minute of MP3).
- A broken input raises ``CodecError`` with a sentence a person can act on; no partial output is left.
  Missing files and I/O failures stay ``OSError`` so callers can tell "missing" from "broken".

No Django imports here: callers pass the options.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import io
import os
import re
import struct
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final

import lameenc
import numpy as np
import soundfile

from recordings.lib import opus
from recordings.lib.hashing import READ_CHUNK, HashingReader

CODECS: Final = ("mp3", "opus", "flac", "none")
BLOCK_FRAMES: Final = 64 * 1024  # frames per encoder block: 128 KiB of 8 kHz mono 16-bit PCM

_WAVE_FORMAT_PCM: Final = 0x0001
# Sample rates a WAV header may claim and still be encoded; outside them the header is nonsense (a damaged
# capture) and the file is archived as it is, its bytes untouched.
_RATE_MIN: Final = 1000
_RATE_MAX: Final = 384_000
_WAVE_FORMAT_EXTENSIBLE: Final = 0xFFFE
_WAVE_FORMAT_NAMES: Final = {
    0x0001: "PCM",
    0x0003: "IEEE float",
    0x0006: "A-law",
    0x0007: "µ-law",
    0x0011: "IMA ADPCM",
    0x0031: "GSM 6.10",
    0x0055: "MPEG Layer III",
}
_MAX_FMT_CHUNK: Final = 1024  # a real fmt chunk is 16–40 bytes; more means the header is garbage
_UNKNOWN_SIZE: Final = 0xFFFFFFFF  # written by streaming writers that never patched the header

_CONTENT_TYPES: Final = {
    "wav": "audio/wav",
    "mp3": "audio/mpeg",
    "gsm": "audio/x-gsm",
    "ogg": "audio/ogg",
    "opus": "audio/ogg",
    "flac": "audio/flac",
    "gpg": "application/pgp-encrypted",
}

# MPEG Layer III: bitrates of MPEG-1 (32–48 kHz) and MPEG-2/2.5 (8–24 kHz), and its sample rates.
_MP3_MPEG1_KBPS: Final = (32, 40, 48, 56, 64, 80, 96, 112, 128, 160, 192, 224, 256, 320)
_MP3_MPEG2_KBPS: Final = (8, 16, 24, 32, 40, 48, 56, 64, 80, 96, 112, 128, 144, 160)
_MP3_SAMPLE_RATES: Final = (8000, 11025, 12000, 16000, 22050, 24000, 32000, 44100, 48000)
_LAME_QUALITY: Final = 3  # the lame command line's default (VICIdial runs `lame -b 16 -m m`)
_LAMEENC_LAME_VERSION: Final = "3.100"  # lameenc builds the LAME 3.100 release (its CMakeLists.txt)
_OPUS_MIN_BPS: Final = 6000
_OPUS_MAX_BPS: Final = 256000
_FLAC_LEVEL: Final = 5  # libFLAC's default trade-off; libsndfile takes it as level / 8

# libopus and libFLAC stamp their name and version into the stream header (OpusTags and VORBIS_COMMENT
# vendor strings); we record what the output itself says.
_VENDOR_RE: Final = re.compile(rb"libopus [0-9][0-9.]*|reference libFLAC [0-9.]+")


class CodecError(Exception):
    """The recording file cannot be read as what its name says it is."""


@dataclass(frozen=True)
class Prepared:
    original_sha256: str
    original_size: int
    output_path: Path
    output_sha256: str
    output_size: int
    extension: str  # without the dot: "mp3", "opus", "flac", or the source's own for a pass-through
    content_type: str
    encoder: dict[str, Any]
    transformed: bool


@dataclass(frozen=True)
class _WavFormat:
    format_tag: int
    channels: int
    sample_rate: int
    block_align: int
    bits_per_sample: int

    @property
    def name(self) -> str:
        return _WAVE_FORMAT_NAMES.get(self.format_tag, f"format tag 0x{self.format_tag:04X}")

    def not_encodable_reason(self) -> str | None:
        if self.format_tag != _WAVE_FORMAT_PCM:
            return f"WAV holds {self.name} audio, not PCM"
        if self.bits_per_sample != 16:
            return f"WAV holds {self.bits_per_sample}-bit PCM; only 16-bit PCM is encoded"
        if (
            not 1 <= self.channels <= 2
            or not _RATE_MIN <= self.sample_rate <= _RATE_MAX
            or self.block_align != 2 * self.channels
        ):
            return f"WAV format is unusual ({self.channels} channels, {self.sample_rate} Hz, block {self.block_align})"
        return None


def _open_source(path: Path) -> tuple[io.FileIO, HashingReader]:
    """The one place the original is opened (tests wrap it to count opens and bytes)."""
    raw = io.FileIO(path, "r")
    return raw, HashingReader(raw)


def prepare(
    source: Path,
    *,
    codec: str,
    workdir: Path,
    mp3_bitrate_kbps: int = 24,
    opus_bitrate_kbps: int = opus.DEFAULT_KBPS,
    opus_dtx: bool = opus.DEFAULT_DTX,
) -> Prepared:
    """Hash ``source`` and, if it is 16-bit PCM WAV and ``codec`` is not "none", encode it into ``workdir``.

    Damaged WAV: a file too short for its header, not RIFF/WAVE, or without fmt/data chunks raises
    ``CodecError``. A WAV whose data chunk is shorter than its header claims (a capture cut off by a crash
    or a full disk) is encoded as far as it goes and the shortfall is listed in ``encoder["warnings"]``:
    the original bytes and their hash are archived untouched either way, and a compliance team wants the
    audio that exists rather than nothing. A WAV with no audio frames at all passes through with a warning.
    An empty (0-byte) file raises ``CodecError`` whatever the codec: there is nothing to preserve and it
    usually means a failed VICIdial conversion.

    ``ValueError`` means a bad option (unknown codec, bitrate the format cannot carry).
    """
    if codec not in CODECS:
        raise ValueError(f"unknown codec {codec!r}; choose one of {', '.join(CODECS)}")
    if codec == "mp3" and mp3_bitrate_kbps not in _MP3_MPEG1_KBPS + _MP3_MPEG2_KBPS:
        raise ValueError(f"{mp3_bitrate_kbps} kbps is not an MP3 bitrate; telephony uses 16, 24 or 32")
    if codec == "opus" and not _OPUS_MIN_BPS <= opus_bitrate_kbps * 1000 <= _OPUS_MAX_BPS:
        raise ValueError(f"Opus bitrate must be between 6 and 256 kbps, not {opus_bitrate_kbps}")

    raw, reader = _open_source(source)
    with raw:
        if codec == "none" or source.suffix.lower() != ".wav":
            reason = "codec is none" if codec == "none" else f"{source.suffix or 'no extension'} is not WAV"
            head = reader.read_exact(4)
            reader.drain()
            return _passthrough(source, reader, reason=reason, warnings=_unlike_its_name(source, head))
        fmt, data_size, warnings = _read_wav_header(source, reader)
        why_not = "RF64/RIFX container" if fmt is None else fmt.not_encodable_reason()
        if fmt is None or why_not is not None:
            reader.drain()
            return _passthrough(source, reader, reason=why_not or "", warnings=warnings)
        encoded = _encode_pcm16(
            source,
            reader,
            fmt,
            data_size,
            warnings,
            codec=codec,
            workdir=workdir,
            mp3_kbps=mp3_bitrate_kbps,
            opus_kbps=opus_bitrate_kbps,
            opus_dtx=opus_dtx,
        )
    if encoded is None:
        return _passthrough(source, reader, reason="WAV has no audio frames", warnings=warnings)
    return encoded


def _unlike_its_name(source: Path, head: bytes) -> list[str]:
    """A warning when a compressed copy's first bytes are not its format's (VICIdial wrote an error page or
    a failed conversion under a recording's name): it is archived as it is, and the catalog says so."""
    ext = source.suffix.lower()
    if ext == ".mp3" and not (head[:3] == b"ID3" or (len(head) > 1 and head[0] == 0xFF and head[1] & 0xE0 == 0xE0)):
        return [f"{source.name} does not look like MP3 (no ID3 tag or MPEG frame at its start); archived as it is"]
    if ext == ".ogg" and head[:4] != b"OggS":
        return [f"{source.name} does not look like Ogg (no OggS page at its start); archived as it is"]
    return []


def _passthrough(source: Path, reader: HashingReader, *, reason: str, warnings: list[str]) -> Prepared:
    if reader.bytes_read == 0:
        raise CodecError(f"{source.name} is empty (0 bytes); there is no recording to archive.")
    extension = source.suffix.lower().lstrip(".")
    digest = reader.hexdigest()
    return Prepared(
        original_sha256=digest,
        original_size=reader.bytes_read,
        output_path=source,
        output_sha256=digest,
        output_size=reader.bytes_read,
        extension=extension,
        content_type=_CONTENT_TYPES.get(extension, "application/octet-stream"),
        encoder={"name": "none", "reason": reason, "settings": {"codec": "none"}, "warnings": warnings},
        transformed=False,
    )


def _read_wav_header(source: Path, reader: HashingReader) -> tuple[_WavFormat | None, int, list[str]]:
    """Consume the RIFF header and every chunk up to the start of the data chunk's payload.

    Returns the format (None for RF64/RIFX, which we pass through), the declared data size and warnings.
    """
    head = reader.read_exact(12)
    if not head:
        raise CodecError(f"{source.name} is empty (0 bytes); there is no recording to archive.")
    if len(head) < 12:
        raise CodecError(f"{source.name} is only {len(head)} bytes, too short for a WAV header.")
    if head[:4] in (b"RF64", b"RIFX", b"BW64") and head[8:12] == b"WAVE":
        return None, 0, []
    if head[:4] != b"RIFF" or head[8:12] != b"WAVE":
        raise CodecError(f"{source.name} is not a WAV file (it does not start with a RIFF/WAVE header).")

    fmt: _WavFormat | None = None
    while True:
        chunk = reader.read_exact(8)
        if len(chunk) < 8:
            missing = "fmt and data chunks" if fmt is None else "data chunk"
            raise CodecError(f"{source.name} is a truncated WAV: the file ends before its {missing}.")
        chunk_id, size = chunk[:4], struct.unpack("<I", chunk[4:])[0]
        if chunk_id == b"data":
            if fmt is None:
                raise CodecError(f"{source.name} is a damaged WAV: its data chunk comes before any fmt chunk.")
            return fmt, size, []
        if chunk_id == b"fmt ":
            if not 16 <= size <= _MAX_FMT_CHUNK:
                raise CodecError(f"{source.name} is a damaged WAV: its fmt chunk claims {size} bytes.")
            body = reader.read_exact(size + (size & 1))
            if len(body) < size:
                raise CodecError(f"{source.name} is a truncated WAV: the file ends inside its fmt chunk.")
            fmt = _parse_fmt(body[:size])
        else:
            padded = size + (size & 1)
            if reader.skip(padded) < padded:
                name = chunk_id.decode("latin-1")
                name = repr(name) if name.isascii() and name.isprintable() else "damaged"
                raise CodecError(
                    f"{source.name} is a truncated WAV: the file ends inside a {name} chunk before any audio data."
                )


def _parse_fmt(body: bytes) -> _WavFormat:
    tag, channels, rate, _byte_rate, align, bits = struct.unpack("<HHIIHH", body[:16])
    if tag == _WAVE_FORMAT_EXTENSIBLE and len(body) >= 26:
        tag = struct.unpack("<H", body[24:26])[0]  # first two bytes of the SubFormat GUID
    return _WavFormat(tag, channels, rate, align, bits)


def _encode_pcm16(
    source: Path,
    reader: HashingReader,
    fmt: _WavFormat,
    data_size: int,
    warnings: list[str],
    *,
    codec: str,
    workdir: Path,
    mp3_kbps: int,
    opus_kbps: int,
    opus_dtx: bool,
) -> Prepared | None:
    """Stream the data chunk into the encoder, then drain the rest of the file through the hash.

    None when the data chunk holds no whole frame (the caller passes the file through instead). Whatever
    goes wrong, no output file is left behind.
    """
    output = _new_output_file(source, workdir, codec)
    try:
        writer = _open_writer(codec, output, fmt, warnings, mp3_kbps=mp3_kbps, opus_kbps=opus_kbps, opus_dtx=opus_dtx)
        try:
            frames = _stream_data_chunk(reader, writer, fmt, data_size, warnings)
        finally:
            writer.close()
        _drain_after_data(reader, data_size)
    except (soundfile.LibsndfileError, RuntimeError) as exc:  # lameenc raises RuntimeError
        output.unlink(missing_ok=True)
        raise CodecError(f"{source.name} could not be encoded to {codec}: {exc}") from exc
    except BaseException:
        output.unlink(missing_ok=True)
        raise
    if frames == 0:
        output.unlink(missing_ok=True)
        return None
    return _encoded(reader, output, codec, writer, fmt, frames, warnings)


def _new_output_file(source: Path, workdir: Path, codec: str) -> Path:
    """An empty, uniquely named file in ``workdir`` for the encoder to write (named after the source)."""
    workdir.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=workdir, prefix=f"{source.stem}.", suffix=f".{codec}")
    os.close(fd)
    return Path(name)


def _stream_data_chunk(
    reader: HashingReader,
    writer: _Writer,
    fmt: _WavFormat,
    data_size: int,
    warnings: list[str],
) -> int:
    """Feed the data chunk's payload to ``writer`` in blocks of ``BLOCK_FRAMES``; returns the frames written.

    The hot loop of the archive stage: one reused buffer, one read and one encoder call per block, no copy
    (``np.frombuffer`` views the buffer). A data chunk shorter than declared, an unset size (read to end of
    file) and a trailing partial frame are recorded in ``warnings``, not raised.
    """
    frames = 0
    buf = memoryview(bytearray(BLOCK_FRAMES * fmt.block_align))
    to_end = data_size == _UNKNOWN_SIZE
    if to_end:
        warnings.append("data chunk size is unset (0xFFFFFFFF); encoded audio up to the end of the file")
    remaining = data_size
    while to_end or remaining > 0:
        want = len(buf) if to_end else min(len(buf), remaining)
        got = reader.readinto_exact(buf[:want])
        whole = got - got % fmt.block_align
        if whole:
            writer.write(np.frombuffer(buf[:whole], dtype="<i2").reshape(-1, fmt.channels))
            frames += whole // fmt.block_align
        if got < want:  # end of file
            if got != whole:
                warnings.append(f"dropped {got - whole} trailing bytes of an incomplete sample frame")
            if not to_end:
                warnings.append(
                    f"truncated WAV: data chunk declares {data_size} bytes but the file holds "
                    f"{data_size - remaining + got}; encoded the {frames} frames present"
                )
            break
        remaining -= got
    return frames


def _drain_after_data(reader: HashingReader, data_size: int) -> None:
    """Hash what follows the data chunk: its pad byte, then trailing chunks (LIST/INFO, cue, …), which are
    part of the original. An unset size (0xFFFFFFFF) was read to end of file, so it has no pad byte."""
    if data_size & 1 and data_size != _UNKNOWN_SIZE:
        reader.skip(1)  # pad byte
    reader.drain()


def _encoded(
    reader: HashingReader,
    output: Path,
    codec: str,
    writer: _Writer,
    fmt: _WavFormat,
    frames: int,
    warnings: list[str],
) -> Prepared:
    """The result of an encode: the original's hash from the single pass, the output's from reading it back."""
    output_sha256, output_size, vendor = _hash_output(output)
    return Prepared(
        original_sha256=reader.hexdigest(),
        original_size=reader.bytes_read,
        output_path=output,
        output_sha256=output_sha256,
        output_size=output_size,
        extension=codec,
        content_type=_CONTENT_TYPES[codec],
        encoder={
            "name": writer.name,
            "library": writer.library,
            "codec_library": writer.codec_library or vendor,
            "settings": writer.settings,
            "source": {
                "format": "WAV PCM 16-bit",
                "sample_rate": fmt.sample_rate,
                "channels": fmt.channels,
                "frames": frames,
                "seconds": round(frames / fmt.sample_rate, 3),
            },
            "warnings": warnings,
        },
        transformed=True,
    )


class _LameWriter:
    """MP3 through lameenc: LAME built with its assembly optimisations, about 3x faster than the LAME
    inside soundfile's libsndfile (which also cannot set LAME's quality). The stream carries no Info tag,
    so decoders add LAME's ~0.2 s of padding; ``encoder["source"]["frames"]`` keeps the exact length."""

    name = "lameenc-MP3/LAME"

    def __init__(self, path: Path, fmt: _WavFormat, kbps: int, warnings: list[str]) -> None:
        out_rate = fmt.sample_rate if fmt.sample_rate in _MP3_SAMPLE_RATES else None
        if out_rate is None:
            warnings.append(f"MP3 has no {fmt.sample_rate} Hz mode; LAME resampled to the nearest rate")
        allowed = _MP3_MPEG1_KBPS if (out_rate or 0) >= 32000 else _MP3_MPEG2_KBPS
        if kbps not in allowed:
            nearest = min(allowed, key=lambda k: abs(k - kbps))
            warnings.append(f"MP3 at {fmt.sample_rate} Hz cannot be {kbps} kbps; used {nearest} kbps")
            kbps = nearest
        self._lame = lameenc.Encoder()
        self._lame.set_in_sample_rate(fmt.sample_rate)
        if out_rate is not None:
            self._lame.set_out_sample_rate(out_rate)
        self._lame.set_channels(fmt.channels)
        self._lame.set_bit_rate(kbps)
        self._lame.set_quality(_LAME_QUALITY)
        self._file = open(path, "wb")  # closed in close()
        self._started = False
        self.library = f"lameenc {importlib.metadata.version('lameenc')}"
        self.codec_library: str | None = f"LAME {_LAMEENC_LAME_VERSION}"
        self.settings: dict[str, Any] = {
            "codec": "mp3",
            "sample_rate": out_rate or fmt.sample_rate,
            "channels": fmt.channels,
            "bitrate_kbps": kbps,
            "bitrate_mode": "CBR",
            "lame_quality": _LAME_QUALITY,
        }

    def write(self, block: np.ndarray) -> None:
        self._file.write(self._lame.encode(block.tobytes()))
        self._started = True

    def close(self) -> None:
        try:
            if self._started:  # lameenc refuses to flush an encoder that never encoded
                self._file.write(self._lame.flush())
        finally:
            self._file.close()


class _SndfileWriter:
    """FLAC through libsndfile; records what libsndfile's log says the encoder actually used."""

    name = "libsndfile-FLAC"

    def __init__(self, path: Path, fmt: _WavFormat) -> None:
        self.settings: dict[str, Any] = {"codec": "flac", "sample_rate": fmt.sample_rate, "channels": fmt.channels}
        options = {"format": "FLAC", "subtype": "PCM_16", "compression_level": _FLAC_LEVEL / 8}
        self.settings.update(flac_level=_FLAC_LEVEL, compression_level=_FLAC_LEVEL / 8)
        self.library = f"libsndfile {soundfile.__libsndfile_version__} (soundfile {soundfile.__version__})"
        self.codec_library: str | None = None  # read from the stream header after encoding
        self._file = soundfile.SoundFile(str(path), "w", samplerate=fmt.sample_rate, channels=fmt.channels, **options)

    def write(self, block: np.ndarray) -> None:
        self._file.write(block)

    def close(self) -> None:
        log = self._file.extra_info
        self._file.close()
        if m := re.search(r"COMPRESSION_LEVEL to (\d+)", log):
            self.settings["flac_level"] = int(m[1])


_Writer = _LameWriter | _SndfileWriter | opus.OggOpusWriter


def _open_writer(
    codec: str,
    path: Path,
    fmt: _WavFormat,
    warnings: list[str],
    *,
    mp3_kbps: int,
    opus_kbps: int,
    opus_dtx: bool,
) -> _Writer:
    if codec == "mp3":
        return _LameWriter(path, fmt, mp3_kbps, warnings)
    if codec == "opus":
        if fmt.sample_rate not in opus.RATES:
            rates = ", ".join(map(str, opus.RATES))
            raise RuntimeError(f"libopus takes {rates} Hz audio, not {fmt.sample_rate} Hz")
        return opus.OggOpusWriter(
            path, sample_rate=fmt.sample_rate, channels=fmt.channels, kbps=opus_kbps, dtx=opus_dtx
        )
    return _SndfileWriter(path, fmt)


def _hash_output(path: Path) -> tuple[str, int, str | None]:
    """Hash the finished output (read back once) and pick up the vendor string its header carries."""
    sha = hashlib.sha256()
    size = 0
    vendor: str | None = None
    with open(path, "rb", buffering=0) as f:
        buf = memoryview(bytearray(READ_CHUNK))
        while n := f.readinto(buf):
            if size == 0 and (m := _VENDOR_RE.search(buf[: min(n, 8192)])):
                vendor = m[0].decode("ascii")
            sha.update(buf[:n])
            size += n
    return sha.hexdigest(), size, vendor
