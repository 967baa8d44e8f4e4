"""The paper's LSTM (Lopez-Martin et al. 2017) over 4 fields of a biflow's first 20 packets.

LSTM(100 units) → final hidden state → dense 100, ReLU → L logits.

Keras (which the paper used) gives each gate one bias; PyTorch's nn.LSTM has two
(b_ih and b_hh), i.e. 400 extra parameters. Their sum is all that matters, so
we keep nn.LSTM's fused kernels and replace b_hh by a constant zero buffer:
the function class is exactly Keras', and so is the count — 52,302 (L=2) and
56,645 (L=45), the paper's 52.3k / 56.6k. Initialisation is Keras' too:
Glorot-uniform input kernel, orthogonal recurrent kernel, zero bias except 1 on
the forget gate (unit_forget_bias), Glorot-uniform dense layers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn


@dataclass(frozen=True)
class LSTMConfig:
    """Shape of the LSTM classifier; the defaults are the paper's."""

    packets: int = 20  # N_p: time steps
    fields: int = 4  # size, direction, window, inter-arrival time (standardized)
    units: int = 100
    hidden: int = 100


def _single_bias_lstm(fields: int, units: int) -> nn.LSTM:
    lstm = nn.LSTM(fields, units, batch_first=True)
    # Drop the recurrent bias: a non-persistent zero buffer takes its place in the
    # fused kernel's weight list, so it is neither trained, counted nor saved.
    zeros = torch.zeros_like(lstm.bias_hh_l0)
    del lstm.bias_hh_l0
    lstm.register_buffer("bias_hh_l0", zeros, persistent=False)
    lstm._init_flat_weights()
    return lstm


class LSTMClassifier(nn.Module):
    """Input [batch, packets, fields] floats; output [batch, num_classes] logits."""

    input_kind = "packets"

    def __init__(self, num_classes: int, config: LSTMConfig | None = None) -> None:
        super().__init__()
        cfg = config or LSTMConfig()
        self.config = cfg
        self.num_classes = num_classes
        self.lstm = _single_bias_lstm(cfg.fields, cfg.units)
        self.head = nn.Sequential(
            nn.Linear(cfg.units, cfg.hidden),
            nn.ReLU(),
            nn.Linear(cfg.hidden, num_classes),
        )
        self.reset_parameters()

    def reset_parameters(self) -> None:
        """Keras' defaults (torch's gate order i, f, g, o matches Keras' i, f, c, o)."""
        units = self.config.units
        with torch.no_grad():
            nn.init.xavier_uniform_(self.lstm.weight_ih_l0)
            nn.init.orthogonal_(self.lstm.weight_hh_l0)
            self.lstm.bias_ih_l0.zero_()
            self.lstm.bias_ih_l0[units : 2 * units] = 1.0
        for module in self.head:
            if isinstance(module, nn.Linear):
                nn.init.xavier_uniform_(module.weight)
                nn.init.zeros_(module.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _, (h, _) = self.lstm(x)
        return self.head(h[-1])
