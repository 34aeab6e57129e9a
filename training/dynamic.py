"""Learned layer widths by noise injection (arXiv:2601.13704) and the dynamic VAD network.

A *dynamic width* is one learnable scalar ``theta`` per layer mapped to a continuous width

    K = n_min + (n_max - n_min) * sigmoid(theta)          (n_min <= K <= n_max)

Of the layer's ``n_max`` output channels, in their fixed index order, during training:

* channels ``j < floor(K)`` pass unchanged;
* channel ``j = floor(K)`` becomes ``sqrt(l) * x + sqrt(1 - l) * sigma_j * noise`` with
  ``l = K - floor(K)`` clamped to ``[EPS_L, 1 - EPS_L]`` (so both square roots have finite
  gradients), ``noise ~ N(0, 1)`` drawn fresh for every element at every step, and
  ``sigma_j`` the channel's running standard deviation (exponential moving averages of the
  batch mean and variance with momentum ``STATS_MOMENTUM``, buffers detached from the graph,
  updated *after* the step's forward pass, so the noise of a step does not depend on that
  step's widths and the gradient reaches K only through ``l``);
* channels ``j > floor(K)`` are zero.

So the information the layer passes grows continuously with K, and the task loss has a
gradient with respect to K (through ``l``). ``floor(K)`` itself is piecewise constant; when
K crosses an integer the noisy channel moves on by one.

Where the widths sit in ``DynamicVAD`` (``training.model.FrozenVAD``'s layers at their
maximum widths):

* ``input``: on ``relu(inp(x))``. The depthwise conv is per channel, but its bias would make
  a dropped channel non-zero, so its output is multiplied by the keep mask (channels
  ``<= floor(K)``): a consolidated net has no such channel at all.
* ``conv``: on ``relu(pw(y))``, the GRU's input.
* ``gru``: on the GRU's hidden state *as every reader sees it*: the other units (through
  the recurrent weights, and the partial unit itself) and the read-out. Units above
  ``floor(K)`` have their recurrent weight columns zeroed (nobody reads them, so the kept
  units follow exactly a narrower GRU). The partial unit ``f``'s state is read as
  ``sqrt(l) * h_f + sqrt(1 - l) * sigma_f * noise``, with the SAME noise sample seen by the
  read-out at frame t and by the recurrence at frame t+1. This is a real bottleneck: the
  next weights cannot undo it (an attenuation alone could be undone by larger weights, so
  its gradient would measure attenuation, not information). It runs in the fused
  ``torch._VF.gru`` kernel (a Python loop over time would be ~2x slower): the GRU is run
  one unit wider, and that extra *noise unit* is wired to hold ``noise / c`` exactly (its
  update gate is shut by a bias of ``-NOISE_GATE_BIAS``, its candidate is ``tanh(u)`` with
  ``u = atanh(noise / c)`` fed as an extra input, ``c`` a detached bound on ``|noise|``), and
  every reader of unit f also reads the noise unit with ``c`` times unit f's weights.

Evaluation and consolidation (one rule, ``DynamicWidth.consolidation_scales``): a layer
keeps ``n`` whole channels (``eval_width``: ``round_half_up(K)``, i.e. the partial channel
is kept when it carries at least half of its signal; budget mode may lower ``n`` further).
The consolidated net matches the trained one *in expectation over the noise*: a kept
channel passes with its training scale (``sqrt(l)`` for the partial one, folded into the
next layer's weights), and a dropped channel that carried signal in training contributes
its mean (training scale x running mean) to the next layer's bias. ``slice_into_frozen``
folds exactly that into a ``FrozenVAD``, and ``DynamicVAD`` in eval mode computes the same
function (tested to 1e-5).

Complexity: ``DynamicVAD.cost(coefficients)`` is ``vad.core.costmodel.linear_cost`` at the
continuous widths (a tensor, differentiable, bilinear in consecutive widths): with
``flop_coefficients`` it is the FLOP count that also reports the frozen model's FLOPs, with
a measured ``CostModel`` the microseconds per frame on this machine. The front end's cost
does not depend on the widths (it is the cost model's constant).
"""

from __future__ import annotations

import math

import torch
from torch import nn
from vad.training.model import ArchConfig, FrozenVAD, add_layers, slice_channels

from vad.core.costmodel import flop_coefficients, linear_cost

EPS_L = 1e-3
STATS_MOMENTUM = 0.05
INIT_WIDTH_FRACTION = 0.95  # K starts near n_max: the search removes channels
WIDTH_NAMES = ("input", "conv", "gru")
NOISE_GATE_BIAS = 1e4  # update-gate bias of the GRU's noise unit: sigmoid(-1e4) == 0 in float32/64
NOISE_BOUND_FACTOR = 2.0  # |noise / c| <= 1 / NOISE_BOUND_FACTOR, well inside atanh's domain


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
        self.register_buffer("running_mean", torch.zeros(n_max))
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

    def _train_masks(self, device=None):
        """(signal scale [n_max], keep [n_max], partial index f or -1, l or None) of the training rule."""
        n = self.n_max
        idx = torch.arange(n, device=device)
        if int(self.fixed) >= 0:
            m = (idx < int(self.fixed)).to(self.theta.dtype)
            return m, m, -1, None
        k = self.width()
        f = int(torch.floor(k.detach()))
        if f >= n:  # K == n_max exactly: everything passes
            ones = torch.ones(n, device=device, dtype=self.theta.dtype)
            return ones, ones, -1, None
        l_frac = (k - f).clamp(EPS_L, 1.0 - EPS_L)
        keep = (idx <= f).to(self.theta.dtype)
        below = (idx < f).to(self.theta.dtype)
        partial = (idx == f).to(self.theta.dtype)
        return below + partial * torch.sqrt(l_frac), keep, f, l_frac

    def masks(self, device=None):
        """Training mode: ``_train_masks``; eval mode: the hard keep mask of ``eval_width``.

        ``signal_scale`` multiplies the channels (1 kept, sqrt(l) partial, 0 dropped);
        ``keep`` is 1 for every channel that exists in the net (kept or partial).
        """
        if self.training:
            return self._train_masks(device)
        m = (torch.arange(self.n_max, device=device) < self.eval_width()).to(self.theta.dtype)
        return m, m, -1, None

    def consolidation_scales(self, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """What a net keeping ``n`` whole channels passes on, in expectation over the noise.

        Returns (kept_scale [n_max], dropped_mean [n_max]), detached: a kept channel ``j < n``
        passes ``kept_scale[j] * x_j`` (its training scale: 1, or sqrt(l) for the partial one);
        a dropped channel ``j >= n`` is replaced by the constant ``dropped_mean[j]`` (training
        scale x running mean; 0 for channels that were silent in training).
        """
        with torch.no_grad():
            scale = self._train_masks()[0].detach()
            kept = torch.arange(self.n_max) < n
            return scale * kept, scale * self.running_mean * ~kept

    def update_stats(self, x: torch.Tensor) -> None:
        """EMA of each channel's mean and variance over all but the last axis (training only)."""
        with torch.no_grad():
            flat = x.detach().reshape(-1, self.n_max)
            self.running_mean.mul_(1.0 - STATS_MOMENTUM).add_(STATS_MOMENTUM * flat.mean(dim=0))
            self.running_var.mul_(1.0 - STATS_MOMENTUM).add_(STATS_MOMENTUM * flat.var(dim=0, unbiased=False))

    def noise_std(self, f: int, l_frac: torch.Tensor) -> torch.Tensor:
        """sqrt(1 - l) * sigma_f: the standard deviation of the partial channel's noise."""
        return torch.sqrt(1.0 - l_frac) * self.running_var[f].clamp_min(0.0).sqrt()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Apply the width to ``x[..., n_max]``: noise on the partial channel in training,
        the expected signal (``consolidation_scales``) in eval mode."""
        if not self.training:
            kept, dropped = self.consolidation_scales(self.eval_width())
            return x * kept.to(x.dtype) + dropped.to(x.dtype)
        scale, _keep, f, l_frac = self._train_masks(x.device)
        y = x * scale
        if f >= 0:
            noise = torch.randn(x.shape[:-1], device=x.device, dtype=x.dtype) * self.noise_std(f, l_frac)
            y = y + noise.unsqueeze(-1) * _one_hot(f, self.n_max, x)
        self.update_stats(x)
        return y

    def extra_repr(self) -> str:
        return f"n_min={self.n_min}, n_max={self.n_max}"


def _one_hot(index: int, n: int, like: torch.Tensor) -> torch.Tensor:
    v = torch.zeros(n, device=like.device, dtype=like.dtype)
    v[index] = 1.0
    return v


def _gru_sequence(z, w_ih, w_hh, b_ih, b_hh, hidden: int, training: bool) -> torch.Tensor:
    """One-layer GRU over ``z`` [B, T, in] from zero state with explicit weights (fused kernel)."""
    h0 = torch.zeros(1, z.shape[0], hidden, device=z.device, dtype=z.dtype)
    out, _h = torch._VF.gru(z, h0, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, training, False, True)
    return out


def dynamic_gru(gru: nn.GRU, width: DynamicWidth, z: torch.Tensor) -> torch.Tensor:
    """Run ``gru`` on ``z`` [B, T, in] under the dynamic hidden width ``width``.

    Returns the hidden states as the read-out sees them, [B, T, hidden]: in training with
    the partial unit's noise (the same noise the recurrence sees, module doc), in eval mode
    the expected signal (kept units at their training scale, dropped units' mean folded into
    the recurrent bias and returned as constants for the read-out's bias).
    """
    hid, n_in = gru.hidden_size, gru.input_size
    w_ih, w_hh, b_ih, b_hh = gru.weight_ih_l0, gru.weight_hh_l0, gru.bias_ih_l0, gru.bias_hh_l0
    if not width.training:
        kept, dropped = (v.to(z.dtype) for v in width.consolidation_scales(width.eval_width()))
        g = _gru_sequence(z, w_ih, w_hh * kept, b_ih, b_hh + w_hh @ dropped, hid, False)
        return g * kept + dropped
    scale, _keep, f, l_frac = width._train_masks(z.device)
    if f < 0:
        g = _gru_sequence(z, w_ih, w_hh * scale, b_ih, b_hh, hid, True)
        width.update_stats(g)
        return g * scale
    noise = torch.randn(z.shape[:-1], device=z.device, dtype=z.dtype) * width.noise_std(f, l_frac)  # [B, T]
    bound = NOISE_BOUND_FACTOR * float(noise.detach().abs().max()) + 1e-6  # c: detached
    u = torch.atanh(noise / bound)  # the noise unit's candidate is tanh(u) = noise / c
    z_aug = torch.cat([z, u.unsqueeze(-1)], dim=-1)
    dt = z.dtype
    ih = w_ih.view(3, hid, n_in)
    ih_noise_row = torch.zeros(3, 1, n_in + 1, dtype=dt, device=z.device)
    ih_noise_row[2, 0, n_in] = 1.0  # candidate gate n of the noise unit reads u
    w_ih_aug = torch.cat([torch.cat([ih, torch.zeros(3, hid, 1, dtype=dt, device=z.device)], 2), ih_noise_row], 1)
    hh = w_hh.view(3, hid, hid)
    readers = torch.cat([hh * scale, hh[:, :, f : f + 1] * bound], 2)  # unit f read as s*h_f + noise
    w_hh_aug = torch.cat([readers, torch.zeros(3, 1, hid + 1, dtype=dt, device=z.device)], 1)
    gate_bias = torch.tensor([[0.0], [-NOISE_GATE_BIAS], [0.0]], dtype=dt, device=z.device)  # z gate shut
    b_ih_aug = torch.cat([b_ih.view(3, hid), gate_bias], 1)
    b_hh_aug = torch.cat([b_hh.view(3, hid), torch.zeros(3, 1, dtype=dt, device=z.device)], 1)
    out = _gru_sequence(
        z_aug, w_ih_aug.reshape(3 * (hid + 1), n_in + 1), w_hh_aug.reshape(3 * (hid + 1), hid + 1),
        b_ih_aug.reshape(-1), b_hh_aug.reshape(-1), hid + 1, True,
    )
    g = out[..., :hid]
    seen_noise = out[..., hid] * bound  # == noise (the unit holds noise / c)
    width.update_stats(g)
    return g * scale + seen_noise.unsqueeze(-1) * _one_hot(f, hid, g)


def dropped_depthwise_mean(width: DynamicWidth, n: int, dw: nn.Conv1d) -> torch.Tensor:
    """[n_max] constant output of the depthwise conv for input channels ``>= n`` (0 for kept ones).

    A dropped channel that existed in training (keep mask) feeds its mean through the
    per-channel conv: mean * sum of the taps + bias; a channel silent in training gives 0.
    """
    with torch.no_grad():
        _kept, dropped = width.consolidation_scales(n)
        existed = width._train_masks()[1].detach() > 0
        idx = torch.arange(width.n_max)
        value = dropped * dw.weight.sum(dim=(1, 2)) + dw.bias
        return value * (existed & (idx >= n))


class DynamicVAD(nn.Module):
    """FrozenVAD's layers at maximum widths with dynamic widths on input, conv and gru.

    Parameter names match ``FrozenVAD`` (``inp``, ``dw``, ``pw``, ``gru``, ``out``,
    ``feat_mean``, ``feat_std``) so consolidation is slicing plus the folds of the module
    doc. Forward takes whole sequences ``[B, T, F]`` from zero state and returns
    probabilities ``[B, T]`` (``logits`` returns the pre-sigmoid values, for the BCE loss).
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

    def cost(self, coefficients: dict[str, float]) -> torch.Tensor:
        """Differentiable cost per frame at the continuous widths (``vad.core.costmodel``)."""
        w = self.widths
        return linear_cost(coefficients, w["input"].width(), w["conv"].width(), w["gru"].width())

    def flop_coefficients(self) -> dict[str, float]:
        return flop_coefficients(self.arch.n_features, self.arch.conv_kernel_frames)

    def flops_per_frame(self) -> torch.Tensor:
        """Differentiable network FLOPs per frame at the continuous widths."""
        return self.cost(self.flop_coefficients())

    # --- forward ------------------------------------------------------------------------
    def logits(self, features: torch.Tensor) -> torch.Tensor:
        wi, wc, wg = self.widths["input"], self.widths["conv"], self.widths["gru"]
        x = (features - self.feat_mean) / self.feat_std
        x = wi(torch.relu(self.inp(x)))  # [B, T, c1]
        pad = self.arch.conv_kernel_frames - 1
        y = self.dw(nn.functional.pad(x.transpose(1, 2), (pad, 0))).transpose(1, 2)
        if self.training:
            y = y * wi.masks(x.device)[1]
        else:  # kept channels, plus the constant a dropped channel contributes (as consolidated)
            n = wi.eval_width()
            y = y * (torch.arange(wi.n_max, device=x.device) < n).to(y.dtype) + dropped_depthwise_mean(wi, n, self.dw)
        z = wc(torch.relu(self.pw(y)))
        return self.out(dynamic_gru(self.gru, wg, z)).squeeze(-1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.logits(features))


def slice_into_frozen(model: DynamicVAD, widths: dict[str, int]) -> FrozenVAD:
    """A FrozenVAD of the first ``widths[...]`` channels of every dynamic layer, with the folds.

    Kept channels' training scales go into the next layer's weights, dropped channels' means
    into its bias (module doc), so the result computes exactly what ``model`` computes in
    eval mode at those widths, which is the trained network in expectation over the noise.
    """
    a = model.arch
    c1, c2, h = int(widths["input"]), int(widths["conv"]), int(widths["gru"])
    frozen = slice_channels(model, {name: torch.arange(int(widths[name])) for name in WIDTH_NAMES})
    src = model
    wi, wc, wg = (src.widths[name] for name in WIDTH_NAMES)
    keep_in, _drop_in = wi.consolidation_scales(c1)
    keep_conv, drop_conv = wc.consolidation_scales(c2)
    keep_gru, drop_gru = wg.consolidation_scales(h)
    y_dropped = dropped_depthwise_mean(wi, c1, src.dw)
    gate_rows = torch.cat([torch.arange(h) + i * a.gru_width for i in range(3)])  # r, z, n blocks
    with torch.no_grad():  # the folds on top of the plain slice
        w_ih = src.gru.weight_ih_l0[gate_rows]
        w_hh = src.gru.weight_hh_l0[gate_rows]
        frozen.dw.weight.mul_(keep_in[:c1, None, None])
        frozen.pw.bias.add_(src.pw.weight[:c2, c1:] @ y_dropped[c1:])
        frozen.gru.weight_ih_l0.mul_(keep_conv[:c2])
        frozen.gru.bias_ih_l0.add_(w_ih[:, c2:] @ drop_conv[c2:])
        frozen.gru.weight_hh_l0.mul_(keep_gru[:h])
        frozen.gru.bias_hh_l0.add_(w_hh[:, h:] @ drop_gru[h:])
        frozen.out.weight.mul_(keep_gru[:h])
        frozen.out.bias.add_(src.out.weight[:, h:] @ drop_gru[h:])
    return frozen
