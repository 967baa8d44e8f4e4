"""Hand-framed chunk messages are byte for byte what protobuf writes and reads."""

from __future__ import annotations

import os

import pytest

from trafficdl.rpc.tensors import chunk_messages, chunk_payload
from trafficdl.rpc.v1 import parameter_server_pb2 as pb


@pytest.mark.parametrize("size", [1, 127, 128, 300, 16_383, 16_384, 1 << 20, 3 << 20])
def test_chunk_framing_equals_protobuf(size: int) -> None:
    data = os.urandom(size)
    (message,) = chunk_messages(data, 4 << 20)
    for cls in (pb.PullResponse, pb.CommitRequest, pb.RegisterResponse, pb.ExchangeRequest):
        assert cls(chunk=data).SerializeToString() == message
        assert cls.FromString(message).chunk == data
    assert bytes(chunk_payload(message)) == data


def test_chunks_split_and_anything_else_is_left_to_protobuf() -> None:
    data = os.urandom(10_000)
    messages = list(chunk_messages(memoryview(data), 4096))
    assert b"".join(bytes(chunk_payload(m)) for m in messages) == data
    assert [len(chunk_payload(m)) for m in messages] == [4096, 4096, 1808]
    header = pb.PullResponse(header=pb.PullHeader(update_counter=3)).SerializeToString()
    assert chunk_payload(header) is None
    assert chunk_payload(messages[0] + b"\x08\x01") is None  # extra fields: not a plain chunk
    assert chunk_payload(messages[0][:-1]) is None  # truncated
    assert chunk_payload(b"") is None
