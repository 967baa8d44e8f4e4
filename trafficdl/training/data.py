"""Training data in memory, and mini-batches drawn from it without a DataLoader.

A split is read once from the memory-mapped dataset through the model's input
adapter into two tensors (inputs in their compact form, int64 labels), placed
on the training device. Batches are then plain index gathers over a seeded
per-epoch permutation: no worker processes, no per-sample Python, so the
framework costs what a bare PyTorch loop costs (see bench/bench_train.py).
The permutation depends only on (seed, epoch), so a run is reproducible and a
resumed run draws the same batches it would have drawn.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
import torch

from trafficdl.config import TrainConfig
from trafficdl.dataset import Dataset, stratified_kfold, train_test_split
from trafficdl.models.adapters import InputAdapter


@dataclass
class TensorSplit:
    """One split of a dataset, ready for the model: x in the adapter's compact form."""

    x: torch.Tensor
    y: torch.Tensor  # int64 class indices
    indices: np.ndarray  # rows of the dataset, for provenance

    def __len__(self) -> int:
        return len(self.y)

    def to(self, device: torch.device) -> TensorSplit:
        return TensorSplit(self.x.to(device), self.y.to(device), self.indices)


def load_split(dataset: Dataset, indices: np.ndarray, adapter: InputAdapter) -> TensorSplit:
    """Read these rows (only these pages of the memory map) into model-ready tensors."""
    idx = np.sort(np.asarray(indices, dtype=np.int64))
    x = adapter.prepare_dataset(dataset, idx)
    y = torch.from_numpy(np.asarray(dataset.labels[idx], dtype=np.int64))
    return TensorSplit(x, y, idx)


def fit_adapter(dataset: Dataset, indices: np.ndarray, adapter: InputAdapter) -> InputAdapter:
    """The adapter with input statistics from the training rows only."""
    if adapter.kind == "payload":
        return adapter
    idx = np.sort(np.asarray(indices, dtype=np.int64))
    return adapter.fit(dataset.packets[idx], dataset.objects["n_packets"][idx])


def run_split(labels: np.ndarray, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray]:
    """(train, test) rows of a run: fold `cfg.fold` of a stratified k-fold when
    `cfg.folds >= 2` (sweeps cross-validate distributed runs this way), else the
    stratified hold-out of `cfg.test_fraction`. Every process of a run calls this
    with the same config, so master and workers agree without talking."""
    if cfg.folds >= 2:
        return stratified_kfold(labels, cfg.folds, cfg.seed)[cfg.fold]
    return train_test_split(labels, cfg.test_fraction, cfg.seed)


def fit_val_test(labels: np.ndarray, cfg: TrainConfig) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(fit, validation, test) rows of a run: `run_split`, then the stratified validation
    share of its training rows (`cfg.val_fraction`, the same carve as the centralized
    trainer's). A distributed run's workers partition the fit rows and its master
    validates the centre on the validation rows, so no worker trains on them."""
    train, test = run_split(labels, cfg)
    fit, val = split_validation(labels, train, cfg.val_fraction, cfg.seed)
    return fit, val, test


def holdout_indices(
    labels: np.ndarray, test_fraction: float, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(train, validation, test) rows: a stratified test hold-out, then a stratified
    validation share of what remains (empty when val_fraction is 0)."""
    train, test = train_test_split(labels, test_fraction, seed)
    train, val = split_validation(labels, train, val_fraction, seed)
    return train, val, test


def split_validation(
    labels: np.ndarray, train: np.ndarray, val_fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """Carve a stratified validation share out of `train` (rows of `labels`)."""
    if val_fraction <= 0:
        return train, train[:0]
    sub_train, sub_val = train_test_split(np.asarray(labels)[train], val_fraction, seed + 1)
    return train[sub_train], train[sub_val]


def class_weights(y: torch.Tensor, num_classes: int) -> torch.Tensor:
    """Inverse-frequency weights n / (C · n_c), mean 1 over present classes; absent → 0."""
    counts = torch.bincount(y.cpu(), minlength=num_classes).to(torch.float32)
    present = counts > 0
    weights = torch.zeros(num_classes)
    weights[present] = counts.sum() / (present.sum() * counts[present])
    return weights


def batches(
    split: TensorSplit, batch_size: int, *, shuffle: bool, seed: int = 0, epoch: int = 0
) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Mini-batches (x, y) of one epoch; the last one may be short."""
    n = len(split)
    if shuffle:
        gen = torch.Generator().manual_seed(seed * 1_000_003 + epoch)
        order = torch.randperm(n, generator=gen).to(split.y.device)
        for start in range(0, n, batch_size):
            idx = order[start : start + batch_size]
            yield split.x[idx], split.y[idx]
    else:
        for start in range(0, n, batch_size):
            yield split.x[start : start + batch_size], split.y[start : start + batch_size]


def num_batches(n: int, batch_size: int) -> int:
    return (n + batch_size - 1) // batch_size
