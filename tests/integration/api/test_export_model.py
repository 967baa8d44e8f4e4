"""export-model: ONNX (onnxruntime, CPU) and TorchScript outputs equal PyTorch's on a dataset.

Both models of the paper, trained briefly on synthetic apps; the exported files
take raw dataset rows (uint8 payload, raw packet fields), so the comparison
also checks the baked-in input adapter against trafficdl.models.adapters.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

import trafficdl
from trafficdl.cli import main
from trafficdl.dataset import Dataset
from trafficdl.export_model import check_export, reference_probabilities, run_exported
from trafficdl.models import build_model, count_parameters
from trafficdl.training.checkpoint import load_checkpoint


@pytest.fixture(scope="module")
def runs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, tuple[Path, Path]]:
    """model name -> (checkpoint, dataset): CNN over 256 payload bytes, LSTM over 20 packets."""
    root = tmp_path_factory.mktemp("export")
    trafficdl.synthesize(root / "cap", apps=3, flows_per_app=12, captures_per_app=1, seed=5)
    ds = trafficdl.extract(root / "cap", root / "ds", payload_bytes=256)
    out = {}
    for model in ("cnn1d", "lstm"):
        res = trafficdl.train(ds, root / model, model=model, epochs=2, test_fraction=0.25)
        out[model] = (res.checkpoint, ds.path)
    return out


@pytest.mark.parametrize("model", ["cnn1d", "lstm"])
@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exported_outputs_equal_pytorch(runs, tmp_path, capsys, model, fmt):
    ckpt_path, data = runs[model]
    out = tmp_path / f"model.{fmt}"
    argv = ["export-model", str(ckpt_path), "--format", fmt, "--out", str(out),
            "--check", str(data), "--json"]  # fmt: skip
    assert main(argv) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["max_abs_diff"] <= 1e-5
    ckpt, ds = load_checkpoint(ckpt_path), Dataset.open(data)
    # independently of --check: every row's probabilities, and the arg-max apps
    raw, want = reference_probabilities(ckpt, ds)
    got, labels = run_exported(out, fmt, raw)
    assert labels == ckpt.label_names == ["facebook", "instagram", "messenger"]
    assert got.shape == (len(ds), 3) and np.abs(got - want).max() <= 1e-5
    assert (got.argmax(1) == want.argmax(1)).all()
    assert check_export(out, fmt, ckpt, ds) == report["max_abs_diff"]
    card = json.loads(Path(report["card"]).read_text())
    net = build_model(model, 3, **ckpt.model_config)
    assert card["model"]["parameters"] == count_parameters(net)
    assert card["model"]["config"] == json.loads(json.dumps(ckpt.model_config))
    assert card["labels"] == labels
    assert card["figures"]["macro_f1"] == ckpt.extra["test"]["macro_f1"]
    assert card["training_data"]["n_objects"] == len(ds)
    assert card["training_data"]["extract_config"]["payload_bytes"] == 256


def test_metadata_and_dynamic_batch(runs, tmp_path):
    ckpt_path, _ = runs["lstm"]
    out = tmp_path / "m.onnx"
    assert main(["export-model", str(ckpt_path), "--format", "onnx", "--out", str(out)]) == 0
    proto = onnx.load(str(out))
    meta = {p.key: p.value for p in proto.metadata_props}
    assert json.loads(meta["labels"]) == ["facebook", "instagram", "messenger"]
    assert json.loads(meta["model_card"])["model"]["name"] == "lstm"
    ts = tmp_path / "m.pt"
    assert main(["export-model", str(ckpt_path), "--format", "torchscript", "--out", str(ts)]) == 0
    module = torch.jit.load(str(ts))
    for n in (1, 7):  # traced with 2 rows; other batch sizes work
        x = torch.zeros(n, 20, 4)
        assert module(x)[1].shape == (n, 3)


def test_bad_export_requests(runs, tmp_path, capsys):
    ckpt_path, _ = runs["lstm"]
    assert main(["export-model", str(ckpt_path), "--format", "tflite", "--out", "x"]) == 2
    assert main(["export-model", str(tmp_path / "none.pt"), "--format", "onnx",
                 "--out", str(tmp_path / "y")]) == 2  # fmt: skip
    err = capsys.readouterr().err
    assert "--format must be one of onnx, torchscript" in err and "no such checkpoint" in err
