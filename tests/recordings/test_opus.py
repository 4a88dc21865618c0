"""recordings.lib.opus: Ogg/Opus written here, read back by libsndfile's decoder (libogg + libopus)."""

from __future__ import annotations

import ctypes
import ctypes.util
import struct
from pathlib import Path
from typing import Any

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


def packets(data: bytes) -> list[bytes]:
    """Every packet of the stream, the lacing values of each page joined back into packets."""
    found, partial, at = [], b"", 0
    while at < len(data):
        assert data[at : at + 4] == b"OggS", f"no page at byte {at}"
        count = data[at + 26]
        body = at + 27 + count
        for size in data[at + 27 : at + 27 + count]:
            partial += data[body : body + size]
            body += size
            if size < 255:
                found.append(partial)
                partial = b""
        at = body
    assert partial == b"", "the stream ends inside a packet"
    return found


class LibopusDecoder:
    """libopus' own decoder through ctypes (its own handle on the library, prototypes set here)."""

    def __init__(self, rate: int, channels: int) -> None:
        self.lib = lib = ctypes.CDLL(ctypes.util.find_library("opus") or "libopus.so.0")
        lib.opus_decoder_create.restype = ctypes.c_void_p
        lib.opus_decoder_create.argtypes = [ctypes.c_int32, ctypes.c_int, ctypes.POINTER(ctypes.c_int)]
        lib.opus_decode.restype = ctypes.c_int
        lib.opus_decode.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int32, ctypes.c_void_p, ctypes.c_int]
        lib.opus_decode.argtypes += [ctypes.c_int]
        lib.opus_packet_get_nb_samples.argtypes = [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32]
        lib.opus_decoder_destroy.argtypes = [ctypes.c_void_p]
        error = ctypes.c_int(0)
        self.rate, self.channels = rate, channels
        self.dec = lib.opus_decoder_create(rate, channels, ctypes.byref(error))
        assert error.value == 0 and self.dec

    def samples_in(self, packet: bytes) -> int:
        return int(self.lib.opus_packet_get_nb_samples(packet, len(packet), self.rate))

    def decode(self, packet: bytes) -> np.ndarray:
        room = self.rate * 120 // 1000  # the longest packet Opus has
        out = (ctypes.c_int16 * (room * self.channels))()
        n = self.lib.opus_decode(self.dec, packet, len(packet), out, room, 0)
        assert n > 0, f"opus_decode: {n}"
        return np.frombuffer(out, dtype="<i2", count=n * self.channels).reshape(n, self.channels)

    def close(self) -> None:
        self.lib.opus_decoder_destroy(self.dec)


def call_with_a_pause(rate: int = 8000) -> tuple[np.ndarray, slice, slice]:
    """3 s of speech, 4 s of line hiss alone (the other side listening), 3 s of speech and 123 samples more;
    the slices of the pause and of the speech after it."""
    rng = np.random.default_rng(11)
    t = np.arange(int(3 * rate)) / rate
    talk = (np.sin(2 * np.pi * 180 * t) * np.sin(2 * np.pi * 3 * t) ** 2 * 9000).astype("<i2")
    hiss = rng.normal(0.0, 3.0, 4 * rate + 123).astype("<i2")  # about -80 dBFS: a quiet line
    pcm = np.concatenate((talk, hiss, talk))[:, None]
    return pcm, slice(len(talk), len(talk) + len(hiss)), slice(len(talk) + len(hiss), len(pcm))


def write(path: Path, pcm: np.ndarray, **options: Any) -> bytes:
    writer = opus.OggOpusWriter(path, sample_rate=8000, channels=1, kbps=opus.DEFAULT_KBPS, **options)
    for start in range(0, len(pcm), 1000):
        writer.write(pcm[start : start + 1000])
    writer.close()
    return path.read_bytes()


def test_dtx_stores_the_pause_as_toc_only_packets_that_decode_to_the_exact_length(tmp_path: Path) -> None:
    pcm, pause, after = call_with_a_pause()
    data = write(tmp_path / "dtx.opus", pcm, dtx=True)
    plain = write(tmp_path / "plain.opus", pcm)

    found = pages(data)  # a valid stream: checksums, sequence, the exact length in the last granule position
    assert all(p["crc_ok"] for p in found) and [p["sequence"] for p in found] == list(range(len(found)))
    pre_skip = struct.unpack("<H", found[0]["body"][10:12])[0]  # type: ignore[index]
    assert found[-1]["flags"] == 0x04 and found[-1]["granule"] == pre_skip + len(pcm) * 6
    audio = packets(data)[2:]
    decoder = LibopusDecoder(8000, 1)
    try:
        # one packet per 60 ms frame, the pause's ones the TOC alone, every one 480 samples long
        frame = 8000 * opus.DEFAULT_FRAME_MS // 1000
        assert len(audio) == len(packets(plain)[2:]) == -(-(len(pcm) + pre_skip // 6) // frame)
        assert sum(len(p) == 1 for p in audio) >= 30  # most of the 4-second pause
        assert {decoder.samples_in(p) for p in audio} == {frame}
        decoded = np.concatenate([decoder.decode(p) for p in audio])
    finally:
        decoder.close()
    assert len(decoded) == len(audio) * frame
    decoded = decoded[pre_skip // 6 : pre_skip // 6 + len(pcm), 0].astype("float64")

    # the speech after the pause is where it was (a sample early or late scores < 0.7) and as without DTX
    assert np.corrcoef(pcm[after, 0], decoded[after])[0, 1] > 0.74
    without, _ = soundfile.read(str(tmp_path / "plain.opus"), dtype="int16")
    assert np.corrcoef(without[after], decoded[after])[0, 1] > 0.99
    # the pause is comfort noise, not louder than the line was
    assert np.sqrt(np.mean(decoded[pause] ** 2)) < 4 * np.sqrt(np.mean(pcm[pause, 0].astype("float64") ** 2))
    # libsndfile (libogg + libopus) reads the same length and the same audio
    theirs, rate = soundfile.read(str(tmp_path / "dtx.opus"), dtype="int16")
    assert (rate, len(theirs)) == (8000, len(pcm))
    assert np.corrcoef(theirs[after], decoded[after])[0, 1] > 0.99
    assert len(data) < 0.8 * len(plain)  # the pause costs almost nothing


def test_without_dtx_no_packet_is_left_empty(tmp_path: Path) -> None:
    pcm, _pause, _after = call_with_a_pause()
    audio = packets(write(tmp_path / "plain.opus", pcm))[2:]
    assert min(len(p) for p in audio) > 2  # the last one, the shortest, included


def test_prepare_passes_dtx_to_the_writer(tmp_path: Path) -> None:
    wav = tmp_path / "call.wav"
    pcm, _pause, _after = call_with_a_pause()
    soundfile.write(str(wav), pcm, 8000, subtype="PCM_16")

    plain = prepare(wav, codec="opus", workdir=tmp_path / "plain")
    dtx = prepare(wav, codec="opus", workdir=tmp_path / "dtx", opus_dtx=True)

    assert (plain.encoder["settings"]["dtx"], dtx.encoder["settings"]["dtx"]) == (False, True)
    assert dtx.output_size < 0.8 * plain.output_size
    assert soundfile.info(str(dtx.output_path)).frames == len(pcm)
