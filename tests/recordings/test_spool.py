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
