"""`python -m trafficdl_master`: the parameter server process (a pod, or the launcher's child).

Configured by flags or TRAFFICDL_* environment variables (flags win). The run
configuration is one JSON document {"train": {...}, "dist": {...}} (the
fields of TrainConfig and DistConfig) given as a file or inline; the world
size may be set on its own. Exit codes: 0 the run succeeded, 2 a user error
(bad config, unreadable dataset), 1 a crash, 130 stopped by SIGINT or SIGTERM
(after a last checkpoint: the run can be continued, see app.py).
"""

from __future__ import annotations

import argparse
import json
import logging
import signal
import sys
from pathlib import Path
from typing import Any

from trafficdl.config import DistConfig, TrainConfig, from_dict, replace
from trafficdl.contract import Env, env, env_option
from trafficdl.distributed.spec import check_dist_config
from trafficdl.errors import TrafficdlError
from trafficdl.rpc import credentials
from trafficdl.rpc.security import refuse_plaintext_token
from trafficdl_master.app import MasterOptions, serve


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trafficdl_master", description=__doc__.splitlines()[0])
    env_option(p, "--dataset", Env.DATASET, "dataset dir")
    env_option(p, "--out-dir", Env.OUT_DIR, "run directory to write", default="run")
    env_option(p, "--run-id", Env.RUN_ID, "run id")
    env_option(p, "--config", Env.RUN_CONFIG,
               'JSON file or inline JSON {"train": {...}, "dist": {...}}')  # fmt: skip
    env_option(p, "--world-size", Env.WORLD_SIZE, "number of workers N, overrides the config",
               kind=int, default="0")  # fmt: skip
    env_option(p, "--bind", Env.BIND,
               f"gRPC host:port, port 0 = any free; default: the pod IP (${Env.POD_IP}, which "
               "the operator sets) or 127.0.0.1, never every interface unless asked",
               default=f"{env(Env.POD_IP) or '127.0.0.1'}:50051")  # fmt: skip
    env_option(p, "--metrics-port", Env.METRICS_PORT, "Prometheus port, 0: off", kind=int,
               default="0")  # fmt: skip
    env_option(p, "--metrics-addr", Env.METRICS_ADDR,
               "interface of the metrics endpoint (default: the --bind host)")  # fmt: skip
    env_option(p, "--resume", Env.RESUME,
               "this start continues a stopped run: the time it was stopped is not training "
               "time, and T restarts when every worker is back", kind=bool)  # fmt: skip
    env_option(p, "--t1-seconds", Env.T1_SECONDS, "known T1 for the ideal T1/N figures",
               kind=float, default="0")  # fmt: skip
    env_option(p, "--linger", Env.LINGER, "seconds to keep answering Status after the run",
               kind=float, default="0")  # fmt: skip
    env_option(p, "--ready-file", Env.READY_FILE, "write the bound port here once listening")
    env_option(p, "--checkpoint-dir", Env.CHECKPOINT_DIR,
               "recovery checkpoints; a restarted master resumes from the newest good one "
               "(default OUT_DIR/checkpoints)")  # fmt: skip
    env_option(p, "--insecure", Env.INSECURE,
               "serve without a run token: anyone who reaches the port can commit (local "
               "debugging only)", kind=bool)  # fmt: skip
    env_option(p, "--no-data-plane", Env.NO_DATA_PLANE,
               "no same-node data plane: workers on this node exchange over gRPC too (the "
               "plane is also off with TLS)", kind=bool)  # fmt: skip
    credentials.add_arguments(p, server=True)
    return p.parse_args(argv)


def load_config(text: str) -> dict[str, Any]:
    """The run config from a JSON file path or inline JSON (empty: defaults)."""
    if not text:
        return {}
    src = text if text.lstrip().startswith("{") else None
    if src is None:
        path = Path(text)
        if not path.is_file():
            raise TrafficdlError(f"run config {text}: no such file")
        src = path.read_text()
    try:
        data = json.loads(src)
    except json.JSONDecodeError as exc:
        raise TrafficdlError(f"run config is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise TrafficdlError('run config must be an object {"train": {...}, "dist": {...}}')
    return data


def options(args: argparse.Namespace) -> MasterOptions:
    if not args.dataset:
        raise TrafficdlError(f"no dataset: pass --dataset or set {Env.DATASET}")
    cfg = load_config(args.config)
    train = from_dict(TrainConfig, cfg.get("train", {}))
    dist = from_dict(DistConfig, cfg.get("dist", {}))
    if args.world_size:
        dist = replace(dist, workers=args.world_size)
    if dist.workers < 1:
        raise TrafficdlError("the master needs a world size >= 1 (--world-size)")
    check_dist_config(dist)
    token = credentials.token(args)
    if token is None and not args.insecure:
        raise TrafficdlError(
            f"no run token: set {credentials.TOKEN_ENV} or --token-file "
            "(or --insecure to serve without authentication)"
        )
    if token is None:
        logging.getLogger("trafficdl.master").warning(
            "serving WITHOUT authentication (--insecure): anyone who reaches the port can commit"
        )
    tls = credentials.server_tls(args)
    # Before the dataset and model are loaded: a refused bind fails in milliseconds.
    refuse_plaintext_token(args.bind, token, tls, allow=args.allow_plaintext, serving=True)
    return MasterOptions(
        dataset=args.dataset,
        out_dir=args.out_dir,
        train=train,
        dist=dist,
        run_id=args.run_id,
        bind=args.bind,
        metrics_port=args.metrics_port,
        t1_seconds=args.t1_seconds or None,
        linger=args.linger,
        token=token,
        tls=tls,
        allow_plaintext=args.allow_plaintext,
        checkpoint_dir=args.checkpoint_dir,
        metrics_addr=args.metrics_addr,
        resume=args.resume,
        data_plane=not args.no_data_plane,
    )


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, _interrupt)  # a pod deleted, or the launcher stopping us
    try:
        opts = options(args)
        run = serve(opts, lambda port: _announce(port, args.ready_file))
    except TrafficdlError as exc:
        print(f"trafficdl-master: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("trafficdl-master: stopped; the run continues from its last checkpoint",
              file=sys.stderr)  # fmt: skip
        return 130
    f = run["figures"]
    print(
        f"master: run {run['run_id']} done: T {run['training_seconds']:.2f} s, "
        f"WTPE {run['wtpe_seconds']:.2f} s, accuracy {f['accuracy']:.3f}, "
        f"macro F {f['macro_f1']:.3f}",
        file=sys.stderr,
    )
    return 0


def _interrupt(signum: int, _frame: object) -> None:
    """SIGTERM as SIGINT: serve() then stops cleanly (last checkpoint, no half files)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # once is enough
    raise KeyboardInterrupt(signal.Signals(signum).name)


def _announce(port: int, path: str) -> None:
    """Write the bound port to `path` atomically (the launcher waits for it)."""
    if not path:
        return
    out = Path(path)
    tmp = out.with_name(out.name + ".tmp")
    tmp.write_text(str(port))
    tmp.replace(out)


if __name__ == "__main__":
    sys.exit(main())
