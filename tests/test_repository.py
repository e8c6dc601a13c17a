"""Checks over every file the repository tracks, whatever its language.

A merge that leaves its conflict markers in a document or a script passes ruff and most
tests (nothing parses Markdown or the UI's modules in Python), so it is checked here.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
MARKERS = ("<<<<<<< ", ">>>>>>> ", "=======\n")


def tracked_text_files() -> list[Path]:
    names = subprocess.run(
        ["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, check=True
    ).stdout.split(b"\0")
    return [
        ROOT / name.decode()
        for name in names
        if name and not name.startswith(b"src/nefos/ui/static/vendor/")
    ]


def test_no_merge_conflict_markers_are_left() -> None:
    left = []
    for path in tracked_text_files():
        if not path.is_file():
            continue
        try:
            lines = path.read_text(encoding="utf-8").splitlines(keepends=True)
        except UnicodeDecodeError:
            continue
        left += [
            f"{path.relative_to(ROOT)}:{number}"
            for number, line in enumerate(lines, 1)
            if line.startswith(MARKERS[:2]) or line == MARKERS[2]
        ]
    assert not left, f"merge conflict markers left in: {', '.join(left)}"
