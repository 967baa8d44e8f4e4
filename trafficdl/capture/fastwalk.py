"""The compiled walk (_fastwalk.c) behind walk.Walker's interface, and when to use it.

Why a C extension rather than numpy: the per-packet cost of the pure-Python walk
is the object table (~3 us/packet) plus the record walk itself (~1.3 us), and
both are sequential: object boundaries (idle and active timeouts, a SYN after
FINs) and TCP sequence tracking depend on every earlier packet of the object,
so vectorised header parsing over record batches would still leave a Python
loop of >= 2 us per packet; 1M packets/s per CPU-second needs <= 1 us for
everything (docs/capture.md, "Speed"). The extension is built by the
project's own install (`pip install -e .`, pyproject's ext-modules), needs
nothing but a C compiler and Python.h, and is optional: without it, or for
what it does not cover, walk.py does the work with the same results.

Covered: biflow and flow segmentation without `tunnel_key`; pcap read by C
straight from the reader's buffers (the mapped windows of reader.py), pcapng
through the Python record reader; every link type and IP/L4 decode of
walk.py and GTP-U G-PDUs without options. Anything else (PPPoE, MPLS, GRE,
VXLAN, Geneve, IP in IP, GTP-U with options or nested) stops the C walk and
the caller starts the capture over with walk.py (`feed` answers False).

TRAFFICDL_CAPTURE_CORE selects: `auto` (default: C where covered), `python`
(walk.py only), `check` (both, raising on any difference: the differential
tests run the capture suite so).
"""

from __future__ import annotations

import os

import numpy as np

from trafficdl.capture.config import ExtractConfig
from trafficdl.capture.objects import WalkStats
from trafficdl.capture.reader import RecordReader
from trafficdl.dataset import OBJECT_DTYPE
from trafficdl.features import N_FIELDS

try:
    from trafficdl.capture import _fastwalk  # type: ignore[attr-defined]
except ImportError:  # not built (no compiler at install): walk.py does everything
    _fastwalk = None

CORE_ENV = "TRAFFICDL_CAPTURE_CORE"
MODES = ("auto", "python", "check")
DONE, CORRUPT, FALLBACK = 0, 1, 2  # _fastwalk's feed statuses
_COUNTERS = ("packets", "non_ip", "other_l4", "fragments", "malformed", "tso", "tunnelled")


def built() -> bool:
    """Whether the extension was compiled by the install."""
    return _fastwalk is not None


def mode() -> str:
    """The TRAFFICDL_CAPTURE_CORE choice (an unknown value reads as `auto`)."""
    value = os.environ.get(CORE_ENV, "auto").strip().lower()
    return value if value in MODES else "auto"


def covers(cfg: ExtractConfig) -> bool:
    """Whether the compiled walk handles this configuration at all."""
    return built() and cfg.segmentation != "burst" and not cfg.tunnel_key


class FastWalk:
    """walk.Walker's interface over the compiled core: feed, close, stats, arrays."""

    def __init__(self, cfg: ExtractConfig, capture_index: int = 0) -> None:
        if _fastwalk is None:
            raise RuntimeError("trafficdl.capture._fastwalk is not built")
        self.cfg = cfg
        self.stats = WalkStats()
        self._core = _fastwalk.Core(
            cfg.payload_bytes,
            cfg.packets,
            cfg.idle_timeout,
            cfg.active_timeout or float("inf"),
            max(cfg.idle_timeout, cfg.burst_gap, 1.0),  # walk.py's sweep period
            cfg.tcp_close,
            cfg.segmentation == "flow",
            ",".join(cfg.decap),
            cfg.min_packets,
            cfg.min_payload,
            capture_index,
        )
        self._out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None

    def feed(self, reader: RecordReader) -> bool:
        """Walk every record of `reader`; False: a packet needs walk.py (start over)."""
        if reader.format != "pcap":
            return self._core.feed_records(reader) != FALLBACK
        big = reader.endian == ">"
        buf: object = b""
        pos = offset = 0
        for buf, offset, pos, end in reader._buffers(24):
            status, pos, length = self._core.feed_pcap(
                buf, pos, end, big, reader.ts_div, reader.linktype, reader.fcs
            )
            if status == FALLBACK:
                return False
            if status == CORRUPT:
                reader.warnings.append(reader.corrupt_record(offset + pos, length))
                return True
            reader._stop = pos  # where the next buffer takes over
        if pos < len(buf):  # type: ignore[arg-type]
            reader.warnings.append(reader.truncated(offset + pos, len(buf) - pos))  # type: ignore[arg-type]
        return True

    def close(self) -> None:
        """Finish every open object (end of capture) and collect the results."""
        self._core.close()
        payload, rows, records, counts, links = self._core.take()
        for name, value in zip(_COUNTERS, counts, strict=True):
            setattr(self.stats, name, value)
        self.stats.unknown_links = set(links)
        n, cfg = len(records), self.cfg
        self._out = (
            np.frombuffer(payload, np.uint8).reshape(n, cfg.payload_bytes).copy(),
            np.frombuffer(rows, np.float32).reshape(n, cfg.packets, N_FIELDS).copy(),
            np.array(records, dtype=OBJECT_DTYPE),
        )

    @property
    def sink(self) -> FastWalk:
        """Walker's interface: the objects are read from `sink` (here the walk itself)."""
        return self

    def __len__(self) -> int:
        return 0 if self._out is None else len(self._out[2])

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(payload, packets, objects) as FeatureSink.arrays gives them (after close)."""
        if self._out is None:
            raise RuntimeError("close() first")
        return self._out
