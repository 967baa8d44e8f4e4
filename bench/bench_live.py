"""Live classification (`trafficdl classify --live`): packets/s sustained and decision latency.

1. Engine only (no socket): frames of one synthetic capture through the live
   flow table and the LSTM, in process, vs offline extraction of the same file
   (the walk alone): what early decisions and batching cost per packet.
2. End to end on a veth pair between two network namespaces (root only): the
   capture offered at twice the engine's rate to `classify --live`; packets/s
   sustained = frames read / span of their reception times, next to a bare
   reader of the same socket on the same replay (the veth pair's delivery
   ceiling on this machine); frames lost and socket drops in the note.
3. Decision latency per flow (same setup, replay paced at ~5k packets/s): from
   the packet that completed a biflow's 20 packets to its printed decision,
   median and 99th percentile.
"""

from __future__ import annotations

import json
import os
import re
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.bench_capture import big_capture
from bench.table import Row, missing_peer, pick
from trafficdl.capture import ExtractConfig, extract_file
from trafficdl.capture.reader import open_records
from trafficdl.live import netns
from trafficdl.live.engine import LiveClassifier, LiveSettings
from trafficdl.training.checkpoint import load_checkpoint


def _checkpoint(root: Path) -> Path:
    import trafficdl

    trafficdl.synthesize(root / "cap", apps=3, flows_per_app=20, captures_per_app=1, seed=2)
    ds = trafficdl.extract(root / "cap", root / "ds")
    return trafficdl.train(ds, root / "run", model="lstm", epochs=1).checkpoint


def _engine_rate(ckpt: Path, capture: Path, repeats: int) -> tuple[float, float, int]:
    """(live engine packets/s, offline extraction packets/s, flows decided), medians."""
    with open(capture, "rb") as f:
        frames = list(open_records(f, str(capture)))
    live, offline, flows = [], [], 0
    for _ in range(repeats):
        clf = LiveClassifier(load_checkpoint(ckpt), LiveSettings(decide_every=0.01))
        t0 = time.perf_counter()
        for i in range(0, len(frames), 256):
            batch = frames[i : i + 256]
            clf.process(batch, now=batch[-1][0])
        flows = clf.decided + len(clf.flush())
        live.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        extract_file(capture, ExtractConfig())
        offline.append(time.perf_counter() - t0)
    n = len(frames)
    return n / statistics.median(live), n / statistics.median(offline), flows


def _live_run(ckpt: Path, capture: Path, speed: float = 0.0,
              rate: float = 0.0) -> tuple[dict, list[dict]]:  # fmt: skip
    """Replay `capture` through a veth pair into `classify --live`; (totals, decisions)."""
    exe = str(Path(sys.executable).with_name("trafficdl"))
    lines = capture.with_suffix(".jsonl")
    with netns.veth_pair(f"tdlb{os.getpid() % 10000}") as pair, open(lines, "w") as sink:
        cmd = pair.exec_b(exe, "classify", str(ckpt), "--live", pair.if_b, "--json",
                          "--idle-timeout", "1")  # fmt: skip
        # decisions to a file: an undrained pipe would block the classifier, not the kernel
        proc = subprocess.Popen(cmd, stdout=sink, stderr=subprocess.PIPE, text=True)
        try:
            assert "listening" in proc.stderr.readline()
            pace = ["--rate", str(rate)] if rate else ["--speed", str(speed)]
            subprocess.run(pair.exec_a(sys.executable, "-m", "trafficdl.live.replay", pair.if_a,
                                       str(capture), *pace),
                           check=True, capture_output=True, timeout=600)  # fmt: skip
            time.sleep(2.0)
            proc.send_signal(signal.SIGTERM)
            _, err = proc.communicate(timeout=600)
        finally:
            if proc.poll() is None:
                proc.kill()
    totals = json.loads(re.search(r"totals (\{.*\})", err).group(1))
    return totals, [json.loads(line) for line in lines.read_text().splitlines()]


def run(quick: bool) -> list[Row]:
    rows: list[Row] = []
    with tempfile.TemporaryDirectory(prefix="bench-live-") as tmp:
        root = Path(tmp)
        os.chmod(root, 0o755)
        ckpt = _checkpoint(root)
        capture = root / "big.pcap"
        n = big_capture(capture, pick(full=200_000, quick=20_000, smoke=5_000))
        live, offline, flows = _engine_rate(ckpt, capture, pick(full=3, quick=1))
        rows.append(Row("live", f"engine (LSTM, {n // 1000}k-packet capture, {flows} flows)",
                        live, "packets/s", "offline extraction", offline,
                        "in process, no socket"))  # fmt: skip
        if not netns.available():
            rows.append(missing_peer("live", "veth end to end", "needs root and iproute2"))
            return rows
        # Offered at 2x what the engine alone does: the socket buffer (64 MiB) holds the
        # excess, so the classifier reads with a backlog from start to end. 20k packets in
        # both modes: a larger replay would overflow the buffer and measure drops instead.
        wire = root / "wire.pcap"
        n = big_capture(wire, pick(full=20_000, quick=20_000, smoke=5_000), seed=3)
        totals, _ = _live_run(ckpt, wire, rate=2 * live)
        span = max(totals["frames_seconds"], 1e-9)
        bare = _bare_run(wire, 2 * live, n)
        rows.append(Row("live", "veth end to end, sustained (replay offered at 2x engine)",
                        totals["packets"] / span, "packets/s", "bare socket reader", bare,
                        f"{totals['packets']}/{n} frames read, socket drops "
                        f"{totals['kernel_drops']}, {totals['flows']} flows"))  # fmt: skip
        paced = root / "paced.pcap"
        k = big_capture(paced, pick(full=20_000, quick=5_000, smoke=2_000), seed=1)
        with open(paced, "rb") as f:
            recs = list(open_records(f, str(paced)))
        speed = (recs[-1][0] - recs[0][0]) * 5_000 / k  # ~5k packets/s
        _, decisions = _live_run(ckpt, paced, speed=speed)
        lat = sorted(d["latency_ms"] for d in decisions if d["reason"] == "packets")
        if lat:
            p99 = lat[min(len(lat) - 1, int(0.99 * len(lat)))]
            rows.append(Row("live", f"decision latency at 20 packets, median ({len(lat)} flows)",
                            statistics.median(lat), "ms", note="replay ~5k packets/s"))  # fmt: skip
            rows.append(Row("live", "decision latency at 20 packets, p99", p99, "ms",
                            note="replay ~5k packets/s"))  # fmt: skip
    return rows


def _bare_read(iface: str, seconds: float) -> None:
    """The peer of the end-to-end figure: the same socket read with no classification."""
    from trafficdl.live.source import PacketSource

    stamps: list[float] = []
    with PacketSource(iface) as src:
        print("listening", file=sys.stderr, flush=True)
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            stamps += [r[0] for r in src.read(0.01)]
    print(json.dumps({"packets": len(stamps), "span": stamps[-1] - stamps[0] if stamps else 0}))


def _bare_run(capture: Path, rate: float, frames: int) -> float:
    """Frames/s a bare reader gets from the replay on a fresh veth pair (the kernel's ceiling)."""
    with netns.veth_pair(f"tdlr{os.getpid() % 10000}") as pair:
        cmd = pair.exec_b(sys.executable, "-m", "bench.bench_live", "--bare", pair.if_b, "6")
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                cwd=Path(__file__).parents[1])  # fmt: skip
        try:
            assert "listening" in proc.stderr.readline()
            subprocess.run(pair.exec_a(sys.executable, "-m", "trafficdl.live.replay", pair.if_a,
                                       str(capture), "--rate", str(rate)),
                           check=True, capture_output=True, timeout=600)  # fmt: skip
            out, _ = proc.communicate(timeout=60)
        finally:
            if proc.poll() is None:
                proc.kill()
    got = json.loads(out)
    return got["packets"] / max(got["span"], 1e-9) if got["packets"] >= frames else float("nan")


if __name__ == "__main__":  # `python -m bench --only live` runs it in the table
    if sys.argv[1:2] == ["--bare"]:
        _bare_read(sys.argv[2], float(sys.argv[3]))
    else:
        from bench.table import set_mode

        set_mode("quick" if "--quick" in sys.argv else "smoke" if "--smoke" in sys.argv
                 else "full")  # fmt: skip
        for row in run(quick="--quick" in sys.argv):
            print(row)
