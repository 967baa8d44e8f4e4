"""The distributed update rules (dist-keras' set) as plain math on flat tensors.

`get_rule(name)` is the one lookup the master and the workers use, so both
ends of a run always apply the same rule.
"""

from __future__ import annotations

from trafficdl.errors import TrafficdlError
from trafficdl.optim.adag import ADAG
from trafficdl.optim.aeasgd import AEASGD
from trafficdl.optim.base import UpdateRule
from trafficdl.optim.downpour import Downpour
from trafficdl.optim.dynsgd import DynSGD
from trafficdl.optim.easgd import EASGD

RULES: dict[str, type[UpdateRule]] = {r.name: r for r in (AEASGD, EASGD, Downpour, ADAG, DynSGD)}


def get_rule(name: str) -> UpdateRule:
    """The update rule called `name` (aeasgd, easgd, downpour, adag, dynsgd)."""
    try:
        return RULES[name]()
    except KeyError:
        raise TrafficdlError(
            f"unknown algorithm {name!r}; choose from {', '.join(RULES)}"
        ) from None


__all__ = ["ADAG", "AEASGD", "EASGD", "RULES", "Downpour", "DynSGD", "UpdateRule", "get_rule"]
