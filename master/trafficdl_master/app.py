"""The master's life: prepare the run, serve until every worker finished, evaluate, write.

1. Prepare: open the dataset, split it (the same stratified hold-out as the
   centralized baseline, and the same validation share of its training rows),
   build and seed the initial model, fit the input statistics on the rows the
   workers train on, fingerprint the architecture -> RunSpec.
2. Serve: the gRPC server (parameter service + health) runs until every rank
   has made its final commit; there is no idle timeout. With a validation
   split the centre is validated every epoch and the run stops on a plateau,
   keeping the best centre (plateau.py).
3. Evaluate the centre model on the held-out test rows and write the run
   directory (checkpoint, history, metrics, run.json); phase SUCCEEDED.
The server keeps answering Status for `linger` seconds so an operator sees
the final phase and figures before the process exits.
Stopped by SIGINT (or SIGTERM, which __main__ turns into one), the master stops
serving, saves a last checkpoint of what it folded and exits: nothing is
half-written, and the run continues from there (a restart, or `--resume`).
"""

from __future__ import annotations

import logging
import os
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn.utils import parameters_to_vector, vector_to_parameters

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.dataset import Dataset, partition
from trafficdl.distributed import rundir
from trafficdl.distributed.spec import RunSpec
from trafficdl.models import build_model, fingerprint, input_adapter
from trafficdl.models.adapters import InputAdapter
from trafficdl.optim import get_rule
from trafficdl.rpc.security import ServerTls
from trafficdl.training.checkpoint import save_checkpoint
from trafficdl.training.data import fit_adapter, fit_val_test, load_split
from trafficdl.training.evaluate import evaluate_model
from trafficdl.training.run import checkpoint_info, model_overrides
from trafficdl.training.runtime import seed_everything
from trafficdl_master import elastic, liveness, metrics, plateau, recovery
from trafficdl_master.center import Center
from trafficdl_master.dataplane import DataPlaneServer
from trafficdl_master.server import ParameterServerServicer, make_master_server
from trafficdl_master.snapshot_store import CheckpointError, CheckpointStore
from trafficdl_master.state import CenterState, exchange_waits

log = logging.getLogger("trafficdl.master")
STOP_GRACE_S = 2.0  # in-flight calls may finish when the master is stopped


@dataclass
class MasterOptions:
    dataset: str
    out_dir: str
    train: TrainConfig
    dist: DistConfig
    run_id: str = ""
    bind: str = "127.0.0.1:50051"  # never every interface unless asked (docs/faults.md)
    metrics_port: int = 0
    t1_seconds: float | None = None
    linger: float = 0.0
    token: str | None = None  # the run's bearer token; None: no authentication (tests only)
    tls: ServerTls | None = None
    allow_plaintext: bool = False  # the token in clear on a non-loopback bind (explicit opt-out)
    checkpoint_dir: str = ""  # recovery checkpoints (default OUT_DIR/checkpoints)
    metrics_addr: str = ""  # interface of the metrics endpoint (default: the gRPC bind host)
    resume: bool = False  # continues a stopped run: its stopped time is not T (recovery.py)
    # Workers on this node exchange tensors through shared memory (dataplane.py); off
    # with TLS, whose certificates it would not check.
    data_plane: bool = True


@dataclass
class Prepared:
    spec: RunSpec
    dataset: Dataset
    model: nn.Module
    adapter: InputAdapter
    train_idx: np.ndarray  # the rows the workers partition (the run's training rows
    test_idx: np.ndarray  # less the validation rows)
    val_idx: np.ndarray
    split_train: int  # the run's training rows, validation included (the split check)


def prepare(opts: MasterOptions) -> Prepared:
    """Everything every process of the run must agree on, computed once here."""
    dataset = Dataset.open(opts.dataset)
    train, seed = opts.train, opts.train.seed
    # hold-out or k-fold's fold, then the validation share the master keeps
    train_idx, val_idx, test_idx = fit_val_test(dataset.labels, train)
    if len(train_idx) < opts.dist.workers * train.batch_size // 10 + opts.dist.workers:
        from trafficdl.errors import TrafficdlError

        raise TrafficdlError(
            f"{len(train_idx)} training rows are too few for {opts.dist.workers} workers"
        )
    overrides = model_overrides(train, dataset)
    seed_everything(seed)  # the centralized baseline's initial weights, too
    model = build_model(train.model, dataset.num_classes, **overrides)
    adapter = fit_adapter(dataset, train_idx, input_adapter(train.model, **overrides))
    spec = RunSpec(
        run_id=opts.run_id or uuid.uuid4().hex[:12],
        train=train,
        dist=opts.dist,
        dataset=str(Path(opts.dataset).resolve()),
        num_classes=dataset.num_classes,
        label_names=list(dataset.label_names),
        model_version=fingerprint(model),
        adapter=adapter.to_dict(),
        model_overrides=overrides,
    )
    return Prepared(spec, dataset, model, adapter, train_idx, test_idx, val_idx,
                    len(train_idx) + len(val_idx))  # fmt: skip


def bind_metrics(spec: RunSpec, center: Center) -> None:
    def seconds() -> float:
        return center.training_seconds()

    metrics.bind(
        model=spec.train.model,
        algorithm=spec.dist.algorithm,
        currency=spec.dist.currency,
        training_seconds=seconds,
        wtpe=lambda: center.progress(spec.train.epochs).wtpe(seconds()),
        node_hours=lambda: spec.node_hours_of(seconds()),
        cost=lambda: spec.cost_of(seconds()),
        progress=lambda: center.progress(spec.train.epochs),
    )


def finish(
    prep: Prepared,
    center: Center,
    out_dir: Path,
    t1: float | None,
    stopping: dict[str, Any] | None = None,
    validation: list[dict[str, Any]] | None = None,
    plane_ranks: list[int] | None = None,
) -> dict[str, Any]:
    """Evaluate the centre model and write the run directory; returns run.json's content.

    `stopping` (plateau.py's summary: epochs run, best epoch, why it stopped) goes
    into run.json, `validation` (the centre's validation loss per epoch) into
    history.json."""
    spec = prep.spec
    if stopping is None and center.average is not None:  # no validation: the final average
        center.state.vector.copy_(center.model_copy())
    stopping = stopping or plateau.no_validation(center, spec.train.epochs)
    torch.set_num_threads(os.cpu_count() or 1)  # the workers are done: use every core
    vector_to_parameters(center.state.vector, prep.model.parameters())
    figures = evaluate_model(prep.model, prep.dataset, prep.test_idx, adapter=prep.adapter)
    T = center.training_seconds()
    commits = center.state.history
    epochs = rundir.epoch_history(commits, spec.train.epochs)
    out_dir.mkdir(parents=True, exist_ok=True)
    info = checkpoint_info(prep.dataset)
    save_checkpoint(
        out_dir / "checkpoint.pt",
        prep.model,
        model_name=spec.train.model,
        label_names=spec.label_names,
        adapter=prep.adapter,
        train_config=spec.train,
        dist_config=spec.dist,
        extract_config=info.extract_config,
        history=epochs,
        epoch=spec.train.epochs,
        dataset=info.dataset,
        extra={"test": {k: figures[k] for k in rundir.SCALARS}, "run_id": spec.run_id},
    )
    p = center.progress(spec.train.epochs)
    partitions = [
        len(partition(prep.train_idx, prep.dataset.labels, spec.dist.workers, r, spec.train.seed))
        for r in range(spec.dist.workers)
    ]
    run = rundir.summary(
        spec,
        training_seconds=T,
        figures=figures,
        commits=commits,
        counters={
            "update_counter": p.update_counter,
            "commits_total": p.commits_total,
            "commits_rejected": p.commits_rejected,
            "workers_lost": p.lost,
            "restarts": p.restarts,
            "rejoins": sum(max(w.registrations - 1, 0) for w in center.state.workers.values())
            + elastic.rejoins_before(center.state),
            "sync_rounds_incomplete": center.rounds_incomplete,
        },
        split={"train": prep.split_train, "test": len(prep.test_idx), "partitions": partitions,
               "validation": len(prep.val_idx)},
        t1_seconds=t1,
    )  # fmt: skip
    run.update(stopping)
    run["exchange"] = exchange_waits(
        center.state.workers, overlap=spec.dist.overlaps, commits=p.commits_total
    )
    # Which ranks exchanged through this master's same-node data plane (None: it offered
    # none; a rank that fell back to gRPC for good, or a restarted master's earlier life,
    # is not in it).
    run["exchange"]["data_plane_ranks"] = plane_ranks
    if stopping["epochs_run"] > 0:  # WTPE over the epochs actually run (early stop)
        run["wtpe_seconds"] = run["training_seconds"] / stopping["epochs_run"]
    history = {"epochs": epochs, "commits": commits, "validation": validation or []}
    rundir.write_json(out_dir / "history.json", history)
    rundir.write_json(out_dir / "metrics.json", figures)
    rundir.write_json(out_dir / "run.json", run)
    return {"run": run, "figures": figures, "epochs": epochs}


def _plots(out_dir: Path, spec: RunSpec, figures: dict[str, Any], epochs: list[dict]) -> None:
    """The same plots a centralized run directory has; a finished run never fails on them."""
    from trafficdl import plots

    name = f"{spec.train.model}, N = {spec.dist.workers} ({spec.dist.algorithm})"
    try:
        plots.plot_confusion(figures["confusion"], figures["labels"], out_dir / "confusion.png",
                             title=f"{name}, held-out test rows (% of true app)")  # fmt: skip
        rows = [r for r in epochs if r.get("loss") is not None]
        if rows:
            plots.plot_history(rows, out_dir / "history.png", title=f"{name}: workers' training")
    except Exception:  # matplotlib trouble must not lose the run's figures
        log.exception("plots of %s not written", out_dir)


def bind_host(bind: str) -> str:
    """The host part of "host:port" ("[::1]:0" -> "::1"), for the metrics endpoint."""
    host = bind.rsplit(":", 1)[0] if ":" in bind else bind
    return host.strip("[]") or "0.0.0.0"


def serve(
    opts: MasterOptions,
    on_ready: Callable[[int], None] | None = None,
    *,
    state: CenterState | None = None,
    on_center: Callable[[Center], None] | None = None,
) -> dict[str, Any]:
    """Run the master to the end; returns run.json's content.

    `on_ready(port)` is called once the server listens. `state` resumes a run
    from a restored CenterState (a master restart); `on_center(center)` lets a
    caller attach to the live state (e.g. periodic checkpoints of
    `center.snapshot()`).
    """
    prep = prepare(opts)
    spec = prep.spec
    store = CheckpointStore(opts.checkpoint_dir or Path(opts.out_dir) / "checkpoints")
    if state is None:  # a restarted master resumes its run
        state = recovery.restore(store, spec, continued=opts.resume)
    resumed = state is not None
    rescaled = None
    if resumed:  # elastic scaling: a checkpoint of another world size (elastic.py)
        spec, rescaled = elastic.adapt(state, spec, prep.train_idx, prep.dataset.labels)
        prep.spec = spec
    if state is None:
        vector = parameters_to_vector(prep.model.parameters()).detach().clone()
        state = CenterState(vector=vector, world_size=spec.dist.workers)
    center = Center(
        state,
        get_rule(spec.dist.algorithm),
        sync_timeout=spec.dist.sync_timeout,
    )
    center.on_event = liveness.report
    center.set_averaging(spec.train.average_epochs)  # a restarted master: afresh, from here
    if resumed and not opts.resume:  # a continued run's clock waits for all its workers
        center.resume()
    metrics.RESTARTS.set(state.restarts)
    if on_center is not None:
        on_center(center)
    servicer = ParameterServerServicer(spec, center)
    checkpointer = recovery.Checkpointer(store, spec, center, spec.dist.checkpoint_every)
    checkpointer.attach(servicer)  # commit log + group commit, or snapshots (recovery.py)
    if rescaled is not None:
        elastic.announce(center, checkpointer.save, rescaled)
    server, port = make_master_server(servicer, opts.bind, token=opts.token, tls=opts.tls,
                                      allow_plaintext=opts.allow_plaintext)[:2]  # fmt: skip
    plane = None
    if opts.data_plane and opts.tls is None:
        try:
            plane = DataPlaneServer(servicer, opts.token).start()
            servicer.data_plane = plane.address
        except OSError as exc:  # e.g. no writable temp dir: every worker uses gRPC
            log.warning("no same-node data plane: %s", exc)
    monitor = liveness.LivenessMonitor(center, spec.dist.lost_after).start()
    watch = _plateau(prep, center)
    bind_metrics(spec, center)
    metrics.serve(opts.metrics_port, opts.metrics_addr or bind_host(opts.bind))
    server.start()
    log.info(
        "master of run %s listening on port %d for %d workers", spec.run_id, port, spec.dist.workers
    )
    if on_ready is not None:
        on_ready(port)
    try:
        center.done.wait()
        monitor.stop()
        try:  # a master lost while evaluating resumes straight into evaluation
            checkpointer.save()
        except CheckpointError as exc:  # the run itself is complete: report, go on
            log.error("final checkpoint not saved: %s", exc)
        stopping = watch.finish() if watch is not None else None
        validation = watch.history if watch is not None else None
        result = finish(prep, center, Path(opts.out_dir), opts.t1_seconds, stopping, validation,
                        sorted(plane.ranks) if plane is not None else None)  # fmt: skip
        servicer.figures = figures = result["figures"]
        metrics.TEST_ACCURACY.set(figures["accuracy"])
        metrics.MACRO_F1.set(figures["macro_f1"])
        metrics.MACRO_RECALL.set(figures["macro_recall"])
        center.set_phase("succeeded", "run complete")
        # Plots after SUCCEEDED: run.json is the result; a Status poll must not
        # wait on matplotlib (the launcher still waits for the process to exit).
        _plots(Path(opts.out_dir), spec, figures, result["epochs"])
        if opts.linger > 0:
            time.sleep(opts.linger)
        return result["run"]
    except KeyboardInterrupt:
        if plane is not None:
            plane.stop(STOP_GRACE_S)
        server.stop(grace=STOP_GRACE_S).wait()  # no commit is folded after this
        try:
            checkpointer.save()
        except CheckpointError as exc:  # the previous checkpoints still stand
            log.error("last checkpoint not saved: %s", exc)
        center.set_phase("failed", "stopped by a signal; continue the run with --resume")
        raise
    except BaseException as exc:
        center.set_phase("failed", f"{type(exc).__name__}: {exc}")
        raise
    finally:
        monitor.stop()
        if watch is not None:
            watch.stop()
        if plane is not None:
            plane.stop(1.0)
        server.stop(grace=1.0).wait()


def _plateau(prep: Prepared, center: Center) -> plateau.PlateauMonitor | None:
    """The validation watch of a run with a validation split (None without one)."""
    if not len(prep.val_idx):
        return None
    spec = prep.spec
    spare = build_model(spec.train.model, spec.num_classes, **spec.model_overrides)
    val = load_split(prep.dataset, prep.val_idx, prep.adapter)
    return plateau.PlateauMonitor(center, spare, val, prep.adapter, spec.train.epochs,
                                  spec.train.patience).start()  # fmt: skip
