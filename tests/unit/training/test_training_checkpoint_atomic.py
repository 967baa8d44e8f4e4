"""The centralized checkpoint is written like the master's.

Own temp file, fsync, rename, previous kept as checkpoint.prev.pt; a torn or
bit-rotten file is detected by its digest, and a resumed run sets it aside and
continues from the previous one.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from trafficdl.config import TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.models import build_model, input_adapter
from trafficdl.training import CheckpointError, load_checkpoint, save_checkpoint
from trafficdl.training.checkpoint import load_resumable, previous_path
from trafficdl.training.run import train_model


def _save(path: Path, model: torch.nn.Module, epoch: int) -> Path:
    return save_checkpoint(path, model, model_name="lstm", label_names=["a", "b"],
                           adapter=input_adapter("lstm"), epoch=epoch)  # fmt: skip


def _two_saves(tmp_path: Path) -> tuple[Path, torch.nn.Module]:
    torch.manual_seed(0)
    first, second = build_model("lstm", 2), build_model("lstm", 2)
    path = tmp_path / "checkpoint.pt"
    _save(path, first, 1)
    _save(path, second, 2)
    return path, first


def _corrupt_tensor_bytes(path: Path, tensor: torch.Tensor) -> None:
    """Overwrite bytes inside one tensor's stored data (what a torn write or bit rot does)."""
    raw = path.read_bytes()
    at = raw.index(tensor.detach().numpy().tobytes()[:64])
    with path.open("r+b") as f:
        f.seek(at + 8)
        f.write(b"\xff" * 32)


def test_save_keeps_the_previous_and_leaves_no_temp_file(tmp_path: Path) -> None:
    path, first = _two_saves(tmp_path)
    prev = previous_path(path)
    assert prev == tmp_path / "checkpoint.prev.pt"
    assert load_checkpoint(path).epoch == 2 and load_checkpoint(prev).epoch == 1
    torch.testing.assert_close(load_checkpoint(prev).state_dict, first.state_dict())
    assert sorted(p.name for p in tmp_path.iterdir()) == ["checkpoint.prev.pt", "checkpoint.pt"]


def test_a_corrupt_checkpoint_is_detected(tmp_path: Path) -> None:
    path, _ = _two_saves(tmp_path)
    second = load_checkpoint(path).state_dict
    _corrupt_tensor_bytes(path, next(iter(second.values())))
    with pytest.raises(CheckpointError, match="torn or corrupt checkpoint"):
        load_checkpoint(path)


@pytest.mark.parametrize("damage", ["bytes", "truncated"])
def test_resume_falls_back_to_the_previous(tmp_path: Path, damage: str) -> None:
    path, first = _two_saves(tmp_path)
    if damage == "bytes":
        _corrupt_tensor_bytes(path, next(iter(load_checkpoint(path).state_dict.values())))
    else:
        with path.open("r+b") as f:
            f.truncate(path.stat().st_size // 2)
    ckpt = load_resumable(path)
    assert ckpt.epoch == 1
    torch.testing.assert_close(ckpt.state_dict, first.state_dict())
    assert (tmp_path / "checkpoint.pt.corrupt").is_file()  # set aside, not reused
    assert load_checkpoint(path).epoch == 1  # the previous is back under the main name
    _save(path, build_model("lstm", 2), 2)  # the next save keeps a good previous
    assert load_checkpoint(previous_path(path)).epoch == 1


def test_both_bad_is_an_error(tmp_path: Path) -> None:
    path, _ = _two_saves(tmp_path)
    for p in (path, previous_path(path)):
        p.write_bytes(p.read_bytes()[:100])
    with pytest.raises(CheckpointError):
        load_resumable(path)


def test_trainer_resumes_from_the_previous_epoch_when_the_last_save_is_torn(
    toy_dataset: Callable[..., Dataset], tmp_path: Path
) -> None:
    ds = toy_dataset(classes=3, per_class=20)
    rows = np.arange(len(ds))
    cfg = TrainConfig(model="lstm", epochs=3, lr=3e-3, batch_size=20)
    path = tmp_path / "checkpoint.pt"
    train_model(ds, cfg, rows, checkpoint_path=path)  # saves after epochs 1, 2, 3
    with path.open("r+b") as f:
        f.truncate(1000)
    resumed = train_model(ds, TrainConfig(**{**cfg.__dict__, "epochs": 4}), rows,
                          checkpoint_path=path, resume=True)  # fmt: skip
    # Epoch 3's save was torn: the run continued from epoch 2's and redid epoch 3.
    assert [r["epoch"] for r in resumed.history] == [1, 2, 3, 4]
    assert load_checkpoint(path).epoch == 4
