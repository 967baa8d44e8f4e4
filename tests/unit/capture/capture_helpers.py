"""Capture-writing helper shared by the capture tests (a plain module: a unique name)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from scapy.utils import wrpcap, wrpcapng


def write_capture(path: Path, pkts: Sequence, *, times: Sequence[float] | None = None,
                  linktype: int | None = None, ng: bool = False) -> Path:  # fmt: skip
    """Write scapy packets (timestamps 1000.0, 1000.1, ... unless given) to pcap/pcapng."""
    pkts = list(pkts)
    for i, p in enumerate(pkts):
        p.time = times[i] if times is not None else 1000.0 + 0.1 * i
    if ng:
        wrpcapng(str(path), pkts)
    elif linktype is None:
        wrpcap(str(path), pkts)
    else:
        wrpcap(str(path), pkts, linktype=linktype)
    return path
