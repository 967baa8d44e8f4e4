"""Asynchronous elastic averaging SGD (Zhang et al. 2015), the paper's choice.

Worker, every window: E = α(x − x̃) with α = ρ·η, x ← x − E, commit E.
Master, per commit as it arrives: x̃ ← x̃ + E. No barrier, so no straggler waits.
"""

from __future__ import annotations

from trafficdl.optim.base import UpdateRule


class AEASGD(UpdateRule):
    name = "aeasgd"
    elastic = True
