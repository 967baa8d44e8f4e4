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
    sha256               digest of everything above (tensors by their bytes)

Written like the master's recovery checkpoints: a temp file of its own name in
the same directory, fsynced, renamed over the final name, directory fsynced; the
file it replaces is kept as `<name>.prev.pt` (hard link, so at every instant
both names hold a whole file). `load_checkpoint` verifies the digest, so a torn
or bit-rotten file fails loudly instead of loading half-trained weights;
`load_resumable` (a resumed run) then sets the bad file aside as `*.corrupt`
and continues from the previous one. Files from before the digest load unverified.

The distributed master writes its final centre model with the same function.
"""

from __future__ import annotations

import hashlib
import logging
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from trafficdl.atomic import atomic_file
from trafficdl.config import DistConfig, TrainConfig, from_dict, to_dict
from trafficdl.errors import TrafficdlError
from trafficdl.models import build_model, config_dict, fingerprint
from trafficdl.models.adapters import InputAdapter

FORMAT_NAME = "trafficdl-checkpoint"
FORMAT_VERSION = 1
log = logging.getLogger(__name__)


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
    """Write a checkpoint atomically (own temp file, fsync, rename; the replaced file
    is kept as `previous_path(path)`); returns its path."""
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
    payload["sha256"] = _digest(payload)
    try:
        with atomic_file(out, before_replace=lambda: _keep_previous(out)) as f:
            torch.save(payload, f)
    except OSError as exc:
        raise CheckpointError(f"cannot write checkpoint {out}: {exc.strerror or exc}") from None
    return out


def previous_path(path: str | Path) -> Path:
    """Where the checkpoint a save replaced is kept: run/checkpoint.pt -> run/checkpoint.prev.pt."""
    p = Path(path)
    return p.with_name(f"{p.stem}.prev{p.suffix}")


def _keep_previous(out: Path) -> None:
    """Hard-link the current file to the previous name (atomically: link, then rename)."""
    if not out.is_file():
        return
    prev = previous_path(out)
    link = prev.with_name(f".{prev.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        os.link(out, link)
    except OSError:  # no hard links here (some network filesystems): keep none
        return
    os.replace(link, prev)


def _digest(payload: dict[str, Any]) -> str:
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in payload.items() if k != "sha256"})
    return h.hexdigest()


def _feed(h: Any, obj: Any) -> None:
    """Hash plain data and tensors canonically (dict keys sorted, tensors by dtype,
    shape and bytes), so the digest of a loaded payload equals the saved one."""
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
        h.update(t.view(torch.uint8).numpy().tobytes())
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}:".encode())
        for k in sorted(obj, key=repr):
            h.update(f"{k!r}=".encode())
            _feed(h, obj[k])
    elif isinstance(obj, list | tuple):
        h.update(f"L{len(obj)}:".encode())
        for v in obj:
            _feed(h, v)
    else:
        h.update(f"V{obj!r};".encode())


def load_resumable(path: str | Path) -> Checkpoint:
    """The checkpoint to resume from: `path`, or when it is missing, torn or corrupt,
    the previous one (the bad file is set aside as `*.corrupt` and the previous one
    linked back under `path`, so the next save keeps a good previous)."""
    src = Path(path)
    try:
        return load_checkpoint(src)
    except CheckpointError as exc:
        prev = previous_path(src)
        if not prev.is_file():
            raise
        ckpt = load_checkpoint(prev)  # both bad: its error says so
        log.warning("%s; resuming from %s (epoch %d)", exc, prev.name, ckpt.epoch)
        if src.exists():
            os.replace(src, src.with_name(src.name + ".corrupt"))
        os.link(prev, src)
        return ckpt


def load_checkpoint(path: str | Path) -> Checkpoint:
    """Read and validate a checkpoint (tensors land on the CPU)."""
    src = Path(path)
    try:  # is_file() itself raises when a parent folder may not be searched
        if not src.is_file():
            raise CheckpointError(f"{src}: no such checkpoint file")
        f = open(src, "rb")  # noqa: SIM115 (closed below; torch reads it)
    except OSError as exc:
        raise CheckpointError(f"{src}: cannot read the checkpoint ({exc.strerror})") from exc
    try:
        with f:
            data = torch.load(f, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises several types for a corrupt or foreign file
        raise CheckpointError(f"{src}: not a readable checkpoint ({type(exc).__name__})") from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT_NAME:
        raise CheckpointError(f"{src}: not a trafficdl checkpoint")
    if data.get("version") != FORMAT_VERSION:
        raise CheckpointError(f"{src}: checkpoint version {data.get('version')} is not supported")
    digest = data.get("sha256")
    if digest is not None and digest != _digest(data):
        raise CheckpointError(f"{src}: torn or corrupt checkpoint (checksum mismatch)")
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
