"""How captures are cut into traffic objects and turned into model inputs.

One frozen dataclass, recorded whole in the dataset's meta ("extract_config"),
so a dataset says exactly how it was made and `trafficdl classify` can cut a
new capture the same way. Each field documents what it means here.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from trafficdl.capture.tunnels import DECAPS
from trafficdl.errors import TrafficdlError

SEGMENTATIONS: tuple[str, ...] = ("biflow", "flow", "burst")


class ExtractConfigError(TrafficdlError):
    """An invalid extraction setting."""


@dataclass(frozen=True)
class ExtractConfig:
    """Segmentation and input sizes (the paper's N_b and N_p) for extraction."""

    # biflow: canonical bidirectional 5-tuple (the first packet's sender is the
    # client); flow: unidirectional 5-tuple; burst: the paper's service burst
    # (packets of biflows with the same protocol and server (IP, port), split
    # where the gap between packets exceeds burst_gap).
    segmentation: str = "biflow"
    payload_bytes: int = 784  # N_b: first L4 payload bytes per object, zero-padded
    packets: int = 20  # N_p: first packets per object x (size, direction, window, iat)
    idle_timeout: float = 120.0  # seconds of silence that end a (bi)flow (NFStream's default)
    # seconds after its first packet that end a (bi)flow even when it is busy (NFStream's
    # default); the next packet starts a new object. 0: no active timeout.
    active_timeout: float = 1800.0
    # TCP: after both FINs or an RST, a SYN on the same 5-tuple starts a new object
    # (otherwise a reused 5-tuple continues the object until the idle timeout).
    tcp_close: bool = True
    burst_gap: float = 1.0  # seconds of silence that split a service burst
    min_packets: int = 1  # objects with fewer packets are dropped
    min_payload: int = 0  # objects with fewer L4 payload bytes (both ways) are dropped
    # tunnels to decapsulate (trafficdl.capture.tunnels.DECAPS; empty: none): objects are
    # then keyed and featured by the inner packets. A comma-separated string is accepted.
    decap: tuple[str, ...] = DECAPS
    # add the overlay id that both directions share (VXLAN/Geneve VNI, GRE key / NVGRE
    # VSID, PPPoE session) to the object key: for overlapping tenant address spaces.
    tunnel_key: bool = False

    def __post_init__(self) -> None:
        decap: Any = self.decap
        names = decap.split(",") if isinstance(decap, str) else list(decap)
        names = [n.strip().lower() for n in names if n.strip() and n.strip() != "none"]
        unknown = sorted(set(names) - set(DECAPS))
        if unknown:
            raise ExtractConfigError(
                f"unknown tunnel {', '.join(unknown)}; choose from {', '.join(DECAPS)}"
            )
        object.__setattr__(self, "decap", tuple(n for n in DECAPS if n in names))
        if self.segmentation not in SEGMENTATIONS:
            raise ExtractConfigError(
                f"unknown segmentation {self.segmentation!r}; "
                f"choose from {', '.join(SEGMENTATIONS)}"
            )
        if self.payload_bytes < 1 or self.packets < 1:
            raise ExtractConfigError("payload bytes and packets must be >= 1")
        if self.idle_timeout <= 0 or self.burst_gap <= 0:
            raise ExtractConfigError("idle timeout and burst gap must be > 0 seconds")
        if self.active_timeout < 0:
            raise ExtractConfigError("active timeout must be >= 0 seconds (0: off)")
        if self.min_packets < 1 or self.min_payload < 0:
            raise ExtractConfigError("min packets must be >= 1 and min payload >= 0")
