"""The real cell runners: the centralized trainer (N = 0) and a local master + N workers.

Both train on exactly the fold's training rows and test on the fold's test
rows. The centralized trainer takes the rows directly (trafficdl.training.run.
train_model). A local distributed run (trafficdl.distributed.launch.run_local)
derives its split inside the master and workers from the TrainConfig, so the
fold travels as config: `folds`/`fold` fields that select
stratified_kfold(labels, folds, seed)[fold] — the same call the sweep makes.
The runner checks the split sizes run.json reports against the fold's, so a
run on the wrong rows fails loudly instead of polluting the study.

`local_runner()` dispatches on N; torch and the distributed machinery are
imported lazily so `trafficdl report` and `advise` stay light.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from trafficdl.config import TrainConfig
from trafficdl.errors import TrafficdlError
from trafficdl.study.sweep import CellResult, CellRunner, CellTask


class RunnerError(TrafficdlError):
    """A cell could not run as asked (unsupported fold selection, split mismatch)."""


def fold_config(train: TrainConfig, folds: int, fold: int) -> TrainConfig:
    """The TrainConfig that makes a distributed run use fold `fold` of `folds`."""
    if folds == 1:
        return train  # the run's own stratified hold-out is the sweep's single split
    return replace(train, folds=folds, fold=fold)


def centralized(task: CellTask) -> CellResult:
    """Train the baseline in this process on the fold's rows; figures on its test rows."""
    import torch

    from trafficdl.dataset import Dataset
    from trafficdl.training.evaluate import evaluate_model
    from trafficdl.training.run import train_model

    dataset = Dataset.open(task.dataset)
    trainer = train_model(dataset, task.train_cfg, task.train_idx, fold=task.fold)
    seconds = sum(float(r["seconds"]) for r in trainer.history)
    figures = evaluate_model(trainer.model, dataset, task.test_idx, adapter=trainer.adapter)
    epochs = len(trainer.history)
    return CellResult(
        t_s=seconds,
        wtpe_s=seconds / max(epochs, 1),
        epochs=epochs,
        accuracy=figures["accuracy"],
        macro_recall=figures["macro_recall"],
        macro_f=figures["macro_f1"],
        confusion=figures["confusion"],
        labels=figures["labels"],
        threads=torch.get_num_threads(),
        device=str(trainer.device),
        extra={"stopped_early": trainer.stopped_early},
    )


def distributed(task: CellTask) -> CellResult:
    """One real master and N real worker processes on this machine, on the fold's rows."""
    from trafficdl.distributed.launch import run_local, threads_per_worker

    train = fold_config(task.train_cfg, task.folds, task.fold)
    result = run_local(
        task.dataset,
        train,
        task.dist_cfg,
        task.work_dir,
        progress=False,
        run_id=f"{task.cell.id}-f{task.fold}",
    )
    return from_run_json(result.run, task, threads_per_worker(task.dist_cfg))


def from_run_json(run: dict[str, Any], task: CellTask, threads: int) -> CellResult:
    """A CellResult from a distributed run.json (local or a Kubernetes job's status)."""
    split = run.get("split", {})
    if (split.get("train"), split.get("test")) != (len(task.train_idx), len(task.test_idx)):
        raise RunnerError(
            f"the run trained on {split.get('train')}/{split.get('test')} train/test rows, "
            f"the fold has {len(task.train_idx)}/{len(task.test_idx)}: wrong split"
        )
    fig = run["figures"]
    return CellResult(
        t_s=float(run["training_seconds"]),
        wtpe_s=float(run["wtpe_seconds"]),
        epochs=int(run.get("epochs", task.train_cfg.epochs)),
        accuracy=float(fig["accuracy"]),
        macro_recall=float(fig["macro_recall"]),
        macro_f=float(fig["macro_f1"]),
        confusion=run["confusion"],
        labels=run["labels"],
        threads=threads,
        device=task.train_cfg.device,
        extra={
            k: run[k]
            for k in ("commits_total", "commits_rejected", "staleness", "workers_lost", "restarts")
            if k in run
        },
    )


def local_runner() -> CellRunner:
    """The `--on local` cell runner: centralized in process, N >= 1 through run_local."""

    def run(task: CellTask) -> CellResult:
        return centralized(task) if task.cell.centralized else distributed(task)

    return run


def kubernetes_runner(api: Any, settings: Any) -> CellRunner:
    """The `--on kubernetes` cell runner: one TrafficTrainingJob per (cell, fold) with N >= 1;
    the centralized baseline runs here (the CRD needs N >= 1) and its record says so."""
    from trafficdl.study.cluster_jobs import KubeRunner

    kube = KubeRunner(api, settings)

    def run(task: CellTask) -> CellResult:
        if task.cell.centralized:
            return replace(centralized(task), runner="local")
        return kube(task)

    return run
