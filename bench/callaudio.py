"""Realistic call audio for the codec benchmark: two synthetic voices taking turns on a noisy 8 kHz line.

Made on the machine, nothing downloaded: Debian's ``espeak-ng`` speaks each turn (two different voices),
``sox`` band-limits every turn to the telephone band (300–3400 Hz) at 8 kHz, and the turns are laid end to
end with pauses, line hiss and a little mains hum, seeded, so the same machine makes the same bytes. Without
``espeak-ng`` or ``sox`` the caller falls back to ``recordings.demo.speech`` and says so.
"""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile

RATE = 8000
TURNS = (
    "Thank you for calling Northside Energy, this is Maria speaking. How can I help you today?",
    "Hi, yes. I'm calling about the invoice from March. It says I owe forty two dollars and sixty cents.",
    "I can look into that for you. Could you give me the account number on the top of the letter?",
    "Sure, it is seven, three, one, nine, zero, four, two, eight.",
    "Thank you. I see a payment of forty two sixty on the twelfth of March, by debit card ending in five five.",
    "Right, so I already paid it. Why did I get a reminder then?",
    "The reminder was printed on the eleventh, one day before the payment arrived. You can ignore it.",
    "Okay, good. And can you change the billing address to fourteen Station Road, apartment three?",
    "Of course. Fourteen Station Road, apartment three. Is the postcode still the same?",
    "Yes, same postcode. Thank you so much for your help, Maria.",
    "You're welcome. Is there anything else I can do for you today?",
    "No, that was everything. Have a nice day.",
)
VOICES = (("en-us+f3", "165", "55"), ("en-gb+m3", "150", "35"))  # voice, words per minute, pitch


def missing_tools() -> list[str]:
    return [tool for tool in ("espeak-ng", "sox") if shutil.which(tool) is None]


def _turn(text: str, voice: tuple[str, str, str], folder: Path, n: int) -> np.ndarray:
    """One spoken turn, telephone band, 8 kHz, float in [-1, 1]."""
    raw, line = folder / f"turn{n}.wav", folder / f"turn{n}-8k.wav"
    name, speed, pitch = voice
    subprocess.run(["espeak-ng", "-v", name, "-s", speed, "-p", pitch, "-w", str(raw), text], check=True)
    subprocess.run(["sox", str(raw), "-r", str(RATE), "-b", "16", str(line), "sinc", "300-3400"], check=True)
    audio, _ = soundfile.read(str(line), dtype="float64")
    return audio


def make_call(path: Path, *, hiss_dbfs: float = -54.0, seed: int = 7) -> float:
    """Write a two-voice call WAV (16-bit mono, 8 kHz) to ``path``; returns its length in seconds.

    ``hiss_dbfs``: the line noise (RMS); -54 dBFS is a fair landline, -44 a bad one."""
    rng = np.random.default_rng(seed)
    parts: list[np.ndarray] = []
    with tempfile.TemporaryDirectory(prefix="vicirec-call-") as tmp:
        for n, text in enumerate(TURNS):
            parts.append(_turn(text, VOICES[n % 2], Path(tmp), n) * (0.9 if n % 2 else 0.6))
            parts.append(np.zeros(int(RATE * rng.uniform(0.3, 0.9))))  # the other side thinking
    speech = np.concatenate(parts)
    t = np.arange(len(speech)) / RATE
    hiss = rng.normal(0.0, 10 ** (hiss_dbfs / 20), len(speech))
    hum = 10 ** ((hiss_dbfs - 6) / 20) * np.sin(2 * np.pi * 50 * t)
    call = np.clip(speech * 0.8 + hiss + hum, -1.0, 1.0)
    soundfile.write(str(path), (call * 32767).astype("<i2"), RATE, subtype="PCM_16")
    return len(call) / RATE
