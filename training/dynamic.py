"""Learned layer widths by noise injection (arXiv:2601.13704) and the dynamic VAD network.

A *dynamic width* is one learnable scalar ``theta`` per layer mapped to a continuous width

    K = n_min + (n_max - n_min) * sigmoid(theta)          (n_min <= K <= n_max)

Of the layer's ``n_max`` output channels, in their fixed index order, during training:

* channels ``j < floor(K)`` pass unchanged;
* channel ``j = floor(K)`` becomes ``sqrt(l) * x + sqrt(1 - l) * sigma_j * noise`` with
  ``l = K - floor(K)`` clamped to ``[EPS_L, 1 - EPS_L]`` (so both square roots have finite
  gradients), ``noise ~ N(0, 1)`` drawn fresh for every element at every step, and
  ``sigma_j`` the channel's running standard deviation (an exponential moving average of
  the batch standard deviation with momentum ``SIGMA_MOMENTUM``, kept as a buffer and
  detached from the graph, so the noise has the channel's own scale and the gradient
  reaches K only through ``l``);
* channels ``j > floor(K)`` are zero.

So the information the layer passes grows continuously with K, and the task loss has a
gradient with respect to K (through ``l``). ``floor(K)`` itself is piecewise constant; when
K crosses an integer the noisy channel moves on by one.

Evaluation rule (``eval()`` mode and consolidation): the layer keeps whole channels,
``n = round_half_up(K) = floor(K + 0.5)`` clipped to ``[n_min, n_max]``: the partial channel
is kept when it carries at least half of its signal (``l >= 0.5``). No noise at evaluation.
Consolidation (``training.consolidate``) slices exactly these ``n`` channels, so the
evaluated dynamic network and the frozen one compute the same function (tested). In
budget mode consolidation may round further down to meet the budget exactly.

``DynamicVAD`` has the layers of ``training.model.FrozenVAD`` at their maximum widths, with
dynamic widths on: the input projection's output (``input``), the pointwise conv's output
(``conv``) and the GRU hidden width (``gru``). Where the masks go:

* ``input``: applied to ``relu(inp(x))`` (noise on the partial channel). The depthwise
  conv is per channel, but its bias would make a dropped channel non-zero, so its output
  is multiplied by the hard keep mask (channels ``<= floor(K)`` in training, ``< n`` at
  evaluation) -- a consolidated net has no such channel at all.
* ``conv``: applied to ``relu(pw(y))``, the GRU's input: dropped input columns of the GRU
  see zeros, as if they were sliced away.
* ``gru``: a consolidated GRU of width ``h`` is reproduced inside the full-width GRU by
  zeroing the recurrent weight *columns* of units ``>= h`` (``W_hh[:, j] = 0``): the kept
  units then never read the dropped ones, so their trajectory is exactly that of a width-h
  GRU; the dropped units still run but nothing reads them, and the output read (``out``)
  is masked the same way. The partial unit ``floor(K)`` has its recurrent column scaled by
  ``sqrt(l)`` and its output read is ``sqrt(l) * h + sqrt(1 - l) * sigma * noise``. (Noise
  injected *inside* the recurrence at every step needs a Python loop over time: measured
  0.093 s vs 0.049 s forward+backward for batch 64 x 200 frames, width 48, 2 threads, i.e.
  about 2x slower than the fused ``torch._VF.gru`` kernel used
  here; the deterministic ``sqrt(l)`` attenuation keeps the recurrence consistent with a
  whole-unit GRU at both ends, l -> 0 and l -> 1.)

Complexity: ``flops_per_second(K)`` is ``training.model.flops_per_frame`` evaluated on the
continuous widths (a tensor, differentiable, bilinear in consecutive widths) times frames per
second -- the same counter that reports the frozen model's FLOPs. The front end's FLOPs
(``FeatureSpec.flops_per_second()``) do not depend on the widths and are reported separately.
"""

from __future__ import annotations

import math

import torch
from torch import nn
from vad.training.model import ArchConfig, FrozenVAD, add_layers, flops_per_frame, slice_channels

EPS_L = 1e-3
SIGMA_MOMENTUM = 0.05
INIT_WIDTH_FRACTION = 0.95  # K starts near n_max: the search removes channels
WIDTH_NAMES = ("input", "conv", "gru")


class DynamicWidth(nn.Module):
    """One learnable width K in [n_min, n_max] over the last axis of a tensor (see module doc)."""

    def __init__(self, n_max: int, n_min: int = 1, init_fraction: float = INIT_WIDTH_FRACTION):
        super().__init__()
        if not 1 <= n_min <= n_max:
            raise ValueError(f"DynamicWidth: need 1 <= n_min ({n_min}) <= n_max ({n_max})")
        if not 0.0 < init_fraction < 1.0:
            raise ValueError(f"DynamicWidth: init_fraction={init_fraction} must be in (0, 1)")
        self.n_max = int(n_max)
        self.n_min = int(n_min)
        self.theta = nn.Parameter(torch.tensor(math.log(init_fraction / (1.0 - init_fraction))))
        self.register_buffer("running_var", torch.ones(n_max))
        self.register_buffer("fixed", torch.tensor(-1))  # >= 0: width frozen at this value

    def width(self) -> torch.Tensor:
        """Continuous K (a differentiable scalar tensor)."""
        if int(self.fixed) >= 0:
            return self.fixed.to(self.theta.dtype)
        return self.n_min + (self.n_max - self.n_min) * torch.sigmoid(self.theta)

    def eval_width(self) -> int:
        """Whole channels kept at evaluation: round half up, clipped to [n_min, n_max]."""
        if int(self.fixed) >= 0:
            return int(self.fixed)
        k = float(self.width().detach())
        return max(self.n_min, min(self.n_max, int(math.floor(k + 0.5))))

    def set_width(self, value: float) -> None:
        """Move K to ``value`` (the sigmoid is inverted; value is clipped into the open range)."""
        span = self.n_max - self.n_min
        if span == 0:
            return
        frac = min(max((value - self.n_min) / span, 1e-4), 1 - 1e-4)
        with torch.no_grad():
            self.theta.fill_(math.log(frac / (1.0 - frac)))

    def freeze(self, n: int) -> None:
        """Fix the width at ``n`` whole channels (fine-tuning / fixed-width baselines)."""
        if not self.n_min <= n <= self.n_max:
            raise ValueError(f"DynamicWidth.freeze: n={n} outside [{self.n_min}, {self.n_max}]")
        self.fixed.fill_(int(n))
        self.theta.requires_grad_(False)

    def _parts(self):
        """(floor index f, l tensor) in training; l has gradient to theta."""
        k = self.width()
        f = int(torch.floor(k.detach()))
        l_frac = (k - f).clamp(EPS_L, 1.0 - EPS_L)
        return f, l_frac

    def masks(self, device=None):
        """(signal_scale [n_max], keep [n_max], partial index or -1, l or None).

        ``signal_scale`` multiplies the channels (1 kept, sqrt(l) partial, 0 dropped);
        ``keep`` is 1 for every channel that exists in the net (kept or partial).
        """
        n = self.n_max
        idx = torch.arange(n, device=device)
        if not self.training or int(self.fixed) >= 0:
            m = (idx < self.eval_width()).to(self.theta.dtype)
            return m, m, -1, None
        f, l_frac = self._parts()
        if f >= n:  # K == n_max exactly: everything passes
            ones = torch.ones(n, device=device, dtype=self.theta.dtype)
            return ones, ones, -1, None
        keep = (idx <= f).to(self.theta.dtype)
        below = (idx < f).to(self.theta.dtype)
        partial = (idx == f).to(self.theta.dtype)
        scale = below + partial * torch.sqrt(l_frac)
        return scale, keep, f, l_frac

    def update_sigma(self, x: torch.Tensor) -> None:
        """EMA of each channel's variance over all but the last axis (training only)."""
        with torch.no_grad():
            var = x.detach().reshape(-1, self.n_max).var(dim=0, unbiased=False)
            self.running_var.mul_(1.0 - SIGMA_MOMENTUM).add_(SIGMA_MOMENTUM * var)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the width to ``x[..., n_max]`` (noise on the partial channel in training)."""
        if self.training:
            self.update_sigma(x)
        scale, _keep, f, l_frac = self.masks(x.device)
        y = x * scale
        if f >= 0:
            sigma = self.running_var[f].clamp_min(0.0).sqrt()
            noise = torch.randn(x.shape[:-1], device=x.device, dtype=x.dtype)
            inject = torch.zeros(self.n_max, device=x.device, dtype=x.dtype)
            inject[f] = 1.0
            y = y + (torch.sqrt(1.0 - l_frac) * sigma * noise).unsqueeze(-1) * inject
        return y

    def extra_repr(self) -> str:
        return f"n_min={self.n_min}, n_max={self.n_max}"


class DynamicVAD(nn.Module):
    """FrozenVAD's layers at maximum widths with dynamic widths on input, conv and gru.

    Parameter names match ``FrozenVAD`` (``inp``, ``dw``, ``pw``, ``gru``, ``out``,
    ``feat_mean``, ``feat_std``) so consolidation is plain slicing. Forward takes whole
    sequences ``[B, T, F]`` from zero state and returns probabilities ``[B, T]``
    (``logits`` returns the pre-sigmoid values, for the BCE loss).
    """

    def __init__(self, arch: ArchConfig, min_widths: dict[str, int] | None = None):
        super().__init__()
        self.arch = arch
        mins = {name: 1 for name in WIDTH_NAMES}
        mins.update(min_widths or {})
        add_layers(self, arch)
        c1, c2, h = arch.input_width, arch.conv_width, arch.gru_width
        self.widths = nn.ModuleDict(
            {
                "input": DynamicWidth(c1, mins["input"]),
                "conv": DynamicWidth(c2, mins["conv"]),
                "gru": DynamicWidth(h, mins["gru"]),
            }
        )

    # --- widths and complexity ----------------------------------------------------------
    def width_parameters(self) -> list[nn.Parameter]:
        return [w.theta for w in self.widths.values()]

    def weight_parameters(self) -> list[nn.Parameter]:
        ids = {id(p) for p in self.width_parameters()}
        return [p for p in self.parameters() if id(p) not in ids]

    def continuous_widths(self) -> dict[str, float]:
        return {name: float(w.width().detach()) for name, w in self.widths.items()}

    def eval_widths(self) -> dict[str, int]:
        return {name: w.eval_width() for name, w in self.widths.items()}

    def flops_per_frame(self) -> torch.Tensor:
        """Differentiable network FLOPs per frame at the continuous widths."""
        w = self.widths
        return flops_per_frame(
            self.arch.n_features, w["input"].width(), w["conv"].width(), w["gru"].width(), self.arch.conv_kernel_frames
        )

    def max_flops_per_frame(self) -> float:
        a = self.arch
        return float(flops_per_frame(a.n_features, a.input_width, a.conv_width, a.gru_width, a.conv_kernel_frames))

    def min_flops_per_frame(self) -> float:
        w = self.widths
        return float(
            flops_per_frame(
                self.arch.n_features, w["input"].n_min, w["conv"].n_min, w["gru"].n_min, self.arch.conv_kernel_frames
            )
        )

    # --- forward ------------------------------------------------------------------------
    def logits(self, features: torch.Tensor) -> torch.Tensor:
        wi, wc, wg = self.widths["input"], self.widths["conv"], self.widths["gru"]
        x = (features - self.feat_mean) / self.feat_std
        x = wi(torch.relu(self.inp(x)))  # [B, T, c1]
        _s, keep_in, _f, _l = wi.masks(x.device)
        pad = self.arch.conv_kernel_frames - 1
        y = self.dw(nn.functional.pad(x.transpose(1, 2), (pad, 0))).transpose(1, 2) * keep_in
        z = wc(torch.relu(self.pw(y)))
        # GRU of (continuous) width K: zero the recurrent columns of dropped units
        scale, _keep, f, l_frac = wg.masks(z.device)
        g = self._gru_run(z, scale)
        if self.training:
            wg.update_sigma(g)
        read = g * scale
        if f >= 0:
            sigma = wg.running_var[f].clamp_min(0.0).sqrt()
            noise = torch.randn(g.shape[:-1], device=g.device, dtype=g.dtype)
            inject = torch.zeros(self.arch.gru_width, device=g.device, dtype=g.dtype)
            inject[f] = 1.0
            read = read + (torch.sqrt(1.0 - l_frac) * sigma * noise).unsqueeze(-1) * inject
        return self.out(read).squeeze(-1)

    def _gru_run(self, z: torch.Tensor, column_scale: torch.Tensor) -> torch.Tensor:
        g = self.gru
        w_hh = g.weight_hh_l0 * column_scale.unsqueeze(0)
        h0 = torch.zeros(1, z.shape[0], self.arch.gru_width, device=z.device, dtype=z.dtype)
        weights = [g.weight_ih_l0, w_hh, g.bias_ih_l0, g.bias_hh_l0]
        out, _h = torch._VF.gru(z, h0, weights, True, 1, 0.0, self.training, False, True)
        return out

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features))


def consolidate_widths(model: DynamicVAD) -> dict[str, int]:
    """The whole-channel widths the evaluation rule keeps (see module doc)."""
    return model.eval_widths()


def slice_into_frozen(model: DynamicVAD, widths: dict[str, int]) -> FrozenVAD:
    """A FrozenVAD holding the first ``widths[...]`` channels of every dynamic layer.

    The result computes exactly what ``model`` computes in eval mode with those widths.
    """
    return slice_channels(model, {name: torch.arange(int(widths[name])) for name in WIDTH_NAMES})
