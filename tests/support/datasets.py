"""The one maker of small learnable datasets for tests and benchmarks (no capture needed).

Each class gets its own packet profile (mean size, TCP window, inter-arrival
time) and, optionally, its own payload bytes, with noise on top; the knobs set
how far apart the classes are, so a test picks data an LSTM learns in one epoch
or only in a few but not at initialisation. Everything derives from `seed`,
and the order of the random draws is fixed (payload signatures, packet counts,
sizes, directions, window noise, inter-arrival times, random payload, label
shuffle): a given call writes the same arrays on every run, so a test's data
changes only when its own arguments do.

Tests import it as `support.datasets` (tests/ is on pytest's path); benchmarks,
run from the repository root, as `tests.support.datasets`. It imports nothing
from the test tree, so both names load the same code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import numpy as np

from trafficdl.dataset import OBJECT_DTYPE, write_dataset

Payload = Literal["random", "prototype", "header"]


def make_dataset(
    out: Path,
    *,
    classes: int = 3,
    per_class: int = 200,
    seed: int = 0,
    payload_bytes: int = 64,
    packets: int = 20,
    payload: Payload = "random",
    payload_noise: float = 40.0,
    size_base: float = 200.0,
    size_step: float = 300.0,
    size_noise: float = 150.0,
    window_base: float = 1000.0,
    window_step: float = 500.0,
    window_noise: float = 300.0,
    window_rotates: bool = True,
    iat_step: float = 1.0,
    packet_counts: tuple[int, int] | None = None,
    cycle_labels: bool = False,
    random_labels: bool = False,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a dataset of `classes * per_class` objects to `out` and return its path.

    payload: "random" bytes carry no class signal; "prototype" is a per-class byte
    vector plus N(0, payload_noise), clipped; "header" is random bytes with a
    per-class 32-byte signature at offset 8 (an app's own protocol header).
    Packet features per class c: size ~ N(size_base + size_step·c, size_noise);
    direction ±1; window = window_base + window_step·k (+ N(0, window_noise)), where
    k is c, or (c + packet index) mod classes when `window_rotates`; inter-arrival
    time ~ Exp(0.01·(1 + iat_step·c)). `packet_counts=(lo, hi)` draws each object's
    packet count from [lo, hi) and zeroes the packets past it (at most `packets`
    are kept). Labels come in blocks (0…0 1…1 …) or, with `cycle_labels`, as
    0 1 2 … 0 1 2; `random_labels` shuffles them after the features are drawn,
    leaving nothing to learn but memorisation.
    """
    rng = np.random.default_rng(seed)
    n = classes * per_class
    if cycle_labels:
        labels = (np.arange(n) % classes).astype(np.int32)
    else:
        labels = np.repeat(np.arange(classes), per_class).astype(np.int32)
    body: np.ndarray | None = None
    if payload == "prototype":
        protos = rng.integers(0, 256, size=(classes, payload_bytes))
        noisy = protos[labels] + rng.normal(0, payload_noise, size=(n, payload_bytes))
        body = noisy.clip(0, 255).astype(np.uint8)
    elif payload == "header":
        body = rng.integers(0, 256, size=(n, payload_bytes), dtype=np.uint8)
        signatures = rng.integers(0, 256, size=(classes, 32), dtype=np.uint8)
        body[:, 8:40] = signatures[labels]
    counts = np.full(n, packets)
    if packet_counts is not None:
        counts = rng.integers(packet_counts[0], packet_counts[1], size=n)
    per = labels[:, None]
    sizes = size_base + size_step * per + rng.normal(0, size_noise, size=(n, packets))
    direction = rng.choice([-1.0, 1.0], size=(n, packets))
    step = (per + np.arange(packets)) % classes if window_rotates else per
    window = window_base + window_step * step
    if window_noise:
        window = window + rng.normal(0, window_noise, size=(n, packets))
    iat = rng.exponential(0.01 * (1 + iat_step * per), size=(n, packets))
    pk = np.stack([sizes, direction, window, iat], axis=-1).astype(np.float32)
    pk[np.arange(packets)[None, :] >= counts[:, None]] = 0.0
    if body is None:
        body = rng.integers(0, 256, size=(n, payload_bytes)).astype(np.uint8)
    if random_labels:
        labels = rng.permutation(labels)
    objects = np.zeros(n, dtype=OBJECT_DTYPE)
    objects["n_packets"], objects["proto"] = counts, 6
    return write_dataset(
        out,
        payload=body,
        packets=pk,
        labels=labels,
        objects=objects,
        label_names=[f"app{i}" for i in range(classes)],
        meta={"captures": []} if meta is None else meta,
    )
