"""Retrying gRPC calls across a restarting master or a flapping link.

Exponential backoff with full jitter (sleep uniform in [0, min(cap, base·2^n)],
as in the AWS architecture blog's comparison): N workers that lost the same
master do not come back in lock-step and hammer it when it restarts. Attempts
and total time are both bounded, so a worker whose master is gone for good
fails with a clear error instead of hanging.

Only transient status codes are retried. UNAUTHENTICATED, INVALID_ARGUMENT,
FAILED_PRECONDITION, RESOURCE_EXHAUSTED (our server's answer to an oversized
message) and the like are the same on every attempt and surface at once.
Retrying a Commit is safe because commits carry a per-rank sequence number
that the master deduplicates (see the proto).

Clock and random source are injectable so tests run without sleeping.
"""

from __future__ import annotations

import functools
import logging
import random
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ParamSpec, Protocol, TypeVar

import grpc

from trafficdl.errors import TrafficdlError

log = logging.getLogger(__name__)

P = ParamSpec("P")
T = TypeVar("T")

RETRYABLE_CODES: frozenset[grpc.StatusCode] = frozenset(
    {
        grpc.StatusCode.UNAVAILABLE,  # master down/restarting, link cut, connection reset
        grpc.StatusCode.DEADLINE_EXCEEDED,  # per-attempt timeout while the link was dead
        grpc.StatusCode.ABORTED,  # server asked to retry (e.g. a barrier was reset)
    }
)


class RetryError(TrafficdlError):
    """Every attempt failed with a retryable error; `last` is the final one."""

    def __init__(self, message: str, *, attempts: int, last: BaseException) -> None:
        super().__init__(message)
        self.attempts = attempts
        self.last = last

    @property
    def code(self) -> grpc.StatusCode | None:
        return self.last.code() if isinstance(self.last, grpc.RpcError) else None


class Clock(Protocol):
    def monotonic(self) -> float: ...

    def sleep(self, seconds: float) -> None: ...


class SystemClock:
    """The real clock."""

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        time.sleep(seconds)


@dataclass(frozen=True)
class RetryPolicy:
    """How long to keep trying. `max_attempts` / `deadline_s` None means unbounded."""

    initial_backoff_s: float = 0.2  # cap of the first sleep
    max_backoff_s: float = 10.0  # no single sleep is longer than this
    multiplier: float = 2.0  # the cap grows by this factor per failed attempt
    max_attempts: int | None = 20  # calls in total, the first included
    deadline_s: float | None = 300.0  # no new attempt starts later than this after the first
    retryable: frozenset[grpc.StatusCode] = field(default=RETRYABLE_CODES)

    def __post_init__(self) -> None:
        if self.initial_backoff_s <= 0 or self.max_backoff_s < self.initial_backoff_s:
            raise ValueError("need 0 < initial backoff <= max backoff")
        if self.multiplier < 1:
            raise ValueError("backoff multiplier must be >= 1")
        if self.max_attempts is not None and self.max_attempts < 1:
            raise ValueError("max attempts must be >= 1 (or None for unbounded)")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError("deadline must be > 0 (or None for unbounded)")

    def backoff_cap(self, failures: int) -> float:
        """Largest sleep after `failures` consecutive failures (>= 1)."""
        exponent = min(failures - 1, 64)  # keep the power finite
        return min(self.max_backoff_s, self.initial_backoff_s * self.multiplier**exponent)

    def delays(self, rng: random.Random | None = None) -> Iterator[float]:
        """Full-jitter sleeps, one per failure, endless (bounding is the caller's job)."""
        rng = rng or random.Random()
        failures = 0
        while True:
            failures += 1
            yield rng.uniform(0.0, self.backoff_cap(failures))

    def is_retryable(self, exc: BaseException) -> bool:
        return isinstance(exc, grpc.RpcError) and exc.code() in self.retryable


DEFAULT_POLICY = RetryPolicy()
# For a worker waiting out a master restart (pod reschedule and image pull can
# take minutes in a cluster): many attempts, 10 minutes in all.
MASTER_RESTART_POLICY = RetryPolicy(max_backoff_s=15.0, max_attempts=None, deadline_s=600.0)


def call_with_retry(
    fn: Callable[[], T],
    policy: RetryPolicy = DEFAULT_POLICY,
    *,
    clock: Clock | None = None,
    rng: random.Random | None = None,
    on_retry: Callable[[int, float, BaseException], None] | None = None,
    what: str = "call",
) -> T:
    """Call `fn()` until it returns, retrying transient gRPC errors per `policy`.

    `fn` must do the whole call, stream included (a server stream can fail
    mid-way; a client stream must be rebuilt for each attempt). Non-retryable
    errors propagate unchanged. `on_retry(attempt, sleep_s, error)` runs before
    each sleep, e.g. to count reconnects in metrics.
    """
    clock = clock or SystemClock()
    delays = policy.delays(rng)
    start = clock.monotonic()
    attempt = 0
    while True:
        attempt += 1
        try:
            return fn()
        except Exception as exc:
            if not policy.is_retryable(exc):
                raise
            last = exc
        if policy.max_attempts is not None and attempt >= policy.max_attempts:
            raise RetryError(
                f"{what} failed {attempt} times: {_describe(last)}", attempts=attempt, last=last
            ) from last
        delay = next(delays)
        elapsed = clock.monotonic() - start
        if policy.deadline_s is not None and elapsed + delay > policy.deadline_s:
            raise RetryError(
                f"{what} gave up after {attempt} attempts in {elapsed:.1f} s: {_describe(last)}",
                attempts=attempt,
                last=last,
            ) from last
        log.info(
            "%s attempt %d failed (%s); retrying in %.2f s", what, attempt, _describe(last), delay
        )
        if on_retry is not None:
            on_retry(attempt, delay, last)
        clock.sleep(delay)


def retrying(
    policy: RetryPolicy = DEFAULT_POLICY, **kwargs: object
) -> Callable[[Callable[P, T]], Callable[P, T]]:
    """Decorator form of `call_with_retry` (keyword arguments are passed through)."""

    def decorate(fn: Callable[P, T]) -> Callable[P, T]:
        @functools.wraps(fn)
        def wrapper(*args: P.args, **kw: P.kwargs) -> T:
            options = {"what": fn.__name__, **kwargs}
            return call_with_retry(lambda: fn(*args, **kw), policy, **options)  # type: ignore[arg-type]

        return wrapper

    return decorate


def _describe(exc: BaseException) -> str:
    if isinstance(exc, grpc.RpcError):
        return f"{exc.code().name}: {exc.details()}"
    return repr(exc)


__all__ = [
    "DEFAULT_POLICY",
    "MASTER_RESTART_POLICY",
    "RETRYABLE_CODES",
    "Clock",
    "RetryError",
    "RetryPolicy",
    "SystemClock",
    "call_with_retry",
    "retrying",
]
