"""The frozen (consolidated) VAD network and its analytic FLOP count.

This is what consolidation produces (dropped channels removed for real) and what export
freezes into ONNX. The training-time network with learnable widths lives in
``training.dynamic``; it has the same layers at their maximum widths, and consolidation
slices its weights into a ``FrozenVAD`` with the chosen widths.

Architecture (causal, streamable frame by frame at the front end's hop, no lookahead):

    features [B, T, F]  (log-mel frames)
      -> (x - feat_mean) / feat_std                        per-band normalisation
      -> inp: Linear(F -> input_width), ReLU               dynamic width  (input projection)
      -> dw:  causal depthwise conv over time, kernel k    state: last k-1 frames of inp
      -> pw:  Linear(input_width -> conv_width), ReLU      dynamic width
      -> gru: GRU(conv_width -> gru_width)                 dynamic width; state: hidden
      -> out: Linear(gru_width -> 1), sigmoid              probability per frame

Streaming form: ``forward(features, state_conv, state_gru)`` returns
``(probability [B, T], state_conv_out [B, k-1, input_width], state_gru_out [B, gru_width])``;
a fresh stream starts from zero states. Input names follow ``vad.core.modelmeta``.

The FLOP count (a multiply-add = 2 FLOPs) is ``flops_per_frame``: it takes plain numbers
or torch tensors, so the same function is the differentiable complexity term in training
(bilinear in consecutive widths) and the frozen model's figure at export. A measured
latency model of this machine (``vad.core.costmodel.CostModel``) is linear in the same
width terms and takes its place with ``vad train --budget-us``.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import torch
from torch import nn

from vad.core.costmodel import flop_coefficients, linear_cost


@dataclasses.dataclass(frozen=True)
class ArchConfig:
    """Widths of the network. In training these are the maximum widths."""

    n_features: int = 40
    input_width: int = 32
    conv_width: int = 32
    gru_width: int = 32
    conv_kernel_frames: int = 4

    def __post_init__(self) -> None:
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"ArchConfig.{f.name}={value!r}: must be an integer >= 1")
        if self.conv_kernel_frames < 2:
            raise ValueError(f"ArchConfig.conv_kernel_frames={self.conv_kernel_frames}: must be >= 2")

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ArchConfig:
        return cls(**{k: int(v) for k, v in data.items()})

    @property
    def widths(self) -> dict[str, int]:
        return {"input": self.input_width, "conv": self.conv_width, "gru": self.gru_width}


def flops_per_frame(n_features, input_width, conv_width, gru_width, conv_kernel_frames):
    """Network FLOPs for one frame; widths may be ints, floats or tensors (differentiable).

    The count by layer is ``vad.core.costmodel.flop_coefficients``: the FLOPs are one linear
    cost over the width terms, like the measured microseconds of a ``CostModel``.
    """
    return linear_cost(flop_coefficients(n_features, conv_kernel_frames), input_width, conv_width, gru_width)


def network_flops_per_second(arch: ArchConfig, frames_per_second: float) -> float:
    return float(
        flops_per_frame(arch.n_features, arch.input_width, arch.conv_width, arch.gru_width, arch.conv_kernel_frames)
        * frames_per_second
    )


def add_layers(module: nn.Module, arch: ArchConfig) -> None:
    """Create the network's buffers and layers on ``module`` at ``arch``'s widths.

    Shared by FrozenVAD and training.dynamic.DynamicVAD (at its maximum widths), so the two
    have the same parameter names and shapes and consolidation is a plain slice.
    """
    c1, c2, h, k = arch.input_width, arch.conv_width, arch.gru_width, arch.conv_kernel_frames
    module.register_buffer("feat_mean", torch.zeros(arch.n_features))
    module.register_buffer("feat_std", torch.ones(arch.n_features))
    module.inp = nn.Linear(arch.n_features, c1)
    module.dw = nn.Conv1d(c1, c1, kernel_size=k, groups=c1)
    module.pw = nn.Linear(c1, c2)
    module.gru = nn.GRU(c2, h, batch_first=True)
    module.out = nn.Linear(h, 1)


class FrozenVAD(nn.Module):
    """The consolidated network at fixed widths (see module docstring)."""

    def __init__(self, arch: ArchConfig):
        super().__init__()
        self.arch = arch
        add_layers(self, arch)

    def initial_state(self, batch: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
        a = self.arch
        return (
            torch.zeros(batch, a.conv_kernel_frames - 1, a.input_width),
            torch.zeros(batch, a.gru_width),
        )

    def logits(self, features: torch.Tensor, state_conv: torch.Tensor, state_gru: torch.Tensor):
        """Like ``forward`` but returns the pre-sigmoid logits (for BCE on logits in training)."""
        x = (features - self.feat_mean) / self.feat_std
        x = torch.relu(self.inp(x))  # [B, T, c1]
        ctx = torch.cat([state_conv, x], dim=1)  # [B, k-1+T, c1]
        new_conv = ctx[:, 1 - self.arch.conv_kernel_frames :, :]  # the last k-1 frames (a constant ONNX Slice)
        y = self.dw(ctx.transpose(1, 2)).transpose(1, 2)  # [B, T, c1]
        z = torch.relu(self.pw(y))
        g, hn = self.gru(z, state_gru.unsqueeze(0))
        return self.out(g).squeeze(-1), new_conv, hn.squeeze(0)

    def forward(self, features: torch.Tensor, state_conv: torch.Tensor, state_gru: torch.Tensor):
        logits, new_conv, new_gru = self.logits(features, state_conv, state_gru)
        return torch.sigmoid(logits), new_conv, new_gru

    def parameter_count(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def flops_per_second(self, frames_per_second: float) -> float:
        return network_flops_per_second(self.arch, frames_per_second)


def slice_channels(src: nn.Module, keep: dict[str, torch.Tensor]) -> FrozenVAD:
    """A FrozenVAD holding channels ``keep["input"]``, ``keep["conv"]``, ``keep["gru"]`` (1-D
    index tensors, ascending) of ``src``'s layers.

    ``src`` is a FrozenVAD or a ``training.dynamic.DynamicVAD`` (same layers, ``add_layers``).
    The one slicing of this network: consolidation keeps the first n channels of each layer
    (``training.dynamic.slice_into_frozen``), the pruning baseline the n of largest magnitude
    (``training.report.magnitude_prune``). A GRU unit is its rows in all three gate blocks.
    """
    a = src.arch
    keep_in, keep_conv, keep_gru = (torch.as_tensor(keep[n], dtype=torch.long) for n in ("input", "conv", "gru"))
    frozen = FrozenVAD(ArchConfig(a.n_features, int(keep_in.numel()), int(keep_conv.numel()), int(keep_gru.numel()),
                                  a.conv_kernel_frames))
    gate_rows = torch.cat([keep_gru + i * a.gru_width for i in range(3)])  # r, z, n blocks
    with torch.no_grad():
        frozen.feat_mean.copy_(src.feat_mean)
        frozen.feat_std.copy_(src.feat_std)
        frozen.inp.weight.copy_(src.inp.weight[keep_in])
        frozen.inp.bias.copy_(src.inp.bias[keep_in])
        frozen.dw.weight.copy_(src.dw.weight[keep_in])
        frozen.dw.bias.copy_(src.dw.bias[keep_in])
        frozen.pw.weight.copy_(src.pw.weight[keep_conv][:, keep_in])
        frozen.pw.bias.copy_(src.pw.bias[keep_conv])
        frozen.gru.weight_ih_l0.copy_(src.gru.weight_ih_l0[gate_rows][:, keep_conv])
        frozen.gru.weight_hh_l0.copy_(src.gru.weight_hh_l0[gate_rows][:, keep_gru])
        frozen.gru.bias_ih_l0.copy_(src.gru.bias_ih_l0[gate_rows])
        frozen.gru.bias_hh_l0.copy_(src.gru.bias_hh_l0[gate_rows])
        frozen.out.weight.copy_(src.out.weight[:, keep_gru])
        frozen.out.bias.copy_(src.out.bias)
    return frozen
