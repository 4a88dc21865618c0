"""recordings.lib.codec: one read of the original, real encoders, honest hashes, clear errors."""

from __future__ import annotations

import hashlib
import shutil
import struct
import subprocess
import wave
from pathlib import Path

import numpy as np
import pytest
import soundfile

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.lib import codec, opus
from recordings.lib.codec import CodecError, Prepared, prepare
from recordings.lib.hashing import HashingReader, hash_file

SECONDS = 4.0


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def wav_bytes(
    pcm: bytes,
    *,
    format_tag: int = 1,
    channels: int = 1,
    rate: int = 8000,
    bits: int = 16,
    declared_data: int | None = None,
    before_data: bytes = b"",
    after_data: bytes = b"",
) -> bytes:
    """A RIFF/WAVE file built by hand, so tests control every chunk and size field."""
    align = channels * bits // 8
    fmt = struct.pack("<HHIIHH", format_tag, channels, rate, rate * align, align, bits)
    size = len(pcm) if declared_data is None else declared_data
    body = b"WAVE" + b"fmt " + struct.pack("<I", len(fmt)) + fmt + before_data
    body += b"data" + struct.pack("<I", size) + pcm + (b"\0" if len(pcm) % 2 else b"") + after_data
    return b"RIFF" + struct.pack("<I", len(body)) + body


def riff_chunk(chunk_id: bytes, payload: bytes) -> bytes:
    return chunk_id + struct.pack("<I", len(payload)) + payload + b"\0" * (len(payload) % 2)


def list_chunk(text: bytes) -> bytes:
    return riff_chunk(b"LIST", b"INFO" + riff_chunk(b"ICMT", text))


def tone_pcm(seconds: float, rate: int = 8000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    return (np.sin(2 * np.pi * 440 * t) * 8000).astype("<i2").tobytes()


@pytest.fixture
def speech_wav(tmp_path: Path) -> Path:
    path = tmp_path / "spool" / "20250101-120000_5551234567_1001-all.wav"
    path.parent.mkdir()
    synthesize_speech_like_wav(path, seconds=SECONDS, seed=7)
    return path


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    path = tmp_path / "work"
    path.mkdir()
    return path


def assert_hashes_match_files(prepared: Prepared, source: Path) -> None:
    assert prepared.original_sha256 == sha256(source)
    assert prepared.original_size == source.stat().st_size
    assert prepared.output_sha256 == sha256(prepared.output_path)
    assert prepared.output_size == prepared.output_path.stat().st_size


@pytest.mark.parametrize("kbps", [16, 24, 32])
def test_mp3_is_mono_8khz_at_the_asked_bitrate_and_decodes_to_the_same_length(
    speech_wav: Path, workdir: Path, kbps: int
) -> None:
    prepared = prepare(speech_wav, codec="mp3", workdir=workdir, mp3_bitrate_kbps=kbps)

    assert prepared.transformed
    assert (prepared.extension, prepared.content_type) == ("mp3", "audio/mpeg")
    assert prepared.output_path.parent == workdir
    assert_hashes_match_files(prepared, speech_wav)
    info = soundfile.info(str(prepared.output_path))
    assert (info.samplerate, info.channels) == (8000, 1)
    assert info.duration == pytest.approx(SECONDS, abs=0.25)  # without an Info tag (16 kbps) padding shows
    assert prepared.output_size == pytest.approx(kbps * 1000 / 8 * SECONDS, rel=0.1)
    assert prepared.encoder["name"] == "lameenc-MP3/LAME"
    assert prepared.encoder["codec_library"] == "LAME 3.100"
    assert prepared.encoder["settings"] == {
        "codec": "mp3",
        "sample_rate": 8000,
        "channels": 1,
        "bitrate_kbps": kbps,
        "bitrate_mode": "CBR",
        "lame_quality": 3,
    }
    assert prepared.encoder["warnings"] == []


def test_mp3_matches_the_lame_command_line_vicidial_uses(speech_wav: Path, workdir: Path, tmp_path: Path) -> None:
    lame = shutil.which("lame")
    if lame is None:
        pytest.skip("the lame command line is not installed")
    reference = tmp_path / "reference.mp3"
    subprocess.run([lame, "--quiet", "-m", "m", "-b", "16", str(speech_wav), str(reference)], check=True)

    prepared = prepare(speech_wav, codec="mp3", workdir=workdir, mp3_bitrate_kbps=16)

    ours, theirs = soundfile.info(str(prepared.output_path)), soundfile.info(str(reference))
    assert (ours.samplerate, ours.channels) == (theirs.samplerate, theirs.channels)
    assert prepared.output_size == pytest.approx(reference.stat().st_size, rel=0.02)


def test_opus_decodes_to_the_same_length(speech_wav: Path, workdir: Path) -> None:
    prepared = prepare(speech_wav, codec="opus", workdir=workdir)

    assert (prepared.extension, prepared.content_type) == ("opus", "audio/ogg")
    assert_hashes_match_files(prepared, speech_wav)
    audio, rate = soundfile.read(str(prepared.output_path), dtype="int16")
    assert rate == 8000
    assert len(audio) == SECONDS * rate  # exact: the last page's granule position trims the padding
    assert prepared.encoder["codec_library"].startswith("libopus ")
    assert prepared.encoder["name"] == "libopus-Ogg/Opus"
    assert prepared.encoder["settings"]["bitrate_kbps"] == opus.DEFAULT_KBPS
    assert prepared.encoder["settings"]["application"] == "voip"
    assert prepared.encoder["settings"]["dtx"] is opus.DEFAULT_DTX is False
    assert prepared.output_size < speech_wav.stat().st_size / 8


def test_flac_round_trips_sample_exact(speech_wav: Path, workdir: Path) -> None:
    prepared = prepare(speech_wav, codec="flac", workdir=workdir)

    assert (prepared.extension, prepared.content_type) == ("flac", "audio/flac")
    assert_hashes_match_files(prepared, speech_wav)
    original, _ = soundfile.read(str(speech_wav), dtype="int16")
    decoded, rate = soundfile.read(str(prepared.output_path), dtype="int16")
    assert rate == 8000
    np.testing.assert_array_equal(decoded, original)
    assert prepared.encoder["codec_library"].startswith("reference libFLAC ")


def test_long_recordings_are_encoded_block_by_block(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "long.wav"
    synthesize_speech_like_wav(path, seconds=3 * codec.BLOCK_FRAMES / 8000 + 1.5, seed=1)

    prepared = prepare(path, codec="flac", workdir=workdir)

    original, _ = soundfile.read(str(path), dtype="int16")
    decoded, _ = soundfile.read(str(prepared.output_path), dtype="int16")
    np.testing.assert_array_equal(decoded, original)


@pytest.mark.parametrize("codec_name", ["mp3", "flac"])
def test_stereo_recordings_keep_both_channels(tmp_path: Path, workdir: Path, codec_name: str) -> None:
    left = np.frombuffer(tone_pcm(1.0), dtype="<i2")
    path = tmp_path / "stereo.wav"
    path.write_bytes(wav_bytes(np.column_stack([left, left // 2]).tobytes(), channels=2))

    prepared = prepare(path, codec=codec_name, workdir=workdir)

    assert soundfile.info(str(prepared.output_path)).channels == 2
    assert prepared.encoder["settings"]["channels"] == 2


@pytest.mark.parametrize("codec_name", ["mp3", "opus", "flac", "none"])
def test_the_original_is_opened_once_and_read_exactly_once(
    speech_wav: Path, workdir: Path, monkeypatch: pytest.MonkeyPatch, codec_name: str
) -> None:
    readers: list[HashingReader] = []
    real_open = codec._open_source

    def counting_open(path: Path):  # type: ignore[no-untyped-def]
        raw, reader = real_open(path)
        readers.append(reader)
        return raw, reader

    monkeypatch.setattr(codec, "_open_source", counting_open)
    prepared = prepare(speech_wav, codec=codec_name, workdir=workdir)

    assert len(readers) == 1  # HashingReader cannot seek, so one reader means one pass
    assert readers[0].bytes_read == speech_wav.stat().st_size
    assert readers[0].hexdigest() == prepared.original_sha256 == sha256(speech_wav)


def test_trailing_chunks_after_the_audio_are_part_of_the_original_hash(tmp_path: Path, workdir: Path) -> None:
    pcm = tone_pcm(1.0)
    path = tmp_path / "with-list.wav"
    path.write_bytes(wav_bytes(pcm, before_data=list_chunk(b"agent 1001"), after_data=list_chunk(b"x" * 5001)))

    prepared = prepare(path, codec="flac", workdir=workdir)

    assert_hashes_match_files(prepared, path)
    decoded, _ = soundfile.read(str(prepared.output_path), dtype="int16")
    np.testing.assert_array_equal(decoded, np.frombuffer(pcm, dtype="<i2"))


def test_odd_sized_chunks_are_padded_as_riff_requires(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "odd.wav"
    path.write_bytes(wav_bytes(tone_pcm(0.5), before_data=riff_chunk(b"vrec", b"odd")))  # 3 bytes + pad byte

    prepared = prepare(path, codec="flac", workdir=workdir)

    assert prepared.encoder["source"]["frames"] == 4000


def test_wave_format_extensible_pcm_is_encoded(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "extensible.wav"
    soundfile.write(str(path), np.frombuffer(tone_pcm(1.0), dtype="<i2"), 8000, format="WAVEX", subtype="PCM_16")

    prepared = prepare(path, codec="mp3", workdir=workdir)

    assert prepared.transformed
    assert_hashes_match_files(prepared, path)


@pytest.mark.parametrize("name", ["call-all.mp3", "call-all.gsm", "call-all.ogg", "call-all.wav.gpg"])
def test_files_vicidial_already_compressed_pass_through_unchanged(tmp_path: Path, workdir: Path, name: str) -> None:
    path = tmp_path / name
    path.write_bytes(b"\xff\xfb" + bytes(range(256)) * 40)

    prepared = prepare(path, codec="mp3", workdir=workdir)

    assert not prepared.transformed
    assert prepared.output_path == path
    assert prepared.extension == path.suffix.lstrip(".")
    assert prepared.original_sha256 == prepared.output_sha256 == sha256(path)
    assert prepared.original_size == prepared.output_size == path.stat().st_size
    assert prepared.encoder["name"] == "none"
    assert list(workdir.iterdir()) == []


def test_codec_none_passes_a_wav_through(speech_wav: Path, workdir: Path) -> None:
    prepared = prepare(speech_wav, codec="none", workdir=workdir)

    assert not prepared.transformed
    assert (prepared.output_path, prepared.extension, prepared.content_type) == (speech_wav, "wav", "audio/wav")
    assert_hashes_match_files(prepared, speech_wav)
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    ("format_tag", "bits"),
    [(0x0031, 0), (0x0007, 8), (0x0003, 32), (0x0001, 24)],
    ids=["gsm-in-wav (GSW)", "mu-law", "float", "24-bit"],
)
def test_wav_that_is_not_16_bit_pcm_passes_through(tmp_path: Path, workdir: Path, format_tag: int, bits: int) -> None:
    path = tmp_path / "call-all.wav"
    path.write_bytes(wav_bytes(b"\x12\x34" * 3250, format_tag=format_tag, bits=bits, after_data=list_chunk(b"x")))

    prepared = prepare(path, codec="mp3", workdir=workdir)

    assert not prepared.transformed
    assert prepared.output_path == path
    assert prepared.original_sha256 == prepared.output_sha256 == sha256(path)
    assert prepared.encoder["reason"]
    assert list(workdir.iterdir()) == []


def test_wav_without_audio_frames_passes_through_with_a_warning(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "silent-hangup.wav"
    path.write_bytes(wav_bytes(b""))

    prepared = prepare(path, codec="mp3", workdir=workdir)

    assert not prepared.transformed
    assert prepared.encoder["reason"] == "WAV has no audio frames"
    assert list(workdir.iterdir()) == []


def test_truncated_data_is_encoded_as_far_as_it_goes_with_a_warning(tmp_path: Path, workdir: Path) -> None:
    pcm = tone_pcm(1.0) + b"\x01"  # the capture stopped mid-sample
    path = tmp_path / "cut.wav"
    path.write_bytes(wav_bytes(pcm, declared_data=len(pcm) * 3)[:-1])  # drop the pad byte, too

    prepared = prepare(path, codec="flac", workdir=workdir)

    assert prepared.transformed
    assert_hashes_match_files(prepared, path)
    assert prepared.encoder["source"]["frames"] == 8000
    warnings = " ".join(prepared.encoder["warnings"])
    assert "truncated WAV" in warnings
    assert "incomplete sample frame" in warnings


def test_unset_data_size_is_read_to_the_end_of_the_file(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "streamed.wav"
    path.write_bytes(wav_bytes(tone_pcm(1.0), declared_data=0xFFFFFFFF))

    prepared = prepare(path, codec="flac", workdir=workdir)

    assert prepared.encoder["source"]["frames"] == 8000
    assert "unset" in prepared.encoder["warnings"][0]


@pytest.mark.parametrize(
    ("name", "content", "message"),
    [
        ("empty.wav", b"", "is empty"),
        ("empty.mp3", b"", "is empty"),
        ("short.wav", b"RIFF\x00\x00", "too short"),
        ("text.wav", b"<html>404 Not Found</html>" * 4, "not a WAV file"),
        ("header-only.wav", wav_bytes(b"")[:30], "ends inside its fmt chunk"),
        ("no-data.wav", wav_bytes(b"")[:36], "ends before its data chunk"),
        ("data-first.wav", b"RIFF\x10\x00\x00\x00WAVEdata\x00\x00\x00\x00", "before any fmt chunk"),
        ("huge-fmt.wav", b"RIFF\x10\x00\x00\x00WAVEfmt \xff\xff\xff\x7f", "fmt chunk claims"),
        ("cut-list.wav", wav_bytes(b"", before_data=list_chunk(b"abcdef"))[:44], "ends inside a 'LIST' chunk"),
        ("garbage-chunk.wav", b"RIFF\x10\x00\x00\x00WAVE\xea\x97\xf3\n\xff\x00\x00\x00", "inside a damaged chunk"),
    ],
)
def test_broken_files_raise_codec_error_and_leave_nothing_behind(
    tmp_path: Path, workdir: Path, name: str, content: bytes, message: str
) -> None:
    path = tmp_path / name
    path.write_bytes(content)

    with pytest.raises(CodecError, match=message):
        prepare(path, codec="mp3", workdir=workdir)
    assert list(workdir.iterdir()) == []


def test_empty_file_is_an_error_even_with_codec_none(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "empty.wav"
    path.touch()

    with pytest.raises(CodecError, match="is empty"):
        prepare(path, codec="none", workdir=workdir)


def test_encoder_failure_becomes_codec_error_and_removes_the_partial_output(tmp_path: Path, workdir: Path) -> None:
    path = tmp_path / "odd-rate.wav"
    path.write_bytes(wav_bytes(tone_pcm(0.5, rate=7000), rate=7000))  # Opus only takes 8/12/16/24/48 kHz

    with pytest.raises(CodecError, match="could not be encoded to opus"):
        prepare(path, codec="opus", workdir=workdir)
    assert list(workdir.iterdir()) == []


@pytest.mark.parametrize(
    "options", [{"codec": "wav"}, {"codec": "mp3", "mp3_bitrate_kbps": 20}, {"codec": "opus", "opus_bitrate_kbps": 3}]
)
def test_bad_options_raise_value_error_before_reading(
    speech_wav: Path, workdir: Path, options: dict[str, object]
) -> None:
    with pytest.raises(ValueError):
        prepare(speech_wav, workdir=workdir, **options)  # type: ignore[arg-type]


def test_hash_file_matches_hashlib(speech_wav: Path) -> None:
    assert hash_file(speech_wav) == (sha256(speech_wav), speech_wav.stat().st_size)


def test_synthesized_speech_is_deterministic_8khz_mono_16_bit_pcm(tmp_path: Path) -> None:
    a, b, c = tmp_path / "a.wav", tmp_path / "b.wav", tmp_path / "c.wav"
    synthesize_speech_like_wav(a, seconds=12.5, seed=42)
    synthesize_speech_like_wav(b, seconds=12.5, seed=42)
    synthesize_speech_like_wav(c, seconds=12.5, seed=43)

    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    info = soundfile.info(str(a))
    assert (info.format, info.subtype, info.samplerate, info.channels) == ("WAV", "PCM_16", 8000, 1)
    assert info.frames == 100_000
    audio, _ = soundfile.read(str(a), dtype="int16")
    loud = np.abs(audio) > 1000
    assert 0.2 < loud.mean() < 0.8  # talk with pauses, not a tone and not silence
    assert np.abs(audio).max() < 32767  # no clipping


def test_synthesized_speech_has_voice_pitch_and_formant_energy(tmp_path: Path) -> None:
    path = tmp_path / "speech.wav"
    synthesize_speech_like_wav(path, seconds=10, seed=5)
    audio, rate = soundfile.read(str(path), dtype="float64")

    spectrum = np.abs(np.fft.rfft(audio)) ** 2
    freqs = np.fft.rfftfreq(len(audio), 1 / rate)

    def band(lo: float, hi: float) -> float:
        return float(spectrum[(freqs >= lo) & (freqs < hi)].sum())

    assert band(80, 250) > 0.02 * spectrum.sum()  # fundamentals of the two voices
    assert band(250, 3400) > 0.5 * spectrum.sum()  # formants: most energy in the telephone band


def test_synthesis_of_a_stretch_of_silence_still_writes_valid_audio(tmp_path: Path) -> None:
    # The first syllable starts after 0.1 s: a shorter file has no voiced pulse in its only block.
    path = tmp_path / "silence.wav"
    synthesize_speech_like_wav(path, seconds=0.05, seed=3)
    with wave.open(str(path)) as w:
        assert (w.getframerate(), w.getnchannels(), w.getsampwidth(), w.getnframes()) == (8000, 1, 2, 400)


@pytest.mark.parametrize(("channels", "rate"), [(0, 8000), (1, 2_000_000_000), (1, 10)], ids=["0ch", "2GHz", "10Hz"])
def test_a_wav_header_with_nonsense_channels_or_rate_passes_through_with_the_reason(
    tmp_path: Path, workdir: Path, channels: int, rate: int
) -> None:
    path = tmp_path / "call-all.wav"
    path.write_bytes(wav_bytes(b"\x12\x34" * 3250, channels=channels, rate=rate))

    prepared = prepare(path, codec="opus", workdir=workdir)

    assert not prepared.transformed and prepared.original_sha256 == sha256(path)
    assert "WAV format is unusual" in prepared.encoder["reason"] and f"{rate} Hz" in prepared.encoder["reason"]


@pytest.mark.parametrize(
    ("name", "data", "warned"),
    [
        ("call-all.mp3", b"<html><body>404 Not Found</body></html>\n" * 20, True),
        ("call-all.ogg", b"ID3\x03" + bytes(200), True),
        ("call-all.mp3", b"ID3\x03" + bytes(200), False),
        ("call-all.mp3", b"\xff\xfb\x90\x64" + bytes(200), False),
        ("call-all.ogg", b"OggS" + bytes(200), False),
    ],
)
def test_a_compressed_copy_that_does_not_look_like_its_format_is_archived_as_it_is_with_a_warning(
    tmp_path: Path, workdir: Path, name: str, data: bytes, warned: bool
) -> None:
    path = tmp_path / name
    path.write_bytes(data)

    prepared = prepare(path, codec="mp3", workdir=workdir)

    assert prepared.output_path == path and prepared.original_sha256 == sha256(path)
    assert any("does not look like" in w for w in prepared.encoder["warnings"]) is warned
