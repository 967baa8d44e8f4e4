"""Named presets: (TrainConfig, DistConfig, N) -> adjusted configs, applied per sweep cell.

"paper" reproduces the paper's setting: dist-keras' AEASGD defaults (ρ = 5,
η = 0.1, so each commit moves the centre half-way to the worker, α = 0.5),
whatever N is. The centre then receives a total pull β = N·α per round of
commits: 8 at N = 16, far past the stable range (β < 2), and it oscillates
between partial models — the macro-F loss the paper measured at N = 16.

"robust" fixes the causes measured on the synthetic tasks (docs/study.md):
1. stability: the total elastic pull β = N·α is held below 2, so α = β/N
   (β = 0.9 up to N = 4 and for synchronous EASGD, whose bound is N·ρ·η ≤ 1;
   β = 1.8 for N = 5..8; above, item 3); with α = 0.5 and N = 16 the centre is pulled eight
   times its distance per round of commits and oscillates (the paper's
   collapse: F fell to chance at N = 16 here, too). Measured (LSTM, window 2,
   plateau stop, fraction of centralized F): N = 8 β 1.8 1.006x/1.006x against
   β 0.9 0.955x/0.953x; N = 16 0.84x/0.89x against 0.79x/0.80x; but N = 4
   β 1.8 0.997/1.027/0.965 and 0.968/1.027/0.960 against β 0.9
   0.996/0.975/0.991 and 1.003/1.010/0.981: few replicas on many rows drift
   little and need less pull, many replicas on few rows need more;
2. local progress: each worker's mini-batch is B/N (at least 1), so a worker
   takes as many optimizer steps per epoch as the centralized trainer, and the
   average of the N replicas moves like one model trained on batches of ~B;
   with batch B each worker makes 1/N of the steps and the centre ends under-
   trained. Workers commit every ROBUST_WINDOW of those mini-batches (unless
   the cell asks for fewer): 2, where 8 was measured worse (LSTM, quick
   convergence set, plateau stop, worst seed of 3 at N = 4: 0.975x of
   centralized against 0.894x; N = 16, 2 seeds: 0.79x/0.80x against
   0.61x/0.67x; docs/study.md). Looser coupling lets the replicas drift apart
   on their 1/N of the rows and the centre, their elastic average, lags.
The price is time: small batches use a CPU less efficiently (the measured WTPE
grows), and exchanges are more frequent.

3. many workers (N > ROBUST_LARGE_N = 8, asynchronous rules): α stays at
   ROBUST_ALPHA_LARGE = 0.225 per commit (β = 0.225·N: the commits are applied
   one at a time, each an exponential-average step of rate α < 1, so the β < 2
   bound of the synchronous fold does not apply), workers commit after every
   mini-batch, and the plateau patience is doubled (the centre's validation
   loss is noisy and still falling when 5 epochs without a new best stop it;
   with the CLI's patience of 20 since 2026-12-02, 40 at N = 16).
   Measured at N = 16 (LSTM, quick convergence set, budget 40, seeds 0/1/2,
   docs/study.md): 1.015x / 1.001x of centralized (seed 2: see docs), against
   0.837x / 0.887x with β 1.8 and window 2; α 0.225 with window 2 gave
   0.985x / 0.949x, with window 1 and patience 5 0.978x / 0.981x.
A preset only changes config fields (window, elastic rate, batch size, patience). The
cell's requested window label is kept in the record; the window actually used
is recorded beside it (`window_batches`, `period_epochs`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from trafficdl.config import DistConfig, TrainConfig
from trafficdl.errors import TrafficdlError

PAPER_RHO = 5.0  # dist-keras AEASGD default
PAPER_ELASTIC_LR = 0.1
ROBUST_BETA = 1.8  # N·α for the asynchronous rules at N > ROBUST_SMALL_N (bound: < 2)
ROBUST_BETA_SMALL = 0.9  # N·α at N <= ROBUST_SMALL_N, and for synchronous EASGD (N·ρ·η ≤ 1)
ROBUST_SMALL_N = 4
ROBUST_WINDOW = 2  # mini-batches between commits, at most (measured: see above)
ROBUST_LARGE_N = 8  # above: asynchronous rules keep α, commit every mini-batch
ROBUST_ALPHA_LARGE = 0.225  # α per commit at N > ROBUST_LARGE_N (= 1.8/8, = 0.9/4)
ROBUST_PATIENCE_LARGE = 2  # plateau patience multiplier at N > ROBUST_LARGE_N


class PresetError(TrafficdlError):
    """An unknown preset name."""


Adjust = Callable[[TrainConfig, DistConfig, int], tuple[TrainConfig, DistConfig]]


@dataclass(frozen=True)
class Preset:
    name: str
    summary: str  # one line, shown by `trafficdl sweep --help` and the report
    adjust: Adjust


def _paper(train: TrainConfig, dist: DistConfig, n: int) -> tuple[TrainConfig, DistConfig]:
    return train, replace(dist, rho=PAPER_RHO, elastic_lr=PAPER_ELASTIC_LR)


def _robust(train: TrainConfig, dist: DistConfig, n: int) -> tuple[TrainConfig, DistConfig]:
    workers = max(n, 1)
    small = dist.synchronous or workers <= ROBUST_SMALL_N
    beta = ROBUST_BETA_SMALL if small else ROBUST_BETA
    alpha = min(PAPER_RHO * PAPER_ELASTIC_LR, beta / workers)
    limit, patience = ROBUST_WINDOW, train.patience
    if not dist.synchronous and workers > ROBUST_LARGE_N:
        alpha, limit = ROBUST_ALPHA_LARGE, 1
        patience *= ROBUST_PATIENCE_LARGE  # 0 (no plateau stop, e.g. sweeps) stays 0
    window = dist.window if 0 < dist.window <= limit else limit
    batch = max(1, round(train.batch_size / workers))
    # ρ stays dist-keras' 5 so the force term reads the same; η carries the scaling.
    return (
        replace(train, batch_size=batch, patience=patience),
        replace(dist, rho=PAPER_RHO, elastic_lr=alpha / PAPER_RHO, window=window),
    )


def _asis(train: TrainConfig, dist: DistConfig, n: int) -> tuple[TrainConfig, DistConfig]:
    return train, dist


PRESETS: dict[str, Preset] = {
    "paper": Preset(
        "paper", "dist-keras AEASGD defaults (α = 0.5 for every N), the paper's setting", _paper
    ),
    "robust": Preset(
        "robust",
        f"α = {ROBUST_BETA_SMALL}/N up to N = {ROBUST_SMALL_N} (and easgd), {ROBUST_BETA}/N "
        f"up to N = {ROBUST_LARGE_N}, {ROBUST_ALPHA_LARGE} above; mini-batch B/N, a commit "
        f"every {ROBUST_WINDOW} mini-batches (every one above N = {ROBUST_LARGE_N}, with "
        f"{ROBUST_PATIENCE_LARGE}x the plateau patience)",
        _robust,
    ),
    "none": Preset("none", "the configs exactly as given on the command line", _asis),
}


def get(name: str) -> Preset:
    if name not in PRESETS:
        raise PresetError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    return PRESETS[name]


def apply(
    name: str, train: TrainConfig, dist: DistConfig, n: int
) -> tuple[TrainConfig, DistConfig]:
    """The configs of one cell with preset `name` applied for N = n workers."""
    return get(name).adjust(train, dist, n)
