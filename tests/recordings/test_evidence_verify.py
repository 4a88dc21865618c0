"""An evidence package verifies itself with standard tools and a stdlib-only verify.py, outside vicirec."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from recordings.export import EvidenceExport, evidence_recordings
from recordings.models import Recording
from tests.recordings.test_custody_ledger import history  # noqa: F401  (fixture)
from tests.retention.test_enforce import ACTOR, NOW

pytestmark = pytest.mark.django_db(transaction=True)


def unpack(tmp_path: Path, recordings: list[Recording]) -> Path:
    """Export, then unzip into a folder far from the repository (no vicirec code on any path)."""
    package = tmp_path / "package.zip"
    export = EvidenceExport(
        evidence_recordings(recording_ids=[r.pk for r in recordings]), who=ACTOR, scope="test", now=NOW
    )
    with package.open("wb") as out:
        export.write_to(out)
    with zipfile.ZipFile(package) as zf:
        zf.extractall(tmp_path / "unzipped")
    return tmp_path / "unzipped" / export.folder


def run(command: list[str], folder: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, cwd=folder, capture_output=True, text=True, env={"PATH": "/usr/bin:/bin"})


def verify_py(folder: Path) -> subprocess.CompletedProcess[str]:
    # -I: no PYTHONPATH, no user site, no script folder magic; -S: no site-packages (no Django, no vicirec)
    return run([sys.executable, "-I", "-S", "verify.py"], folder)


def flip_one_byte(path: Path, at: int = 10) -> None:
    data = bytearray(path.read_bytes())
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def folder(history: dict[str, Recording], tmp_path: Path) -> Path:  # noqa: F811
    return unpack(tmp_path, list(history.values()))


def test_the_package_verifies_with_verify_py_alone(folder: Path) -> None:
    done = verify_py(folder)
    assert done.returncode == 0, done.stdout + done.stderr
    assert done.stdout.rstrip().endswith("VERIFIED") and "FAIL" not in done.stdout
    assert "files match the export's ledger entry" in done.stdout
    entries = list((folder / "custody" / "entries").iterdir())
    assert len(entries) >= 8  # every custody event and access of both recordings, and the export's entry


@pytest.mark.skipif(shutil.which("sha256sum") is None, reason="sha256sum (GNU coreutils) is not installed")
def test_sha256sum_checks_files_and_ledger_entries(folder: Path) -> None:
    assert run(["sha256sum", "-c", "SHA256SUMS"], folder).returncode == 0
    assert run(["sha256sum", "-c", "entries.sha256"], folder / "custody").returncode == 0


@pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed")
def test_openssl_verifies_the_checkpoint_signature(folder: Path) -> None:
    command = ["openssl", "pkeyutl", "-verify", "-pubin", "-inkey", "custody/public_key.pem", "-rawin"]
    command += ["-in", "custody/checkpoint.txt", "-sigfile", "custody/checkpoint.sig"]
    done = run(command, folder)
    if "-rawin" in done.stderr and done.returncode != 0:
        pytest.skip(f"this openssl has no -rawin (OpenSSL 3.0 or later is needed): {done.stderr.strip()}")
    assert done.returncode == 0 and "Signature Verified Successfully" in done.stdout
    flip_one_byte(folder / "custody" / "checkpoint.txt", at=30)
    assert run(command, folder).returncode != 0


def test_the_shell_recipe_recomputes_the_chain(folder: Path) -> None:
    recipe = (
        'prev=""; while read seq kind p c e; do [ -z "$prev" ] || [ "$p" = "$prev" ] || echo "BROKEN at $seq"; '
        'h=$(printf \'%s %s %s %s\\n\' "$seq" "$kind" "$p" "$c" | sha256sum | cut -d\' \' -f1); '
        '[ "$h" = "$e" ] || echo "BROKEN at $seq"; prev=$h; done < custody/chain.txt; echo "last: $prev"'
    )
    done = run(["sh", "-c", recipe], folder)
    head = [
        line for line in (folder / "custody" / "checkpoint.txt").read_text().splitlines() if line.startswith("head")
    ]
    assert "BROKEN" not in done.stdout and done.stdout.strip().endswith(head[0].split()[1])


@pytest.mark.parametrize("victim", ["manifest.json", "audio"])
def test_one_changed_byte_fails_both_checks(folder: Path, victim: str) -> None:
    path = folder / victim if victim != "audio" else next((folder / "audio").iterdir())
    flip_one_byte(path)
    assert run(["sha256sum", "--quiet", "-c", "SHA256SUMS"], folder).returncode != 0
    done = verify_py(folder)
    assert done.returncode == 1 and "NOT VERIFIED" in done.stdout


def test_a_recomputed_sha256sums_does_not_hide_a_change(folder: Path) -> None:
    """Changing a file and rewriting SHA256SUMS to match is caught by the signed export entry."""
    manifest = folder / "manifest.json"
    flip_one_byte(manifest)
    sums = folder / "SHA256SUMS"
    lines = []
    for line in sums.read_text().splitlines():
        digest, name = line.split("  ", 1)
        lines.append(f"{hashlib.sha256((folder / name).read_bytes()).hexdigest()}  {name}")
    sums.write_text("\n".join(lines) + "\n")
    assert run(["sha256sum", "-c", "SHA256SUMS"], folder).returncode == 0
    done = verify_py(folder)
    assert done.returncode == 1 and "FAIL  files match the export's ledger entry" in done.stdout
