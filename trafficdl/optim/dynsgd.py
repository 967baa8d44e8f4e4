"""DynSGD (Jiang et al. 2017): DOWNPOUR with stale commits damped.

Staleness s is the number of centre updates folded since the commit's base
(counter at fold − counter the worker pulled). Master: x̃ ← x̃ + Δ / (s + 1).
"""

from __future__ import annotations

from trafficdl.optim.base import UpdateRule


class DynSGD(UpdateRule):
    name = "dynsgd"

    def fold_weight(self, staleness: int, window_batches: int) -> float:
        return 1.0 / (max(int(staleness), 0) + 1)
