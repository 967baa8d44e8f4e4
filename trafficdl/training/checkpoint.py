"""The checkpoint: everything `classify`, `evaluate` and a resumed run need, in one file.

One torch.save'd dict of plain data and tensors (so it loads with
`weights_only=True`: opening a checkpoint never runs code from it):

    format, version      "trafficdl-checkpoint", 1
    model                name, num_classes, config (dataclass fields), fingerprint
    state_dict           the weights
    label_names          class index → app name
    adapter              input kind, length, packet-field mean/std (fitted on training rows)
    extract_config       how the training captures were segmented (classify repeats it)
    train_config         TrainConfig as a dict; dist_config likewise (or None: centralized)
    history              per-epoch records (loss, accuracy, val_*, seconds = WTPE)
    epoch, optimizer     for resumption (optimizer state may be None)
    dataset, extra       provenance and free-form additions (e.g. test figures)

The distributed master writes its final centre model with the same function.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trafficdl.config import DistConfig, TrainConfig, from_dict, to_dict
from trafficdl.errors import TrafficdlError
from trafficdl.models import build_model, config_dict, fingerprint
from trafficdl.models.adapters import InputAdapter

FORMAT_NAME = "trafficdl-checkpoint"
FORMAT_VERSION = 1


class CheckpointError(TrafficdlError):
    """A checkpoint file is missing, unreadable or not a trafficdl checkpoint."""


@dataclass
class Checkpoint:
    """A loaded checkpoint; `build_model()` gives the trained network back."""

    model_name: str
    num_classes: int
    model_config: dict[str, Any]
    state_dict: dict[str, torch.Tensor]
    label_names: list[str]
    adapter: InputAdapter
    train_config: TrainConfig | None = None
    dist_config: DistConfig | None = None
    extract_config: dict[str, Any] | None = None
    history: list[dict[str, Any]] = field(default_factory=list)
    epoch: int = 0
    optimizer: dict[str, Any] | None = None
    dataset: dict[str, Any] = field(default_factory=dict)
    extra: dict[str, Any] = field(default_factory=dict)
    fingerprint: str = ""

    def build_model(self, device: torch.device | str = "cpu") -> nn.Module:
        """The architecture rebuilt from its config, with the saved weights, in eval mode."""
        model = build_model(self.model_name, self.num_classes, **self.model_config)
        try:
            model.load_state_dict(self.state_dict)
        except RuntimeError as exc:
            first = str(exc).strip().splitlines()[-1].strip()
            raise CheckpointError(f"checkpoint weights do not fit its model: {first}") from exc
        if self.fingerprint and fingerprint(model) != self.fingerprint:
            raise CheckpointError("checkpoint weights do not match its recorded architecture")
        return model.to(device).eval()


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    model_name: str,
    label_names: list[str],
    adapter: InputAdapter,
    train_config: TrainConfig | None = None,
    dist_config: DistConfig | None = None,
    extract_config: dict[str, Any] | None = None,
    history: list[dict[str, Any]] | None = None,
    epoch: int = 0,
    optimizer: torch.optim.Optimizer | None = None,
    dataset: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically (temp file, then rename); returns its path."""
    out = Path(path)
    out.parent.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    payload = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "model": {
            "name": model_name,
            "num_classes": int(getattr(model, "num_classes", len(label_names))),
            "config": config_dict(model),
            "fingerprint": fingerprint(model),
        },
        "state_dict": state,
        "label_names": list(label_names),
        "adapter": adapter.to_dict(),
        "extract_config": extract_config,
        "train_config": to_dict(train_config) if train_config else None,
        "dist_config": to_dict(dist_config) if dist_config else None,
        "history": list(history or []),
        "epoch": int(epoch),
        "optimizer": _cpu(optimizer.state_dict()) if optimizer is not None else None,
        "dataset": dict(dataset or {}),
        "extra": dict(extra or {}),
    }
    tmp = out.with_name(out.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(out)
    return out


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint (tensors land on the CPU)."""
    src = Path(path)
    if not src.is_file():
        raise CheckpointError(f"{src}: no such checkpoint file")
    try:
        data = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise CheckpointError(f"{src}: not a readable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{src}: not a trafficdl checkpoint")
    if data.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{src}: checkpoint version {data.get('version')} is not supported")
    model = data["model"]
    train = data.get("train_config")
    dist = data.get("dist_config")
    return Checkpoint(
        model_name=model["name"],
        num_classes=int(model["num_classes"]),
        model_config=dict(model["config"]),
        state_dict=data["state_dict"],
        label_names=list(data["label_names"]),
        adapter=InputAdapter.from_dict(data["adapter"]),
        train_config=from_dict(TrainConfig, train) if train else None,
        dist_config=from_dict(DistConfig, dist) if dist else None,
        extract_config=data.get("extract_config"),
        history=list(data.get("history") or []),
        epoch=int(data.get("epoch", 0)),
        optimizer=data.get("optimizer"),
        dataset=dict(data.get("dataset") or {}),
        extra=dict(data.get("extra") or {}),
        fingerprint=model.get("fingerprint", ""),
    )


def _cpu(obj: Any) -> Any:
    """Optimizer state with every tensor moved to the CPU (device-independent file)."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu()
    if isinstance(obj, dict):
        return {k: _cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_cpu(v) for v in obj)
    return obj
