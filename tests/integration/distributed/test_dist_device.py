"""Workers honour the run's device: `--device auto` trains on CUDA where present and on
the CPU here; `--device cuda` on a machine without CUDA is refused before any process
starts, with one line, exit 2 (the centralized trainer says the same).

The worker keeps its model and partition on the device and moves only the exchanged
vectors to the host (worker/trafficdl_worker/trainer.py); on a GPU machine the same
code path is measured by `python -m bench.device_check`.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from trafficdl.cli import main
from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.launch import run_local


def test_auto_device_trains_distributed(dist_dataset: Path, tmp_path: Path) -> None:
    train = TrainConfig(model="lstm", epochs=2, batch_size=25, lr=0.003, device="auto")
    dist = DistConfig(workers=2, window=4, threads_per_worker=1)
    result = run_local(dist_dataset, train, dist, tmp_path / "run", progress=False)
    run = result.run
    assert run["train_config"]["device"] == "auto"
    assert run["split"]["train"] > 0 and run["epochs_run"] == pytest.approx(2.0)
    assert run["figures"]["macro_f1"] > 0.9  # the same learnable set the e2e runs use
    launch = json.loads((tmp_path / "run" / "launch.json").read_text())
    assert launch["train"]["device"] == "auto"


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA: nothing to refuse")
def test_cuda_without_a_device_is_one_line_before_any_process(
    dist_dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    rc = main(["train", str(dist_dataset), "--out", str(out), "--workers", "2",
               "--device", "cuda", "--epochs", "1"])  # fmt: skip
    err = capsys.readouterr().err
    assert rc == 2
    assert len(err.strip().splitlines()) == 1 and "no CUDA device" in err
    assert "Traceback" not in err
    assert not (out / "run.json").exists() and not (out / "launch.json").exists()
