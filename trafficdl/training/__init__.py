"""Centralized training, and the pieces distributed training reuses.

- `Trainer` (trainer.py): the single-machine baseline with epochs, WTPE, early
  stopping and checkpoints.
- `train_steps` / `train_step` (loop.py): the per-batch optimisation step, usable
  by a worker between commits; `predict_logits`, `evaluate_loss` for inference.
- `load_split`, `fit_adapter`, `batches`, `holdout_indices` (data.py): rows of
  the memory-mapped dataset into model-ready tensors.
- `save_checkpoint` / `load_checkpoint` (checkpoint.py): the one model-checkpoint format.
- `make_optimizer`, `select_device`, `seed_everything` (runtime.py).
- `run_centralized` (run.py): dataset path + TrainConfig → trained run directory.
"""

from trafficdl.training.checkpoint import (
    Checkpoint,
    CheckpointError,
    load_checkpoint,
    save_checkpoint,
)
from trafficdl.training.data import (
    TensorSplit,
    batches,
    class_weights,
    fit_adapter,
    holdout_indices,
    load_split,
    num_batches,
)
from trafficdl.training.loop import (
    StepStats,
    evaluate_loss,
    predict_logits,
    train_step,
    train_steps,
)
from trafficdl.training.runtime import make_optimizer, seed_everything, select_device, set_threads
from trafficdl.training.trainer import Trainer

__all__ = [
    "Checkpoint",
    "CheckpointError",
    "StepStats",
    "TensorSplit",
    "Trainer",
    "batches",
    "class_weights",
    "evaluate_loss",
    "fit_adapter",
    "holdout_indices",
    "load_checkpoint",
    "load_split",
    "make_optimizer",
    "num_batches",
    "predict_logits",
    "save_checkpoint",
    "seed_everything",
    "select_device",
    "set_threads",
    "train_step",
    "train_steps",
]
