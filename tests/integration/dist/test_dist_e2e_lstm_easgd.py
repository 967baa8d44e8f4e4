"""End to end, lstm with easgd: a real master and N real worker processes on loopback.

Converges well above chance for N = 1, 2, 4 (bars and their measurements in conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_case


@pytest.mark.parametrize("workers", [1, 2, 4])
def test_lstm_easgd_converges(dist_dataset: Path, tmp_path: Path, workers: int) -> None:
    run_case(dist_dataset, tmp_path / "run", "lstm", workers, "easgd")
