"""A checkpoint as a deployable model: ONNX or TorchScript, input scaling inside, plus a card.

The exported graph takes the rows a dataset stores, not model-ready tensors:
uint8 payload bytes [n, N_b] (scaled to [0, 1] inside), or raw packet fields
float32 [n, N_p, 4] (standardized inside with the training rows' mean/std,
padding rows — direction 0, which a real packet never has — kept at 0). So
a packet pipeline needs no trafficdl code to feed it; outputs are `logits`
and `probabilities` [n, apps], apps in the order of the `labels` metadata.

ONNX goes through torch.onnx's dynamo exporter (torch.export → onnxscript):
torch 2.13 still ships the TorchScript-based exporter (dynamo=False) and it
gives the same outputs here, but it warns that it will be removed, so the
supported path is the one used. TorchScript is a trace (the wrapped models
have no data-dependent control flow). The model card (JSON) says what the
model is: the paper's architecture parameters, its training data, figures
and input contract.
"""

from __future__ import annotations

import contextlib
import io
import json
import logging
import warnings
from collections.abc import Iterator
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from trafficdl.errors import TrafficdlError
from trafficdl.training.checkpoint import Checkpoint

FORMATS = ("onnx", "torchscript")
OPSET = 18
REFERENCES = {
    "cnn1d": "1D-CNN of Wang et al. 2017 over the first N_b payload bytes (Aceto et al.'s "
    "paper setting: conv 32/k25, pool 3, conv 64/k25, pool 3, dense 1024, dropout)",
    "lstm": "LSTM of Lopez-Martin et al. 2017 over the first N_p packets x 4 fields "
    "(100 units, dense 100, ReLU)",
}


class ExportError(TrafficdlError):
    """The model cannot be exported, or an exported file disagrees with PyTorch."""


class DeployedModel(nn.Module):
    """The network with its input adapter in front and a softmax behind."""

    def __init__(self, ckpt: Checkpoint) -> None:
        super().__init__()
        self.net = ckpt.build_model("cpu")
        adapter = ckpt.adapter
        self.payload = adapter.kind == "payload"
        fields = adapter.fields
        mean = adapter.mean if not self.payload else (0.0,) * fields
        std = adapter.std if not self.payload else (1.0,) * fields
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.payload:
            z = x.to(torch.float32) / 255.0
        else:
            real = (x[:, :, 1] != 0).to(torch.float32).unsqueeze(-1)
            z = (x - self.mean) / self.std * real
        logits = self.net(z)
        return logits, torch.softmax(logits, dim=1)


def example_input(ckpt: Checkpoint, n: int = 2) -> torch.Tensor:
    a = ckpt.adapter
    if a.kind == "payload":
        return torch.randint(0, 256, (n, a.length), dtype=torch.uint8)
    x = torch.randn(n, a.length, a.fields)
    x[:, :, 1] = 1.0
    return x


def model_card(ckpt: Checkpoint, fmt: str, file: Path) -> dict[str, Any]:
    """What the exported model is, learnt from and scored (JSON-ready)."""
    from trafficdl.models import count_parameters

    net = ckpt.build_model("cpu")
    a = ckpt.adapter
    shape = [a.length] if a.kind == "payload" else [a.length, a.fields]
    last = ckpt.history[-1] if ckpt.history else {}
    return {
        "format": "trafficdl-model-card",
        "version": 1,
        "model": {
            "name": ckpt.model_name,
            "architecture": REFERENCES.get(ckpt.model_name, ckpt.model_name),
            "config": ckpt.model_config,
            "classes": ckpt.num_classes,
            "parameters": count_parameters(net),
            "fingerprint": ckpt.fingerprint,
        },
        "labels": list(ckpt.label_names),
        "input": {
            "name": "x",
            "kind": a.kind,
            "shape": ["n", *shape],
            "dtype": "uint8" if a.kind == "payload" else "float32",
            "fields": None if a.kind == "payload" else ["size", "direction", "window", "iat"],
            "scaling": "bytes / 255" if a.kind == "payload"
            else "(field - mean) / std on packets with direction != 0; padding stays 0",
            "mean": list(a.mean),
            "std": list(a.std),
        },
        "outputs": {"logits": ["n", ckpt.num_classes], "probabilities": ["n", ckpt.num_classes]},
        "training_data": {**ckpt.dataset, "extract_config": ckpt.extract_config},
        "training": {
            "train_config": asdict(ckpt.train_config) if ckpt.train_config else None,
            "dist_config": asdict(ckpt.dist_config) if ckpt.dist_config else None,
            "epochs_run": len(ckpt.history),
            "last_epoch": last,
        },
        "figures": ckpt.extra.get("test") or {},
        "export": {
            "format": fmt,
            "file": file.name,
            "torch": torch.__version__,
            "opset": OPSET if fmt == "onnx" else None,
        },
    }


def export_model(
    ckpt: Checkpoint, out: str | Path, fmt: str, card: str | Path | None = None
) -> tuple[Path, Path]:
    """Write the model and its card (default: OUT + '.card.json'); returns both paths."""
    if fmt not in FORMATS:
        raise ExportError(f"--format must be one of {', '.join(FORMATS)}")
    target = Path(out)
    card_path = Path(card) if card else target.with_name(target.name + ".card.json")
    info = model_card(ckpt, fmt, target)
    module = DeployedModel(ckpt).eval()
    example = example_input(ckpt)
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        with _quiet():
            if fmt == "onnx":
                _onnx(module, example, target, ckpt, info)
            else:
                with torch.no_grad():
                    traced = torch.jit.trace(module, (example,))
                extra = {"labels.json": json.dumps(ckpt.label_names),
                         "model_card.json": json.dumps(info, default=str)}  # fmt: skip
                torch.jit.save(traced, str(target), _extra_files=extra)
        card_path.write_text(json.dumps(info, indent=2, default=str) + "\n")
    except OSError as exc:
        raise ExportError(f"{target}: cannot write ({exc.strerror or exc})") from exc
    return target, card_path


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """Silence the exporters' narration (progress lines, deprecation and tracer warnings)."""
    noisy = logging.getLogger("torch.onnx")
    level = noisy.level
    noisy.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings(), contextlib.redirect_stdout(io.StringIO()):
            warnings.simplefilter("ignore")
            yield
    finally:
        noisy.setLevel(level)


def _onnx(module: nn.Module, example: torch.Tensor, target: Path, ckpt: Checkpoint,
          info: dict[str, Any]) -> None:  # fmt: skip
    import onnx

    batch = torch.export.Dim("n", min=1)
    program = torch.onnx.export(
        module, (example,), dynamo=True, input_names=["x"],
        output_names=["logits", "probabilities"], dynamic_shapes=({0: batch},),
        opset_version=OPSET, verbose=False,
    )  # fmt: skip
    model = program.model_proto
    for key, value in (("labels", json.dumps(ckpt.label_names)),
                       ("model_card", json.dumps(info, default=str))):  # fmt: skip
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(target))


def run_exported(path: str | Path, fmt: str, x: np.ndarray) -> tuple[np.ndarray, list[str]]:
    """(probabilities, labels) of an exported file on raw rows x (onnxruntime on the CPU)."""
    if fmt == "onnx":
        import onnxruntime as ort

        sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
        labels = json.loads(sess.get_modelmeta().custom_metadata_map["labels"])
        return sess.run(["probabilities"], {"x": x})[0], labels
    extra = {"labels.json": ""}
    module = torch.jit.load(str(path), _extra_files=extra)
    with torch.no_grad():
        _, probs = module(torch.from_numpy(np.ascontiguousarray(x)))
    return probs.numpy(), json.loads(extra["labels.json"])


def reference_probabilities(ckpt: Checkpoint, dataset: Any) -> tuple[np.ndarray, np.ndarray]:
    """(raw rows as the exported model takes them, PyTorch probabilities) for a dataset."""
    from trafficdl.training.loop import predict_logits

    model = ckpt.build_model("cpu")
    rows = np.arange(len(dataset))
    x = ckpt.adapter.prepare_dataset(dataset, rows)
    probs = torch.softmax(predict_logits(model, x, adapter=ckpt.adapter), dim=1).numpy()
    raw = dataset.payload if ckpt.adapter.kind == "payload" else dataset.packets
    dtype = np.uint8 if ckpt.adapter.kind == "payload" else np.float32
    return np.array(raw, dtype=dtype), probs  # a writable copy of the memory map


def check_export(path: str | Path, fmt: str, ckpt: Checkpoint, dataset: Any) -> float:
    """Largest |exported - PyTorch| probability over a dataset's rows (raises on label drift)."""
    raw, want = reference_probabilities(ckpt, dataset)
    got, labels = run_exported(path, fmt, raw)
    if labels != list(ckpt.label_names):
        raise ExportError(f"{path}: labels {labels} differ from the checkpoint's")
    return float(np.abs(got - want).max()) if len(want) else 0.0
