"""The one clock every stage reads, so tests can move time (time-machine) and runs agree on "now"."""

from datetime import datetime

from django.utils import timezone


def now() -> datetime:
    return timezone.now()
