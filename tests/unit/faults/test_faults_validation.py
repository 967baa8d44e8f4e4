"""Commit validation (trafficdl_master.validation): each defect refused with its reason."""

from __future__ import annotations

import pytest
import torch
from trafficdl_master.validation import REASONS, CommitRefused, check_header, check_values

from trafficdl.rpc.tensors import encode
from trafficdl.rpc.v1 import parameter_server_pb2 as pb

N = 1000
RUN = {"model_version": "abc123", "wire_dtype": "float32", "num_elements": N}


def info(**overrides: object) -> pb.TensorInfo:
    base = encode(torch.zeros(N)).info("abc123")
    for k, v in overrides.items():
        setattr(base, k, v)
    return base


def refused(fn: object) -> CommitRefused:
    with pytest.raises(CommitRefused) as err:
        fn()  # type: ignore[operator]
    return err.value


def test_a_well_formed_header_and_finite_values_pass() -> None:
    check_header(info(), **RUN)
    half = encode(torch.zeros(N), "bfloat16").info("abc123")
    check_header(half, **{**RUN, "wire_dtype": "bfloat16"})
    check_values(torch.randn(N))


@pytest.mark.parametrize(
    ("overrides", "reason", "words"),
    [
        ({"model_version": "other"}, "version", "'other', this run trains 'abc123'"),
        ({"model_version": ""}, "version", "(none)"),
        ({"dtype": pb.WIRE_DTYPE_FLOAT16, "num_bytes": 2 * N}, "dtype", "float16"),
        ({"dtype": pb.WIRE_DTYPE_UNSPECIFIED}, "dtype", "this run uses float32"),
        ({"num_elements": N + 1, "num_bytes": 4 * (N + 1)}, "shape", "1001 values, the model"),
        ({"num_bytes": 1 << 40}, "shape", "1099511627776 bytes"),  # refused before any allocation
        ({"num_bytes": 4 * N - 1}, "shape", "= 4000 expected"),
    ],
)
def test_bad_headers_are_refused_with_their_reason(
    overrides: dict, reason: str, words: str
) -> None:
    err = refused(lambda: check_header(info(**overrides), **RUN))
    assert err.reason == reason and reason in REASONS
    assert words in str(err)


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf")])
def test_non_finite_values_are_refused(bad: float) -> None:
    v = torch.zeros(N)
    v[[3, 700]] = bad
    err = refused(lambda: check_values(v))
    assert err.reason == "nonfinite" and "2 NaN or infinite values of 1000" in str(err)


def test_unknown_reason_is_a_programming_error() -> None:
    with pytest.raises(ValueError, match="unknown refusal reason"):
        CommitRefused("whatever", "x")
