"""The paper's two classifiers behind one registry, plus what every trainer needs of them.

`build_model(name, num_classes, **overrides)` is the one way to make a model:
centralized training, the distributed master/workers and `classify` all call
it, so a checkpoint's (name, config) rebuilds the same network anywhere.
`fingerprint(model)` names the architecture (parameter names and shapes, not
values) so a master can refuse a worker running a different model version.
`input_adapter(name, ...)` gives the matching input scaling (see adapters.py).
"""

from __future__ import annotations

import hashlib
from dataclasses import asdict, fields
from typing import Any

import torch
from torch import nn

from trafficdl.errors import TrafficdlError
from trafficdl.models.adapters import InputAdapter
from trafficdl.models.cnn1d import CNN1D, CNN1DConfig
from trafficdl.models.lstm import LSTMClassifier, LSTMConfig

REGISTRY: dict[str, tuple[type[nn.Module], type]] = {
    "cnn1d": (CNN1D, CNN1DConfig),
    "lstm": (LSTMClassifier, LSTMConfig),
}


class ModelError(TrafficdlError):
    """An unknown model name or an invalid model setting."""


def model_config(name: str, **overrides: Any) -> Any:
    """The config dataclass of model `name` with `overrides` applied (unknown keys are errors)."""
    if name not in REGISTRY:
        raise ModelError(f"unknown model {name!r}; choose from {', '.join(REGISTRY)}")
    cfg_cls = REGISTRY[name][1]
    known = {f.name for f in fields(cfg_cls)}
    unknown = set(overrides) - known
    if unknown:
        raise ModelError(f"{name} has no setting(s) {', '.join(sorted(unknown))}")
    values = {k: tuple(v) if isinstance(v, list) else v for k, v in overrides.items()}
    return cfg_cls(**values)


def build_model(name: str, num_classes: int, **overrides: Any) -> nn.Module:
    """A freshly initialised model; seed torch first for reproducible weights."""
    cfg = model_config(name, **overrides)  # validates the name first
    if num_classes < 2:
        raise ModelError(f"need at least 2 classes, got {num_classes}")
    return REGISTRY[name][0](num_classes, cfg)


def config_dict(model: nn.Module) -> dict[str, Any]:
    """The model's config as plain data (what checkpoints store)."""
    return asdict(model.config)


def input_adapter(name: str, **overrides: Any) -> InputAdapter:
    """The (unfitted) input adapter that model `name` with `overrides` needs."""
    cfg = model_config(name, **overrides)
    if name == "cnn1d":
        return InputAdapter(kind="payload", length=cfg.input_length)
    return InputAdapter(kind="packets", length=cfg.packets, fields=cfg.fields)


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def fingerprint(model: nn.Module) -> str:
    """Architecture identity: sha256 over parameter names and shapes (16 hex digits)."""
    h = hashlib.sha256()
    for pname, p in model.named_parameters():
        h.update(f"{pname}:{tuple(p.shape)};".encode())
    return h.hexdigest()[:16]


def _settings(module: nn.Module) -> str:
    """A compact description of a layer's shape settings (for `model-info`)."""
    if isinstance(module, nn.Conv1d):
        pad = module.padding if isinstance(module.padding, str) else module.padding[0]
        return f"{module.in_channels}→{module.out_channels}, k={module.kernel_size[0]}, {pad}"
    if isinstance(module, nn.MaxPool1d):
        return f"{module.kernel_size}/{module.stride}" + (", ceil" if module.ceil_mode else "")
    if isinstance(module, nn.Linear):
        return f"{module.in_features}→{module.out_features}"
    if isinstance(module, nn.LSTM):
        return f"{module.input_size}→{module.hidden_size}, one bias per gate"
    if isinstance(module, nn.Dropout):
        return f"p={module.p}"
    return ""


def layer_table(model: nn.Module) -> list[dict[str, Any]]:
    """One row per leaf module: name, type, settings, output shape, parameters."""
    leaves = [(n, m) for n, m in model.named_modules() if not list(m.children())]
    outputs: dict[str, list[int]] = {}
    hooks = [
        m.register_forward_hook(
            lambda _m, _i, out, n=n: outputs.__setitem__(
                n, list((out[0] if isinstance(out, tuple) else out).shape[1:])
            )
        )
        for n, m in leaves
    ]
    adapter = input_adapter(_name_of(model), **asdict(model.config))
    shape = [adapter.length] if adapter.kind == "payload" else [adapter.length, adapter.fields]
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros([1, *shape]))
    model.train(was_training)
    for h in hooks:
        h.remove()
    rows = []
    for mname, module in leaves:
        params = list(module.parameters(recurse=False))
        rows.append(
            {
                "name": mname,
                "type": type(module).__name__,
                "settings": _settings(module),
                "output": outputs.get(mname, []),
                "params": sum(p.numel() for p in params),
                "shapes": [list(p.shape) for p in params],
            }
        )
    return rows


def _name_of(model: nn.Module) -> str:
    for name, (cls, _) in REGISTRY.items():
        if isinstance(model, cls):
            return name
    raise ModelError(f"{type(model).__name__} is not a registered model")


__all__ = [
    "CNN1D",
    "REGISTRY",
    "CNN1DConfig",
    "InputAdapter",
    "LSTMClassifier",
    "LSTMConfig",
    "ModelError",
    "build_model",
    "config_dict",
    "count_parameters",
    "fingerprint",
    "input_adapter",
    "layer_table",
    "model_config",
]
