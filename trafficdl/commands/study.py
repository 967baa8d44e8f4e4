"""`sweep`, `report` and `advise`: the trade-off study from the command line.

Grid axes are comma-separated lists (`--workers 1,2,4,8,16 --window 7b,1e,all
--preset paper,robust`); the centralized baseline is added unless
--no-centralized. Training flags map onto TrainConfig/DistConfig fields with
the dataclasses' defaults. torch and the training code load only inside the
commands that train, so `report` and `advise` stay light.
"""

from __future__ import annotations

import dataclasses
import json
import math
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.console import Console
from rich.table import Table

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.errors import TrafficdlError

_T = TrainConfig()
_D = DistConfig()


def _ints(text: str, what: str) -> tuple[int, ...]:
    try:
        return tuple(int(x) for x in text.split(",") if x.strip())
    except ValueError:
        raise TrafficdlError(f"{what} must be comma-separated integers, got {text!r}") from None


def _words(text: str) -> tuple[str, ...]:
    return tuple(x.strip() for x in text.split(",") if x.strip())


def sweep(
    dataset: Annotated[Path, typer.Argument(help="Dataset directory (trafficdl extract).")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Sweep directory (resumable).")] = Path(
        "study"
    ),
    model: Annotated[str, typer.Option(help="Models, comma-separated: cnn1d,lstm.")] = "cnn1d",
    workers: Annotated[str, typer.Option(help="N values, comma-separated.")] = "1,2,4,8,16",
    window: Annotated[
        str,
        typer.Option(
            help="Update periods: <n>b mini-batches, <x>e epochs, all (one per training)."
        ),
    ] = "1e",
    algorithm: Annotated[str, typer.Option(help="Algorithms, comma-separated.")] = "aeasgd",
    preset: Annotated[
        str,
        typer.Option(help="Presets, comma-separated: paper (dist-keras defaults), robust, none."),
    ] = "paper",
    folds: Annotated[
        int, typer.Option(help="Stratified k-fold (paper: 10); 1 = one stratified hold-out.")
    ] = 10,
    centralized: Annotated[bool, typer.Option(help="Add the centralized baseline.")] = True,
    on: Annotated[str, typer.Option(help="local (processes) or kubernetes (jobs).")] = "local",
    epochs: Annotated[int, typer.Option(help="Epochs per (worker) training.")] = _T.epochs,
    batch_size: Annotated[int, typer.Option("--batch-size")] = _T.batch_size,
    lr: Annotated[float, typer.Option(help="Local learning rate.")] = _T.lr,
    optimizer: Annotated[str, typer.Option(help="torch.optim class name.")] = _T.optimizer,
    seed: Annotated[int, typer.Option(help="Seed of folds, partitions and init.")] = _T.seed,
    test_fraction: Annotated[float, typer.Option(help="Hold-out share when --folds 1.")] = (
        _T.test_fraction
    ),
    device: Annotated[str, typer.Option(help="cpu, cuda or auto.")] = _T.device,
    threads: Annotated[int, typer.Option(help="torch threads of the centralized cell.")] = 1,
    threads_per_worker: Annotated[
        int,
        typer.Option(
            help="torch threads per worker (1: every node one thread, like the centralized cell; "
            "0: cores // N)."
        ),
    ] = 1,
    wire_dtype: Annotated[str, typer.Option(help="float32, float16, bfloat16.")] = _D.wire_dtype,
    worker_price: Annotated[float, typer.Option(help="ρ per hour.")] = _D.worker_price,
    master_price: Annotated[float, typer.Option(help="ρ_M per hour.")] = _D.master_price,
    currency: Annotated[str, typer.Option()] = _D.currency,
    namespace: Annotated[str, typer.Option(help="kubernetes: namespace of the jobs.")] = "default",
    claim: Annotated[str, typer.Option(help="kubernetes: PVC holding the dataset.")] = "",
    dataset_path: Annotated[
        str, typer.Option(help="kubernetes: dataset path inside the volume.")
    ] = "",
    local_mount: Annotated[
        Path | None,
        typer.Option(
            help="kubernetes: where this machine sees the volume (adds confusion matrices)."
        ),
    ] = None,
    report: Annotated[bool, typer.Option(help="Write DIR/report.html at the end.")] = True,
    quiet: Annotated[bool, typer.Option("--quiet", "-q")] = False,
) -> None:
    """Run the (model x N x window x algorithm x preset) grid with k-fold, resumably."""
    from trafficdl.study import runners
    from trafficdl.study.sweep import Grid, run_sweep

    ns = _ints(workers, "--workers")
    grid = Grid(
        models=_words(model),
        workers=((0,) if centralized else ()) + ns,
        windows=_words(window),
        algorithms=_words(algorithm),
        presets=_words(preset),
        folds=folds,
    )
    train = TrainConfig(
        model=grid.models[0],
        epochs=epochs,
        batch_size=batch_size,
        lr=lr,
        optimizer=optimizer,
        seed=seed,
        test_fraction=test_fraction,
        device=device,
        threads=threads,
    )
    dist = DistConfig(
        threads_per_worker=threads_per_worker,
        wire_dtype=wire_dtype,
        worker_price=worker_price,
        master_price=master_price,
        currency=currency,
    )
    if on == "local":
        runner = runners.local_runner()
    elif on == "kubernetes":
        from trafficdl.study.cluster_jobs import KubeSettings, make_api

        if not claim or not dataset_path:
            raise TrafficdlError("--on kubernetes needs --claim and --dataset-path")
        settings = KubeSettings(
            volume={"persistentVolumeClaim": {"claimName": claim}},
            dataset_path=dataset_path,
            namespace=namespace,
            prefix=out.name,
            local_mount=local_mount,
        )
        runner = runners.kubernetes_runner(make_api(), settings)
    else:
        raise TrafficdlError(f"--on must be local or kubernetes, not {on!r}")
    records = run_sweep(dataset, grid, train, dist, out, runner, runner_name=on, quiet=quiet)
    failed = [
        r for r in records if not r.done and not any(o.done and o.key == r.key for o in records)
    ]
    if report:
        from trafficdl.study.html_report import write_report

        typer.echo(f"report: {write_report(out)}")
    if failed:
        typer.echo(f"{len(failed)} fold(s) failed; rerun the same command to retry them", err=True)
        raise typer.Exit(1)


def report(
    directory: Annotated[Path, typer.Argument(help="A sweep directory.")],
    output: Annotated[Path | None, typer.Option(help="HTML file (default DIR/report.html).")] = (
        None
    ),
    figures: Annotated[bool, typer.Option(help="Also write DIR/figures/fig*.png.")] = True,
) -> None:
    """Write the self-contained HTML report (figures, tables, environment) of a sweep."""
    from trafficdl.study import figures as figs
    from trafficdl.study.html_report import write_report
    from trafficdl.study.records import read_records, summarize

    path = write_report(directory, output)
    typer.echo(f"report: {path}")
    if figures:
        for p in figs.save_all(summarize(read_records(directory)), directory / "figures").values():
            typer.echo(f"figure: {p}")


def advise(
    directory: Annotated[Path | None, typer.Argument(help="A sweep directory to fit.")] = None,
    model: Annotated[str, typer.Option(help="Only this model's cells.")] = "",
    preset: Annotated[str, typer.Option(help="Only this preset's cells.")] = "",
    window: Annotated[str, typer.Option(help="Only this window's cells.")] = "",
    t1: Annotated[float, typer.Option(help="Without a sweep: T1 in seconds.")] = 0.0,
    throughput: Annotated[
        float, typer.Option(help="Without a sweep: master exchange throughput, MB/s.")
    ] = 0.0,
    latency: Annotated[float, typer.Option(help="Without a sweep: fixed overhead a [s].")] = 0.0,
    epochs: Annotated[int, typer.Option(help="Without a sweep: epochs.")] = _T.epochs,
    period_epochs: Annotated[
        float, typer.Option(help="Without a sweep: update period 1/F in epochs.")
    ] = 1.0,
    classes: Annotated[int, typer.Option(help="Without a sweep: number of apps.")] = 2,
    price: Annotated[
        list[str] | None,
        typer.Option(
            help="NAME=WORKER[:MASTER] hourly prices, repeatable (adds to DS4v2, D32sv3)."
        ),
    ] = None,
    budget: Annotated[float | None, typer.Option(help="Cost cap for 'fastest within'.")] = None,
    deadline: Annotated[
        float | None, typer.Option(help="Time cap [s] for 'cheapest within'.")
    ] = None,
    max_workers: Annotated[int, typer.Option(help="Largest N considered.")] = 64,
    json_out: Annotated[bool, typer.Option("--json", help="One JSON document on stdout.")] = False,
) -> None:
    """Fit T(N) = T1/N + a + b·X(N) and print the cost-optimal N, the fastest N within a
    budget and the cheapest N within a deadline, per node price."""
    from trafficdl.study import advisor as adv

    table = adv.price_table(price or [])
    models = _models(
        directory, model, preset, window, t1, throughput, latency, epochs, period_epochs, classes
    )
    out = []
    promises = _promises(directory)  # worst-fold macro F per N (advisor.py: Accuracy)
    for name, tm in models:
        acc = {n: dataclasses.asdict(p) for n, p in promises.get(name, {}).items()}
        for node, (rho, rho_m) in table.items():
            a = adv.advise(
                tm, node, rho, rho_m, max_workers=max_workers, budget=budget, deadline=deadline
            )
            out.append({"group": name, "model": _fit_dict(tm), **_advice_dict(a),
                        "accuracy_worst_fold": acc})  # fmt: skip
    if json_out:
        typer.echo(json.dumps(out, indent=2))
        return
    _print_advice(models, out)
    for name, _ in models:
        for p in promises.get(name, {}).values():
            typer.echo(f"{name}: {adv.promise_line(p)}")
    if directory is not None:
        typer.echo("Accuracy is measured only at the swept N (worst fold quoted); "
                   "at other N it is unknown.")  # fmt: skip


def _promises(directory: Path | None) -> dict[str, Any]:
    if directory is None:
        return {}
    from trafficdl.study.advisor import group_promises
    from trafficdl.study.records import read_records

    return group_promises(read_records(directory))


def _models(
    directory: Path | None,
    model: str,
    preset: str,
    window: str,
    t1: float,
    throughput: float,
    latency: float,
    epochs: int,
    period_epochs: float,
    classes: int,
) -> list[tuple[str, Any]]:
    from trafficdl.study import advisor as adv

    if directory is None:
        if t1 <= 0 or throughput <= 0:
            raise TrafficdlError("give a sweep directory, or --t1 and --throughput")
        name = model or "cnn1d"
        ex = adv.Exchange(adv.model_bytes(name, classes), epochs, period_epochs=period_epochs)
        return [
            (
                f"{name} (T1 = {t1:g} s, {throughput:g} MB/s)",
                adv.TimeModel.from_throughput(t1, throughput * 1e6, ex, latency),
            )
        ]
    from trafficdl.study.records import latest, read_records

    recs = [
        r
        for r in latest(read_records(directory))
        if r.done
        and r.workers >= 1
        and (not model or r.model == model)
        and (not preset or r.preset == preset)
        and (not window or r.window == window)
    ]
    meta = directory / "sweep.json"
    pin = json.loads(meta.read_text()).get("pin", {}) if meta.is_file() else {}
    wire = str(pin.get("dist_config", {}).get("wire_dtype", "float32"))
    groups: dict[str, list[Any]] = {}
    for r in recs:
        groups.setdefault(f"{r.model} {r.window} {r.algorithm} {r.preset}", []).append(r)
    fits, errors = [], []
    for name, rs in sorted(groups.items()):
        try:
            fits.append((name, adv.fit(rs, adv.exchange_of(rs, wire))))
        except adv.AdvisorError as exc:
            errors.append(f"{name}: {exc}")
    if not fits:
        raise TrafficdlError(
            "nothing to advise on: " + ("; ".join(errors) or "no finished distributed cells")
        )
    return fits


def _fit_dict(tm: Any) -> dict[str, Any]:
    return {
        "t1_s": tm.t1,
        "a_s": tm.a,
        "b_s_per_byte": tm.b,
        "throughput_mb_s": (1e-6 / tm.b) if tm.b > 0 else None,
        "r2": None if math.isnan(tm.r2) else tm.r2,
        "points": tm.points,
        "oversubscribed": tm.oversubscribed,
    }


def _advice_dict(a: Any) -> dict[str, Any]:
    def opt(o: Any) -> dict[str, Any] | None:
        return None if o is None else {"workers": o.workers, "seconds": o.seconds, "cost": o.cost}

    return {
        "node": a.node,
        "worker_price": a.worker_price,
        "master_price": a.master_price,
        "cost_optimal": opt(a.cost_optimal),
        "fastest": opt(a.fastest),
        "fastest_within_budget": opt(a.fastest_within_budget),
        "cheapest_within_deadline": opt(a.cheapest_within_deadline),
    }


def _print_advice(models: list[tuple[str, Any]], rows: list[dict[str, Any]]) -> None:
    console = Console()
    for name, tm in models:
        f = _fit_dict(tm)
        thr = f"{f['throughput_mb_s']:.3g} MB/s" if f["throughput_mb_s"] else "∞ (no exchange cost)"
        r2 = f", R² = {f['r2']:.3f} over {f['points']} runs" if f["r2"] is not None else ""
        console.print(f"[bold]{name}[/]: T(N) = {tm.t1:.4g}/N + {tm.a:.4g} s + X(N)/{thr}{r2}")
        if 0 < tm.distinct_n < 3:
            console.print(
                f"[yellow]note:[/] only {tm.distinct_n} values of N for 3 parameters: the fit "
                "passes through them and does not extrapolate; sweep more N"
            )
        if tm.oversubscribed:
            console.print(
                "[yellow]warning:[/] fitted on oversubscribed timings (more busy "
                "threads than cores): the overhead is contention, not the network"
            )
        t = Table(
            "node",
            "ρ / ρ_M per h",
            "cost-optimal N",
            "fastest N",
            "fastest within budget",
            "cheapest within deadline",
        )
        for r in rows:
            if r["group"] != name:
                continue
            t.add_row(
                r["node"],
                f"{r['worker_price']:g} / {r['master_price']:g}",
                *[
                    _opt(r[k])
                    for k in (
                        "cost_optimal",
                        "fastest",
                        "fastest_within_budget",
                        "cheapest_within_deadline",
                    )
                ],
            )
        console.print(t)
    console.print(
        "Prices change ρ and ρ_M only: the nodes priced are assumed as fast as the ones measured."
    )


def _opt(o: dict[str, Any] | None) -> str:
    if o is None:
        return "none"
    return f"N = {o['workers']}: {o['seconds']:.4g} s, {o['cost']:.4g}"


def register(app: typer.Typer) -> None:
    """Add `sweep`, `report` and `advise` to the `trafficdl` app."""
    app.command()(sweep)
    app.command()(report)
    app.command()(advise)
