"""The training step and inference pass, usable without the Trainer.

`train_steps` is the whole inner loop (forward, loss, backward, step) over any
iterable of (x, y) batches. The centralized Trainer runs it over an epoch; a
distributed worker runs it over its commit window between pulls and commits.
Loss and hits accumulate on the device and are read once at the end, so a GPU
is not synchronised every mini-batch.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch
from torch import nn

from trafficdl.models.adapters import InputAdapter


@dataclass
class StepStats:
    """Totals over the batches run: mean loss and accuracy derive from them."""

    loss_sum: float = 0.0
    correct: int = 0
    samples: int = 0
    batches: int = 0

    @property
    def loss(self) -> float:
        return self.loss_sum / self.samples if self.samples else float("nan")

    @property
    def accuracy(self) -> float:
        return self.correct / self.samples if self.samples else float("nan")


def train_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    adapter: InputAdapter,
    loss_fn: nn.Module,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One optimisation step on one mini-batch; returns (mean loss, hits) as device tensors."""
    logits = model(adapter.to_input(x))
    loss = loss_fn(logits, y)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return loss.detach(), (logits.detach().argmax(1) == y).sum()


def train_steps(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
    *,
    adapter: InputAdapter,
    loss_fn: nn.Module | None = None,
    max_steps: int | None = None,
    on_batch: Callable[[int], None] | None = None,
) -> StepStats:
    """Train on `batches` (already on the model's device) for at most `max_steps` steps.

    `on_batch(samples)` is called after each step (progress bars). Returns totals.
    """
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    model.train()
    device = next(model.parameters()).device
    loss_sum = torch.zeros((), device=device)
    correct = torch.zeros((), dtype=torch.int64, device=device)
    samples = steps = 0
    for x, y in batches:
        if max_steps is not None and steps >= max_steps:
            break
        loss, hits = train_step(model, optimizer, x, y, adapter=adapter, loss_fn=loss_fn)
        n = len(y)
        loss_sum += loss * n
        correct += hits
        samples += n
        steps += 1
        if on_batch is not None:
            on_batch(n)
    return StepStats(float(loss_sum), int(correct), samples, steps)


@torch.no_grad()
def predict_logits(
    model: nn.Module, x: torch.Tensor, *, adapter: InputAdapter, batch_size: int = 512
) -> torch.Tensor:
    """Logits for every row of `x` (prepared form), in eval mode, on the model's device."""
    model.eval()
    device = next(model.parameters()).device
    out = [
        model(adapter.to_input(x[i : i + batch_size].to(device)))
        for i in range(0, len(x), batch_size)
    ]
    if not out:
        return torch.zeros((0, getattr(model, "num_classes", 0)), device=device)
    return torch.cat(out)


@torch.no_grad()
def evaluate_loss(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    *,
    adapter: InputAdapter,
    loss_fn: nn.Module | None = None,
    batch_size: int = 512,
) -> StepStats:
    """Mean loss and accuracy on a held-out split (validation), no gradient."""
    loss_fn = loss_fn or nn.CrossEntropyLoss()
    logits = predict_logits(model, x, adapter=adapter, batch_size=batch_size)
    y = y.to(logits.device)
    if len(y) == 0:
        return StepStats()
    loss = float(loss_fn(logits, y)) * len(y)
    return StepStats(loss, int((logits.argmax(1) == y).sum()), len(y), 1)
