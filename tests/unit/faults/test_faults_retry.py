"""Backoff, jitter and bounds of trafficdl.rpc.retry, on a fake clock (nothing sleeps)."""

from __future__ import annotations

import random

import grpc
import pytest

from trafficdl.rpc import retry
from trafficdl.rpc.retry import RetryError, RetryPolicy, call_with_retry


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0
        self.sleeps: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        assert seconds >= 0
        self.sleeps.append(seconds)
        self.now += seconds


class FakeRpcError(grpc.RpcError):
    def __init__(self, code: grpc.StatusCode, details: str = "boom") -> None:
        self._code, self._details = code, details

    def code(self) -> grpc.StatusCode:
        return self._code

    def details(self) -> str:
        return self._details


class Flaky:
    """Fails with `codes` in order, then returns `result`; each call costs `cost` seconds."""

    def __init__(self, codes, result="ok", clock: FakeClock | None = None, cost: float = 0.0):
        self.codes = list(codes)
        self.result = result
        self.calls = 0
        self.clock, self.cost = clock, cost

    def __call__(self):
        self.calls += 1
        if self.clock is not None:
            self.clock.now += self.cost
        if self.codes:
            raise FakeRpcError(self.codes.pop(0))
        return self.result


UNAVAILABLE = grpc.StatusCode.UNAVAILABLE


def test_succeeds_after_transient_failures() -> None:
    clock = FakeClock()
    codes = [UNAVAILABLE, grpc.StatusCode.DEADLINE_EXCEEDED, grpc.StatusCode.ABORTED]
    fn = Flaky(codes)
    seen: list[tuple[int, float, grpc.StatusCode]] = []
    result = call_with_retry(
        fn,
        clock=clock,
        rng=random.Random(1),
        on_retry=lambda a, d, e: seen.append((a, d, e.code())),
    )
    assert result == "ok" and fn.calls == 4
    assert [a for a, _, _ in seen] == [1, 2, 3]
    assert [c for _, _, c in seen] == codes
    assert [d for _, d, _ in seen] == clock.sleeps


@pytest.mark.parametrize(
    "code",
    [
        grpc.StatusCode.UNAUTHENTICATED,
        grpc.StatusCode.INVALID_ARGUMENT,
        grpc.StatusCode.FAILED_PRECONDITION,
        grpc.StatusCode.RESOURCE_EXHAUSTED,
        grpc.StatusCode.PERMISSION_DENIED,
        grpc.StatusCode.UNIMPLEMENTED,
    ],
)
def test_permanent_errors_surface_immediately(code) -> None:
    clock = FakeClock()
    fn = Flaky([code])
    with pytest.raises(FakeRpcError) as info:
        call_with_retry(fn, clock=clock)
    assert info.value.code() == code
    assert fn.calls == 1 and clock.sleeps == []


def test_non_grpc_exceptions_are_not_retried() -> None:
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("bug")

    with pytest.raises(ValueError):
        call_with_retry(broken, clock=FakeClock())
    assert len(calls) == 1


def test_attempts_are_bounded() -> None:
    clock = FakeClock()
    fn = Flaky([UNAVAILABLE] * 100)
    policy = RetryPolicy(max_attempts=5, deadline_s=None)
    with pytest.raises(RetryError) as info:
        call_with_retry(fn, policy, clock=clock, what="pull")
    assert fn.calls == 5 and len(clock.sleeps) == 4
    assert info.value.attempts == 5 and info.value.code == UNAVAILABLE
    assert "pull failed 5 times" in str(info.value) and "UNAVAILABLE" in str(info.value)
    assert isinstance(info.value.__cause__, FakeRpcError)


def test_deadline_bounds_total_time_including_call_time() -> None:
    clock = FakeClock()
    fn = Flaky([UNAVAILABLE] * 1000, clock=clock, cost=2.0)  # each attempt times out after 2 s
    policy = RetryPolicy(initial_backoff_s=1.0, max_backoff_s=4.0, max_attempts=None, deadline_s=30)
    start = clock.now
    with pytest.raises(RetryError, match="gave up after"):
        call_with_retry(fn, policy, clock=clock, rng=random.Random(3))
    # No attempt starts after the deadline; the last one may run its own course.
    assert clock.now - start <= 30 + 2.0
    assert fn.calls >= 30 / (2.0 + 4.0)


def test_full_jitter_stays_under_the_exponential_cap() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=8.0, multiplier=2.0)
    caps = [policy.backoff_cap(n) for n in range(1, 9)]
    assert caps == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0, 8.0]
    rng = random.Random(42)
    samples: dict[int, list[float]] = {n: [] for n in range(1, 9)}
    for _ in range(400):
        for n, delay in zip(range(1, 9), policy.delays(rng), strict=False):
            samples[n].append(delay)
    for n, values in samples.items():
        cap = policy.backoff_cap(n)
        assert all(0.0 <= v <= cap for v in values)
        # Full jitter spreads over the whole range, not just near the cap.
        assert min(values) < 0.1 * cap and max(values) > 0.9 * cap
        assert 0.4 * cap < sum(values) / len(values) < 0.6 * cap


def test_huge_failure_counts_do_not_overflow() -> None:
    policy = RetryPolicy(max_backoff_s=5.0)
    assert policy.backoff_cap(10_000) == 5.0


def test_jitter_desynchronises_workers() -> None:
    """Ten workers that lost the master at the same instant do not retry in lock-step."""
    policy = RetryPolicy(initial_backoff_s=1.0, max_backoff_s=1.0)
    first_retry = [next(policy.delays(random.Random(seed))) for seed in range(10)]
    assert len({round(d, 3) for d in first_retry}) == 10


def test_decorator_passes_arguments_and_names_the_call() -> None:
    clock = FakeClock()
    attempts: list[int] = []

    @retry.retrying(RetryPolicy(max_attempts=3, deadline_s=None), clock=clock)
    def heartbeat(rank: int, *, epoch: float) -> str:
        attempts.append(rank)
        if len(attempts) < 3:
            raise FakeRpcError(UNAVAILABLE)
        return f"{rank}@{epoch}"

    assert heartbeat(2, epoch=0.5) == "2@0.5"
    assert attempts == [2, 2, 2] and heartbeat.__name__ == "heartbeat"
    attempts.clear()

    @retry.retrying(RetryPolicy(max_attempts=2, deadline_s=None), clock=clock)
    def leave() -> None:
        raise FakeRpcError(UNAVAILABLE)

    with pytest.raises(RetryError, match="leave failed 2 times"):
        leave()


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_backoff_s": 0},
        {"initial_backoff_s": 2, "max_backoff_s": 1},
        {"multiplier": 0.5},
        {"max_attempts": 0},
        {"deadline_s": 0},
    ],
)
def test_invalid_policies_are_rejected(kwargs) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)


def test_unbounded_policy_keeps_trying() -> None:
    clock = FakeClock()
    fn = Flaky([UNAVAILABLE] * 200)
    policy = RetryPolicy(max_backoff_s=1.0, max_attempts=None, deadline_s=None)
    assert call_with_retry(fn, policy, clock=clock) == "ok"
    assert fn.calls == 201
