"""The run spec a test master serves when no dataset is behind it (servicer-level tests).

Several rpc, heartbeat and fault tests stand up a real gRPC master over a hand-made
centre; they need a RunSpec only for its identity and settings, never for data.
"""

from __future__ import annotations

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.distributed.spec import RunSpec


def toy_spec(dist: DistConfig | None = None, *, run_id: str = "r1") -> RunSpec:
    """A two-class LSTM run over no dataset (`/nowhere`), model version "v1"."""
    return RunSpec(
        run_id=run_id,
        train=TrainConfig(model="lstm", epochs=2),
        dist=dist or DistConfig(workers=1),
        dataset="/nowhere",
        num_classes=2,
        label_names=["a", "b"],
        model_version="v1",
    )
