"""The paper's two architectures: exact parameter counts, shapes, Keras-equivalent LSTM."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from trafficdl.errors import TrafficdlError
from trafficdl.models import (
    ModelError,
    build_model,
    count_parameters,
    fingerprint,
    input_adapter,
    layer_table,
)


@pytest.mark.parametrize(
    ("name", "classes", "expected"),
    [("cnn1d", 2, 5_822_338), ("cnn1d", 45, 5_866_413), ("lstm", 2, 52_302), ("lstm", 45, 56_645)],
)
def test_parameter_counts_match_the_paper(name: str, classes: int, expected: int) -> None:
    assert count_parameters(build_model(name, classes)) == expected


def test_cnn_same_padding_and_ceil_pooling_give_784_262_88() -> None:
    model = build_model("cnn1d", 3)
    rows = {r["name"]: r for r in layer_table(model)}
    assert rows["features.0"]["output"] == [32, 784]  # 'same' convolution keeps the length
    assert rows["features.2"]["output"] == [32, 262]
    assert rows["features.5"]["output"] == [64, 88]
    assert model(torch.rand(5, 784)).shape == (5, 3)


def test_lstm_has_one_bias_per_gate_and_it_stays_single() -> None:
    model = build_model("lstm", 2)
    names = [n for n, _ in model.named_parameters()]
    assert "lstm.bias_hh_l0" not in names and "lstm.bias_ih_l0" in names
    assert "lstm.bias_hh_l0" not in model.state_dict()
    opt = torch.optim.SGD(model.parameters(), lr=0.5)
    loss = model(torch.randn(4, 20, 4)).sum()
    loss.backward()
    opt.step()
    assert torch.count_nonzero(model.lstm.bias_hh_l0) == 0


def _keras_lstm_last_state(
    x: torch.Tensor, w_ih: torch.Tensor, w_hh: torch.Tensor, b: torch.Tensor
) -> torch.Tensor:
    """The textbook single-bias LSTM, step by step (gate order i, f, g, o)."""
    units = w_hh.shape[1]
    h = torch.zeros(x.shape[0], units)
    c = torch.zeros(x.shape[0], units)
    for t in range(x.shape[1]):
        z = x[:, t] @ w_ih.T + h @ w_hh.T + b
        i, f, g, o = z.split(units, dim=1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        h = torch.sigmoid(o) * torch.tanh(c)
    return h


def test_lstm_computes_the_single_bias_recurrence() -> None:
    torch.manual_seed(0)
    model = build_model("lstm", 3).eval()
    with torch.no_grad():
        model.lstm.bias_ih_l0.uniform_(-0.5, 0.5)  # a non-trivial bias
        x = torch.randn(6, 20, 4)
        _, (h, _) = model.lstm(x)
        lstm = model.lstm
        ref = _keras_lstm_last_state(x, lstm.weight_ih_l0, lstm.weight_hh_l0, lstm.bias_ih_l0)
    torch.testing.assert_close(h[-1], ref, atol=1e-5, rtol=1e-5)


def test_lstm_starts_with_keras_forget_bias() -> None:
    bias = build_model("lstm", 2).lstm.bias_ih_l0.detach()
    assert torch.all(bias[100:200] == 1.0) and torch.count_nonzero(bias[:100]) == 0


def test_fingerprint_names_architecture_not_values() -> None:
    torch.manual_seed(1)
    a = build_model("cnn1d", 2)
    torch.manual_seed(2)
    b = build_model("cnn1d", 2)
    assert fingerprint(a) == fingerprint(b)
    assert fingerprint(a) != fingerprint(build_model("cnn1d", 3))
    assert fingerprint(a) != fingerprint(build_model("lstm", 2))


def test_same_seed_same_initial_weights() -> None:
    torch.manual_seed(7)
    a = build_model("lstm", 4)
    torch.manual_seed(7)
    b = build_model("lstm", 4)
    for (na, pa), (_, pb) in zip(a.named_parameters(), b.named_parameters(), strict=True):
        assert torch.equal(pa, pb), na


def test_overrides_change_the_model_and_bad_ones_are_user_errors() -> None:
    small = build_model("cnn1d", 2, input_length=100, hidden=16)
    assert small(torch.rand(2, 100)).shape == (2, 2)
    assert isinstance(small.classifier[1], nn.Linear) and small.classifier[1].in_features == 12 * 64
    assert input_adapter("cnn1d", input_length=100).length == 100
    with pytest.raises(TrafficdlError, match="unknown model"):
        build_model("resnet", 2)
    with pytest.raises(ModelError, match="no setting"):
        build_model("lstm", 2, layers=3)
    with pytest.raises(ModelError, match="at least 2"):
        build_model("lstm", 1)
