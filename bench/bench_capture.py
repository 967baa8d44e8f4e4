"""Capture -> features throughput, side by side with tshark and NFStream.

Packets per second from a pcap to finished features (ours: biflows with both
inputs; tshark: `-q -z conv,tcp -z conv,udp`; NFStream 6.6: flows with
dissection and statistics off), on one large synthetic capture and on a set of
small ones, single process each, medians of repeated runs in the same
process. The same files feed all three tools. One more row sets the GTP-U
tunnelled twin of the large capture against it (decapsulation's cost), and
one the compiled walk (trafficdl.capture.fastwalk, the default) against the
pure-Python walk.py on the large capture.
"""

from __future__ import annotations

import os
import random
import resource
import shutil
import statistics
import subprocess
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench.table import Row, missing_peer, pick
from trafficdl.capture import ExtractConfig, extract_file
from trafficdl.capture.fastwalk import CORE_ENV
from trafficdl.capture.pktbuild import gtp_u_capture, write_pcap
from trafficdl.synth import FlowWriter, app_profiles, synthesize

CLIENTS = [bytes((10, 9, i, 2)) for i in range(5)]


def big_capture(path: Path, packets: int, seed: int = 0, gtp: Path | None = None) -> int:
    """One capture of about `packets` packets mixing five apps' flows (and, at `gtp`,
    the same traffic GTP-U tunnelled as on a mobile core's user-plane interface)."""
    writers = [
        FlowWriter(p, random.Random(f"bench/{seed}/{i}"), CLIENTS[i])
        for i, p in enumerate(app_profiles(5))
    ]
    frames: list[tuple[float, bytes]] = []
    while len(frames) < packets:
        for w in writers:
            for _ in range(50):
                w.add_flow()
        frames = sorted((f for w in writers for f in w.frames()), key=lambda x: x[0])
    with open(path, "wb") as f:
        write_pcap(f, frames)
    if gtp is not None:
        with open(gtp, "wb") as f:
            write_pcap(f, gtp_u_capture(frames, set(CLIENTS)))
    return len(frames)


def _cpu() -> float:
    """CPU seconds of this process and its reaped children (tshark, NFStream meters)."""
    me, kids = (
        resource.getrusage(resource.RUSAGE_SELF),
        resource.getrusage(resource.RUSAGE_CHILDREN),
    )
    return me.ru_utime + me.ru_stime + kids.ru_utime + kids.ru_stime


def _median_rates(fn: Callable[[], object], packets: int, repeats: int) -> tuple[float, float]:
    """(packets per wall second, packets per CPU second), medians over `repeats` runs."""
    wall, cpu = [], []
    for _ in range(repeats):
        t0, c0 = time.perf_counter(), _cpu()
        fn()
        wall.append(time.perf_counter() - t0)
        cpu.append(max(_cpu() - c0, 1e-9))
    return packets / statistics.median(wall), packets / statistics.median(cpu)


def ours(files: list[Path]) -> None:
    cfg = ExtractConfig()
    for f in files:
        extract_file(f, cfg)


def tshark(files: list[Path]) -> None:
    for f in files:
        cmd = ["tshark", "-n", "-q", "-r", str(f), "-z", "conv,tcp", "-z", "conv,udp"]
        subprocess.run(cmd, check=True, capture_output=True)


def nfstream(files: list[Path]) -> None:
    from nfstream import NFStreamer

    for f in files:
        for _ in NFStreamer(source=str(f), n_dissections=0, statistical_analysis=False):
            pass


def run(quick: bool) -> list[Row]:
    repeats = pick(full=3, quick=1)
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-capture-") as tmp:
        root = Path(tmp)
        big, gtp = root / "big.pcap", root / "big-gtp.pcap"
        n_big = big_capture(big, pick(full=200_000, quick=50_000, smoke=5_000), gtp=gtp)
        flows = pick(full=40, quick=40, smoke=5)
        small = synthesize(root / "small", apps=5, flows_per_app=flows, captures_per_app=4, seed=1)
        n_small = sum(extract_file(f, ExtractConfig()).packets_read for f in small)
        peers: dict[str, Callable[[list[Path]], None]] = {}
        if shutil.which("tshark"):
            peers["tshark conv"] = tshark
        else:  # named, never dropped silently: the run fails (bench/table.py)
            rows.append(missing_peer("capture", "tshark conv", "tshark not installed "
                                     "(make system-deps installs it)"))  # fmt: skip
        try:
            import nfstream as _  # noqa: F401

            peers["NFStream"] = nfstream
        except ImportError as exc:
            rows.append(missing_peer("capture", "NFStream", f"nfstream not importable: {exc}"))
        for label, files, n in (
            (f"{n_big // 1000}k-packet capture", [big], n_big),
            (f"{len(small)} small captures ({n_small // len(small)} pkts)", small, n_small),
        ):
            mine = _median_rates(lambda files=files: ours(files), n, repeats)
            peer_rates = {
                peer: _median_rates(lambda fn=fn, files=files: fn(files), n, repeats)
                for peer, fn in peers.items()
            }
            for i, kind in enumerate(("wall", "per CPU-second")):
                figure = f"pcap->features, {label}, {kind}"
                if not peers:
                    rows.append(Row("capture", figure, mine[i], "packets/s"))
                for peer, rates in peer_rates.items():
                    note = f"median of {repeats}"
                    rows.append(Row("capture", figure, mine[i], "packets/s", peer, rates[i], note))
        rows.append(_tunnel_row(big, gtp, n_big, repeats))
        rows.append(_core_row(big, n_big, repeats))
    return rows


def _core_row(path: Path, n: int, repeats: int) -> Row:
    """The compiled walk (the default) against walk.py alone, interleaved in one run,
    per CPU-second (target: >= 1M packets/s per CPU-second)."""
    compiled, python = [], []
    rounds = max(repeats, 3)
    before = os.environ.get(CORE_ENV)
    try:
        for _ in range(rounds):
            for mode, into in (("python", python), ("auto", compiled)):
                os.environ[CORE_ENV] = mode
                into.append(_median_rates(lambda: ours([path]), n, 1)[1])
    finally:
        os.environ.pop(CORE_ENV, None)
        if before is not None:
            os.environ[CORE_ENV] = before
    return Row(
        "capture", f"pcap->features, {n // 1000}k packets, compiled walk, per CPU-second",
        statistics.median(compiled), "packets/s", "walk.py (pure Python)",
        statistics.median(python), f"target >= 1M/s; medians of {rounds} interleaved",
    )  # fmt: skip


def _tunnel_row(plain: Path, gtp: Path, n: int, repeats: int) -> Row:
    """Decapsulation's cost: the GTP-U twin against the same traffic untunnelled,
    interleaved in one run (target >= 0.8x), per CPU-second."""
    tunnelled, untunnelled = [], []
    rounds = max(repeats, 5)
    for _ in range(rounds):  # alternate, so drifting load hits both alike
        untunnelled.append(_median_rates(lambda: ours([plain]), n, 1)[1])
        tunnelled.append(_median_rates(lambda: ours([gtp]), n, 1)[1])
    return Row(
        "capture", f"pcap->features, {n // 1000}k packets GTP-U tunnelled, per CPU-second",
        statistics.median(tunnelled), "packets/s", "same untunnelled",
        statistics.median(untunnelled), f"target >= 0.80x, medians of {rounds} interleaved",
    )  # fmt: skip
