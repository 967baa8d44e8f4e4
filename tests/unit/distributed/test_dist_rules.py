"""Each distributed update rule against steps computed by hand."""

from __future__ import annotations

import pytest
import torch

from trafficdl.errors import TrafficdlError
from trafficdl.optim import RULES, get_rule


def t(*v: float) -> torch.Tensor:
    return torch.tensor(v, dtype=torch.float32)


def test_aeasgd_worker_and_master_step() -> None:
    rule = get_rule("aeasgd")
    x, center = t(1.0, 2.0, -4.0), t(0.0, 1.0, 0.0)
    e = rule.contribution(x, center, alpha=0.5)  # α(x − x̃)
    assert torch.equal(e, t(0.5, 0.5, -2.0))
    assert torch.equal(rule.after_commit(x, e, None), t(0.5, 1.5, -2.0))  # x − E
    assert torch.equal(rule.fold(center, e, staleness=7), t(0.5, 1.5, -2.0))  # x̃ + E, no damping
    assert not rule.synchronous


def test_elastic_rule_conserves_the_sum_of_worker_and_centre() -> None:
    rule = get_rule("aeasgd")
    x, center = t(3.0, -1.0), t(1.0, 1.0)
    total = x + center
    e = rule.contribution(x, center, alpha=0.3)
    rule.after_commit(x, e, None)
    rule.fold(center, e)
    assert torch.allclose(x + center, total)


def test_easgd_folds_a_round_at_once() -> None:
    rule = get_rule("easgd")
    assert rule.synchronous and rule.elastic
    center = t(0.0, 0.0)
    xs = [t(1.0, 0.0), t(0.0, 2.0), t(-1.0, -1.0)]
    es = [rule.contribution(x, center, alpha=0.5) for x in xs]
    assert torch.equal(rule.fold_round(center, es), t(0.0, 0.5))  # 0.5·(1+0−1, 0+2−1)


def test_downpour_commits_the_delta_and_adopts_the_centre() -> None:
    rule = get_rule("downpour")
    last_pull, x = t(1.0, 1.0), t(1.5, 0.0)
    d = rule.contribution(x, last_pull, alpha=0.5)  # α is not used by delta rules
    assert torch.equal(d, t(0.5, -1.0))
    center = t(2.0, 2.0)
    assert torch.equal(rule.fold(center, d, staleness=3, window_batches=4), t(2.5, 1.0))
    fresh = t(9.0, 9.0)
    assert torch.equal(rule.after_commit(x, d, fresh), fresh)


def test_adag_divides_by_the_window() -> None:
    rule = get_rule("adag")
    center = t(1.0, 1.0)
    assert torch.equal(rule.fold(center, t(4.0, -2.0), staleness=5, window_batches=4), t(2.0, 0.5))


def test_dynsgd_damps_by_staleness() -> None:
    rule = get_rule("dynsgd")
    center = t(0.0, 0.0)
    assert torch.equal(rule.fold(center, t(3.0, 6.0), staleness=2, window_batches=9), t(1.0, 2.0))
    assert torch.equal(rule.fold(center, t(1.0, 1.0), staleness=0), t(2.0, 3.0))


def test_delta_rule_needs_the_pulled_centre() -> None:
    with pytest.raises(ValueError):
        get_rule("dynsgd").after_commit(t(1.0), t(0.0), None)


def test_registry_matches_the_config_names() -> None:
    from trafficdl.config import ALGORITHMS

    assert set(RULES) == set(ALGORITHMS)
    with pytest.raises(TrafficdlError, match="unknown algorithm"):
        get_rule("sgd")
