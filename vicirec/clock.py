"""The one clock every stage reads, so tests can move time (time-machine) and runs agree on "now".

VICIREC_TEST_CLOCK_OFFSET_SECONDS (tests only, never set in production: `check --deploy` ignores it, so
leave it unset) shifts this clock for a whole process: the soak (tests/soak/) starts worker processes
whose clock has jumped back or forward, the way a host's clock does when NTP steps it.
"""

import os
from datetime import datetime, timedelta

from django.utils import timezone

_OFFSET = timedelta(seconds=float(os.environ.get("VICIREC_TEST_CLOCK_OFFSET_SECONDS", "0") or 0))


def now() -> datetime:
    return timezone.now() + _OFFSET if _OFFSET else timezone.now()
