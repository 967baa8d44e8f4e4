"""Flat vectors <-> chunked wire bytes: sizes, dtypes, and malformed streams."""

from __future__ import annotations

import pytest
import torch

from trafficdl.rpc.tensors import (
    Assembler,
    TensorWireError,
    assemble,
    chunks,
    decode,
    encode,
)


@pytest.mark.parametrize(
    ("dtype", "tol", "itemsize"), [("float32", 0.0, 4), ("float16", 1e-3, 2), ("bfloat16", 1e-2, 2)]
)
def test_round_trip_in_chunks(dtype: str, tol: float, itemsize: int) -> None:
    v = torch.linspace(-3, 3, 100_003)
    enc = encode(v, dtype)
    assert len(enc.data) == v.numel() * itemsize
    parts = list(chunks(enc.data, 4096))
    assert all(len(p) <= 4096 for p in parts) and sum(map(len, parts)) == len(enc.data)
    out = assemble(enc.info("m1"), parts, "m1")
    assert out.dtype == torch.float32
    assert torch.allclose(out, v, rtol=tol, atol=tol)
    if dtype == "float32":
        assert torch.equal(out, v)


def test_float32_bytes_are_little_endian() -> None:
    assert encode(torch.tensor([1.0]), "float32").data == b"\x00\x00\x80\x3f"


def test_wrong_sizes_and_versions_are_refused() -> None:
    enc = encode(torch.ones(10))
    with pytest.raises(TensorWireError, match="model version"):
        Assembler(enc.info("a"), "b")
    asm = Assembler(enc.info("a"), "a")
    asm.add(enc.data[:8])
    with pytest.raises(TensorWireError, match="ended after 8"):
        asm.tensor()
    with pytest.raises(TensorWireError, match="exceeds"):
        asm.add(enc.data)
    with pytest.raises(TensorWireError, match="expected"):
        decode(b"\x00" * 6, "float32", 2)
    with pytest.raises(TensorWireError, match="unknown wire dtype"):
        encode(torch.ones(2), "int8")


def test_empty_vector() -> None:
    enc = encode(torch.zeros(0))
    assert list(chunks(enc.data)) == []
    assert assemble(enc.info(""), []).numel() == 0


def test_view_encoding_shares_memory_and_copy_does_not() -> None:
    v = torch.zeros(4)
    view, owned = encode(v, copy=False), encode(v)
    v[0] = 1.0
    assert bytes(view.data)[:4] == b"\x00\x00\x80\x3f"  # sees the change: no copy made
    assert owned.data[:4] == b"\x00\x00\x00\x00"
    assert view.num_bytes == owned.num_bytes == 16
