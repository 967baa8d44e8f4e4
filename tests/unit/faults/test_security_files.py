"""Files a user hands the tools: secrets must be private, loads must never run code.

- A token file readable or writable by its group or others is refused, with
  one line naming the file and its mode (library, master entry point, and
  `trafficdl master-status`).
- A checkpoint carrying a pickled object (its `__reduce__` would create a
  sentinel file) is refused by every loader of checkpoints: the centralized
  `load_checkpoint` and `load_resumable` (training, resume, evaluate, export,
  classify, live), `trafficdl classify` end to end, and the master's
  `CheckpointStore` (its own format: JSON + raw arrays, never unpickled). A
  control load with `weights_only=False` does create the sentinel, so the
  payload is live and the refusals are what keep it inert.
- A dataset array of pickled objects is refused by `Dataset.open`.
- The source holds no other way in: every `torch.load` passes
  `weights_only=True`, and there is no `pickle.load`, `allow_pickle=True` or
  `torch.jit.load` outside the one reviewed place (docs/faults.md lists them).
"""

from __future__ import annotations

import ast
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from trafficdl_master.snapshot_store import SUFFIX, CheckpointStore

from trafficdl.cli import main
from trafficdl.dataset import FORMAT_NAME, FORMAT_VERSION, Dataset
from trafficdl.rpc import security
from trafficdl.training import checkpoint as centralized

TOKEN = security.generate_token()
ROOT = Path(__file__).resolve().parents[3]


class Payload:
    """Unpickling this runs open(sentinel, "w"): the file appearing means code ran."""

    def __init__(self, sentinel: Path) -> None:
        self.sentinel = str(sentinel)

    def __reduce__(self) -> tuple[object, tuple[str, str]]:
        return (open, (self.sentinel, "w"))


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o602, 0o660])
def test_token_file_open_to_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(mode)
    with pytest.raises(security.SecurityError) as err:
        security.read_token_file(path)
    message = str(err.value)
    assert str(path) in message and f"mode {mode:04o}" in message and "\n" not in message
    assert TOKEN not in message


@pytest.mark.parametrize("mode", [0o600, 0o400])
def test_owner_only_token_file_is_read(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    path.chmod(mode)
    assert security.read_token_file(path) == TOKEN


def test_entry_points_refuse_an_open_token_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "token"
    path.write_text(TOKEN)
    path.chmod(0o644)
    env = {k: v for k, v in os.environ.items() if not k.startswith("TRAFFICDL_")}
    master = subprocess.run(
        [sys.executable, "-m", "trafficdl_master", "--dataset", str(tmp_path / "none"),
         "--world-size", "1", "--token-file", str(path), "--bind", "127.0.0.1:0"],
        env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert master.returncode == 2, master.stderr
    assert master.stderr.strip().splitlines()[-1] == (
        f"trafficdl-master: error: run token file {path} is accessible by group or others "
        f"(mode 0644): make it owner-only (chmod 600 {path})"
    )
    assert "Traceback" not in master.stderr
    assert main(["master-status", "127.0.0.1:1", "--token-file", str(path)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("trafficdl: error: run token file") and "mode 0644" in err
    assert len(err.splitlines()) == 1


def _pickled_checkpoint(path: Path, sentinel: Path) -> Path:
    torch.save({"format": centralized.FORMAT_NAME, "version": centralized.FORMAT_VERSION,
                "model": Payload(sentinel)}, path)  # fmt: skip
    return path


def test_the_payload_is_live_without_weights_only(tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    path = _pickled_checkpoint(tmp_path / "evil.pt", sentinel)
    torch.load(path, weights_only=False)
    assert sentinel.exists()


def test_centralized_loaders_refuse_a_pickled_object(tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    path = _pickled_checkpoint(tmp_path / "checkpoint.pt", sentinel)
    with pytest.raises(centralized.CheckpointError, match="not a readable checkpoint"):
        centralized.load_checkpoint(path)
    with pytest.raises(centralized.CheckpointError, match="not a readable checkpoint"):
        centralized.load_resumable(path)  # no previous file to fall back on
    assert not sentinel.exists()


def test_classify_refuses_a_pickled_checkpoint(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    sentinel = tmp_path / "ran"
    path = _pickled_checkpoint(tmp_path / "checkpoint.pt", sentinel)
    assert main(["classify", str(path), str(tmp_path / "capture.pcap")]) == 2
    err = capsys.readouterr().err.strip()
    assert err == f"trafficdl: error: {path}: not a readable checkpoint (UnpicklingError)"
    assert not sentinel.exists()


def test_master_checkpoint_store_never_unpickles(tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    store = CheckpointStore(tmp_path / "ckpt")
    good = store.save({"center": np.arange(4, dtype=np.float32)}, {"update_counter": 1})
    evil = good.with_name(f"ckpt-{99:08d}-u2{SUFFIX}")  # the newest name
    evil.write_bytes(pickle.dumps({"center": Payload(sentinel)}))
    snap = store.latest_good()
    assert snap is not None and snap.meta["update_counter"] == 1
    assert np.array_equal(snap.arrays["center"], np.arange(4, dtype=np.float32))
    assert not evil.exists() and evil.with_name(evil.name + ".corrupt").exists()
    assert not sentinel.exists()


def test_dataset_with_pickled_objects_is_refused(tmp_path: Path) -> None:
    sentinel = tmp_path / "ran"
    root = tmp_path / "ds"
    root.mkdir()
    meta = {"format": FORMAT_NAME, "version": FORMAT_VERSION, "labels": ["a"]}
    (root / "dataset.json").write_text(json.dumps(meta))
    evil = np.empty(1, dtype=object)
    evil[0] = Payload(sentinel)
    for name in ("payload", "packets", "labels", "objects"):
        np.save(root / f"{name}.npy", evil, allow_pickle=True)
    with pytest.raises(ValueError, match="Python objects"):
        Dataset.open(root)
    assert not sentinel.exists()


def _calls(tree: ast.AST) -> list[tuple[str, ast.Call]]:
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            out.append((ast.unparse(node.func), node))
    return out


def test_no_other_unpickling_in_the_source() -> None:
    loads: list[str] = []
    for folder in ("trafficdl", "master", "worker", "operator"):
        for path in sorted((ROOT / folder).rglob("*.py")):
            rel = path.relative_to(ROOT).as_posix()
            for func, call in _calls(ast.parse(path.read_text(), rel)):
                kw = {k.arg: ast.unparse(k.value) for k in call.keywords}
                if func == "torch.load":
                    assert kw.get("weights_only") == "True", (
                        f"{rel}: torch.load without weights_only"
                    )
                    loads.append(rel)
                assert func not in ("pickle.load", "pickle.loads", "dill.load"), rel
                assert kw.get("allow_pickle") != "True", f"{rel}: {func}(allow_pickle=True)"
                if func == "torch.jit.load":
                    assert rel == "trafficdl/export_model.py", rel
    assert loads == ["trafficdl/training/checkpoint.py"]
