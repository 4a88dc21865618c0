"""An evidence package verifies itself with standard tools and a stdlib-only verify.py, outside vicirec."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
import textwrap
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


def shell_recipe(folder: Path) -> str:
    """The POSIX shell recipe of VERIFY.txt's step 4, exactly as the package prints it."""
    text = (folder / "VERIFY.txt").read_text()
    block = text.split("With a POSIX shell:\n", 1)[1].split("\n\n", 1)[0]
    return textwrap.dedent(block)


def test_the_shell_recipe_puts_every_entry_in_the_signed_tree(folder: Path) -> None:
    done = run(["sh", "-c", shell_recipe(folder)], folder)
    seqs = [line.split()[0] for line in (folder / "custody" / "entries.txt").read_text().splitlines()]
    assert done.returncode == 0 and len(seqs) >= 8
    assert done.stdout.splitlines() == [f"entry {seq}: in the signed tree" for seq in seqs]


def test_each_proof_is_a_path_of_log2_n_hashes(folder: Path) -> None:
    count = int(next(line for line in (folder / "custody" / "checkpoint.txt").read_text().splitlines()
                     if line.startswith("count ")).split()[1])  # fmt: skip
    for proof in (folder / "custody" / "proofs").iterdir():
        steps = proof.read_text().splitlines()
        assert len(steps) <= (count - 1).bit_length()
        assert all(side in {"L", "R"} and len(sibling) == 64 for side, sibling in (s.split() for s in steps))


def test_a_changed_proof_fails_verify_py_and_the_shell_recipe(folder: Path) -> None:
    proof = next(p for p in (folder / "custody" / "proofs").iterdir() if p.read_text())
    steps = proof.read_text().splitlines()
    side, sibling = steps[0].split()
    steps[0] = f"{side} {hashlib.sha256(sibling.encode()).hexdigest()}"
    proof.write_text("\n".join(steps) + "\n")
    done = verify_py(folder)
    assert done.returncode == 1 and f"not entry {proof.stem}" in done.stdout
    assert f"NOT IN THE SIGNED TREE: {proof.stem}" in run(["sh", "-c", shell_recipe(folder)], folder).stdout


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
