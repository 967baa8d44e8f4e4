"""The prepared check for a machine with a GPU and many cores (not part of `make bench`).

Such a machine is lent for minutes, so everything it should tell us is one command:

    python -m bench.device_check --out device.json        # ~5 min on an H200 + 16 cores

1. CUDA, centralized: samples/s of the Trainer's epoch on the GPU against a bare
   PyTorch loop over the same GPU-resident tensors, both models, B = 50 and 512
   (target: >= 80% of bare). Epochs alternate AB/BA; medians.
2. CUDA, one distributed worker: samples/s of a worker through a real master
   (training seconds from run.json) against the bare loop at the same batch size.
3. CPU scaling: N = 1, 2, 4, 8, 16 worker processes (1 torch thread each, one
   commit per epoch) against N bare training processes that each train 1/N of
   the rows concurrently. Parallel efficiency E(N) = T(1) / (N * T(N)) for both;
   target: ours >= 90% of the bare processes' at N = 8.

It needs no GPU to run: `--cpu-only` skips parts 1-2 (a CPU machine checks the
script itself this way: tests/integration/bench/test_bench_device_check.py);
without that flag and without CUDA it stops with one line. No test needs a GPU.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from bench import table
from bench.bench_scaling import make_dataset
from bench.bench_train import _bare_epoch
from bench.table import Row, pick, render
from trafficdl.config import DistConfig, TrainConfig
from trafficdl.dataset import Dataset
from trafficdl.models import build_model, input_adapter
from trafficdl.training import fit_adapter, load_split
from trafficdl.training.trainer import Trainer


def _sync() -> None:
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def _cuda_rows(ds: Dataset, model_name: str, batch: int, epochs: int) -> tuple[Row, float]:
    """Trainer epoch vs bare loop on the GPU; returns the row and the bare rate."""
    idx = np.arange(len(ds))
    adapter = fit_adapter(ds, idx, input_adapter(model_name))
    dev = torch.device("cuda")
    split = load_split(ds, idx, adapter).to(dev)
    cfg = TrainConfig(model=model_name, epochs=epochs, batch_size=batch, device="cuda")
    torch.manual_seed(0)
    trainer = Trainer(build_model(model_name, ds.num_classes), cfg, split, model_name=model_name,
                      adapter=adapter, label_names=ds.label_names)  # fmt: skip
    bare_model = build_model(model_name, ds.num_classes).to(dev)
    bare_opt = torch.optim.Adam(bare_model.parameters(), lr=cfg.lr)
    times: dict[str, list[float]] = {"ours": [], "bare": []}
    jobs = {
        "ours": lambda e: trainer._run_epoch(e),
        "bare": lambda e: _bare_epoch(bare_model, bare_opt, split, batch, e),
    }
    for name in jobs:  # warm-up: cuDNN autotune, allocator, first-call costs
        jobs[name](0)
    _sync()
    for epoch in range(1, epochs + 1):
        for name in list(jobs) if epoch % 2 else list(jobs)[::-1]:
            t0 = time.perf_counter()
            jobs[name](epoch)
            _sync()
            times[name].append(time.perf_counter() - t0)
    n = len(split)
    ours, bare = n / statistics.median(times["ours"]), n / statistics.median(times["bare"])
    note = f"target >= 0.80x; n={n}, median of {epochs}"
    row = Row("device", f"CUDA {model_name} Trainer epoch, B={batch}", ours, "samples/s",
              "bare PyTorch on the GPU", bare, note)  # fmt: skip
    return row, bare


def _worker_row(ds_path: Path, model: str, batch: int, epochs: int, bare: float, tmp: Path) -> Row:
    from trafficdl.distributed.launch import run_local

    train = TrainConfig(model=model, epochs=epochs, batch_size=batch, device="cuda", threads=1,
                        val_fraction=0.0, patience=0)  # fmt: skip
    dist = DistConfig(workers=1, window_epochs=1.0, threads_per_worker=1)
    run = run_local(ds_path, train, dist, tmp / f"worker-{model}-{batch}", progress=False).run
    samples = run["split"]["train"] * run["epochs_run"]
    return Row("device", f"CUDA {model} worker through the master, B={batch}",
               samples / run["training_seconds"], "samples/s", "bare PyTorch on the GPU", bare,
               f"target >= 0.80x; {epochs} epochs, one commit per epoch")  # fmt: skip


def _bare_process(ds_path: Path, model: str, rows: int, rank: int, world: int, epochs: int,
                  batch: int) -> subprocess.Popen[str]:  # fmt: skip
    args = [sys.executable, "-m", "bench.device_check", "--bare", str(ds_path), model, str(rows),
            str(rank), str(world), str(epochs), str(batch)]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(args, stdout=subprocess.PIPE, text=True, env=env)


def bare_train(ds_path: Path, model: str, rows: int, rank: int, world: int, epochs: int,
               batch: int) -> float:  # fmt: skip
    """One bare training process: its 1/world share, `epochs` epochs; training seconds."""
    torch.set_num_threads(1)
    ds = Dataset.open(ds_path)
    idx = np.arange(rows)[rank::world]
    adapter = fit_adapter(ds, idx, input_adapter(model))
    split = load_split(ds, idx, adapter)
    torch.manual_seed(rank)
    net = build_model(model, ds.num_classes)
    opt = torch.optim.Adam(net.parameters(), lr=0.001)
    t0 = time.perf_counter()
    for epoch in range(epochs):
        _bare_epoch(net, opt, split, batch, epoch)
    return time.perf_counter() - t0


def _scaling_rows(model: str, rows: int, epochs: int, ns: list[int], tmp: Path) -> list[Row]:
    from trafficdl.distributed.launch import run_local

    ds_path = make_dataset(tmp / f"scale-{model}", rows, 784)
    train = TrainConfig(model=model, epochs=epochs, batch_size=50, threads=1, val_fraction=0.0,
                        patience=0)  # fmt: skip
    ours: dict[int, float] = {}
    bare: dict[int, float] = {}
    for n in ns:
        dist = DistConfig(workers=n, window_epochs=1.0, threads_per_worker=1)
        run = run_local(ds_path, train, dist, tmp / f"{model}-n{n}", progress=False).run
        ours[n] = run["training_seconds"]
        fit = run["split"]["train"]  # the bare processes train as many rows in all
        procs = [_bare_process(ds_path, model, fit, r, n, epochs, 50) for r in range(n)]
        bare[n] = max(float(p.communicate()[0].strip().splitlines()[-1]) for p in procs)
    out: list[Row] = []
    for n in ns:
        eff_ours, eff_bare = ours[ns[0]] / (n * ours[n]), bare[ns[0]] / (n * bare[n])
        out.append(Row("device", f"CPU {model} parallel efficiency N={n}", eff_ours, "",
                       f"N bare processes ({os.cpu_count()} cores)", eff_bare,
                       f"T ours {ours[n]:.1f} s, bare {bare[n]:.1f} s; {rows} rows, {epochs} "
                       f"epochs; target ratio >= 0.90 at N=8"))  # fmt: skip
    return out


def run(cpu_only: bool, ns: list[int]) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="device-check-") as tmp_name:
        tmp = Path(tmp_name)
        if not cpu_only:
            n_rows, epochs = pick(full=20000, quick=4000, smoke=400), pick(full=3, quick=2)
            ds_path = make_dataset(tmp / "cuda", n_rows, 784)
            ds = Dataset.open(ds_path)
            for model in ("cnn1d", "lstm"):
                for batch in (50, 512):
                    row, bare = _cuda_rows(ds, model, batch, epochs)
                    rows.append(row)
                    if batch == 50:
                        rows.append(_worker_row(ds_path, model, batch, epochs, bare, tmp))
        per_worker = pick(full=600, quick=200, smoke=40)
        rows += _scaling_rows("lstm", per_worker * max(ns), pick(full=3, quick=2, smoke=1), ns,
                              tmp)  # fmt: skip
    return rows


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--bare"]:  # a child of the scaling part
        print(bare_train(Path(argv[1]), argv[2], *map(int, argv[3:8])))
        return 0
    parser = argparse.ArgumentParser(prog="python -m bench.device_check",
                                     description=__doc__.splitlines()[0])  # fmt: skip
    parser.add_argument("--smoke", action="store_true", help="smallest sizes: checks the script")
    parser.add_argument("--quick", action="store_true", help="smaller sizes")
    parser.add_argument("--cpu-only", action="store_true", help="skip the CUDA parts")
    parser.add_argument("--workers", default="1,2,4,8,16", help="N for the CPU scaling part")
    parser.add_argument("--out", type=Path, help="write the rows and the machine here (JSON)")
    args = parser.parse_args(argv)
    try:
        ns = sorted({int(x) for x in args.workers.split(",")})
        if not ns or ns[0] < 1:
            raise ValueError
    except ValueError:
        parser.error("--workers takes positive integers, e.g. 1,2,4,8,16")
    if not args.cpu_only and not torch.cuda.is_available():
        print("device_check: no CUDA device here; run with --cpu-only for the CPU part alone",
              file=sys.stderr)  # fmt: skip
        return 2
    table.set_mode("smoke" if args.smoke else "quick" if args.quick else "full")
    rows = run(args.cpu_only, ns)
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    print(f"# {table.machine()}; GPU: {gpu}; {time.strftime('%Y-%m-%dT%H:%M:%SZ', time.gmtime())}")
    print(render(rows))
    if args.out:
        doc = {"machine": table.machine(), "gpu": gpu, "mode": table.mode(),
               "date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
               "rows": [r.as_dict() for r in rows]}  # fmt: skip
        args.out.write_text(json.dumps(doc, indent=2))
    return 0 if all(r.ok for r in rows) else 1


if __name__ == "__main__":
    sys.exit(main())
