"""Fixtures of the compliance desk tests: the four roles, a user in each, archived recordings."""

from __future__ import annotations

import importlib
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from django.apps import apps
from django.contrib.auth import get_user_model
from django.contrib.auth.models import Group
from django.core.cache import cache

from recordings.demo.speech import synthesize_speech_like_wav
from recordings.models import Recording
from recordings.pipeline.archive import archive_due
from recordings.pipeline.cleanup import cleanup_local
from tests.factories import make_recording

ROLES = ("Legal", "Legal approver", "Ops", "Auditor")
PASSWORD = "correct-horse-battery-staple"
# What a browser sends with a request made by the desk's own pages (playback is served to no other).
DESK = {"Sec-Fetch-Site": "same-origin"}
roles_migration = importlib.import_module("holds.migrations.0002_compliance_roles")


@pytest.fixture
def roles(db: None) -> None:
    """The groups as the data migration makes them (again: transactional tests flush them)."""
    roles_migration.create_roles(apps, None)
    importlib.import_module("retention.migrations.0006_erasure_roles").grant(apps, None)
    importlib.import_module("retention.migrations.0009_disposition_roles").grant(apps, None)
    cache.clear()


@pytest.fixture
def make_user(roles: None) -> Callable[..., Any]:
    def make(role: str, username: str | None = None) -> Any:
        user = get_user_model().objects.create_user(
            username or role.lower().replace(" ", "_"), password=PASSWORD, is_staff=True
        )
        user.groups.add(Group.objects.get(name=role))
        return user

    return make


@pytest.fixture
def filesystem_archive(settings: Any, tmp_path: Path, spool_dir: Path) -> Path:
    """The embedded archive folder as the target, and an empty spool."""
    settings.STORAGES = {
        **settings.STORAGES,
        "archive": {
            "BACKEND": "django.core.files.storage.FileSystemStorage",
            "OPTIONS": {"location": tmp_path / "archive"},
        },
    }
    settings.VICIREC_WORK_DIR = tmp_path / "work"
    return spool_dir


def recorded_call(spool: Path, *, seconds: float = 1.0, age_days: int = 10, **fields: Any) -> Recording:
    """A catalog entry with a real WAV capture on the spool (speech-like audio, decodable by a browser)."""
    from vicirec import clock

    recording = make_recording(start_time=clock.now() - timedelta(days=age_days), **fields)
    synthesize_speech_like_wav(spool / f"{recording.filename}-all.wav", seconds=seconds, seed=recording.pk % 1000)
    return recording


def archive_and_clear(*, clear: bool = True) -> None:
    """Run the real pipeline stages: archive what is due, then clear the local copies."""
    from vicirec import clock

    now = clock.now()
    archive_due(now=now, node="", threads=1)
    if clear:
        cleanup_local(now=now, node="")
