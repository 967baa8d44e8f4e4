"""`python -m trafficdl_worker`: one worker process (a pod, or a local child of the launcher).

Configured by flags or TRAFFICDL_* environment variables (flags win): the
master address, the rank (-1: the master assigns one), the run id, a local
path of the dataset when it differs from the master's, torch threads and a
metrics port. Everything about the run itself (model, algorithm, window,
seeds) comes from the master at registration. Exit codes: 0 done, 2 a user
error (bad flag, unreachable master, unreadable dataset), 3 the master refused
a call or went away mid-run (one line, no traceback), 1 a crash.
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time

import grpc
import torch

from trafficdl.config import TrainConfig
from trafficdl.contract import Env, env, env_option
from trafficdl.dataset import Dataset
from trafficdl.distributed.spec import RunSpec
from trafficdl.errors import TrafficdlError
from trafficdl.rpc import credentials
from trafficdl.training.runtime import make_optimizer
from trafficdl_worker import metrics
from trafficdl_worker.resilience import ResilientClient, Rewind
from trafficdl_worker.trainer import WorkerError, WorkerTrainer

log = logging.getLogger("trafficdl.worker")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="trafficdl_worker", description=__doc__.splitlines()[0])
    env_option(p, "--master", Env.MASTER_ADDR, "master host:port", default="127.0.0.1:50051")
    env_option(p, "--rank", Env.RANK, "this worker's rank, -1 to be assigned one", kind=int,
               default="-1")  # fmt: skip
    env_option(p, "--world-size", Env.WORLD_SIZE,
               "expected N, checked against the master's (0: any)", kind=int,
               default="0")  # fmt: skip
    env_option(p, "--run-id", Env.RUN_ID, "run id")
    env_option(p, "--dataset", Env.DATASET, "local dataset path (default: the master's)")
    env_option(p, "--threads", Env.THREADS, "torch threads (0: the run's threads_per_worker)",
               kind=int, default="0")  # fmt: skip
    env_option(p, "--metrics-port", Env.METRICS_PORT, "Prometheus port, 0: off", kind=int,
               default="0")  # fmt: skip
    env_option(p, "--metrics-addr", Env.METRICS_ADDR,
               f"interface of the metrics endpoint (default: the pod IP ${Env.POD_IP}, else "
               "127.0.0.1)", default=env(Env.POD_IP) or "127.0.0.1")  # fmt: skip
    env_option(p, "--linger", Env.LINGER,
               "seconds to keep the metrics endpoint up after the run, for a last scrape",
               kind=float, default="0")  # fmt: skip
    env_option(p, "--connect-timeout", Env.CONNECT_TIMEOUT, "seconds to wait for the master",
               kind=float, default="120")  # fmt: skip
    credentials.add_arguments(p, server=False)
    return p.parse_args(argv)


def warm_up() -> None:
    """Pay torch's lazy first-use imports (~0.8 s for torch.optim) before registering,
    so the run's T measures training, not Python start-up."""
    make_optimizer(TrainConfig(), [torch.zeros(1, requires_grad=True)])


def run(args: argparse.Namespace) -> int:
    metrics.serve(args.metrics_port, args.metrics_addr)
    warm_up()
    client = ResilientClient(
        args.master,
        args.run_id,
        token=credentials.token(args),
        tls=credentials.client_tls(args),
        worker_id=socket.gethostname(),
        allow_plaintext=args.allow_plaintext,
    )
    try:
        client.wait_ready(args.connect_timeout)
        reg = client.register(args.rank)
        spec = RunSpec.from_json(reg.run_config_json)
        if args.world_size and args.world_size != reg.world_size:
            raise TrafficdlError(f"world size {args.world_size} != the master's {reg.world_size}")
        client.run_id = spec.run_id
        client.wire_dtype = spec.dist.wire_dtype
        client.chunk_bytes = spec.dist.chunk_bytes
        metrics.PULLS.inc()
        metrics.PULL_BYTES.inc(reg.nbytes)
        threads = args.threads or spec.dist.threads_per_worker or spec.train.threads
        if threads > 0:
            torch.set_num_threads(threads)
        dataset = Dataset.open(args.dataset or spec.dataset)
        client.start_heartbeats(spec.dist.heartbeat_seconds)
        if reg.resume_batches:
            log.warning("rank %d resumes at batch %d", reg.rank, reg.resume_batches)
        while True:
            try:
                result = WorkerTrainer(client, reg, spec, dataset).train()
                break
            except Rewind as rewind:  # the master lost acknowledged commits: redo them
                log.warning("%s: restarting local training from there", rewind)
                reg = rewind.registration
        client.leave(reg.rank, "finished")
        print(
            f"worker {result.rank}: {result.batches} batches, {result.commits} commits, "
            f"{result.seconds:.2f} s ({result.exchange_seconds:.2f} s exchanging, "
            f"{result.blocked_seconds:.2f} s of it blocking training)",
            file=sys.stderr,
        )
        if args.metrics_port > 0 and args.linger > 0:
            time.sleep(args.linger)  # a last scrape sees the final values
        return 0
    finally:
        client.stop_heartbeats()
        client.close()


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    args = parse_args(argv)
    try:
        return run(args)
    except (TrafficdlError, WorkerError) as exc:
        print(f"trafficdl-worker: error: {exc}", file=sys.stderr)
        return 2
    except grpc.RpcError as exc:  # the master refused a call or went away
        code = exc.code().name if hasattr(exc, "code") else "UNKNOWN"
        details = exc.details() if hasattr(exc, "details") else str(exc)
        if code == "FAILED_PRECONDITION" and "has already finished" in (details or ""):
            # Restarted after its final commit was acknowledged: nothing is left to do.
            print(f"trafficdl-worker: {details}; nothing left to do", file=sys.stderr)
            return 0
        print(f"trafficdl-worker: error: master {args.master}: {code}: {details}", file=sys.stderr)
        return 3


if __name__ == "__main__":
    sys.exit(main())
