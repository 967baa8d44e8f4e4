"""`train`, `evaluate`, `classify` and `model-info`: the model side of the CLI.

Flags map one to one onto TrainConfig / DistConfig fields (their defaults are
the dataclasses' own, so there is one source of truth). torch and the training
code are imported inside the commands, so `trafficdl --help` stays fast.
Human output goes to the terminal, `--json` prints one JSON document on stdout.
"""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.errors import TrafficdlError

_T = TrainConfig()
_D = DistConfig()

# Shared by `train` and `evaluate` (Annotated aliases keep one declaration per flag).
Model = Annotated[str, typer.Option("--model", "-m", help="cnn1d (payload bytes) or lstm.")]
Epochs = Annotated[int, typer.Option(help="Passes over the training data.")]
BatchSize = Annotated[int, typer.Option("--batch-size", help="Mini-batch size (paper: 50).")]
Optim = Annotated[str, typer.Option(help="torch.optim class name: adam, sgd, rmsprop...")]
Lr = Annotated[float, typer.Option(help="Learning rate.")]
WeightDecay = Annotated[float, typer.Option(help="L2 weight decay.")]
Dropout = Annotated[float, typer.Option(help="CNN dropout before the output layer.")]
Seed = Annotated[int, typer.Option(help="Seed of splits, initialisation and shuffling.")]
TestFraction = Annotated[float, typer.Option(help="Stratified hold-out share for testing.")]
ValFraction = Annotated[
    float, typer.Option(help="Validation share of the training rows (>0: keep best epoch).")
]
Patience = Annotated[
    int, typer.Option(help="Stop after this many epochs without validation gain (0: off).")
]
ClassWeighting = Annotated[
    bool, typer.Option(help="Weight the loss by inverse class frequency (imbalance).")
]
Device = Annotated[str, typer.Option(help="cpu, cuda, or auto (CUDA when present).")]
Threads = Annotated[int, typer.Option(help="torch intra-op threads (0: torch's default).")]
JsonOut = Annotated[bool, typer.Option("--json", help="Print one JSON document on stdout.")]
Quiet = Annotated[bool, typer.Option("--quiet", "-q", help="No progress bar.")]


def _train_config(**values: Any) -> TrainConfig:
    known = {f.name for f in fields(TrainConfig)}
    return TrainConfig(**{k: v for k, v in values.items() if k in known})


def _emit_json(data: Any) -> None:
    typer.echo(json.dumps(data, indent=2, default=float))


def _reporter(quiet: bool, json_out: bool) -> Any:
    from trafficdl.training.progress import NullReporter, RichReporter

    return NullReporter() if quiet or json_out else RichReporter()


def train(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory (trafficdl extract).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Run directory to write.")] = Path("run"),
    model: Model = _T.model,
    epochs: Epochs = _T.epochs,
    batch_size: BatchSize = _T.batch_size,
    optimizer: Optim = _T.optimizer,
    lr: Lr = _T.lr,
    weight_decay: WeightDecay = _T.weight_decay,
    dropout: Dropout = _T.dropout,
    seed: Seed = _T.seed,
    test_fraction: TestFraction = _T.test_fraction,
    val_fraction: ValFraction = _T.val_fraction,
    patience: Patience = _T.patience,
    class_weighting: ClassWeighting = _T.class_weighting,
    device: Device = _T.device,
    threads: Threads = _T.threads,
    resume: Annotated[bool, typer.Option(help="Continue from RUN_DIR/checkpoint.pt.")] = False,
    workers: Annotated[int, typer.Option(help="N workers; 0 trains centrally.")] = _D.workers,
    algorithm: Annotated[str, typer.Option(help="aeasgd, easgd, downpour, adag, dynsgd.")] = (
        _D.algorithm
    ),
    window: Annotated[int, typer.Option(help="Commit every W mini-batches (0: epochs).")] = (
        _D.window
    ),
    window_epochs: Annotated[float, typer.Option(help="Commit every E epochs.")] = (
        _D.window_epochs
    ),
    rho: Annotated[float, typer.Option(help="Elastic force ρ.")] = _D.rho,
    elastic_lr: Annotated[float, typer.Option(help="Elastic learning rate η.")] = _D.elastic_lr,
    wire_dtype: Annotated[str, typer.Option(help="float32, float16 or bfloat16.")] = (
        _D.wire_dtype
    ),
    threads_per_worker: Annotated[int, typer.Option(help="0: cores // N.")] = (
        _D.threads_per_worker
    ),
    worker_price: Annotated[float, typer.Option(help="Hourly price of a worker.")] = (
        _D.worker_price
    ),
    master_price: Annotated[float, typer.Option(help="Hourly price of the master.")] = (
        _D.master_price
    ),
    node_type: Annotated[str, typer.Option(help="Node type name (informational).")] = (
        _D.node_type
    ),
    currency: Annotated[str, typer.Option(help="Currency of the prices.")] = _D.currency,
    sync_timeout: Annotated[float, typer.Option(help="Barrier wait in seconds.")] = (
        _D.sync_timeout
    ),
    preset: Annotated[
        str,
        typer.Option(
            help="Distributed settings preset: none (flags as given), paper (dist-keras "
            "defaults), robust (keeps macro F near centralized at large N; docs/study.md)."
        ),
    ] = "none",
    quiet: Quiet = False,
    json_out: JsonOut = False,
) -> None:
    """Train a classifier: centrally (--workers 0) or on a local master + N workers."""
    cfg = _train_config(**locals())
    dist = DistConfig(
        workers=workers,
        algorithm=algorithm,
        window=window,
        window_epochs=window_epochs,
        rho=rho,
        elastic_lr=elastic_lr,
        wire_dtype=wire_dtype,
        threads_per_worker=threads_per_worker,
        sync_timeout=sync_timeout,
        worker_price=worker_price,
        master_price=master_price,
        node_type=node_type,
        currency=currency,
    )
    from trafficdl.study import presets

    if workers >= 1:
        cfg, dist = presets.apply(preset, cfg, dist, workers)
    else:
        presets.get(preset)  # validates the name; presets only shape distributed runs
    if workers == 0:
        from trafficdl.training.run import run_centralized

        result = run_centralized(
            dataset, cfg, out, reporter=_reporter(quiet, json_out), resume=resume, dist=dist
        )
    else:
        try:
            from trafficdl.distributed.launch import run_local
        except ImportError as exc:
            if not (exc.name or "").startswith("trafficdl.distributed"):
                raise
            raise TrafficdlError(
                "distributed training is not available (trafficdl.distributed is missing)"
            ) from exc
        result = run_local(dataset, cfg, dist, out, progress=not (quiet or json_out))
    if json_out:
        _emit_json(_summary(result))
        return
    from trafficdl.training.report import print_train_summary

    print_train_summary(result, out)


def _summary(result: Any) -> Any:
    """The JSON of a run: scalar test figures and run facts (full figures are in RUN_DIR)."""
    if not isinstance(result, dict) or "metrics" not in result:
        return result
    m = result["metrics"]
    keep = ("accuracy", "macro_recall", "macro_precision", "macro_f1", "per_class", "labels")
    return {
        "metrics": {k: m[k] for k in keep if k in m},
        "run": result.get("run"),
        "checkpoint": result.get("checkpoint"),
    }


def evaluate(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory.")],
    folds: Annotated[int, typer.Option(help="k of stratified k-fold (paper: 10).")] = 10,
    checkpoint: Annotated[
        Path | None,
        typer.Option(help="Evaluate this trained model on the dataset instead of k-fold."),
    ] = None,
    out: Annotated[Path, typer.Option("--out", "-o", help="Directory for JSON and plots.")] = (
        Path("evaluation")
    ),
    model: Model = _T.model,
    epochs: Epochs = _T.epochs,
    batch_size: BatchSize = _T.batch_size,
    optimizer: Optim = _T.optimizer,
    lr: Lr = _T.lr,
    weight_decay: WeightDecay = _T.weight_decay,
    dropout: Dropout = _T.dropout,
    seed: Seed = _T.seed,
    val_fraction: ValFraction = _T.val_fraction,
    patience: Patience = _T.patience,
    class_weighting: ClassWeighting = _T.class_weighting,
    device: Device = _T.device,
    threads: Threads = _T.threads,
    quiet: Quiet = False,
    json_out: JsonOut = False,
) -> None:
    """Stratified k-fold cross-validation (mean ± std), or one checkpoint on a dataset."""
    from trafficdl.training.report import run_evaluation

    cfg = _train_config(**locals())
    result = run_evaluation(
        dataset, cfg, folds, out, checkpoint=checkpoint, progress=not (quiet or json_out)
    )
    if json_out:
        _emit_json(result)


def classify(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint.pt from train.")],
    captures: Annotated[list[Path], typer.Argument(help="pcap/pcapng files or directories.")],
    output_format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = ("table"),
    reject_below: Annotated[
        float, typer.Option(help="Label objects below this confidence 'unknown' (0: off).")
    ] = 0.0,
    device: Device = "cpu",
    output: Annotated[Path | None, typer.Option("--output", help="Write here, not stdout.")] = (
        None
    ),
) -> None:
    """Predict the app of every biflow in captures, segmented as the model's dataset was."""
    from trafficdl.training.checkpoint import load_checkpoint
    from trafficdl.training.classify import classify_captures
    from trafficdl.training.report import render_predictions
    from trafficdl.training.runtime import select_device

    if output_format not in ("table", "csv", "json"):
        raise TrafficdlError("--format must be table, csv or json")
    ckpt = load_checkpoint(checkpoint)
    rows, warnings = classify_captures(
        ckpt, captures, reject_below=reject_below, device=select_device(device)
    )
    for w in warnings:
        typer.echo(f"trafficdl: warning: {w}", err=True)
    render_predictions(rows, output_format, output)


def model_info(
    model: Model = _T.model,
    classes: Annotated[int, typer.Option(help="Number of apps L.")] = 2,
    json_out: JsonOut = False,
) -> None:
    """The layer table and parameter count of a model for L apps."""
    from trafficdl.training.report import model_summary, print_model_summary

    summary = model_summary(model, classes)
    if json_out:
        _emit_json(summary)
    else:
        print_model_summary(summary)


def register(app: typer.Typer) -> None:
    """Add this module's commands to the `trafficdl` app."""
    app.command()(train)
    app.command()(evaluate)
    app.command()(classify)
    app.command("model-info")(model_info)
