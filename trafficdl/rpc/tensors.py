"""Flat parameter vectors <-> raw little-endian bytes in chunks, for the wire.

A model travels as one flat float32 vector (all parameters in a fixed order),
encoded as raw bytes of the wire dtype (float32, or float16/bfloat16 to halve
the bytes) and cut into chunks no larger than `chunk_bytes` (1 MiB default) so
a 23 MB CNN never meets gRPC's 4 MiB message limit. How the chunks are framed
in messages is framing.py's business.

Copies are kept to what protobuf forces: encoding makes one `bytes` object
(none extra for float32 beyond the tensor->bytes copy), each chunk is one
slice of it (protobuf's `bytes` fields refuse memoryviews), and decoding
copies chunks once into a preallocated buffer that becomes the tensor without
another copy (`torch.frombuffer`). Byte order is fixed little-endian; on a
big-endian host the conversion would byte-swap (checked, not assumed).
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import torch

from trafficdl.errors import TrafficdlError
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

DEFAULT_CHUNK_BYTES = 1 << 20

WIRE_TORCH_DTYPES: dict[str, torch.dtype] = {
    "float32": torch.float32,
    "float16": torch.float16,
    "bfloat16": torch.bfloat16,
}
WIRE_ENUM: dict[str, int] = {
    "float32": pb.WIRE_DTYPE_FLOAT32,
    "float16": pb.WIRE_DTYPE_FLOAT16,
    "bfloat16": pb.WIRE_DTYPE_BFLOAT16,
}
WIRE_NAME: dict[int, str] = {v: k for k, v in WIRE_ENUM.items()}

if sys.byteorder != "little":  # pragma: no cover - every supported host is little-endian
    raise ImportError("trafficdl's wire format needs a little-endian host")


class TensorWireError(TrafficdlError):
    """A streamed tensor was malformed (wrong size, dtype or model version)."""


@dataclass(frozen=True)
class Encoded:
    """A flat vector as wire bytes, with the header fields that describe it.

    `data` is either an owned `bytes` copy, or (encode(copy=False)) a read-only
    view of the tensor's own memory, valid while that tensor is left unchanged.
    """

    data: bytes | memoryview
    dtype: str
    num_elements: int

    @property
    def num_bytes(self) -> int:
        return memoryview(self.data).nbytes

    def info(self, model_version: str) -> pb.TensorInfo:
        return pb.TensorInfo(
            dtype=WIRE_ENUM[self.dtype],
            num_elements=self.num_elements,
            num_bytes=self.num_bytes,
            model_version=model_version,
        )


def encode(vector: torch.Tensor, dtype: str = "float32", *, copy: bool = True) -> Encoded:
    """Flat float32 vector -> raw little-endian bytes of the wire dtype.

    copy=False skips the copy when the wire bytes are the tensor's own (float32 on
    the CPU): the caller promises not to change the tensor while `data` is used.
    """
    if dtype not in WIRE_TORCH_DTYPES:
        raise TensorWireError(f"unknown wire dtype {dtype!r}")
    flat = vector.detach().reshape(-1)
    wire = flat.to(device="cpu", dtype=WIRE_TORCH_DTYPES[dtype]).contiguous()
    # numpy has no bfloat16: view the 2-byte payload as int16 to get its bytes.
    raw = wire.view(torch.int16) if dtype == "bfloat16" else wire
    if copy:
        return Encoded(raw.numpy().tobytes(), dtype, flat.numel())
    return Encoded(memoryview(raw.numpy()).cast("B").toreadonly(), dtype, flat.numel())


def decode(data: bytes | bytearray | memoryview, dtype: str, num_elements: int) -> torch.Tensor:
    """Raw wire bytes -> flat float32 vector (no copy for float32 from a writable buffer)."""
    torch_dtype = WIRE_TORCH_DTYPES.get(dtype)
    if torch_dtype is None:
        raise TensorWireError(f"unknown wire dtype {dtype!r}")
    itemsize = torch.empty((), dtype=torch_dtype).element_size()
    if len(data) != num_elements * itemsize:
        raise TensorWireError(
            f"tensor has {len(data)} bytes, expected {num_elements} x {itemsize} ({dtype})"
        )
    if num_elements == 0:
        return torch.zeros(0, dtype=torch.float32)
    if isinstance(data, bytes):  # frombuffer wants a writable buffer to share memory
        data = bytearray(data)
    if dtype == "bfloat16":
        return torch.frombuffer(data, dtype=torch.int16).view(torch.bfloat16).to(torch.float32)
    out = torch.frombuffer(data, dtype=torch_dtype)
    return out if dtype == "float32" else out.to(torch.float32)


def chunks(data: bytes | memoryview, chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[bytes]:
    """Consecutive `bytes` slices of at most `chunk_bytes` (none for empty data)."""
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be >= 1")
    view = memoryview(data).cast("B")
    for start in range(0, view.nbytes, chunk_bytes):
        yield bytes(view[start : start + chunk_bytes])


class Assembler:
    """Collects streamed chunks into one preallocated buffer, then decodes it."""

    def __init__(self, info: pb.TensorInfo, expected_version: str = "") -> None:
        if info.dtype not in WIRE_NAME:
            raise TensorWireError(f"unsupported wire dtype enum {info.dtype}")
        if expected_version and info.model_version and info.model_version != expected_version:
            raise TensorWireError(
                f"model version {info.model_version} does not match this run's {expected_version}"
            )
        self.info = info
        self.dtype = WIRE_NAME[info.dtype]
        self.buffer = bytearray(info.num_bytes)
        self.filled = 0

    def add(self, chunk: bytes | memoryview) -> None:
        end = self.filled + len(chunk)
        if end > len(self.buffer):
            raise TensorWireError(f"tensor stream exceeds its announced {len(self.buffer)} bytes")
        self.buffer[self.filled : end] = chunk
        self.filled = end

    @property
    def full(self) -> bool:
        """Every announced byte has arrived."""
        return self.filled == len(self.buffer)

    def tensor(self) -> torch.Tensor:
        if self.filled != len(self.buffer):
            raise TensorWireError(
                f"tensor stream ended after {self.filled} of {len(self.buffer)} bytes"
            )
        return decode(self.buffer, self.dtype, self.info.num_elements)


def assemble(
    info: pb.TensorInfo, parts: Iterable[bytes], expected_version: str = ""
) -> torch.Tensor:
    """Decode a tensor from its header and the chunks that follow it."""
    asm = Assembler(info, expected_version)
    for part in parts:
        asm.add(part)
    return asm.tensor()
