"""Master recovery: checkpoint the run's state while it trains, and resume from it after a crash.

What is saved (one `CheckpointStore` file per snapshot, atomic, checksummed):
the centre vector, the update counter, commit counters, every rank's progress
(acknowledged batches, last sequence number: where a restarted worker resumes
and how retried commits are deduplicated), the training time so far and the
number of restarts. The update rules are stateless math on flat vectors, so
the counters and per-rank progress are the whole algorithm state.

When (`DistConfig.checkpoint_every` = K):
- K = 1 (default), asynchronous rules: *log before acknowledging*. `attach`
  routes each commit through `Checkpointer.commit`: folded, appended in fold
  order to the commit log (commitlog.py) and acknowledged once the group
  fsync that covers it returns, so nothing acknowledged is ever lost and the
  counter a worker has seen never goes backwards. A snapshot is saved in the
  background at each epoch boundary and once the log since the last one
  exceeds `log_bytes` (default max(256 MiB, 32 centres)), and the log is cut
  behind the snapshot before it (one older snapshot can still be replayed to
  the present). `restore`
  replays the log after the newest snapshot.
- K = 1, synchronous rules (EASGD): a snapshot before acknowledging; the
  round's commits wait at one barrier and share that one save.
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
from trafficdl.optim import get_rule
from trafficdl_master import metrics
from trafficdl_master.center import Center, CenterError
from trafficdl_master.commitlog import CommitLog, CommitLogError, read_records
from trafficdl_master.snapshot_store import CheckpointError, CheckpointStore
from trafficdl_master.state import CenterState, CommitInfo, CommitResult

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
    history_path = store.directory / HISTORY_FILE
    data["history"] = _read_history(history_path, int(meta["history_len"]))
    state = CenterState.restore(data)
    logged = len(state.history)
    seconds = float(meta["training_seconds"])
    last = _replay(state, store.directory, spec)
    if last is not None:  # T at the last logged commit; the gap runs from its wall clock
        seconds, saved_at = max(seconds, float(last["seconds"])), float(last["wall"])
    else:
        saved_at = snap.saved_at
    append_lines(history_path, state.history[logged:])
    gap = max(0.0, time.time() - saved_at)
    outage = 0.0 if continued else gap
    state.elapsed_before = seconds + outage
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


def _replay(state: CenterState, directory: Path, spec: RunSpec) -> dict[str, Any] | None:
    """Fold the logged commits after the snapshot into `state` with the run's own rule, in
    their order (the same code path as live commits); returns the last one's meta."""
    center = Center(state, get_rule(spec.dist.algorithm))
    last, count = None, 0
    for rec in read_records(directory, state.update_counter):
        info = CommitInfo(**rec.meta["info"])
        w = state.workers.get(info.rank)
        if w is None:
            log.error("commit log names rank %d outside the world: replay stops", info.rank)
            break
        w.connected = True  # Center folds only registered ranks' commits
        try:
            center.commit(info, torch.from_numpy(rec.payload.copy()))
        except CenterError as exc:
            log.error("commit log replay stops at counter %d: %s", rec.counter, exc)
            break
        finally:
            w.connected = False
        if state.history and state.history[-1]["counter"] == rec.counter:
            state.history[-1]["seconds"] = rec.meta["seconds"]
        last, count = rec.meta, count + 1
    if count:
        log.warning("replayed %d logged commits after the checkpoint, up to update %d",
                    count, state.update_counter)  # fmt: skip
    return last


def append_lines(path: Path, records: list[dict[str, Any]]) -> None:
    """Append JSON lines and fsync; a failed append is cut off again so no torn line stays."""
    if not records:
        return
    size = path.stat().st_size if path.exists() else 0
    try:
        with path.open("ab") as f:
            f.write(b"".join(json.dumps(r).encode() + b"\n" for r in records))
            f.flush()
            os.fsync(f.fileno())
    except OSError as exc:
        with contextlib.suppress(OSError):
            os.truncate(path, size)
        raise CheckpointError(f"cannot append to {path}: {exc}") from None


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
    """Makes the live centre's state durable on the schedule of `every` (see the module doc)."""

    def __init__(
        self,
        store: CheckpointStore,
        spec: RunSpec,
        center: Center,
        every: int = 1,
        *,
        log_bytes: int | None = None,
    ) -> None:
        if every < 0:
            raise ValueError("checkpoint_every must be >= 0")
        self.store = store
        self.spec = spec
        self.center = center
        self.every = every
        self.history_path = store.directory / HISTORY_FILE
        self.saved_counter = center.state.update_counter
        self.saved_epoch = math.floor(center.progress(spec.train.epochs).epoch)
        self.history_written = len(center.state.history)
        self.last_save_seconds = 0.0
        centre_bytes = center.state.vector.numel() * center.state.vector.element_size()
        self.log_bytes = log_bytes if log_bytes is not None else max(256 << 20, 32 * centre_bytes)
        self.log: CommitLog | None = None
        self._lock = threading.Lock()  # one save at a time
        self._order = threading.Lock()  # fold order == log order; a snapshot is a cut of both
        self._background: threading.Thread | None = None

    def attach(self, servicer: Any) -> None:
        """Make `servicer`'s acknowledgements durable: through the commit log (K = 1 and an
        asynchronous rule) or snapshots on the schedule (`on_committed`)."""
        if self.every == 1 and not self.center.rule.synchronous:
            self.start_log()
            servicer.durable = self
        else:
            servicer.on_committed = self.on_committed

    def start_log(self) -> None:
        """A base snapshot of the state as it is, then an empty log after it."""
        with self._lock:
            self._save()
            self.log = CommitLog(self.store.directory, self.saved_counter)
            self._cut_log()

    def commit(self, info: CommitInfo, contribution: torch.Tensor) -> CommitResult:
        """Fold, log, and return once the log is durable (call only after `start_log`)."""
        assert self.log is not None
        with self._order:
            result = self.center.commit(info, contribution)
            if result.applied:
                meta = {
                    "info": dict(vars(info)),  # flat dataclass: asdict's deep copy not needed
                    "counter": result.update_counter,
                    "seconds": self.center.training_seconds(),
                    "wall": time.time(),
                }
                ticket = self.log.append(meta, contribution.detach().numpy())
            else:  # a retry of a folded commit: durable once everything before it is
                ticket = self.log.last_ticket()
        try:
            self.log.wait(ticket)
        except CommitLogError as exc:
            log.error("%s; saving a full checkpoint instead", exc)
            self._recover_log()  # raises CheckpointError when the disk still fails
        # The slowest rank's epoch, read without the centre's lock: only a trigger.
        slowest = min(w.epoch for w in self.center.state.workers.values())
        if self.log.bytes_since_rotate >= self.log_bytes or math.floor(slowest) > self.saved_epoch:
            self._snapshot_in_background()
        return result

    def _recover_log(self) -> None:
        with self._lock:  # a snapshot covers every folded commit; a new log follows it
            old, self.log = self.log, None
            if old is not None:
                old.close()
            self._save()
            self.log = CommitLog(self.store.directory, self.saved_counter)

    def _snapshot_in_background(self) -> None:
        with self._order:
            if self._background is not None and self._background.is_alive():
                return
            self._background = threading.Thread(target=self._background_save, daemon=True)
            self._background.start()

    def _background_save(self) -> None:
        try:
            self.save()
        except CheckpointError as exc:  # the log still holds everything: retried later
            log.error("periodic checkpoint not saved: %s", exc)

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
            path = self._save()
            self._cut_log()
            return path

    def close(self) -> None:
        if self.log is not None:
            self.log.close()

    def _new_epoch(self) -> bool:
        return math.floor(self.center.progress(self.spec.train.epochs).epoch) > self.saved_epoch

    def _cut_log(self) -> None:
        """Drop log segments older than the second newest snapshot (kept as a fallback)."""
        counters = self.store.counters()
        if self.log is not None and len(counters) >= 2:
            self.log.drop_before(counters[1])
        elif self.log is not None and counters:
            self.log.drop_before(counters[0])

    def _save(self) -> Path:
        t0 = time.perf_counter()
        with self._order:  # with a log: the snapshot holds exactly the records before rotate
            data = self.center.snapshot()
            if self.log is not None:
                self.log.rotate(int(data["update_counter"]))
        vector = data.pop("vector").numpy()
        history = data.pop("history")
        append_lines(self.history_path, history[self.history_written :])
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
