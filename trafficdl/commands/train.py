"""`train`, `evaluate`, `classify` and `model-info`: the model side of the CLI.

Flags map one to one onto TrainConfig / DistConfig fields (their defaults are
the dataclasses' own, so there is one source of truth). torch and the training
code are imported inside the commands, so `trafficdl --help` stays fast.
Human output goes to the terminal, `--json` prints one JSON document on stdout.
"""

from __future__ import annotations

import json
import shlex
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any

import typer

from trafficdl.config import CONVERGING, DistConfig, TrainConfig
from trafficdl.errors import TrafficdlError
from trafficdl.live import options as live_opts

_T = TrainConfig(**CONVERGING)  # an epoch budget with a plateau stop (config.py)
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
AverageEpochs = Annotated[
    float,
    typer.Option(help="Keep the weights' exponential average over ~E epochs (0: the last)."),
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
    from trafficdl.training.progress_bar import NullReporter, RichReporter

    return NullReporter() if quiet or json_out else RichReporter()


def train(
    ctx: typer.Context,
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
    average_epochs: AverageEpochs = _T.average_epochs,
    class_weighting: ClassWeighting = _T.class_weighting,
    device: Device = _T.device,
    threads: Threads = _T.threads,
    resume: Annotated[
        bool,
        typer.Option(
            help="Continue the stopped run in RUN_DIR (centralized: from checkpoint.pt; "
            "--workers N: same run id, settings checked; docs/faults.md)."
        ),
    ] = False,
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
    overlap: Annotated[
        bool,
        typer.Option(
            help="Workers exchange in the background while the next mini-batches train "
            "(asynchronous rules; docs/distributed.md)."
        ),
    ] = _D.overlap,
    preset: Annotated[
        str,
        typer.Option(
            help="Distributed settings preset: none (flags as given), paper (dist-keras "
            "defaults), robust (keeps macro F near centralized at large N; docs/study.md)."
        ),
    ] = "none",
    metrics_port: Annotated[
        int,
        typer.Option(
            help="--workers N: Prometheus metrics of the master on PORT, of worker rank r "
            "on PORT+1+r (0: off)."
        ),
    ] = 0,
    metrics_host: Annotated[
        str, typer.Option(help="Interface of the metrics endpoints (loopback by default).")
    ] = "127.0.0.1",
    linger: Annotated[
        float, typer.Option(help="Seconds the metrics stay up after the run, for a last scrape.")
    ] = 0.0,
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
        overlap=overlap,
        worker_price=worker_price,
        master_price=master_price,
        node_type=node_type,
        currency=currency,
    )
    from trafficdl.api.run import run_training
    from trafficdl.distributed.launch import RunInterrupted, metrics_ports

    launch = {"linger": linger, "metrics_ports": metrics_ports(metrics_port, workers),
              "metrics_host": metrics_host} if workers else {}  # fmt: skip
    try:
        result = run_training(dataset, cfg, dist, out, preset=preset, resume=resume,
                              reporter=_reporter(quiet, json_out),
                              progress=not (quiet or json_out), **launch)  # fmt: skip
    except RunInterrupted as exc:
        typer.echo(f"trafficdl: {exc}", err=True)
        typer.echo(f"trafficdl: continue it with: {_resume_command(ctx)}", err=True)
        raise typer.Exit(130) from None
    if json_out:
        _emit_json(_summary(result))
        return
    from trafficdl.training.report import print_train_summary

    print_train_summary(result, out)


def _resume_command(ctx: typer.Context) -> str:
    """This command line as given, plus --resume: what continues an interrupted run."""
    from typer._click.core import ParameterSource

    words = ["trafficdl", ctx.info_name or "train"]
    for param in ctx.command.params:
        name = param.name or ""
        if name == "resume" or ctx.get_parameter_source(name) != ParameterSource.COMMANDLINE:
            continue
        value = ctx.params[name]
        if param.param_type_name == "argument":
            words.append(str(value))
            continue
        opts = param.opts if value or not getattr(param, "is_flag", False) else param.secondary_opts
        if not opts:
            continue
        words.append(max(opts, key=len))
        if not getattr(param, "is_flag", False):
            words.append(str(value))
    return shlex.join([*words, "--resume"])


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
    average_epochs: AverageEpochs = _T.average_epochs,
    class_weighting: ClassWeighting = _T.class_weighting,
    device: Device = _T.device,
    threads: Threads = _T.threads,
    quiet: Quiet = False,
    json_out: JsonOut = False,
) -> None:
    """Stratified k-fold cross-validation (mean ± std), or one checkpoint on a dataset."""
    from trafficdl.training.report import run_evaluation

    cfg = _train_config(**locals())
    result = run_evaluation(  # --quiet hides the progress bar only; --json prints JSON only
        dataset, cfg, folds, out, checkpoint=checkpoint,
        progress=not (quiet or json_out), figures=not json_out,
    )  # fmt: skip
    if json_out:
        _emit_json(result)


def classify(
    checkpoint: Annotated[Path, typer.Argument(help="checkpoint.pt from train.")],
    captures: Annotated[
        list[Path] | None, typer.Argument(help="pcap/pcapng files or directories.")
    ] = None,
    output_format: Annotated[str, typer.Option("--format", help="table, csv or json.")] = ("table"),
    reject_below: Annotated[
        float, typer.Option(help="Label objects below this confidence 'unknown' (0: off).")
    ] = 0.0,
    device: Device = "cpu",
    output: Annotated[Path | None, typer.Option("--output", help="Write here, not stdout.")] = (
        None
    ),
    live: live_opts.Live = None,
    bpf: live_opts.Bpf = None,
    json_lines: live_opts.JsonLines = False,
    duration: live_opts.Duration = 0.0,
    idle_timeout: live_opts.IdleTimeout = 120.0,
    active_timeout: live_opts.ActiveTimeout = 1800.0,
    max_flows: live_opts.MaxFlows = 100_000,
    metrics_port: live_opts.MetricsPort = None,
) -> None:
    """Predict the app of every biflow in captures, segmented as the model's dataset was."""
    if live is not None:  # trafficdl.live: flows decided as they happen (docs/api.md)
        from trafficdl.live.engine import LiveSettings
        from trafficdl.live.run import run_live

        if captures:
            raise TrafficdlError("give capture files or --live IFACE, not both")
        settings = LiveSettings(idle_timeout, active_timeout, max_flows, reject_below=reject_below)
        run_live(checkpoint, live, bpf=bpf, as_json=json_lines, duration=duration,
                 settings=settings, metrics_port=metrics_port, device=device)  # fmt: skip
        return
    if not captures:
        raise TrafficdlError("give capture files or directories, or --live IFACE")
    output_format = "json" if json_lines else output_format
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
