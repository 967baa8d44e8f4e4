"""Classify new captures with a trained checkpoint, segmenting them as its dataset was.

The checkpoint stores the ExtractConfig its training captures were cut with;
captures are cut the same way (trafficdl.capture.extract_file), scaled with the
checkpoint's input adapter (statistics of the training rows), and each object
gets the most probable app and that probability. With `reject_below` > 0,
objects whose top probability falls below it are labelled "unknown" (the
paper's companion work: rejecting the least confident ~10% lifts accuracy).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import torch

from trafficdl.errors import TrafficdlError
from trafficdl.training.checkpoint import Checkpoint
from trafficdl.training.loop import predict_logits

UNKNOWN = "unknown"


@dataclass
class Prediction:
    """One traffic object of a capture and what the model says it is."""

    capture: str
    proto: int
    src: str
    sport: int
    dst: str
    dport: int
    packets: int
    app: str  # predicted app, or "unknown" when rejected
    confidence: float  # probability of the most probable app
    best: str  # the most probable app even when rejected

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def extract_config_of(ckpt: Checkpoint) -> Any:
    """The ExtractConfig the checkpoint's dataset was made with (defaults sized to the model
    when an older dataset did not record it)."""
    from trafficdl.capture import ExtractConfig

    stored = ckpt.extract_config or {}
    known = {f.name for f in fields(ExtractConfig)}
    values = {k: v for k, v in stored.items() if k in known}
    if not values:
        sizes = (
            {"payload_bytes": ckpt.adapter.length}
            if ckpt.adapter.kind == "payload"
            else {"packets": ckpt.adapter.length}
        )
        values = sizes
    return ExtractConfig(**values)


def classify_captures(
    ckpt: Checkpoint,
    captures: Sequence[str | Path],
    *,
    reject_below: float = 0.0,
    device: torch.device | str = "cpu",
    batch_size: int = 512,
) -> tuple[list[Prediction], list[str]]:
    """Predictions for every object of every capture, and warnings about damaged captures."""
    from trafficdl.capture import extract_file, find_captures
    from trafficdl.capture.extract import capture_record, unread_reasons

    if not 0.0 <= reject_below < 1.0:
        raise TrafficdlError("--reject-below must be in [0, 1)")
    files = find_captures(captures)
    if not files:
        raise TrafficdlError("no capture files found in the given paths")
    cfg = extract_config_of(ckpt)
    model = ckpt.build_model(device)
    out: list[Prediction] = []
    warnings: list[str] = []
    read: list[dict[str, Any]] = []
    for path in files:
        res = extract_file(path, cfg)
        read.append(capture_record(res))
        if res.error:
            warnings.append(res.error)
        warnings.extend(f"{path}: {w}" for w in res.warnings)
        if len(res) == 0:
            continue
        x = ckpt.adapter.prepare(res.payload, res.packets, res.objects["n_packets"])
        logits = predict_logits(model, x, adapter=ckpt.adapter, batch_size=batch_size)
        probs = torch.softmax(logits.float(), dim=1).cpu().numpy()
        out.extend(_rows(str(path), res.objects, probs, ckpt.label_names, reject_below))
    if not any(c["packets"] for c in read):  # as extract: not a silent empty answer
        raise TrafficdlError(f"nothing could be read: {unread_reasons(read)}")
    return out, warnings


def _rows(
    capture: str,
    objects: np.ndarray,
    probs: np.ndarray,
    labels: Sequence[str],
    reject_below: float,
) -> list[Prediction]:
    top = probs.argmax(axis=1)
    conf = probs[np.arange(len(probs)), top]
    rows = []
    for i, obj in enumerate(objects):
        best = labels[int(top[i])]
        rows.append(
            Prediction(
                capture=capture,
                proto=int(obj["proto"]),
                src=str(obj["src"]),
                sport=int(obj["sport"]),
                dst=str(obj["dst"]),
                dport=int(obj["dport"]),
                packets=int(obj["n_packets"]),
                app=UNKNOWN if conf[i] < reject_below else best,
                confidence=float(conf[i]),
                best=best,
            )
        )
    return rows
