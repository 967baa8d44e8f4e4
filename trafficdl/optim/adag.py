"""ADAG (dist-keras' asynchronous distributed adaptive gradients): DOWNPOUR with the
accumulated delta normalised by the window, so long windows do not overshoot.

Master: x̃ ← x̃ + Δ / window_batches.
"""

from __future__ import annotations

from trafficdl.optim.base import UpdateRule


class ADAG(UpdateRule):
    name = "adag"

    def fold_weight(self, staleness: int, window_batches: int) -> float:
        return 1.0 / max(int(window_batches), 1)
