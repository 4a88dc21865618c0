"""Seeded batches of recordings on the spool, with the baseline the invariant checker compares against."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from pathlib import Path

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.models import Campaign, Recording
from tests.factories import make_policy, make_recording
from tests.reliability.invariants import Baseline, sha256_of


def campaign(campaign_id: str, *, keep_local_days: int = 1, retain_days: int = 365, codec: str = "mp3") -> Campaign:
    c = Campaign.objects.create(kind="outbound", campaign_id=campaign_id, name=campaign_id)
    reason = "" if retain_days >= 366 * 7 else "short retention for the reliability tests"
    make_policy(
        campaign=c, keep_local_days=keep_local_days, retain_days=retain_days, codec=codec, override_reason=reason
    )
    return c


def add_recordings(
    spool: Path,
    camp: Campaign | None,
    count: int,
    *,
    now: datetime,
    age_days: float,
    seed: int,
    wav_share: float = 0.5,
    baseline: dict[int, Baseline] | None = None,
    **fields: object,
) -> dict[int, Baseline]:
    """``count`` recordings of ``camp``, ``age_days`` old: about ``wav_share`` of them 2-second 16-bit WAVs
    (encoded to the policy's codec), the rest MP3s VICIdial already compressed (uploaded as they are)."""
    rng = random.Random(seed)
    baseline = {} if baseline is None else baseline
    for n in range(count):
        r = make_recording(start_time=now - timedelta(days=age_days, minutes=n), campaign=camp, **fields)
        if rng.random() < wav_share:
            relative = f"{r.filename}-all.wav"
            synthesize_speech_like_wav(spool / relative, seconds=2, seed=rng.randrange(1 << 30))
        else:
            relative = f"MP3/{r.filename}-all.mp3"
            (spool / relative).write_bytes(b"ID3\x03" + rng.randbytes(rng.randrange(2_000, 20_000)))
        Recording.objects.filter(pk=r.pk).update(local_path=relative)
        baseline[r.pk] = Baseline(relative, sha256_of(spool / relative))
    return baseline
