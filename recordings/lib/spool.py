"""Finding every copy VICIdial keeps of a recording on its spool, safely.

VICIdial's AST_CRON_audio_* scripts leave the mixed recording as ``<filename>-all.wav`` in monitorDONE;
the compression step writes ``MP3/<filename>-all.mp3`` (likewise OGG, GSM, GSW; in ``YYYY-MM-DD/``
sub-folders with --file-sorting) and moves the WAV into ``ORIG/`` (flat, or in ``ORIG/YYYY-MM-DD/``).
``recording_log.location`` names the newest copy (``http://<server>/RECORDINGS/<sub-folder>/<file>``);
where the FTP/archive step moved the MP3 away, the ORIG/ original is the only local copy. See
docs/vicidial.md.

The lookup tries the location's path under ``/RECORDINGS/`` first (a hint, validated component by
component like a filename), then monitorDONE, MP3, OGG, GSM, GSW, ORIG, each flat and in the dated
sub-folders of the call's day (the day before and after too: VICIdial dates folders in the server's local
time). A spool folder configured as the spool root (the folder holding ``monitorDONE/``) is read as its
monitorDONE, so paths are always relative to monitorDONE.

A filename and a location come from a database row, so they are treated as hostile: anything that could
leave the spool (``..``, separators, absolute paths, empty path components, NUL and control characters,
symlinks, of the file or of any folder on the way, pointing outside) is refused with a reason and never
opened. Every candidate that exists is resolved (every component) and must stay under its spool folder.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from urllib.parse import unquote, urlsplit

# (sub-folder, extension, kind) in the order they are looked for. Compressed copies come from VICIdial's
# step 2 (GSW is GSM in a .wav); "wav" is the mixed capture in monitorDONE, "orig" the same capture after
# step 2 moved it into ORIG/.
LAYOUT: tuple[tuple[str, str, str], ...] = (
    ("", "wav", "wav"),
    ("MP3", "mp3", "mp3"),
    ("OGG", "ogg", "ogg"),
    ("GSM", "gsm", "gsm"),
    ("GSW", "wav", "gsw"),
    ("ORIG", "wav", "orig"),
)
ORIGINAL_KINDS = ("wav", "orig")  # the original capture: the root of the hash chain
COMPRESSED_KINDS = ("mp3", "ogg", "gsm", "gsw")  # uploaded as they are, in this order of preference
SPOOL_ROOT_CHILD = "monitorDONE"
_KIND_OF_FOLDER = {sub: kind for sub, _, kind in LAYOUT}
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
NAME_MAX = 255  # bytes in one file name (ext4, XFS, …): VICIdial's "<filename>-all.<ext>" must fit
_LONGEST_SUFFIX = max(len(f"-all.{ext}") for _, ext, _ in LAYOUT)
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


class UnsafeFilename(ValueError):
    """The filename would leave the spool or cannot be a VICIdial filename; it is never opened."""


@dataclass(frozen=True)
class Found:
    spool: Path
    relative: str  # path under the spool folder, e.g. "MP3/20240101-101010_3125551212-all.mp3"
    size: int
    mtime: float
    kind: str = "wav"  # see LAYOUT

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
    size = len(filename.encode("utf-8", "surrogateescape"))
    if size + _LONGEST_SUFFIX > NAME_MAX:
        raise UnsafeFilename(
            f"filename is {size} bytes in UTF-8: with its '-all.<ext>' suffix no file can have that name "
            f"(the {NAME_MAX}-byte limit of a file name)"
        )
    return filename


def spool_folders(spools: list[Path]) -> list[Path]:
    """The monitorDONE folders of the configured spool folders: a folder holding ``monitorDONE/`` (the
    spool root, /var/spool/asterisk) is read as that monitorDONE, so both settings give the same paths."""
    return [spool / SPOOL_ROOT_CHILD if (spool / SPOOL_ROOT_CHILD).is_dir() else spool for spool in spools]


def location_hint(filename: str, location: str | None) -> tuple[str, str] | None:
    """(relative path, kind) that recording_log.location names under /RECORDINGS/, or None.

    Validated like a filename, component by component: no empty component (``RECORDINGS//x``), no ``.``
    or ``..``, no control characters or backslashes; the folder must be one of VICIdial's (LAYOUT), an
    optional ``YYYY-MM-DD`` below it, and the file this recording's own ``<filename>-all.<ext>``.
    """
    if not location or "/RECORDINGS/" not in location:
        return None
    path = unquote(urlsplit(location).path) if "://" in location else location
    if "/RECORDINGS/" not in path:
        return None
    parts = path.split("/RECORDINGS/", 1)[1].split("/")
    if any(not p or p in {".", ".."} or "\\" in p or _CONTROL.search(p) for p in parts):
        return None
    folder = parts[0] if len(parts) > 1 and not _DATE.match(parts[0]) else ""
    rest = parts[1:] if folder else parts
    if folder not in _KIND_OF_FOLDER or len(rest) > 2 or (len(rest) == 2 and not _DATE.match(rest[0])):
        return None
    ext = {sub: ext for sub, ext, _ in LAYOUT}[folder]
    if rest[-1] != f"{filename}-all.{ext}":
        return None
    return "/".join(parts), _KIND_OF_FOLDER[folder]


def candidates(
    filename: str, location: str | None = None, day: date | None = None, *, folders: frozenset[str] | None = None
) -> list[tuple[str, str]]:
    """(relative path, kind) under a spool folder where VICIdial may have left this recording, in the
    order they are looked for: the location's hint, then each LAYOUT folder flat and dated (only those
    ``folders`` names, when given: the names in the spool folder)."""
    days = [(day + timedelta(days=d)).isoformat() for d in (0, -1, 1)] if day else []  # YYYY-MM-DD
    hint = location_hint(filename, location)
    found: list[tuple[str, str]] = [hint] if hint else []
    for sub, ext, kind in LAYOUT:
        if sub and folders is not None and sub not in folders:
            continue  # a sub-folder this spool does not have
        name = f"{filename}-all.{ext}"
        found.append((f"{sub}/{name}" if sub else name, kind))
        found.extend((f"{sub}/{d}/{name}", kind) for d in days if sub)
    unique: dict[str, str] = {}
    for relative, kind in found:
        unique.setdefault(relative, kind)
    return list(unique.items())


def _inside(path: Path, root: Path) -> bool:
    try:
        path.relative_to(root)
    except ValueError:
        return False
    return True


def _check(
    spool: Path, relative: str, kind: str, problems: list[str], root: Path | None = None
) -> Found | NotFound | None:
    """One candidate: Found, NotFound(permanent) if it leads outside the spool, None if absent or unusable
    (the reason added to ``problems``). Every component is resolved: a symlinked file or folder on the
    way that points outside the spool is refused, never followed."""
    path = spool / relative
    try:
        os.lstat(path)
    except OSError:
        return None
    target, root = Path(os.path.realpath(path)), root or Path(os.path.realpath(spool))
    if not _inside(target, root):
        return NotFound(f"{relative} leads outside the spool ({spool}) through a symlink", permanent=True)
    try:
        st = os.stat(target)
    except OSError as exc:
        problems.append(
            f"{relative} is a symlink loop" if exc.errno == errno.ELOOP else f"{relative} is a dangling symlink"
        )
        return None
    if not stat.S_ISREG(st.st_mode):
        problems.append(f"{relative} is not a regular file")
        return None
    if st.st_size == 0:
        problems.append(f"{relative} is empty (0 bytes)")
        return None
    return Found(spool=spool, relative=relative, size=st.st_size, mtime=st.st_mtime, kind=kind)


LISTING_MAX_NAMES = 200_000  # a folder with more entries than this is not kept in a Listing (memory)


class Listing:
    """The names in the spool's folders, each folder read once (one ``os.scandir``) for a batch of lookups:
    a candidate whose folder does not list its name is absent without a system call of its own, so a
    batch costs a few directory reads instead of ~20 ``lstat`` calls per recording. A name that is listed
    is checked as always (every component resolved, symlinks refused). Built for one batch and dropped:
    a file that appears after its folder was read is found by a later lookup (a recording cataloged as
    missing is looked for again). A folder that cannot be read, or holds more than LISTING_MAX_NAMES
    entries, is not listed: its candidates are checked one by one as without a Listing."""

    def __init__(self) -> None:
        self._names: dict[str, frozenset[str] | None] = {}
        self._folders: dict[tuple[Path, ...], list[Path]] = {}
        self._roots: dict[Path, Path] = {}

    def root(self, spool: Path) -> Path:
        """The spool folder with every symlink resolved, worked out once per batch."""
        if spool not in self._roots:
            self._roots[spool] = Path(os.path.realpath(spool))
        return self._roots[spool]

    def spool_folders(self, spools: list[Path]) -> list[Path]:
        """``spool_folders(spools)``, worked out once per batch."""
        key = tuple(spools)
        if key not in self._folders:
            self._folders[key] = spool_folders(spools)
        return self._folders[key]

    def names(self, spool: Path) -> frozenset[str] | None:
        """The names in a spool folder itself (None: not listed, anything may be there)."""
        folder = str(spool)
        if folder not in self._names:
            self._names[folder] = self._read(folder)
        return self._names[folder]

    def may_exist(self, spool: Path, relative: str) -> bool:
        folder, _, name = f"{spool}/{relative}".rpartition("/")
        if folder not in self._names:
            self._names[folder] = self._read(folder)
        names = self._names[folder]
        return names is None or name in names

    @staticmethod
    def _read(folder: str) -> frozenset[str] | None:
        names: list[str] = []
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    names.append(entry.name)
                    if len(names) > LISTING_MAX_NAMES:
                        return None
        except (FileNotFoundError, NotADirectoryError):
            return frozenset()  # no such folder: nothing in it
        except OSError:
            return None  # not readable (a folder may be searchable without being listable): check each name
        return frozenset(names)


def locate_all(
    filename: str | None,
    location: str | None,
    spools: list[Path],
    day: date | None = None,
    *,
    listing: Listing | None = None,
) -> list[Found] | NotFound:
    """Every local copy of a recording, in lookup order, without opening any; NotFound if there is none.

    NotFound(permanent=True) for names that are unsafe or a copy that leads outside the spool; NotFound
    for missing or empty files, which VICIdial may still be producing (its cron mixes after the call).
    ``listing`` (a batch's Listing) skips the candidates its folders do not list.
    """
    try:
        name = check_filename(filename)
    except UnsafeFilename as exc:
        return NotFound(str(exc), permanent=True)
    problems: list[str] = []
    copies: list[Found] = []
    folders = spool_folders(spools) if listing is None else listing.spool_folders(spools)
    for spool in folders:
        present: dict[str, bool] = {}  # VICIdial's folders (MP3/, ORIG/ …) this spool has: most have few
        for relative, kind in candidates(name, location, day, folders=listing.names(spool) if listing else None):
            if listing is not None:  # a batch's listing answers for every folder at once
                if not listing.may_exist(spool, relative):
                    continue
            else:
                folder = relative.split("/", 1)[0] if "/" in relative else ""
                if folder and not present.setdefault(folder, os.path.isdir(spool / folder)):
                    continue  # nothing below a folder that is not there (a dangling symlink to one included)
            checked = _check(spool, relative, kind, problems, listing.root(spool) if listing else None)
            if isinstance(checked, NotFound):
                return checked
            if checked is not None and all(c.relative != relative for c in copies):
                copies.append(checked)
    if copies:
        return copies
    if problems:
        return NotFound("; ".join(problems))
    return NotFound(f"no file for {name!r} in {', '.join(str(s) for s in folders) or 'no spool folders'}")


def upload_source(copies: list[Found]) -> Found:
    """The copy to upload: VICIdial's compressed copy as it is when there is one, else the original."""
    for kind in (*COMPRESSED_KINDS, *ORIGINAL_KINDS):
        for copy in copies:
            if copy.kind == kind:
                return copy
    return copies[0]


def original(copies: list[Found]) -> Found | None:
    """The original capture (the mixed WAV, in monitorDONE or ORIG/), the root of the hash chain."""
    return next((c for c in copies if c.kind in ORIGINAL_KINDS), None)


def locate(
    filename: str | None,
    location: str | None,
    spools: list[Path],
    day: date | None = None,
    *,
    listing: Listing | None = None,
) -> Found | NotFound:
    """The copy of a recording to upload (see upload_source), or why there is none."""
    copies = locate_all(filename, location, spools, day, listing=listing)
    return copies if isinstance(copies, NotFound) else upload_source(copies)


def resolve(spools: list[Path], relative: str) -> Path:
    """The absolute path of a cataloged relative path, refusing anything outside the spool folders."""
    if not relative or relative.startswith("/") or any(p in {"", ".", ".."} for p in relative.split("/")):
        raise FileNotFoundError(f"{relative!r} is not a path under a spool folder")
    for spool in spool_folders(spools):
        root = Path(os.path.realpath(spool))
        path = Path(os.path.realpath(root / relative))
        if _inside(path, root) and path.is_file():
            return path
    raise FileNotFoundError(f"{relative} is not on any spool folder")


def holds_recordings(folder: Path) -> bool:
    """Whether a spool folder holds any recording file (``*-all.*``) in monitorDONE or a LAYOUT folder
    (flat or dated); stops at the first one, so a busy spool costs a few directory reads."""
    root = spool_folders([folder])[0]
    for sub in dict.fromkeys(s for s, _, _ in LAYOUT):
        base = root / sub if sub else root
        try:
            entries = list(os.scandir(base))
        except OSError:
            continue
        if any(e.is_file() and "-all." in e.name for e in entries):
            return True
        for entry in entries:
            if sub and entry.is_dir() and _DATE.match(entry.name):
                try:
                    if any(e.is_file() and "-all." in e.name for e in os.scandir(entry.path)):
                        return True
                except OSError:
                    continue
    return False
