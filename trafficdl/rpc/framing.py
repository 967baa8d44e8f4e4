"""The ParameterServer's wire framing, once for both ends (client.py and the master's server).

Tensors travel as chunk messages: field 2 (`chunk`) of every tensor-carrying
message, length-delimited (tag byte 0x12, a varint length, the bytes). Writing
and reading that framing here instead of through protobuf saves two copies of
every chunk per side (message construction and serialization on the sender;
parse and the `.chunk` accessor on the receiver). The bytes on the wire are
exactly what protobuf writes, so either end may still use generated stubs.

A header travels with its tensor's first chunk: serialized messages
concatenated merge into one message when protobuf parses them, so a model that
fits one chunk is one message each way. The master cuts its centre into chunk
messages once per update counter (`FrameCache`) and every pull until the next
fold streams the same bytes.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch

from trafficdl.rpc.tensors import WIRE_ENUM, Assembler, encode
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

SERVICE = "/trafficdl.rpc.v1.ParameterServer/"
CHUNK_TAG = 0x12  # field 2, length-delimited: `chunk` in every tensor-carrying message


def serialize(message: bytes | Any) -> bytes:
    """Pre-serialized messages pass through; protobuf messages are serialized."""
    return message if isinstance(message, bytes) else message.SerializeToString()


def _varint(n: int) -> bytes:
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def chunk_messages(data: bytes | memoryview, chunk_bytes: int) -> Iterator[bytes]:
    """`data` cut into slices of at most `chunk_bytes`, each already serialized as a
    `{chunk: ...}` message (none for empty data). One copy per chunk, no protobuf object."""
    if chunk_bytes < 1:
        raise ValueError("chunk_bytes must be >= 1")
    view = memoryview(data).cast("B")
    tag = bytes((CHUNK_TAG,))
    for start in range(0, view.nbytes, chunk_bytes):
        part = view[start : start + chunk_bytes]
        yield b"".join((tag, _varint(part.nbytes), part))


def chunk_payload(message: bytes) -> memoryview | None:
    """The bytes of a serialized `{chunk: ...}` message as a view (no copy).

    None when `message` is anything else (a header, or a chunk message with
    extra fields): the caller then parses it with protobuf.
    """
    if not message or message[0] != CHUNK_TAG:
        return None
    length, shift, pos = 0, 0, 1
    while pos < len(message) and shift < 64:
        byte = message[pos]
        pos += 1
        length |= (byte & 0x7F) << shift
        if not byte & 0x80:
            if pos + length != len(message):
                return None
            return memoryview(message)[pos:]
        shift += 7
    return None


def chunk_or(message: Any) -> Callable[[bytes], Any]:
    """A deserializer: a plain chunk as a view of the received bytes (no parse, no
    copy); anything else (a header) parsed as `message`."""

    def parse(raw: bytes) -> Any:
        payload = chunk_payload(raw)
        return payload if payload is not None else message.FromString(raw)

    return parse


def _payload(part: bytes | memoryview | Any, message: Any) -> bytes | memoryview:
    """A chunk's bytes from a received part: a view chunk_or made, raw bytes, or a message."""
    if isinstance(part, memoryview):
        return part
    if isinstance(part, bytes):
        view = chunk_payload(part)
        return view if view is not None else memoryview(message.FromString(part).chunk)
    return part.chunk


def receive(
    info: pb.TensorInfo,
    parts: Iterable[bytes | memoryview | Any],
    *,
    message: Any = None,
    expected_version: str = "",
    first: bytes | memoryview = b"",
    exact: bool = False,
) -> torch.Tensor:
    """The tensor `info` announces: `first` (the chunk beside its header), then `parts`
    (raw `message`s, views or parsed messages). `exact`: stop reading once it is whole
    (the stream goes on with something else). tensors.TensorWireError when malformed."""
    asm = Assembler(info, expected_version)
    asm.add(first)
    if not (exact and asm.full):
        for part in parts:
            asm.add(_payload(part, message))
            if exact and asm.full:
                break
    return asm.tensor()


def head_and_chunks(head: Any, chunks: Iterable[bytes]) -> Iterator[bytes]:
    """`head` serialized with the first chunk message in the same message, then the rest."""
    parts = iter(chunks)
    yield b"".join((head.SerializeToString(), next(parts, b"")))
    yield from parts


def one_message(head: Any, chunks: Iterable[bytes]) -> bytes:
    """`head` and every chunk message as one message (a unary call's one chunk)."""
    return b"".join((head.SerializeToString(), *chunks))


@dataclass(frozen=True)
class Frames:
    """A tensor as served at one version: its header and its chunk messages."""

    version: int
    info: pb.TensorInfo
    messages: list[bytes]
    chunk_bytes: int


class FrameCache:
    """A vector cut into chunk messages once per version and shared until the next one.

    The master passes its centre and update counter under the centre's lock
    (`Center.read`), so the one copy is never torn by a fold and every pull of
    the same counter (same wire dtype, chunk size, model version) streams the
    same bytes.
    """

    def __init__(self) -> None:
        self._frames: Frames | None = None

    def frames(
        self,
        version: int,
        vector: torch.Tensor,
        *,
        dtype: str,
        chunk_bytes: int,
        model_version: str,
    ) -> Frames:
        cached = self._frames
        if (
            cached is None
            or cached.version != version
            or cached.chunk_bytes != chunk_bytes
            or cached.info.dtype != WIRE_ENUM[dtype]
            or cached.info.model_version != model_version
        ):
            enc = encode(vector, dtype, copy=False)
            messages = list(chunk_messages(enc.data, chunk_bytes))  # the one copy
            cached = Frames(version, enc.info(model_version), messages, chunk_bytes)
            self._frames = cached  # older versions are never served again
        return cached
