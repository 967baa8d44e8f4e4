"""The run specification the master hands every worker at registration.

One source of truth: the master builds a `RunSpec` (configs, dataset path,
classes, model architecture fingerprint, fitted input statistics) and sends it
as JSON in RegisterInfo, so workers cannot disagree on seeds, windows or
scaling. Workers may override only where the dataset lives on their node.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from trafficdl.config import ConfigError, DistConfig, TrainConfig, from_dict, to_dict
from trafficdl.cost import cost, node_hours, spans_cost, spans_node_hours
from trafficdl.distributed import rescale_math


def check_dist_config(dist: DistConfig) -> None:
    """Refuse settings a distributed run cannot work with, before any process starts.

    Synchronous EASGD moves the centre by Σ_i α(x_i − x̃) = N·α·(mean x − x̃) per
    round: with N·α > 1 it overshoots the workers' mean and oscillates (Zhang et
    al. 2015 keep β = N·α below 1, e.g. 0.9). Measured here: N=4 with dist-keras'
    α = 5·0.1 gave a centre that predicted the wrong class for every test row.
    """
    if dist.workers < 1:
        raise ConfigError("a distributed run needs at least one worker")
    if dist.synchronous and dist.workers * dist.alpha > 1.0 + 1e-9:
        suggestion = 0.9 / (dist.rho * dist.workers) if dist.rho > 0 else 0.0
        raise ConfigError(
            f"synchronous EASGD needs N*rho*elastic_lr <= 1 (here {dist.workers}*{dist.rho}*"
            f"{dist.elastic_lr} = {dist.workers * dist.alpha:g}): the centre would overshoot; "
            f"use --elastic-lr {suggestion:.3g} or less, or the asynchronous aeasgd"
        )


@dataclass(frozen=True)
class RunSpec:
    run_id: str
    train: TrainConfig
    dist: DistConfig
    dataset: str
    num_classes: int
    label_names: list[str]
    model_version: str = ""
    adapter: dict[str, Any] = field(default_factory=dict)
    model_overrides: dict[str, Any] = field(default_factory=dict)
    # Master-side only (not sent to workers): the run's world-size changes, run.json's
    # `rescales` ({"at_seconds", "from", "to", ...}), so cost integrates N(t) over T.
    rescales: tuple[dict[str, Any], ...] = ()

    def to_json(self) -> str:
        return json.dumps(
            {
                "run_id": self.run_id,
                "train": to_dict(self.train),
                "dist": to_dict(self.dist),
                "dataset": self.dataset,
                "num_classes": self.num_classes,
                "label_names": self.label_names,
                "model_version": self.model_version,
                "adapter": self.adapter,
                "model_overrides": self.model_overrides,
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> RunSpec:
        d = json.loads(text)
        return cls(
            run_id=d["run_id"],
            train=from_dict(TrainConfig, d["train"]),
            dist=from_dict(DistConfig, d["dist"]),
            dataset=d["dataset"],
            num_classes=int(d["num_classes"]),
            label_names=list(d["label_names"]),
            model_version=d.get("model_version", ""),
            adapter=dict(d.get("adapter", {})),
            model_overrides=dict(d.get("model_overrides", {})),
        )

    def cost_of(self, seconds: float) -> float:
        """C = (ρ·N + ρ_M)·T for this run's world size and prices; across rescales
        ∫ (ρ·N(t) + ρ_M) dt (trafficdl.distributed.rescale_math)."""
        d = self.dist
        if self.rescales:
            spans = rescale_math.world_spans(self.rescales, d.workers, seconds)
            return spans_cost(spans, d.worker_price, d.master_price)
        return cost(d.workers, seconds, d.worker_price, d.master_price)

    def node_hours_of(self, seconds: float) -> float:
        if self.rescales:
            spans = rescale_math.world_spans(self.rescales, self.dist.workers, seconds)
            return spans_node_hours(spans)
        return node_hours(self.dist.workers, seconds)
