"""The paper's two inputs per traffic object, accumulated into dataset arrays.

- payload: the first N_b transport-payload bytes of the object, in arrival
  order across both directions, never any header, zero-padded (stored as
  uint8; trafficdl.dataset scales them to [0, 1] for the model);
- packets: the first N_p packets x (L4 payload size in bytes, direction,
  TCP window as sent (unscaled; 0 for UDP), inter-arrival time in seconds
  since the object's previous packet (0 for its first)), zero-padded.

Direction is +1 client->server and -1 server->client, so a padded row (all
zeros) never looks like a real packet. Rows are kept as Python bytes/tuples
while a capture is walked and turned into arrays once per file: one numpy
call per file instead of one per packet.
"""

from __future__ import annotations

from array import array

import numpy as np

from trafficdl.dataset import OBJECT_DTYPE, PACKET_FIELDS

UP, DOWN = 1.0, -1.0
N_FIELDS = len(PACKET_FIELDS)


class FeatureSink:
    """Collects finished objects; `arrays()` returns (payload, packets, objects)."""

    def __init__(self, payload_bytes: int, packets: int) -> None:
        self.nb = payload_bytes
        self.np = packets
        self._payload: list[bytes] = []
        self._packets = array("f")
        self._records: list[tuple] = []
        self._pad_row = (0.0,) * N_FIELDS

    def __len__(self) -> int:
        return len(self._records)

    def add(self, payload: bytes | bytearray, rows: list[tuple], record: tuple) -> None:
        """One object: its payload prefix, up to N_p packet rows, its OBJECT_DTYPE record."""
        nb = self.nb
        self._payload.append(bytes(payload[:nb]).ljust(nb, b"\0"))
        flat = self._packets
        for row in rows[: self.np]:
            flat.extend(row)
        for _ in range(self.np - min(len(rows), self.np)):
            flat.extend(self._pad_row)
        self._records.append(record)

    def arrays(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        n = len(self._records)
        payload = np.frombuffer(b"".join(self._payload), dtype=np.uint8).reshape(n, self.nb)
        packets = np.frombuffer(self._packets, dtype=np.float32).reshape(n, self.np, N_FIELDS)
        objects = np.array(self._records, dtype=OBJECT_DTYPE)
        return payload.copy(), packets.copy(), objects


def empty_arrays(payload_bytes: int, packets: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Zero-object arrays of the right shapes (a capture with no TCP/UDP objects)."""
    return (
        np.zeros((0, payload_bytes), np.uint8),
        np.zeros((0, packets, N_FIELDS), np.float32),
        np.zeros(0, OBJECT_DTYPE),
    )
