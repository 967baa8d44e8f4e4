"""Elastic scaling arithmetic: where each rank of a new world resumes, and what the run cost.

An asynchronous run may be resumed by its master with another world size N'
(the operator's rescale: every pod is recreated with TRAFFICDL_WORLD_SIZE=N').
The centre and its counters carry over; the training rows are re-partitioned
for N' and every new rank resumes at the same fractional epoch: the one the
slowest old rank had *acknowledged* (its last folded commit, not heartbeats),
converted to that rank's own mini-batches.

Cost across rescales integrates the world size over time,
C = ∫ (ρ·N(t) + ρ_M) dt, rather than charging the final N for the whole T;
node-hours likewise ∫ (N(t) + 1) dt. A rescale record is a plain dict
`{"at_seconds": T at the change, "from": N, "to": N', ...}` (run.json's
`rescales`), so the world size over [0, T] is piecewise constant.

Pure arithmetic (no torch, no numpy): unit-tested in tests/unit/distributed/test_dist_elastic.py.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from fractions import Fraction
from typing import Any


def batches_per_epoch(rows: int, batch_size: int) -> int:
    """Mini-batches of one epoch over `rows` rows (the last one may be short)."""
    return (rows + batch_size - 1) // batch_size


def acknowledged_epoch(acked: Mapping[int, int], per_epoch: Mapping[int, int]) -> Fraction:
    """The slowest rank's acknowledged progress, in (exact, fractional) epochs.

    `acked[r]` is the batches covered by rank r's last folded commit, `per_epoch[r]`
    its batches per epoch. A finished rank has acked = epochs · per_epoch.
    """
    if not acked:
        return Fraction(0)
    return min(Fraction(acked[r], max(per_epoch[r], 1)) for r in acked)


def resume_batches(epoch: Fraction | float, per_epoch: int, epochs: int) -> int:
    """Where a rank with `per_epoch` batches per epoch resumes to be at `epoch`.

    Rounded down to whole batches (the same fractional epoch or a little before:
    no acknowledged work is skipped) and at most one batch short of the rank's
    total, so every rank still trains, makes its final commit, and ends exactly
    at `epochs` · `per_epoch` like an undisturbed rank.
    """
    total = epochs * per_epoch
    at = math.floor(Fraction(epoch) * per_epoch)
    return max(0, min(at, total - 1))


def world_spans(
    rescales: Sequence[Mapping[str, Any]], workers: int, seconds: float
) -> list[tuple[int, float]]:
    """(N, seconds) spans covering [0, `seconds`]: the world size before each rescale,
    then the current `workers` from the last rescale on."""
    spans: list[tuple[int, float]] = []
    start = 0.0
    for r in sorted(rescales, key=lambda r: float(r["at_seconds"])):
        at = min(max(float(r["at_seconds"]), start), seconds)
        spans.append((int(r["from"]), at - start))
        start = at
    spans.append((workers, max(seconds - start, 0.0)))
    return spans

