"""Record classes: what kind of record a campaign's recordings are, and the legal minimum that follows.

Floors are minimums from the call date. They are a starting point for counsel, not legal advice: each
entry names its source so the legal team can check it and, where their reading differs, save a policy
below the floor with an override reason (which the policy's history keeps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class RecordClass:
    key: str
    label: str
    floor_years: int
    source: str

    @property
    def floor_days(self) -> int:
        """The floor in days, rounded up so that leap days never make it short."""
        return math.ceil(self.floor_years * 365.25) + (1 if self.floor_years else 0)


RECORD_CLASSES: dict[str, RecordClass] = {
    c.key: c
    for c in (
        RecordClass("general", "General call recording", 0, "No statutory minimum; the campaign's own policy applies."),
        RecordClass(
            "debt_collection",
            "Debt-collection call recording",
            3,
            "Regulation F, 12 CFR 1006.100(b): records kept for three years after the last collection activity.",
        ),
        RecordClass(
            "telemarketing_consent",
            "Telemarketing consent record",
            5,
            "FTC Telemarketing Sales Rule, 16 CFR 310.5: records kept for five years.",
        ),
        RecordClass(
            "tcpa_consent",
            "TCPA consent evidence",
            4,
            "28 USC 1658(a): four-year limitations period for TCPA claims; keep the proof of consent that long.",
        ),
        RecordClass(
            "ach_authorization",
            "Phone ACH authorization",
            2,
            "Nacha Operating Rules: oral authorization records kept two years after termination or revocation.",
        ),
    )
}

CHOICES = [
    (c.key, f"{c.label} (minimum {c.floor_years} years)" if c.floor_years else c.label) for c in RECORD_CLASSES.values()
]


def get(key: str) -> RecordClass:
    return RECORD_CLASSES[key]
