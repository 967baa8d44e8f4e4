"""Which test files pytest did not collect.

pytest silently skips whole folders (its default `norecursedirs` has `dist`
and `build`), which once hid 84 tests. The suite-wide conftest compares the
files it collected with every `tests/**/test_*.py` on disk and fails the run
when one is missing, so a silently dropped folder cannot happen again.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path


def test_files(root: Path) -> set[Path]:
    """Every test_*.py under `root`, skipping caches and hidden folders."""
    found = set()
    for path in root.rglob("test_*.py"):
        rel = path.relative_to(root)
        if any(part.startswith(".") or part == "__pycache__" for part in rel.parts):
            continue
        found.add(path.resolve())
    return found


def uncollected(root: Path, collected: Iterable[Path]) -> list[Path]:
    """Test files under `root` that are not among `collected`, sorted."""
    seen = {Path(p).resolve() for p in collected}
    return sorted(test_files(root) - seen)
