"""End to end, the delta rules (DOWNPOUR, ADAG, DynSGD) with the LSTM and N = 2.

Workers commit Δ = x − x_pull and continue from the fresh centre; the master
adds Δ (DOWNPOUR), Δ/window (ADAG) or Δ/(staleness+1) (DynSGD). Same bars as
the elastic rules (conftest.py).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import run_case


@pytest.mark.parametrize("algorithm", ["downpour", "adag", "dynsgd"])
def test_delta_rules_converge(dist_dataset: Path, tmp_path: Path, algorithm: str) -> None:
    result = run_case(dist_dataset, tmp_path / "run", "lstm", 2, algorithm)
    assert result.run["algorithm"] == algorithm
