"""recordings.lib.opus: Ogg/Opus written here, read back by libsndfile's decoder (libogg + libopus)."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.lib import opus
from recordings.lib.codec import CodecError, prepare


def pages(data: bytes) -> list[dict[str, object]]:
    """Every Ogg page of ``data``, parsed by hand, its checksum recomputed."""
    found, at = [], 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS", f"no page at byte {at}"
        _v, flags, granule, _serial, sequence, crc, count = struct.unpack("<BBqIIIB", data[at + 4 : at + 27])
        lacing = data[at + 27 : at + 27 + count]
        end = at + 27 + count + sum(lacing)
        page = bytearray(data[at:end])
        page[22:26] = b"\0\0\0\0"
        found.append(
            {
                "flags": flags,
                "granule": granule,
                "sequence": sequence,
                "crc_ok": opus.ogg_crc(page) == crc,
                "body": data[at + 27 + count : end],
            }  # fmt: skip
        )
        at = end
    return found


def _ogg_crc_bitwise(data: bytes) -> int:
    """The Ogg spec's CRC, one bit at a time: the reference ogg_crc (through zlib) must agree with."""
    crc = 0
    for byte in data:
        crc ^= byte << 24
        for _ in range(8):
            crc = ((crc << 1) ^ 0x04C11DB7) & 0xFFFFFFFF if crc & 0x80000000 else (crc << 1) & 0xFFFFFFFF
    return crc


@pytest.mark.parametrize("size", [0, 1, 27, 255, 4096, 65307])
def test_ogg_crc_is_the_specs_crc(size: int) -> None:
    data = np.random.default_rng(size).integers(0, 256, size, dtype=np.uint8).tobytes()
    assert opus.ogg_crc(data) == _ogg_crc_bitwise(data)
    assert opus.ogg_crc(bytearray(data)) == _ogg_crc_bitwise(data)


def test_the_stream_follows_rfc_7845(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    synthesize_speech_like_wav(wav, seconds=7.3, seed=3)
    prepared = prepare(wav, codec="opus", workdir=tmp_path / "work")

    found = pages(prepared.output_path.read_bytes())
    assert all(p["crc_ok"] for p in found)
    assert [p["sequence"] for p in found] == list(range(len(found)))
    head, tags, *audio = found
    assert head["flags"] == 0x02 and head["body"][:8] == b"OpusHead"
    pre_skip, rate = struct.unpack("<HI", head["body"][10:16])
    assert rate == 8000 and pre_skip > 0
    assert tags["body"][:8] == b"OpusTags" and b"libopus" in tags["body"]
    assert all(p["flags"] == 0 for p in audio[:-1]) and audio[-1]["flags"] == 0x04
    granules = [p["granule"] for p in audio]
    assert granules == sorted(granules)
    assert granules[-1] == pre_skip + int(7.3 * 8000) * 6  # 48 kHz samples: the exact length after pre-skip


def test_decoded_audio_is_aligned_and_close_to_the_original(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    synthesize_speech_like_wav(wav, seconds=6.0, seed=5)
    original, _ = soundfile.read(str(wav), dtype="float64")
    prepared = prepare(wav, codec="opus", workdir=tmp_path / "work")

    decoded, rate = soundfile.read(str(prepared.output_path), dtype="float64")
    assert (rate, len(decoded)) == (8000, len(original))
    assert np.corrcoef(original, decoded)[0, 1] > 0.8  # no shift by the encoder's look-ahead


@pytest.mark.parametrize(("rate", "channels", "frame_ms"), [(16000, 2, 20), (48000, 1, 40), (8000, 1, 60)])
def test_rates_channels_and_frame_sizes_decode_to_the_same_length(
    tmp_path: Path, rate: int, channels: int, frame_ms: int
) -> None:
    t = np.arange(int(1.234 * rate)) / rate
    tone = (np.sin(2 * np.pi * 300 * t) * 8000).astype("<i2")
    pcm = np.repeat(tone[:, None], channels, axis=1)
    out = tmp_path / "tone.opus"

    writer = opus.OggOpusWriter(out, sample_rate=rate, channels=channels, kbps=16, frame_ms=frame_ms)
    for start in range(0, len(pcm), 1000):  # blocks that do not fall on frame boundaries
        writer.write(pcm[start : start + 1000])
    writer.close()

    info = soundfile.info(str(out))
    assert (info.samplerate, info.channels, info.frames) == (rate, channels, len(pcm))


def test_a_rate_libopus_cannot_take_is_a_codec_error(tmp_path: Path) -> None:
    wav = tmp_path / "cd.wav"
    synthesize_speech_like_wav(wav, seconds=1.0, seed=1, sample_rate=22050)

    with pytest.raises(CodecError, match="not 22050 Hz"):
        prepare(wav, codec="opus", workdir=tmp_path / "work")
    assert list((tmp_path / "work").iterdir()) == []


def test_the_writer_refuses_what_libopus_cannot_take(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="22050 Hz"):
        opus.OggOpusWriter(tmp_path / "x.opus", sample_rate=22050, channels=1, kbps=10)
