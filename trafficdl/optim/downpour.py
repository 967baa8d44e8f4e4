"""DOWNPOUR SGD (Dean et al. 2012): workers push accumulated deltas, pull the centre.

Worker, every window: commit Δ = x − x_pull, then x ← x̃ (fresh pull).
Master: x̃ ← x̃ + Δ.
"""

from __future__ import annotations

from trafficdl.optim.base import UpdateRule


class Downpour(UpdateRule):
    name = "downpour"
