"""Prometheus metrics of the master, as module constants (one registry per process).

Names follow `trafficdl_master_<noun>_<unit>`; the only labels are bounded
(model, algorithm, currency, on the info/cost series). Rank, pod or run ids are
never labels: they come from the scrape target. Values that are a function of
the run's state (training seconds, cost, progress) are computed at scrape time
through `bind()`, so they are exact whenever Prometheus looks.
"""

from __future__ import annotations

from collections.abc import Callable

from prometheus_client import Counter, Gauge, Histogram, start_http_server

from trafficdl_master.state import Progress

RUN_INFO = Gauge(
    "trafficdl_master_run_info",
    "Constant 1, labelled with the run's model and algorithm",
    ["model", "algorithm"],
)
TRAINING_SECONDS = Gauge("trafficdl_master_training_seconds", "Training completion time T so far")
EPOCH_DURATION = Gauge(
    "trafficdl_master_epoch_duration_seconds", "Wallclock time per epoch (WTPE) so far"
)
NODE_HOURS = Gauge("trafficdl_master_node_hours", "Node-hours billed so far: (N + 1) * T")
COST = Gauge(
    "trafficdl_master_cost",
    "Cost so far, C = (rho*N + rho_M)*T, in the labelled currency",
    ["currency"],
)
PROGRESS = Gauge("trafficdl_master_progress_ratio", "Run progress, 0..1")
EPOCH = Gauge("trafficdl_master_epoch", "Slowest worker's fractional epoch")
WORKERS_CONNECTED = Gauge("trafficdl_master_workers_connected", "Workers registered and active")
WORKERS_FINISHED = Gauge("trafficdl_master_workers_finished", "Workers that made a final commit")
UPDATE_COUNTER = Gauge("trafficdl_master_update_counter", "Centre updates folded so far")
SAMPLES = Gauge("trafficdl_master_samples_processed", "Training samples processed by all workers")
LOSS = Gauge("trafficdl_master_loss", "Mean of the workers' last reported training loss")
ACCURACY = Gauge("trafficdl_master_accuracy_ratio", "Mean of the workers' last training accuracy")
TEST_ACCURACY = Gauge(
    "trafficdl_master_test_accuracy_ratio", "Accuracy of the centre model on the test split"
)
MACRO_F1 = Gauge(
    "trafficdl_master_macro_f1_ratio", "Macro F-measure of the centre model on the test split"
)
MACRO_RECALL = Gauge(
    "trafficdl_master_macro_recall_ratio", "Macro recall of the centre model on the test split"
)
COMMITS = Counter("trafficdl_master_commits_total", "Commits folded into the centre")
COMMITS_REJECTED = Counter("trafficdl_master_commits_rejected_total", "Commits refused")
COMMIT_BYTES = Counter("trafficdl_master_commit_bytes_total", "Tensor bytes received in commits")
PULLS = Counter("trafficdl_master_pulls_total", "Pulls of the centre served")
PULL_BYTES = Counter("trafficdl_master_pull_bytes_total", "Tensor bytes sent in pulls/registers")
COMMIT_LATENCY = Histogram(
    "trafficdl_master_commit_latency_seconds",
    "From a commit's first byte to its fold (includes the synchronous barrier)",
    buckets=(0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
STALENESS = Histogram(
    "trafficdl_master_commit_staleness_updates",
    "Centre updates folded between a commit's pull and its fold",
    buckets=(0, 1, 2, 3, 4, 6, 8, 12, 16, 32, 64),
)


# Faults and security (docs/faults.md). `reason` labels are bounded sets.
AUTH_REJECTED = Counter(
    "trafficdl_master_auth_rejected_total",
    "Calls refused for a missing or wrong bearer token (reason: missing, wrong)",
    ["reason"],
)
COMMITS_INVALID = Counter(
    "trafficdl_master_commits_invalid_total",
    "Commits refused by validation (reason: version, dtype, shape, stream, nonfinite)",
    ["reason"],
)
WORKERS_LOST = Counter(
    "trafficdl_master_workers_lost_total",
    "Times a rank was marked lost (no heartbeat within lost_after, or left before its end)",
)
WORKER_REJOINS = Counter(
    "trafficdl_master_worker_rejoins_total", "Registrations of a rank that had registered before"
)
SYNC_ROUNDS_INCOMPLETE = Counter(
    "trafficdl_master_sync_rounds_incomplete_total",
    "Synchronous rounds folded without a missing worker after sync_timeout",
)
CHECKPOINTS = Counter("trafficdl_master_checkpoints_total", "Recovery checkpoints saved")
CHECKPOINT_SECONDS = Histogram(
    "trafficdl_master_checkpoint_save_seconds",
    "Time to save one recovery checkpoint (fsyncs included)",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)
RESTARTS = Gauge("trafficdl_master_restarts", "Times this run's master resumed from a checkpoint")
RESCALES = Counter(
    "trafficdl_master_rescales",
    "World-size changes of this run (elastic scaling: resumed with another N)",
)


def bind(
    *,
    model: str,
    algorithm: str,
    currency: str,
    training_seconds: Callable[[], float],
    wtpe: Callable[[], float],
    node_hours: Callable[[], float],
    cost: Callable[[], float],
    progress: Callable[[], Progress],
) -> None:
    """Tie the scrape-time gauges to the run's live state."""
    RUN_INFO.labels(model, algorithm).set(1)
    TRAINING_SECONDS.set_function(training_seconds)
    EPOCH_DURATION.set_function(wtpe)
    NODE_HOURS.set_function(node_hours)
    COST.labels(currency).set_function(cost)
    PROGRESS.set_function(lambda: progress().ratio)
    EPOCH.set_function(lambda: progress().epoch)
    WORKERS_CONNECTED.set_function(lambda: progress().connected)
    WORKERS_FINISHED.set_function(lambda: progress().finished)
    UPDATE_COUNTER.set_function(lambda: progress().update_counter)
    SAMPLES.set_function(lambda: progress().samples_done)
    LOSS.set_function(lambda: progress().loss)
    ACCURACY.set_function(lambda: progress().accuracy)

def serve(port: int, addr: str = "0.0.0.0") -> None:
    """Expose /metrics over HTTP on `port` (0 or negative: off)."""
    if port > 0:
        start_http_server(port, addr=addr)
