"""Prometheus metrics of one worker, as module constants (one registry per process).

Names follow `trafficdl_worker_<noun>_<unit>`. No rank label: each worker is
its own scrape target, so rank/pod come from the target's labels and the
series stay bounded. Cost and node-hours here are this node's own share
(ρ·T_worker), next to the master's whole-run figures.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram, start_http_server

TRAINING_SECONDS = Gauge(
    "trafficdl_worker_training_seconds", "Seconds since this worker started training"
)
EPOCH_DURATION = Histogram(
    "trafficdl_worker_epoch_duration_seconds",
    "Wallclock seconds of each local epoch (exchanges included)",
    buckets=(0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600, 1800, 3600),
)
NODE_HOURS = Gauge("trafficdl_worker_node_hours", "Node-hours of this worker so far")
COST = Gauge("trafficdl_worker_cost", "This worker node's cost so far (rho * T)", ["currency"])
EPOCH = Gauge("trafficdl_worker_epoch", "Fractional epoch reached")
SAMPLES = Counter("trafficdl_worker_samples_processed_total", "Training samples processed")
BATCHES = Counter("trafficdl_worker_batches_total", "Mini-batches trained")
LOSS = Gauge("trafficdl_worker_loss", "Mean training loss over the last commit window")
ACCURACY = Gauge("trafficdl_worker_accuracy_ratio", "Training accuracy over the last window")
COMMITS = Counter("trafficdl_worker_commits_total", "Commits sent to the master")
COMMIT_BYTES = Counter("trafficdl_worker_commit_bytes_total", "Tensor bytes sent in commits")
PULLS = Counter("trafficdl_worker_pulls_total", "Pulls of the centre (registration included)")
PULL_BYTES = Counter("trafficdl_worker_pull_bytes_total", "Tensor bytes received in pulls")
COMMIT_LATENCY = Histogram(
    "trafficdl_worker_commit_latency_seconds",
    "Round trip of one commit (includes the synchronous barrier's wait)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
EXCHANGE_SECONDS = Counter(
    "trafficdl_worker_exchange_seconds_total", "Seconds spent in pulls and commits"
)
STALENESS = Histogram(
    "trafficdl_worker_commit_staleness_updates",
    "Centre updates folded between this worker's pull and its commit",
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
)
BLOCKED_SECONDS = Counter(
    "trafficdl_worker_blocked_seconds_total",
    "Seconds the training loop waited on exchanges (all of them without overlap)",
)
OVERLAP_LAG = Histogram(
    "trafficdl_worker_overlap_lag_batches",
    "Mini-batches trained while an overlapped exchange was in flight",
    buckets=(0, 1, 2, 3, 4, 6, 8, 16, 32),
)

# Faults (docs/faults.md).
RETRIES = Counter(
    "trafficdl_worker_retries_total", "Calls to the master retried after a transient error"
)
REJOINS = Counter(
    "trafficdl_worker_rejoins_total", "Registrations again after the master forgot this rank"
)
HEARTBEAT_FAILURES = Counter(
    "trafficdl_worker_heartbeat_failures_total", "Heartbeats the master did not acknowledge"
)


def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose /metrics over HTTP on `port` (0 or negative: off)."""
    if port > 0:
        start_http_server(port, addr=addr)
