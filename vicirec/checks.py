"""Configuration problems reported by Django's system checks (``manage.py check`` and every command that
runs them: migrate, runserver, qcluster, the pipeline's commands).

Two kinds of configuration error exist, and they are caught at two moments:

- A value that cannot be read at all (a malformed URL, a word where a number belongs, a missing bucket
  name) stops start-up while the settings load, before Django is configured: ``vicirec.config.ConfigError``
  with one sentence naming the variable.
- A combination of readable values that cannot work on this machine or together (a folder that is not
  there, two thresholds in the wrong order, a backend vicirec does not drive) is reported here, once
  settings are loaded, with a stable id and a hint. Errors (``vicirec.E…``) stop every command that runs
  the checks; warnings (``vicirec.W…``) are printed and let it run.

The ids are part of the interface (docs/operations.md, "Configuration checks"): never reuse or renumber
one. Checks read settings and the file system only; none touches a database or the network, so they are
cheap enough to run before every command. Registered by ``recordings.apps.RecordingsConfig.ready``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from django.apps import AppConfig
from django.conf import settings
from django.core import checks
from django.core.checks import CheckMessage
from django.core.exceptions import ImproperlyConfigured
from django.core.files.storage import FileSystemStorage
from django.utils.module_loading import import_string
from storages.backends.s3 import S3Storage

TAG = "vicirec"

# The read-only VICIdial backends: they reject any statement that is not a read (vicirec.db.readonly).
VICIDIAL_ENGINES = frozenset({"vicirec.db.vicidial_mysql", "vicirec.db.vicidial_sqlite"})
# VICIREC_DISK_PRESSURE_PERCENT at this value switches early uploads off rather than ordering them late.
PRESSURE_OFF_PERCENT = 100.0
SUPPORTED_ARCHIVE_BACKENDS = "storages.backends.s3.S3Storage (R2, S3) or django.core.files.storage.FileSystemStorage"


@checks.register(TAG)
def check_vicidial_database(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E001: VICIdial's database is reached only through the backends that refuse writes.

    vicirec.settings builds the alias from VICIDIAL_DATABASE_URL with those backends; this catches a
    settings module that replaces or drops it afterwards (a local override, a test settings file).
    """
    database = settings.DATABASES.get("vicidial")
    engine = database.get("ENGINE", "") if database else ""
    if engine in VICIDIAL_ENGINES:
        return []
    found = f"uses {engine!r}" if database else "is not configured"
    return [
        checks.Error(
            f'DATABASES["vicidial"] {found}; VICIdial\'s database must be opened through a read-only backend.',
            hint="Set VICIDIAL_DATABASE_URL (mysql://… or sqlite:///… for the demo) and do not override "
            'DATABASES["vicidial"]; its ENGINE must be vicirec.db.vicidial_mysql or vicirec.db.vicidial_sqlite.',
            id="vicirec.E001",
        )
    ]


@checks.register(TAG)
def check_archive_backend(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E002: ``STORAGES["archive"]`` names a backend the archive stage can drive.

    Mirrors recordings.lib.storage.target_for, which would otherwise refuse it at the first upload.
    """
    backend = settings.STORAGES.get("archive", {}).get("BACKEND", "")
    problem = _unsupported_archive_backend(backend)
    if problem is None:
        return []
    return [
        checks.Error(
            f'STORAGES["archive"] {problem}; vicirec archives to {SUPPORTED_ARCHIVE_BACKENDS}.',
            hint='Set VICIREC_STORAGE (filesystem, s3 or r2) and do not override STORAGES["archive"].',
            id="vicirec.E002",
        )
    ]


@checks.register(TAG)
def check_archive_folder(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E003: with the filesystem target, the archive folder is (or can be created as) a writable folder.

    A folder that does not exist yet is fine: the first upload creates it, so its nearest existing parent
    is what must be writable.
    """
    archive = settings.STORAGES.get("archive", {})
    if _unsupported_archive_backend(archive.get("BACKEND", "")) is not None:
        return []  # E002 already says what to fix
    if not issubclass(import_string(archive["BACKEND"]), FileSystemStorage):
        return []
    location = Path(os.path.abspath(archive.get("OPTIONS", {}).get("location") or settings.MEDIA_ROOT))
    problem = _unwritable_folder(location)
    if problem is None:
        return []
    return [
        checks.Error(
            f"The archive folder {location} {problem}.",
            hint="Point VICIREC_ARCHIVE_DIR at a folder the user running vicirec can write, or create it with "
            "that owner.",
            id="vicirec.E003",
        )
    ]


@checks.register(TAG)
def check_review_classes(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E006: every class named in VICIREC_REVIEW_CLASSES is a record class (a typo would review nothing)."""
    from retention.classes import RECORD_CLASSES

    unknown = [key for key in settings.VICIREC_REVIEW_CLASSES if key not in RECORD_CLASSES]
    if not unknown:
        return []
    return [
        checks.Error(
            f"VICIREC_REVIEW_CLASSES names unknown record classes: {', '.join(unknown)}.",
            hint=f"Use keys of retention/classes.py: {', '.join(RECORD_CLASSES)}.",
            id="vicirec.E006",
        )
    ]


@checks.register(TAG)
def check_default_policy(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E004: the default retention policy is one the policy form would accept.

    The default policy is created from these two settings on first use, without the form's validation
    (retention.models.RetentionPolicy.clean), so the same rule is enforced here.
    """
    keep_local = settings.VICIREC_DEFAULT_KEEP_LOCAL_DAYS
    retain = settings.VICIREC_DEFAULT_RETAIN_DAYS
    if keep_local <= retain:
        return []
    return [
        checks.Error(
            f"VICIREC_DEFAULT_KEEP_LOCAL_DAYS ({keep_local}) is greater than VICIREC_DEFAULT_RETAIN_DAYS "
            f"({retain}): recordings cannot stay on local disk longer than they are retained.",
            hint="Lower VICIREC_DEFAULT_KEEP_LOCAL_DAYS (default 3) or raise VICIREC_DEFAULT_RETAIN_DAYS.",
            id="vicirec.E004",
        )
    ]


@checks.register(TAG)
def check_spool_folders(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """E005 for a spool path that is not a folder, W001 for one that does not exist.

    A missing folder is only a warning: a spool on a network mount may appear after the service starts,
    and until it does the catalog marks its recordings "missing" and looks again later. Folders inside the
    demo's folder (the embedded default) are not reported: ``manage.py demo`` creates them, and machines
    without a spool (the admin, a central worker) run with that default.
    """
    demo_dir = getattr(settings, "DEMO_DIR", None)
    messages: list[CheckMessage] = []
    for folder in (Path(p) for p in settings.VICIREC_SPOOL_DIRS):
        if os.path.isdir(folder):
            continue
        if os.path.exists(folder):
            messages.append(
                checks.Error(
                    f"VICIREC_SPOOL_DIRS names {folder}, which is not a folder.",
                    hint="List the folders VICIdial moves finished recordings to (usually "
                    "/var/spool/asterisk/monitorDONE), separated by ':'.",
                    id="vicirec.E005",
                )
            )
        elif demo_dir is None or not _is_inside(folder, Path(demo_dir)):
            messages.append(
                checks.Warning(
                    f"VICIREC_SPOOL_DIRS names {folder}, which does not exist (yet); recordings expected there "
                    "are marked missing until it does.",
                    hint="Check the path and that its file system is mounted; on a machine that holds no "
                    "recordings, leave VICIREC_SPOOL_DIRS unset.",
                    id="vicirec.W001",
                )
            )
    return messages


@checks.register(TAG)
def check_disk_thresholds(app_configs: Sequence[AppConfig] | None = None, **kwargs: Any) -> list[CheckMessage]:
    """W002: disk pressure (early uploads, which let cleanup free space) starts below the disk alert.

    Only a warning: the pipeline still works and deletes nothing sooner, but a full spool then calls for a
    person before vicirec has tried to relieve it. 100 is not reported: it is how early uploads are switched
    off (a disk is never fuller than 100 %; the test settings and benchmarks use it).
    """
    pressure = settings.VICIREC_DISK_PRESSURE_PERCENT
    alert = settings.VICIREC_DISK_ALERT_PERCENT
    if pressure < alert or pressure >= PRESSURE_OFF_PERCENT:
        return []
    return [
        checks.Warning(
            f"VICIREC_DISK_PRESSURE_PERCENT ({pressure}) is not below VICIREC_DISK_ALERT_PERCENT ({alert}): "
            "pipeline_status calls for a person before nodes start uploading early to free space.",
            hint="Set VICIREC_DISK_PRESSURE_PERCENT below VICIREC_DISK_ALERT_PERCENT (defaults 85 and 95).",
            id="vicirec.W002",
        )
    ]


def _unsupported_archive_backend(backend: str) -> str | None:
    """None if ``backend`` is a storage the archive target accepts, else what is wrong with it.

    Same rule as recordings.lib.storage.target_for: django-storages' S3Storage (or a subclass), or
    Django's FileSystemStorage itself (target_for tells it apart by its class name).
    """
    if not backend:
        return "is not configured"
    try:
        cls = import_string(backend)
    except (ImportError, ImproperlyConfigured) as exc:  # django-storages' backends raise the latter
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        return f"names {backend!r}, which cannot be imported ({reason})"
    if not isinstance(cls, type):
        return f"names {backend!r}, which is not a storage class"
    if issubclass(cls, S3Storage) or (issubclass(cls, FileSystemStorage) and cls.__name__ == "FileSystemStorage"):
        return None
    return f"uses {backend}"


def _unwritable_folder(folder: Path) -> str | None:
    """None if files can be created in ``folder`` (or it can be created), else why not."""
    existing = next(_existing(folder), None)
    if existing is None:
        return "cannot be created: none of its parent folders exists"
    if not os.path.isdir(existing):
        return "is not a folder" if existing == folder else f"cannot be created: {existing} is not a folder"
    if not os.access(existing, os.W_OK | os.X_OK):
        return "is not writable" if existing == folder else f"cannot be created: {existing} is not writable"
    return None


def _existing(folder: Path) -> Iterator[Path]:
    """``folder`` and its parents that exist, nearest first."""
    return (p for p in (folder, *folder.parents) if os.path.exists(p))


def _is_inside(path: Path, folder: Path) -> bool:
    return Path(os.path.abspath(path)).is_relative_to(os.path.abspath(folder))
