"""A trained model as an object: `load_classifier(checkpoint).predict(...)`.

`Classifier` holds the checkpoint and the rebuilt network and predicts on
whatever a notebook has at hand: a dataset (every object, with its row of the
objects DataFrame), capture files (cut as the model's training captures were,
through trafficdl.training.classify), or plain input arrays. The softmax and
the rejection rule ("unknown" below a confidence) are the ones `trafficdl
classify` applies, so the API and the CLI never disagree.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from trafficdl.errors import TrafficdlError

if TYPE_CHECKING:
    import pandas as pd
    import torch

    from trafficdl.api.data import TrafficDataset
    from trafficdl.training.checkpoint import Checkpoint

UNKNOWN = "unknown"


class Classifier:
    """A checkpoint's model, ready to predict (built once, in eval mode)."""

    def __init__(self, checkpoint: Checkpoint, device: str = "cpu", path: Path | None = None):
        from trafficdl.training.runtime import select_device

        self.checkpoint = checkpoint
        self.path = path
        self.device = select_device(device)
        self.model = checkpoint.build_model(self.device)

    @property
    def label_names(self) -> list[str]:
        return list(self.checkpoint.label_names)

    @property
    def model_name(self) -> str:
        return self.checkpoint.model_name

    @property
    def input_kind(self) -> str:
        """"payload" (1D-CNN: first N_b payload bytes) or "packets" (LSTM: first N_p packets)."""
        return self.checkpoint.adapter.kind

    def __repr__(self) -> str:
        return f"Classifier({self.model_name}, {len(self.label_names)} apps, {self.input_kind})"

    def predict_proba(
        self,
        payload: np.ndarray | None = None,
        packets: np.ndarray | None = None,
        n_packets: np.ndarray | None = None,
        batch_size: int = 512,
    ) -> np.ndarray:
        """Class probabilities [n, apps] for raw input rows (as stored in a dataset).

        payload: uint8 [n, N_b] payload bytes; packets: float32 [n, N_p, 4] raw
        packet fields (standardized here with the training statistics);
        n_packets: real packets per row (default: rows whose direction field is
        non-zero, which is what padding never has).
        """
        import torch

        from trafficdl.training.loop import predict_logits

        adapter = self.checkpoint.adapter
        rows = payload if adapter.kind == "payload" else packets
        if rows is None:
            raise TrafficdlError(f"a {self.model_name} model needs {adapter.kind} rows")
        if n_packets is None:
            n_packets = _count_packets(packets, len(rows))
        x = adapter.prepare(payload, packets, np.asarray(n_packets))
        logits = predict_logits(self.model, x, adapter=adapter, batch_size=batch_size)
        return torch.softmax(logits.float(), dim=1).cpu().numpy()

    def predict(
        self,
        source: TrafficDataset | str | Path | Sequence[str | Path],
        *,
        reject_below: float = 0.0,
        batch_size: int = 512,
    ) -> pd.DataFrame:
        """Predictions, one row per object, as a DataFrame with app, confidence and best.

        `source` is a dataset (TrafficDataset or a dataset folder: the rows of
        its `.objects` plus the prediction, so `label` sits beside `app`), or
        capture files/folders (cut the way the training captures were). `app`
        is "unknown" where the top probability is below `reject_below`; `best`
        is the most probable app regardless.
        """
        import pandas as pd

        from trafficdl.api.data import TrafficDataset, objects_frame, open_dataset

        if not 0.0 <= reject_below < 1.0:
            raise TrafficdlError("reject_below must be in [0, 1)")
        if isinstance(source, str | Path) and (Path(source) / "dataset.json").is_file():
            source = open_dataset(source)
        if isinstance(source, TrafficDataset):
            ds = source.raw
            probs = self.predict_proba(
                np.asarray(ds.payload), np.asarray(ds.packets),
                np.asarray(ds.objects["n_packets"]), batch_size,
            )  # fmt: skip
            return _with_predictions(objects_frame(ds), probs, self.label_names, reject_below)
        from trafficdl.training.classify import classify_captures

        paths = [source] if isinstance(source, str | Path) else list(source)
        rows, warnings = classify_captures(
            self.checkpoint, paths, reject_below=reject_below, device=self.device,
            batch_size=batch_size,
        )  # fmt: skip
        frame = pd.DataFrame([r.as_dict() for r in rows])
        frame.attrs["warnings"] = warnings
        return frame

    def torch_module(self) -> torch.nn.Module:
        """The bare network (eval mode); inputs as `to_torch` gives them, outputs logits."""
        return self.model


def _count_packets(packets: np.ndarray | None, n: int) -> np.ndarray:
    if packets is None:
        return np.zeros(n, dtype=np.int64)
    return (np.asarray(packets)[:, :, 1] != 0).sum(axis=1)


def _with_predictions(
    frame: pd.DataFrame, probs: np.ndarray, labels: Sequence[str], reject_below: float
) -> pd.DataFrame:
    names = np.asarray(labels, dtype=object)
    top = probs.argmax(axis=1) if len(probs) else np.zeros(0, dtype=np.int64)
    conf = probs[np.arange(len(probs)), top] if len(probs) else np.zeros(0)
    best = names[top] if len(names) else np.zeros(0, dtype=object)
    frame = frame.copy()
    frame["app"] = np.where(conf < reject_below, UNKNOWN, best)
    frame["confidence"] = conf.astype(np.float64)
    frame["best"] = best
    return frame


def load_classifier(checkpoint: str | Path, device: str = "cpu") -> Classifier:
    """A Classifier from a checkpoint.pt written by `trafficdl train` / `trafficdl.train`."""
    from trafficdl.training.checkpoint import load_checkpoint

    return Classifier(load_checkpoint(checkpoint), device=device, path=Path(checkpoint))
