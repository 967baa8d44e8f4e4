"""Cloud cost and timing of a training run: C = (ρ·N + ρ_M)·T, node-hours, WTPE.

The one place these figures are computed: master, launcher, elastic rescale,
centralized runs and the study call it (run.json then carries them, and the
study's records read run.json). Prices are hourly and per node; T is in
seconds here and converted. Across elastic rescales the world size changes,
so T is split into spans (N_i, T_i) and C = Σ (ρ·N_i + ρ_M)·T_i. The named
node types are the paper's Azure nodes (prices as the paper reports them, in
EUR) so figures can be compared with it; users pass their own prices.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass


@dataclass(frozen=True)
class NodeType:
    name: str
    vcpus: int
    memory_gib: int
    hourly_price: float
    currency: str = "EUR"


NODE_TYPES: dict[str, NodeType] = {
    "DS4v2": NodeType("DS4v2", 8, 28, 0.698),
    "D32sv3": NodeType("D32sv3", 32, 128, 2.456),
}


def cost(workers: int, seconds: float, worker_price: float, master_price: float) -> float:
    """C = (ρ·N + ρ_M)·T, with T in seconds and prices per hour."""
    return (worker_price * workers + master_price) * seconds / 3600.0


def node_hours(workers: int, seconds: float) -> float:
    """Node-hours billed: the N workers plus the master for T seconds."""
    return (workers + 1) * seconds / 3600.0


def spans_cost(spans: Iterable[tuple[int, float]], worker_price: float,
               master_price: float) -> float:
    """C = Σ (ρ·N_i + ρ_M)·T_i over spans (N_i workers for T_i seconds)."""
    return sum(cost(n, s, worker_price, master_price) for n, s in spans)


def spans_node_hours(spans: Iterable[tuple[int, float]]) -> float:
    """Node-hours Σ (N_i + 1)·T_i: the workers of each span plus the master."""
    return sum(node_hours(n, s) for n, s in spans)


def wtpe(seconds: float, epochs: int) -> float:
    """Wallclock time per epoch (the paper's WTPE): T over the epochs run."""
    return seconds / max(epochs, 1)


def ideal_seconds(t1_seconds: float, workers: int) -> float:
    """The paper's ideal curve T1/N (perfect parallelization), N >= 1."""
    return t1_seconds / max(workers, 1)


def ideal_cost(t1_seconds: float, workers: int, worker_price: float, master_price: float) -> float:
    """(ρ·N + ρ_M)·T1/N: the cost lower bound at N workers."""
    return cost(workers, ideal_seconds(t1_seconds, workers), worker_price, master_price)
