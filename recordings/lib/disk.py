"""How full this node's spool disk is, and whether that is disk pressure.

Disk pressure only moves uploads earlier (recordings still inside their local window become due, oldest
first); it never changes what may be deleted: cleanup_local still deletes only verified copies.
"""

from __future__ import annotations

import shutil
from dataclasses import asdict, dataclass
from pathlib import Path


@dataclass(frozen=True)
class DiskUsage:
    path: str
    total: int
    used: int
    free: int

    @property
    def percent(self) -> float:
        """Used share as ``df`` shows it (blocks reserved for root count as neither used nor free)."""
        usable = self.used + self.free
        return round(100.0 * self.used / usable, 1) if usable else 0.0

    def as_dict(self) -> dict[str, object]:
        return {**asdict(self), "percent": self.percent}


def spool_usage(spools: list[Path]) -> DiskUsage | None:
    """The fullest filesystem holding one of the spool folders (None if none of them exists)."""
    fullest: DiskUsage | None = None
    for folder in spools:
        try:
            total, used, free = shutil.disk_usage(folder)
        except OSError:
            continue
        usage = DiskUsage(path=str(folder), total=total, used=used, free=free)
        if fullest is None or usage.percent > fullest.percent:
            fullest = usage
    return fullest


def under_pressure(usage: DiskUsage | None, *, percent: float) -> bool:
    """Whether ``usage`` (a spool_usage() answer) is at or above ``percent`` full."""
    return usage is not None and usage.percent >= percent
