"""The background exchange's fold: x + (v − s) for both rule families, by hand.

`BackgroundExchange` sends snapshot s while training goes on to x = s + δ,
then folds the exchange's answer v in as x + (v − s). These checks use the
real update rules on small vectors, so each expected value is computed here
from the rules' definitions: elastic (EASGD) continues from s − E + δ, delta
(DOWNPOUR) from the fresh centre + δ, so the next delta still carries δ.
"""

from __future__ import annotations

import threading

import pytest
import torch
from trafficdl_worker.exchange import CommitProgress
from trafficdl_worker.overlap import BackgroundExchange

from trafficdl.optim import get_rule


class RuleExchanger:
    """Stands in for Exchanger: applies a real rule against a fixed centre, in place
    on the vector it is given (as Exchanger does), optionally after a gate opens."""

    def __init__(self, algorithm: str, centre: list[float], alpha: float = 0.5) -> None:
        self.rule = get_rule(algorithm)
        self.centre = torch.tensor(centre)
        self.last_pull = torch.zeros_like(self.centre)
        self.alpha = alpha
        self.gate = threading.Event()
        self.gate.set()
        self.calls: list[CommitProgress] = []
        self.error: Exception | None = None

    def exchange(self, local: torch.Tensor, progress: CommitProgress, *, final: bool = False):
        self.gate.wait(5)
        self.calls.append(progress)
        if self.error is not None:
            raise self.error
        if self.rule.elastic:
            e = self.rule.contribution(local, self.centre, self.alpha)
            return self.rule.after_commit(local, e, None)
        d = self.rule.contribution(local, self.last_pull, self.alpha)
        self.last_pull = self.centre.clone()
        return self.rule.after_commit(local, d, self.last_pull)


def _run(algorithm: str, centre: list[float]) -> tuple[torch.Tensor, BackgroundExchange]:
    ex = RuleExchanger(algorithm, centre)
    bg = BackgroundExchange(ex)  # type: ignore[arg-type]
    s = torch.tensor([1.0, 1.0])
    bg.start(s.clone(), CommitProgress(batches_done=5), step=5)
    x = s + torch.tensor([0.2, -0.1])  # two more mini-batches trained meanwhile
    out = bg.land(x, step=7)
    bg.close()
    return out, bg


def test_elastic_answer_is_the_elastic_pull_applied_to_the_work_done_meanwhile() -> None:
    # E = 0.5·(s − c) = 0.5·([1, 1] − [0, 0]) = [0.5, 0.5]; continue from s − E + δ
    out, bg = _run("aeasgd", [0.0, 0.0])
    torch.testing.assert_close(out, torch.tensor([0.5 + 0.2, 0.5 - 0.1]))
    assert bg.lag_batches == 2 and not bg.in_flight


def test_delta_answer_is_the_fresh_centre_plus_the_uncommitted_progress() -> None:
    out, _ = _run("downpour", [3.0, -2.0])
    torch.testing.assert_close(out, torch.tensor([3.2, -2.1]))


def test_the_exchange_works_on_its_own_copy_of_the_snapshot() -> None:
    ex = RuleExchanger("aeasgd", [0.0])
    bg = BackgroundExchange(ex)  # type: ignore[arg-type]
    s = torch.tensor([2.0])
    bg.start(s, CommitProgress(), step=0)
    out = bg.land(torch.tensor([2.0]), step=0)  # nothing trained meanwhile: v itself
    torch.testing.assert_close(out, torch.tensor([1.0]))  # 2 − 0.5·(2 − 0)
    torch.testing.assert_close(s, torch.tensor([2.0]))  # the rule's in-place step spared s
    bg.close()


def test_one_exchange_in_flight_and_its_lag_grows_with_the_steps() -> None:
    ex = RuleExchanger("aeasgd", [0.0])
    ex.gate.clear()  # the network is slow: the exchange has not landed
    bg = BackgroundExchange(ex)  # type: ignore[arg-type]
    bg.start(torch.tensor([1.0]), CommitProgress(batches_done=3), step=3)
    assert bg.in_flight and not bg.ready() and bg.lag(6) == 3
    with pytest.raises(RuntimeError, match="already in flight"):
        bg.start(torch.tensor([1.0]), CommitProgress(), step=6)
    ex.gate.set()
    bg.land(torch.tensor([1.0]), step=6)
    assert bg.lag_batches == 3 and bg.lag(9) == 0 and [c.batches_done for c in ex.calls] == [3]
    bg.close()


def test_an_error_on_the_exchange_thread_is_raised_where_the_loop_lands_it() -> None:
    ex = RuleExchanger("aeasgd", [0.0])
    ex.error = ConnectionError("master gone")
    bg = BackgroundExchange(ex)  # type: ignore[arg-type]
    bg.start(torch.tensor([1.0]), CommitProgress(), step=1)
    with pytest.raises(ConnectionError, match="master gone"):
        bg.land(torch.tensor([1.0]), step=2)
    assert not bg.in_flight  # the loop may start the next exchange (e.g. after a rewind)
    bg.close()


def test_flat_parameters_are_the_models_own_and_keep_the_masters_order() -> None:
    from torch import nn
    from torch.nn.utils import parameters_to_vector
    from trafficdl_worker.trainer import flatten_parameters

    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    before = parameters_to_vector(model.parameters()).detach().clone()
    flat = flatten_parameters(model)
    torch.testing.assert_close(flat, before)  # same values, the master's vector order
    opt = torch.optim.SGD(model.parameters(), lr=0.1)
    model(torch.ones(5, 3)).sum().backward()
    opt.step()  # the optimizer's in-place step moves the flat vector...
    torch.testing.assert_close(flat, parameters_to_vector(model.parameters()).detach())
    assert not torch.equal(flat, before)
    with torch.no_grad():
        flat.add_(1.0)  # ...and an exchange's in-place fold moves the model
    torch.testing.assert_close(model[0].bias.detach(), flat[12:16])
