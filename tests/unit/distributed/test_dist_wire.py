"""Hand-framed chunk messages are byte for byte what protobuf writes and reads."""

from __future__ import annotations

import os

import pytest

from trafficdl.rpc.framing import chunk_messages, chunk_payload
from trafficdl.rpc.v1 import parameter_server_pb2 as pb


@pytest.mark.parametrize("size", [1, 127, 128, 300, 16_383, 16_384, 1 << 20, 3 << 20])
def test_chunk_framing_equals_protobuf(size: int) -> None:
    data = os.urandom(size)
    (message,) = chunk_messages(data, 4 << 20)
    for cls in (
        pb.PullResponse,
        pb.CommitRequest,
        pb.RegisterResponse,
        pb.ExchangeRequest,
        pb.ExchangeResponse,
        pb.PullOneResponse,
        pb.CommitOneRequest,
        pb.CommitOneResponse,
    ):
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


def test_the_one_call_messages_keep_the_exchange_field_numbers() -> None:
    # PullOne/CommitOne have messages of their own; their bytes are the ones the
    # Exchange messages they replaced wrote (same fields, same numbers).
    header = pb.PullHeader(update_counter=7, tensor=pb.TensorInfo(num_bytes=3))
    ack = pb.CommitResponse(update_counter=8, staleness=1, run_done=True)
    both = {"header": header, "chunk": b"abc"}
    assert (
        pb.CommitOneResponse(**both, ack=ack).SerializeToString()
        == pb.ExchangeResponse(**both, ack=ack).SerializeToString()
    )
    assert (
        pb.PullOneResponse(**both).SerializeToString()
        == pb.ExchangeResponse(**both).SerializeToString()
    )
    pull = pb.PullRequest(run_id="r", rank=1)
    commit = {"pull": pull, "chunk": b"x", "header": pb.CommitHeader(rank=1, sequence=2)}
    assert (
        pb.CommitOneRequest(**commit).SerializeToString()
        == pb.ExchangeRequest(**commit).SerializeToString()
    )
    assert pb.PullOneRequest(run_id="r", rank=1).SerializeToString() == pull.SerializeToString()
