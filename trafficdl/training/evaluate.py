"""Figures of a trained model on dataset rows (trafficdl.evaluation's figures).

Here, beside the training loop it uses, so trafficdl.evaluation stays pure
numpy; the k-fold protocol that trains and then calls this is crossval.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from torch import nn

from trafficdl.dataset import Dataset
from trafficdl.evaluation import classification_figures
from trafficdl.models.adapters import InputAdapter
from trafficdl.training.data import load_split
from trafficdl.training.loop import predict_logits


def evaluate_model(
    model: nn.Module,
    dataset: Dataset,
    indices: np.ndarray,
    *,
    adapter: InputAdapter,
    label_names: Sequence[str] | None = None,
    batch_size: int = 512,
) -> dict[str, Any]:
    """Figures of `model` (on its device) over these dataset rows."""
    split = load_split(dataset, indices, adapter)
    logits = predict_logits(model, split.x, adapter=adapter, batch_size=batch_size)
    pred = logits.argmax(1).cpu().numpy()
    return classification_figures(split.y.numpy(), pred, label_names or dataset.label_names)
