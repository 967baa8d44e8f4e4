"""Master recovery: checkpoint the run's state while it trains, and resume from it after a crash.

What is saved (one `CheckpointStore` file per snapshot, atomic, checksummed):
the centre vector, the update counter, commit counters, every rank's progress
(acknowledged batches, last sequence number: where a restarted worker resumes
and how retried commits are deduplicated), the training time so far and the
number of restarts. The update rules are stateless math on flat vectors, so
the counters and per-rank progress are the whole algorithm state.

When (`DistConfig.checkpoint_every` = K):
- K = 1 (default): *checkpoint before acknowledging*. A commit is folded, a
  snapshot that contains it is saved, then the worker gets its reply, so
  nothing acknowledged is ever lost and the counter a worker has seen never
  goes backwards. Concurrent commits share one save (group commit): a thread
  whose fold is already covered by a newer snapshot does not save again.
- K > 1: a save every K centre updates (and at each epoch boundary); a master
  crash loses up to K - 1 acknowledged updates, which the workers redo from
  `resume_batches` after they register again.
- K = 0: epoch boundaries only.
An epoch boundary is the slowest rank's epoch reaching a new integer.

The commit history (one small record per commit, for history.json) grows with
the run, so it is not rewritten into every snapshot: new records are appended
to `history.jsonl` (fsynced) before the snapshot that counts them is saved,
and a snapshot stores only how many records it covers. On restore the file is
cut back to that count (records a dead master appended after its last good
snapshot belong to no snapshot).

T across a restart: the restored `elapsed_before` is the snapshot's training
time plus the wall-clock gap from its save to the restart (the outage is paid
for, as a cloud bill would). A run stopped on purpose (SIGTERM/SIGINT: the
master saves a last snapshot on its way out) and continued with
`trafficdl train --resume` is charged nothing for the time it was stopped.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import threading
import time
from pathlib import Path
from typing import Any

import torch

from trafficdl.distributed.spec import RunSpec
from trafficdl.errors import TrafficdlError
from trafficdl_master import metrics
from trafficdl_master.center import Center
from trafficdl_master.checkpoint import CheckpointError, CheckpointStore
from trafficdl_master.state import CenterState

log = logging.getLogger("trafficdl.master")
HISTORY_FILE = "history.jsonl"


class RecoveryError(TrafficdlError):
    """The checkpoint directory belongs to another run or model."""


def restore(
    store: CheckpointStore, spec: RunSpec, *, continued: bool = False
) -> CenterState | None:
    """The state of the newest good checkpoint of this run (None: start afresh).

    Counts the restart and charges the outage to T, unless `continued`: a run
    the user stopped and continues (`trafficdl train --resume`), whose stopped
    time is no training time (its clock restarts when every worker is back).
    Raises RecoveryError when the checkpoints belong to another run id or model version.
    """
    snap = store.latest_good()
    if snap is None:
        return None
    meta = snap.meta
    if meta.get("run_id") != spec.run_id or meta.get("model_version") != spec.model_version:
        raise RecoveryError(
            f"{snap.path} belongs to run {meta.get('run_id')!r} (model {meta.get('model_version')})"
            f", not {spec.run_id!r} ({spec.model_version}): use another output directory"
        )
    data = dict(meta["state"])
    data["vector"] = torch.from_numpy(snap.arrays["centre"].copy())
    data["history"] = _read_history(store.directory / HISTORY_FILE, int(meta["history_len"]))
    state = CenterState.restore(data)
    gap = max(0.0, time.time() - snap.saved_at)
    outage = 0.0 if continued else gap
    state.elapsed_before = float(meta["training_seconds"]) + outage
    state.restarts += 1
    log.warning(
        "%s run %s from %s: update %d, T so far %.2f s (%s %.2f s), restart %d",
        "continued" if continued else "resumed",
        spec.run_id,
        snap.path.name,
        state.update_counter,
        state.elapsed_before,
        "stopped, not counted:" if continued else "outage",
        gap,
        state.restarts,
    )
    return state


def _read_history(path: Path, count: int) -> list[dict[str, Any]]:
    """The first `count` records of the history log; the file is cut back to them."""
    if not path.is_file():
        if count:
            log.error("history log %s is missing: the run's history.json will be partial", path)
        return []
    records: list[dict[str, Any]] = []
    offset = 0
    with path.open("rb") as f:
        for line in f:
            if len(records) == count:
                break
            try:
                records.append(json.loads(line))
            except ValueError:  # a torn line: nothing after it belongs to a snapshot
                break
            offset += len(line)
    if len(records) < count:
        log.error("history log %s holds %d of %d records", path, len(records), count)
    os.truncate(path, offset)
    return records


class Checkpointer:
    """Saves the live centre's state on the schedule of `every` (see the module doc)."""

    def __init__(
        self, store: CheckpointStore, spec: RunSpec, center: Center, every: int = 1
    ) -> None:
        if every < 0:
            raise ValueError("checkpoint_every must be >= 0")
        self.store = store
        self.spec = spec
        self.center = center
        self.every = every
        self.history_path = store.directory / HISTORY_FILE
        self.saved_counter = center.state.update_counter
        self.saved_epoch = math.floor(center.progress(spec.train.epochs)["epoch"])
        self.history_written = len(center.state.history)
        self.last_save_seconds = 0.0
        self._lock = threading.Lock()

    def on_committed(self, counter: int) -> None:
        """Called before a commit is acknowledged: save when the schedule says so."""
        due = (self.every == 1 and counter > self.saved_counter) or (
            self.every > 1 and counter - self.saved_counter >= self.every
        )
        if due or self._new_epoch():
            with self._lock:  # a concurrent thread may have saved a covering snapshot
                if counter > self.saved_counter or self._new_epoch():
                    self._save()

    def save(self) -> Path:
        """Save now (e.g. once the run is complete)."""
        with self._lock:
            return self._save()

    def _new_epoch(self) -> bool:
        return math.floor(self.center.progress(self.spec.train.epochs)["epoch"]) > self.saved_epoch

    def _append_history(self, records: list[dict[str, Any]]) -> None:
        """Append and fsync; a failed append is cut off again so no torn line stays."""
        size = self.history_path.stat().st_size if self.history_path.exists() else 0
        try:
            with self.history_path.open("ab") as f:
                f.write(b"".join(json.dumps(r).encode() + b"\n" for r in records))
                f.flush()
                os.fsync(f.fileno())
        except OSError as exc:
            with contextlib.suppress(OSError):
                os.truncate(self.history_path, size)
            raise CheckpointError(f"cannot append to {self.history_path}: {exc}") from None

    def _save(self) -> Path:
        t0 = time.perf_counter()
        data = self.center.snapshot()
        vector = data.pop("vector").numpy()
        history = data.pop("history")
        new = history[self.history_written :]
        if new:
            self._append_history(new)
        self.history_written = len(history)  # in the log now, even if the save below fails
        path = self.store.save(
            {"centre": vector},
            {
                "update_counter": int(data["update_counter"]),
                "run_id": self.spec.run_id,
                "model_version": self.spec.model_version,
                "training_seconds": float(data["elapsed_before"]),
                "history_len": len(history),
                "state": data,
            },
        )
        self.saved_counter = int(data["update_counter"])
        self.saved_epoch = math.floor(min(w["epoch"] for w in data["workers"].values()))
        self.last_save_seconds = time.perf_counter() - t0
        metrics.CHECKPOINTS.inc()
        metrics.CHECKPOINT_SECONDS.observe(self.last_save_seconds)
        return path
