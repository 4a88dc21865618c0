"""The archive target configured in ``STORAGES["archive"]``: the one place that turns Django's storage
setting into a ``recordings.lib.storage.ArchiveTarget``."""

from __future__ import annotations

from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import storages

from recordings.lib.storage import ArchiveTarget, UnsupportedStorage, target_for


def get_target() -> ArchiveTarget:
    """The configured target, built fresh on each call (settings may change)."""
    try:
        return target_for(storages["archive"])
    except UnsupportedStorage as exc:
        raise ImproperlyConfigured(str(exc)) from None
