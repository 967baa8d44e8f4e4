"""Synchronous elastic averaging SGD: the AEASGD step behind a barrier.

Every active worker pulls the same centre x̃_t, commits E_i = α(x_i − x̃_t) and
waits; when the round is complete the master folds x̃_{t+1} = x̃_t + Σ_i E_i and
releases them all, so the next pull puts every worker on the same state.
"""

from __future__ import annotations

from trafficdl.optim.base import UpdateRule


class EASGD(UpdateRule):
    name = "easgd"
    elastic = True
    synchronous = True
