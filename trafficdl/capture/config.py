"""How captures are cut into traffic objects and turned into model inputs.

One frozen dataclass, recorded whole in the dataset's meta ("extract_config"),
so a dataset says exactly how it was made and `trafficdl classify` can cut a
new capture the same way. Each field documents what it means here.
"""

from __future__ import annotations

from dataclasses import dataclass

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
    burst_gap: float = 1.0  # seconds of silence that split a service burst
    min_packets: int = 1  # objects with fewer packets are dropped
    min_payload: int = 0  # objects with fewer L4 payload bytes (both ways) are dropped

    def __post_init__(self) -> None:
        if self.segmentation not in SEGMENTATIONS:
            raise ExtractConfigError(
                f"unknown segmentation {self.segmentation!r}; "
                f"choose from {', '.join(SEGMENTATIONS)}"
            )
        if self.payload_bytes < 1 or self.packets < 1:
            raise ExtractConfigError("payload bytes and packets must be >= 1")
        if self.idle_timeout <= 0 or self.burst_gap <= 0:
            raise ExtractConfigError("idle timeout and burst gap must be > 0 seconds")
        if self.min_packets < 1 or self.min_payload < 0:
            raise ExtractConfigError("min packets must be >= 1 and min payload >= 0")
