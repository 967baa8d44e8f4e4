"""Run-time choices shared by every training mode: device, optimizer, threads, seeds.

Kept apart from the Trainer so the distributed worker makes the same choices
from the same TrainConfig without importing the centralized machinery.
"""

from __future__ import annotations

import random
from collections.abc import Iterable

import numpy as np
import torch

from trafficdl.config import TrainConfig
from trafficdl.errors import TrafficdlError


def select_device(name: str = "cpu") -> torch.device:
    """Device "cpu", "cuda" (an error when absent) or "auto" (CUDA when present)."""
    if name == "cpu":
        return torch.device("cpu")
    if name in ("cuda", "auto"):
        if torch.cuda.is_available():
            return torch.device("cuda")
        if name == "cuda":
            raise TrafficdlError("--device cuda requested but no CUDA device is available")
        return torch.device("cpu")
    raise TrafficdlError(f"unknown device {name!r}; choose cpu, cuda or auto")


def _optimizers() -> dict[str, type[torch.optim.Optimizer]]:
    found = {}
    for name in dir(torch.optim):
        obj = getattr(torch.optim, name)
        is_optimizer = isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer)
        if is_optimizer and obj is not torch.optim.Optimizer:
            found[name.lower()] = obj
    return found


def make_optimizer(cfg: TrainConfig, params: Iterable[torch.nn.Parameter]) -> torch.optim.Optimizer:
    """The local optimizer named by cfg.optimizer (any torch.optim class, case-insensitive)."""
    table = _optimizers()
    cls = table.get(cfg.optimizer.lower())
    if cls is None:
        raise TrafficdlError(
            f"unknown optimizer {cfg.optimizer!r}; try one of adam, adamw, sgd, rmsprop, adagrad"
        )
    return cls(params, lr=cfg.lr, weight_decay=cfg.weight_decay)


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (CPU and CUDA) so CPU runs repeat bit for bit."""
    random.seed(seed)
    np.random.seed(seed % (2**32))
    torch.manual_seed(seed)


def set_threads(threads: int) -> None:
    """Set torch's intra-op threads (0 leaves torch's default)."""
    if threads > 0:
        torch.set_num_threads(threads)
