"""spool.locate when the spool folder itself is a symlink, as /var/spool/asterisk/monitorDONE often is."""

from __future__ import annotations

from pathlib import Path

from recordings.lib import spool


def test_a_spool_reached_through_a_symlink_finds_files_and_still_refuses_links_that_leave_it(tmp_path: Path) -> None:
    real = tmp_path / "data" / "monitorDONE"
    (real / "MP3").mkdir(parents=True)
    (real / "MP3" / "plain-all.mp3").write_bytes(b"ID3 plain")
    (real / "kept-all.wav").write_bytes(b"RIFF kept")
    (real / "inside-all.wav").symlink_to(real / "kept-all.wav")  # a link that stays in the spool
    (tmp_path / "secret").write_bytes(b"not a recording")
    (real / "evil-all.wav").symlink_to(tmp_path / "secret")
    link = tmp_path / "monitorDONE"
    link.symlink_to(real)

    plain = spool.locate("plain", None, [link])
    inside = spool.locate("inside", None, [link])
    evil = spool.locate("evil", None, [link])

    assert isinstance(plain, spool.Found) and plain.relative == "MP3/plain-all.mp3"
    assert plain.path.read_bytes() == b"ID3 plain" and plain.size == len(b"ID3 plain")
    assert isinstance(inside, spool.Found) and inside.path.read_bytes() == b"RIFF kept"
    assert isinstance(evil, spool.NotFound) and evil.permanent and "outside the spool" in evil.reason


def test_a_listing_finds_what_each_lookup_finds_and_reads_each_folder_once(tmp_path: Path, monkeypatch) -> None:
    from datetime import date

    root = tmp_path / "monitorDONE"
    (root / "MP3" / "2026-11-02").mkdir(parents=True)
    (root / "ORIG").mkdir()
    (root / "a-all.wav").write_bytes(b"RIFF a")
    (root / "MP3" / "2026-11-02" / "a-all.mp3").write_bytes(b"ID3 a")
    (root / "ORIG" / "b-all.wav").write_bytes(b"RIFF b")
    (root / "ORIG" / "empty-all.wav").write_bytes(b"")
    (tmp_path / "secret").write_bytes(b"not a recording")
    (root / "evil-all.wav").symlink_to(tmp_path / "secret")
    names = ["a", "b", "empty", "evil", "absent", "../x"]
    day = date(2026, 11, 1)

    expected = {n: spool.locate_all(n, None, [tmp_path], day) for n in names}
    reads: list[str] = []
    real_scandir = spool.os.scandir
    monkeypatch.setattr(spool.os, "scandir", lambda p: reads.append(str(p)) or real_scandir(p))
    listing = spool.Listing()
    assert {n: spool.locate_all(n, None, [tmp_path], day, listing=listing) for n in names} == expected
    assert len(reads) == len(set(reads))  # each folder (present or not) read once for the whole batch

    (root / "late-all.wav").write_bytes(b"RIFF late")  # appears after its folder was read
    assert isinstance(spool.locate("late", None, [tmp_path], listing=listing), spool.NotFound)
    assert isinstance(spool.locate("late", None, [tmp_path], listing=spool.Listing()), spool.Found)

    monkeypatch.setattr(spool, "LISTING_MAX_NAMES", 1)
    assert isinstance(spool.locate("late", None, [tmp_path], listing=spool.Listing()), spool.Found)


def test_a_name_no_file_can_have_is_refused_and_a_symlink_loop_is_named(tmp_path: Path) -> None:
    root = tmp_path / "monitorDONE"
    root.mkdir()
    (root / "loop-all.wav").symlink_to(root / "loop2-all.wav")
    (root / "loop2-all.wav").symlink_to(root / "loop-all.wav")

    too_long = spool.locate("録音" * 50, None, [root])  # 100 characters, 300 bytes: no file name holds it
    longest = spool.check_filename("a" * (spool.NAME_MAX - len("-all.wav")))
    loop = spool.locate("loop", None, [root])

    assert isinstance(too_long, spool.NotFound) and too_long.permanent and "255-byte" in too_long.reason
    assert len(f"{longest}-all.wav".encode()) == spool.NAME_MAX
    assert isinstance(loop, spool.NotFound) and not loop.permanent and "symlink loop" in loop.reason
