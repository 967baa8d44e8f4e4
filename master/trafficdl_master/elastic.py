"""Elastic scaling: a restarted master resumes its checkpoint with another world size.

The Kubernetes operator implements a `spec.workers` change of an asynchronous
run by recreating the master and every worker with TRAFFICDL_WORLD_SIZE=N'.
When the restored checkpoint's world size N differs from the run's N', `adapt`
turns the restored `CenterState` into one for N':

- kept: the centre vector, the update counter (it never goes backwards), the
  commit counters, the history, T so far (outage included) and the restarts;
- the training rows are re-partitioned for N' (`trafficdl.dataset.partition`,
  deterministic from seed, rank and N': each worker computes its own rows from
  the world size it is told at registration);
- every new rank resumes at the fractional epoch the slowest old rank had
  acknowledged (its last folded commit), in that rank's own batches
  (`trafficdl.distributed.rescale_math.resume_batches`): its acknowledged batches and
  commit sequence start there, so the final-commit and end rules hold as for an
  undisturbed rank (the run ends when all N' ranks made their final commit, each
  at epochs · its batches per epoch);
- a rescale record `{at_seconds, from, to, update_counter, epoch, resume_batches,
  rejoins}` is appended to the state (saved in every later checkpoint, so a later
  restart keeps it) and copied into the RunSpec, whose cost and node-hours then
  integrate N(t) over T (run.json, Status and metrics alike).

The synchronous algorithm (easgd) refuses a world-size change: its barrier and its
stability bound N·ρ·η ≤ 1 belong to one N (the operator refuses it too). A run that
had already ended keeps its world size (there is nothing left to re-partition).
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import numpy as np

from trafficdl.config import replace
from trafficdl.dataset import partition
from trafficdl.distributed import rescale_math
from trafficdl.distributed.spec import RunSpec
from trafficdl.errors import TrafficdlError
from trafficdl_master import metrics
from trafficdl_master.center import Center
from trafficdl_master.state import CenterState, WorkerProgress

log = logging.getLogger("trafficdl.master")


class RescaleError(TrafficdlError):
    """A world-size change this run cannot make (the synchronous algorithm)."""


def adapt(
    state: CenterState, spec: RunSpec, train_idx: np.ndarray, labels: np.ndarray
) -> tuple[RunSpec, dict[str, Any] | None]:
    """Reconcile a restored state with the run's world size (see the module doc).

    Returns the RunSpec to serve with (carrying the run's rescales for cost) and
    the new rescale record, None when the world size did not change now.
    """
    old, new = state.world_size, spec.dist.workers
    record = None
    if old != new:
        if all(w.finished for w in state.workers.values()):
            log.warning("run %s had already ended with %d workers: world size %d ignored",
                        spec.run_id, old, new)  # fmt: skip
            spec = dataclasses.replace(spec, dist=replace(spec.dist, workers=old))
        elif spec.dist.synchronous:
            raise RescaleError(
                f"run {spec.run_id} was checkpointed with {old} workers and this master was "
                f"started with {new}: the synchronous {spec.dist.algorithm} cannot change its "
                f"world size mid-run; restart it with world size {old} "
                "(or use an asynchronous algorithm for elastic runs)"
            )
        else:
            record = rescale(state, spec, train_idx, labels)
    if state.rescales:
        metrics.RESCALES.inc(len(state.rescales))
        spec = dataclasses.replace(spec, rescales=tuple(dict(r) for r in state.rescales))
    return spec, record


def rescale(
    state: CenterState, spec: RunSpec, train_idx: np.ndarray, labels: np.ndarray
) -> dict[str, Any]:
    """Re-partition `state` for the spec's world size in place; returns the rescale record."""
    old, new = state.world_size, spec.dist.workers
    epochs, seed = spec.train.epochs, spec.train.seed

    def per_epoch(world: int, rank: int) -> int:
        rows = len(partition(train_idx, labels, world, rank, seed))
        return rescale_math.batches_per_epoch(rows, spec.train.batch_size)

    acked = {r: w.acked_batches for r, w in state.workers.items()}
    epoch = rescale_math.acknowledged_epoch(acked, {r: per_epoch(old, r) for r in acked})
    workers: dict[int, WorkerProgress] = {}
    for r in range(new):
        per = per_epoch(new, r)
        at = rescale_math.resume_batches(epoch, per, epochs)
        workers[r] = WorkerProgress(
            rank=r, batches_done=at, epoch=at / per, last_sequence=at, acked_batches=at
        )
    record = {
        "at_seconds": state.elapsed_before,
        "from": old,
        "to": new,
        "update_counter": state.update_counter,
        "epoch": float(epoch),
        "resume_batches": [workers[r].acked_batches for r in range(new)],
        "rejoins": sum(max(w.registrations - 1, 0) for w in state.workers.values()),
    }
    state.world_size, state.workers = new, workers
    state.rescales.append(record)
    log.warning(
        "rescaled run %s from %d to %d workers at update %d (T so far %.2f s): the slowest "
        "rank had acknowledged epoch %.4f; new ranks resume at batches %s",
        spec.run_id, old, new, state.update_counter, state.elapsed_before, float(epoch),
        record["resume_batches"],
    )  # fmt: skip
    return record


def announce(center: Center, save: Any, record: dict[str, Any]) -> None:
    """After a rescale: say so in Status, and make it durable at once (`save()`), so a
    crash before the first commit resumes the new world, not the old one."""
    center.set_phase(
        center.phase,
        f"rescaled from {record['from']} to {record['to']} workers at update "
        f"{record['update_counter']}; ranks resume at epoch {record['epoch']:.3f}",
    )
    save()


def rejoins_before(state: CenterState) -> int:
    """Re-registrations of ranks of earlier worlds (run.json's `rejoins` counts all)."""
    return sum(int(r.get("rejoins", 0)) for r in state.rescales)
