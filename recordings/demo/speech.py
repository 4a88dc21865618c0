"""Speech-like test audio: deterministic two-talker phone calls for the demo spool, tests and benchmarks.

Synthesised, not recorded (no downloads, no personal data): glottal pulse trains shaped by vowel formants.
"""

from __future__ import annotations

import wave
from dataclasses import dataclass, field
from pathlib import Path
from typing import Final

import numpy as np

from recordings.lib.codec import BLOCK_FRAMES

# Vowel formants (Hz, Peterson & Barney averages): /a/ /e/ /i/ /o/ /u/.
_VOWELS: Final = ((730, 1090, 2440), (530, 1840, 2480), (270, 2290, 3010), (570, 840, 2410), (300, 870, 2240))
_BANDWIDTHS: Final = (80.0, 100.0, 140.0)


@dataclass
class _Speaker:
    f0: float  # mean pitch, Hz
    formant_scale: float  # >1 shortens the vocal tract
    gain: float
    filters: list[np.ndarray] = field(default_factory=list)  # one pulse response per vowel


def synthesize_speech_like_wav(path: Path, *, seconds: float, seed: int, sample_rate: int = 8000) -> None:
    """Write a deterministic, speech-like 16-bit mono PCM WAV (two alternating talkers on a phone line).

    Voiced syllables are glottal pulse trains with drifting, falling pitch (a low and a high voice, 90–230 Hz)
    shaped by three formant resonances per vowel, at about four syllables a second, with consonant noise
    bursts, pauses between phrases and turns, and light line hiss. Generated in ``BLOCK_FRAMES`` blocks, so
    memory does not grow with ``seconds``; the same seed always gives the same bytes.
    """
    rng = np.random.default_rng(seed)
    total = int(round(seconds * sample_rate))
    speakers = [_Speaker(f0=115.0, formant_scale=1.0, gain=1.0), _Speaker(f0=200.0, formant_scale=1.15, gain=0.7)]
    filter_len = int(0.025 * sample_rate)
    for spk in speakers:
        spk.filters = [_pulse_response(v, spk.formant_scale, sample_rate, filter_len) for v in _VOWELS]

    # The syllable schedule is small (≈5 per second) and drawn up front; samples are made block by block.
    n = int(seconds * 6) + 8
    dur = rng.uniform(0.12, 0.30, n)
    kind = rng.random(n)  # what follows this syllable: a short gap, a phrase pause, or a change of talker
    turn_change = kind > 0.94
    short, phrase, turn = rng.uniform(0.02, 0.09, n), rng.uniform(0.25, 0.7, n), rng.uniform(0.3, 1.2, n)
    gap = np.select([turn_change, kind > 0.8], [turn, phrase], default=short)
    start = np.concatenate(([rng.uniform(0.1, 0.5)], np.cumsum(dur + gap)[:-1] + 0.3))
    who = np.concatenate(([0], np.cumsum(turn_change)[:-1])) % 2
    vowel = rng.integers(0, len(_VOWELS), n)
    amp = rng.uniform(0.5, 1.0, n) * np.array([s.gain for s in speakers])[who]
    pitch = rng.uniform(0.9, 1.12, n) * np.array([s.f0 for s in speakers])[who]
    slope = rng.uniform(-0.15, 0.03, n)  # mostly falling intonation across a syllable
    filters = np.stack([f for s in speakers for f in s.filters])  # index: talker * vowels + vowel

    phase = 0.0
    tail: np.ndarray = np.zeros(filter_len)
    taps = np.arange(filter_len)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(sample_rate)
        for first in range(0, total, BLOCK_FRAMES):
            count = min(BLOCK_FRAMES, total - first)
            t = (first + np.arange(count)) / sample_rate
            i = np.maximum(np.searchsorted(start, t, side="right") - 1, 0)
            u = (t - start[i]) / dur[i]  # position inside the current syllable, 0..1 while it sounds
            voiced = (t >= start[i]) & (u < 1.0)
            env = np.where(voiced, 4.0 * u * (1.0 - u), 0.0) * amp[i]  # rise and fall across the syllable
            f0 = pitch[i] * (1.0 + slope[i] * np.clip(u, 0.0, 1.0)) * (1.0 + 0.02 * np.sin(2 * np.pi * 0.8 * t))

            cycles = phase + np.cumsum(f0 / sample_rate)
            pulses = np.flatnonzero(np.diff(np.floor(cycles), prepend=np.floor(phase)) > 0)
            phase = float(cycles[-1] % 1.0)
            pulses = pulses[env[pulses] > 0]
            shapes = filters[who[i[pulses]] * len(_VOWELS) + vowel[i[pulses]]] * env[pulses, None]
            y: np.ndarray = np.bincount(
                (pulses[:, None] + taps).ravel(), weights=shapes.ravel(), minlength=count + filter_len
            ).astype(np.float64, copy=False)  # an empty bincount (a silent block) comes back as integers
            y[:filter_len] += tail
            tail = y[count : count + filter_len].copy()
            y = y[:count]

            onset = voiced & (u < 0.12)  # consonant: a short burst of bright noise at the syllable start
            noise = rng.standard_normal(count + 1, dtype=np.float32)
            burst = np.diff(noise) * 0.08 * env * onset
            hiss = noise[1:] * 0.002
            pcm = np.clip((0.3 * y + burst + hiss) * 32767.0, -32768, 32767).astype("<i2")
            out.writeframes(pcm.tobytes())


def _pulse_response(formants: tuple[int, int, int], scale: float, sample_rate: int, length: int) -> np.ndarray:
    """An impulse through three damped formant resonances (falling in level), normalised to unit peak."""
    n = np.arange(length) / sample_rate
    h = np.zeros(length)
    for k, (freq, bw) in enumerate(zip(formants, _BANDWIDTHS, strict=True)):
        f = freq * scale
        if f < 0.45 * sample_rate:
            h += 0.5**k * np.exp(-np.pi * bw * n) * np.sin(2 * np.pi * f * n)
    h /= np.max(np.abs(h))
    return h
