"""Finding a recording's file on VICIdial's spool, safely.

VICIdial's AST_CRON_audio_* scripts leave the mixed recording as ``<filename>-all.wav`` in monitorDONE,
or, once compressed, as ``MP3/<filename>-all.mp3`` (likewise GSM, OGG, GSW), sometimes in a dated
sub-folder named in ``recording_log.location``. A filename comes from a database row, so it is treated as
hostile: anything that could leave the spool (``..``, separators, absolute paths, NUL and control
characters, symlinks pointing outside) is refused with a reason and never opened.
"""

from __future__ import annotations

import os
import re
import stat
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

# (sub-folder, extension) in the order VICIdial's scripts produce them: the compressed copy wins.
LAYOUT: tuple[tuple[str, str], ...] = (
    ("MP3", "mp3"),
    ("OGG", "ogg"),
    ("GSM", "gsm"),
    ("GSW", "wav"),
    ("", "wav"),
)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_DATED = re.compile(r"^(?:\d{4}-\d{2}-\d{2}|\d{4}/\d{2}/\d{2}|\d{4}/\d{4}-\d{2}-\d{2})$")


class UnsafeFilename(ValueError):
    """The filename would leave the spool or cannot be a VICIdial filename; it is never opened."""


@dataclass(frozen=True)
class Found:
    spool: Path
    relative: str  # path under the spool folder, e.g. "MP3/20240101-101010_3125551212-all.mp3"
    size: int
    mtime: float

    @property
    def path(self) -> Path:
        return self.spool / self.relative


@dataclass(frozen=True)
class NotFound:
    reason: str
    permanent: bool = False


def check_filename(filename: str | None) -> str:
    """Return the filename if it is a plain VICIdial base name, else raise UnsafeFilename."""
    if filename is None or not filename.strip():
        raise UnsafeFilename("recording_log.filename is empty")
    if "\x00" in filename:
        raise UnsafeFilename("filename contains a NUL byte")
    if _CONTROL.search(filename):
        raise UnsafeFilename("filename contains control characters (newline, tab, …)")
    if "/" in filename or "\\" in filename:
        raise UnsafeFilename("filename contains a path separator and could leave the spool")
    if filename in {".", ".."} or filename.startswith(".."):
        raise UnsafeFilename("filename would leave the spool ('..')")
    return filename


def _dated_folders(location: str | None) -> list[str]:
    """Dated sub-folders that recording_log.location points into, e.g. "MP3/2024-01-31"."""
    if not location or "/RECORDINGS/" not in location:
        return []
    path = unquote(urlsplit(location).path)
    tail = path.split("/RECORDINGS/", 1)[1].rsplit("/", 1)[0]  # drop the file name
    parts = tail.split("/", 1)
    if len(parts) == 2 and _DATED.match(parts[1]):
        return [tail]
    return []


def candidates(filename: str, location: str | None = None) -> list[str]:
    """Relative paths, under a spool folder, where VICIdial may have left this recording."""
    names = [f"{sub}/{filename}-all.{ext}" if sub else f"{filename}-all.{ext}" for sub, ext in LAYOUT]
    for folder in _dated_folders(location):
        sub = folder.split("/", 1)[0]
        ext = dict(LAYOUT).get(sub)
        if ext:
            names.insert(0, f"{folder}/{filename}-all.{ext}")
    return names


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def locate(filename: str | None, location: str | None, spools: list[Path]) -> Found | NotFound:
    """Find a recording's file on the spool folders without ever opening it.

    Returns NotFound(permanent=True) for names that are unsafe, and NotFound for missing or empty files,
    which VICIdial may still be producing (its cron mixes recordings after the call).
    """
    try:
        name = check_filename(filename)
    except UnsafeFilename as exc:
        return NotFound(str(exc), permanent=True)
    problems: list[str] = []
    for spool in spools:
        for relative in candidates(name, location):
            path = spool / relative
            try:
                st = os.lstat(path)
            except OSError:
                continue
            if stat.S_ISLNK(st.st_mode):
                # Resolved only here: every resolution is a system call per path component, per recording.
                target, root = Path(os.path.realpath(path)), Path(os.path.realpath(spool))
                if not _inside(target, root):
                    return NotFound(f"{relative} is a symlink pointing outside the spool ({spool})", permanent=True)
                try:
                    st = os.stat(target)
                except OSError:
                    problems.append(f"{relative} is a dangling symlink")
                    continue
            if not stat.S_ISREG(st.st_mode):
                problems.append(f"{relative} is not a regular file")
                continue
            if st.st_size == 0:
                problems.append(f"{relative} is empty (0 bytes)")
                continue
            return Found(spool=spool, relative=relative, size=st.st_size, mtime=st.st_mtime)
    if problems:
        return NotFound("; ".join(problems))
    return NotFound(f"no file for {name!r} in {', '.join(str(s) for s in spools) or 'no spool folders'}")


def resolve(spools: list[Path], relative: str) -> Path:
    """The absolute path of a cataloged relative path, refusing anything outside the spool folders."""
    for spool in spools:
        root = Path(os.path.realpath(spool))
        path = Path(os.path.realpath(root / relative))
        if _inside(path, root) and path.is_file():
            return path
    raise FileNotFoundError(f"{relative} is not on any spool folder")
