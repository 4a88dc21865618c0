"""recordings.lib.encoders: codec.prepare in worker processes, with the same results and failures."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import pytest

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.lib import encoders
from recordings.lib.codec import CodecError, prepare
from recordings.lib.encoders import EncoderDied, EncoderPool


@pytest.fixture
def pool() -> EncoderPool:
    pool = EncoderPool(2)
    yield pool
    pool.close()


@pytest.mark.parametrize("codec", ["opus", "mp3"])
def test_a_worker_encodes_the_same_bytes_as_this_process(pool: EncoderPool, tmp_path: Path, codec: str) -> None:
    wav = tmp_path / "call.wav"
    synthesize_speech_like_wav(wav, seconds=3.1, seed=7)

    here = prepare(wav, codec=codec, workdir=tmp_path / "here")
    there = pool.prepare(wav, codec=codec, workdir=tmp_path / "there")

    assert there.output_path.parent == tmp_path / "there" and there.output_path.is_file()
    assert (there.original_sha256, there.output_sha256, there.output_size) == (
        here.original_sha256,
        here.output_sha256,
        here.output_size,
    )
    assert there.encoder == here.encoder


def test_a_workers_errors_come_back_as_they_are(pool: EncoderPool, tmp_path: Path) -> None:
    broken = tmp_path / "broken.wav"
    broken.write_bytes(b"RIFF\x00\x00\x00\x00WAVEjunk")

    with pytest.raises(CodecError, match="broken.wav"):
        pool.prepare(broken, codec="opus", workdir=tmp_path / "work")
    with pytest.raises(FileNotFoundError):
        pool.prepare(tmp_path / "gone.wav", codec="opus", workdir=tmp_path / "work")


def test_a_worker_that_dies_fails_its_recording_as_retryable_and_the_pool_starts_again(
    pool: EncoderPool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    wav = tmp_path / "call.wav"
    synthesize_speech_like_wav(wav, seconds=1.0, seed=1)
    pool.prepare(wav, codec="opus", workdir=tmp_path / "work")  # workers started
    for pid in list(pool._executor._processes):  # type: ignore[union-attr]
        os.kill(pid, signal.SIGKILL)
    time.sleep(0.2)

    with pytest.raises(EncoderDied) as caught:
        pool.prepare(wav, codec="opus", workdir=tmp_path / "work")
    assert isinstance(caught.value, OSError)  # archive records it as a transient failure: retried

    assert pool.prepare(wav, codec="opus", workdir=tmp_path / "work").output_size > 0


def test_a_worker_ends_once_the_process_that_started_it_is_gone(tmp_path: Path) -> None:
    assert encoders._alive(os.getpid())
    child = os.fork()
    if child == 0:
        os._exit(0)
    time.sleep(0.2)
    assert not encoders._alive(child)  # a zombie, not yet reaped, counts as gone
    os.waitpid(child, 0)
    assert not encoders._alive(child)
