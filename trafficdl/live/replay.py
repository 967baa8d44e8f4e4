"""Replay captures onto an interface (raw frames through AF_PACKET): the live tests' traffic.

    python -m trafficdl.live.replay IFACE CAPTURE... [--speed X | --rate PPS]

Frames of all captures are merged by timestamp and sent as they are (Ethernet
captures only). `speed` 0 sends as fast as the socket takes them; X > 0
keeps the captures' gaps divided by X. Used by tests/integration/api and
bench/bench_live.py inside network namespaces they create.
"""

from __future__ import annotations

import argparse
import heapq
import socket
import sys
import time
from collections.abc import Sequence
from pathlib import Path

from trafficdl.capture.reader import open_records


def load_frames(paths: Sequence[str | Path]) -> list[tuple[float, bytes]]:
    """(timestamp, Ethernet frame) of every capture, merged in time order."""
    streams = []
    for path in paths:
        with open(path, "rb") as f:
            streams.append([(ts, data) for ts, lt, data, _ in open_records(f, str(path))
                            if lt == 1])  # fmt: skip
    return list(heapq.merge(*streams, key=lambda r: r[0]))


def replay(frames: Sequence[tuple[float, bytes]], iface: str, speed: float = 0.0,
           rate: float = 0.0) -> float:  # fmt: skip
    """Send the frames on `iface`; returns the seconds it took.

    `rate` > 0: that many frames per second, in bursts of 64 (a flood overflows
    the receiving side's per-CPU backlog before any socket sees the frames).
    """
    sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW)
    sock.bind((iface, 0))
    send = sock.send
    t0 = time.perf_counter()
    try:
        if rate > 0:
            for i in range(0, len(frames), 64):
                delay = i / rate - (time.perf_counter() - t0)
                if delay > 0:
                    time.sleep(delay)
                for _, frame in frames[i : i + 64]:
                    send(frame)
        elif speed <= 0:
            for _, frame in frames:
                send(frame)
        else:
            first = frames[0][0] if frames else 0.0
            for ts, frame in frames:
                delay = (ts - first) / speed - (time.perf_counter() - t0)
                if delay > 0:
                    time.sleep(delay)
                send(frame)
    finally:
        sock.close()
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m trafficdl.live.replay")
    parser.add_argument("iface")
    parser.add_argument("captures", nargs="+", type=Path)
    parser.add_argument("--speed", type=float, default=0.0, help="x capture time (0: flat out)")
    parser.add_argument("--rate", type=float, default=0.0, help="frames per second (0: --speed)")
    args = parser.parse_args(argv)
    paths = [q for p in args.captures for q in (sorted(p.rglob("*.pcap")) if p.is_dir() else [p])]
    frames = load_frames(paths)
    seconds = replay(frames, args.iface, args.speed, args.rate)
    print(f"sent {len(frames)} frames in {seconds:.3f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
