"""The house rules that no import contract can state: one door for state changes, Django-free helpers."""

from __future__ import annotations

import ast
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
APPS = ("recordings", "holds", "retention", "vicirec")
DOOR = ROOT / "recordings" / "custody.py"


def _sources() -> list[Path]:
    return sorted(
        path for app in APPS for path in (ROOT / app).rglob("*.py") if "migrations" not in path.parts and path != DOOR
    )


def _writes_state_or_events(tree: ast.AST) -> list[int]:
    """Lines that write Recording.state or RecordingEvent rows outside the door."""
    lines = []
    for node in ast.walk(tree):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        names = {kw.arg for kw in node.keywords}
        # RecordingEvent(...) or RecordingEvent.objects.create/bulk_create/update/...
        if isinstance(func, ast.Name) and func.id == "RecordingEvent":
            lines.append(node.lineno)
        if isinstance(func, ast.Attribute) and "RecordingEvent" in ast.unparse(func.value):
            if func.attr in {"create", "bulk_create", "update", "get_or_create", "update_or_create", "delete"}:
                lines.append(node.lineno)
        # <queryset>.update(state=...) and bulk_update(..., ["state", ...])
        if isinstance(func, ast.Attribute) and func.attr == "update" and "state" in names:
            lines.append(node.lineno)
        if isinstance(func, ast.Attribute) and func.attr == "bulk_update" and "'state'" in ast.unparse(node):
            lines.append(node.lineno)
    return lines


def test_only_the_custody_module_writes_state_or_custody_events() -> None:
    offenders = {
        str(path.relative_to(ROOT)): lines
        for path in _sources()
        if (lines := _writes_state_or_events(ast.parse(path.read_text())))
    }
    assert offenders == {}, f"state or RecordingEvent written outside recordings/custody.py: {offenders}"


def test_the_scan_finds_a_state_write_when_there_is_one() -> None:
    tree = ast.parse(
        "Recording.objects.filter(pk=1).update(state='expired')\n"
        "RecordingEvent.objects.bulk_create([])\n"
        "RecordingEvent(recording_id=1)\n"
    )
    assert _writes_state_or_events(tree) == [1, 2, 3]


def test_the_helpers_import_without_django_settings() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DJANGO_SETTINGS_MODULE"}
    code = (
        "import sys\n"
        "import recordings.lib.codec, recordings.lib.disk, recordings.lib.spool, recordings.lib.storage\n"
        "bad = sorted(m for m in sys.modules if m == 'django' or m.startswith(('django.', 'holds', 'retention')))\n"
        "bad += sorted(m for m in sys.modules if m.startswith('recordings.') and not m.startswith('recordings.lib'))\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == ""
