"""`python -m bench.device_check`, the script for a lent GPU machine, keeps working here.

A machine with a GPU and 16 cores is lent for minutes, so its script must not
be first run there. Its CPU scaling part runs on this machine at the smallest
size (a real master, real workers, real bare processes); its CUDA parts need a
GPU, and without one the script says so in one line instead of failing there.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[3]


def _check(*args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "bench.device_check", *args], cwd=REPO,
                          env=env, capture_output=True, text=True, timeout=900)  # fmt: skip


def test_cpu_scaling_part_runs_and_writes_its_rows(tmp_path: Path) -> None:
    out = tmp_path / "device.json"
    proc = _check("--smoke", "--cpu-only", "--workers", "2,1", "--out", str(out))
    assert proc.returncode == 0, proc.stderr[-2000:]
    doc = json.loads(out.read_text())
    assert doc["gpu"] in ("none", torch.cuda.get_device_name(0) if torch.cuda.is_available()
                          else "none")  # fmt: skip
    rows = {r["figure"]: r for r in doc["rows"]}
    assert set(rows) == {f"CPU lstm parallel efficiency N={n}" for n in (1, 2)}
    one, two = rows["CPU lstm parallel efficiency N=1"], rows["CPU lstm parallel efficiency N=2"]
    assert one["value"] == 1.0 and one["peer_value"] == 1.0  # E(1) is 1 by definition
    assert all(math.isfinite(two[k]) and two[k] > 0 for k in ("value", "peer_value"))
    assert "parallel efficiency N=2" in proc.stdout  # the table is printed too


def test_bad_flags_and_a_missing_gpu_are_one_line(tmp_path: Path) -> None:
    bad = _check("--workers", "0,x")
    assert bad.returncode == 2 and "--workers takes positive integers" in bad.stderr
    assert "Traceback" not in bad.stderr
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the no-GPU message cannot be shown")
    no_gpu = _check("--smoke")
    assert no_gpu.returncode == 2 and len(no_gpu.stderr.strip().splitlines()) == 1
    assert "no CUDA device" in no_gpu.stderr
