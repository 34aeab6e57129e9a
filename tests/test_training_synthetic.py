"""The method's key evidence: on a toy problem whose needed width is known, the learned
width settles at that width (+-1) while the task is still solved.

Toy: 16 input channels x ~ N(0, 1); the target is a fixed linear function of the FIRST m
of them only (the dynamic width keeps channels in index order). A DynamicWidth on the input
followed by a linear read-out is trained on MSE + alpha * K / N. Channels beyond m carry no
information, so the complexity term removes them; removing channel m-1 costs about
w^2 = 1 of loss per unit of width, far above alpha / N, so the width stops at m.
"""

from __future__ import annotations

import pytest
import torch
from vad.training.dynamic import DynamicVAD, DynamicWidth
from vad.training.model import ArchConfig

N_INPUTS = 16
ALPHA = 0.3
STEPS = 1500


def _search(m: int, seed: int) -> tuple[float, int, float]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(1000 + seed)
    signs = torch.where(torch.rand(m, generator=gen) < 0.5, -1.0, 1.0)
    w_true = signs * (0.8 + 0.4 * torch.rand(m, generator=gen))
    width = DynamicWidth(N_INPUTS)
    readout = torch.nn.Linear(N_INPUTS, 1)
    opt = torch.optim.Adam([{"params": readout.parameters(), "lr": 0.02}, {"params": [width.theta], "lr": 0.05}])
    for _ in range(STEPS):
        x = torch.randn(256, N_INPUTS, generator=gen)
        y = x[:, :m] @ w_true
        pred = readout(width(x)).squeeze(-1)
        loss = torch.mean((pred - y) ** 2) + ALPHA * width.width() / N_INPUTS
        opt.zero_grad()
        loss.backward()
        opt.step()
    width.eval()
    with torch.no_grad():
        x = torch.randn(4096, N_INPUTS, generator=gen)
        y = x[:, :m] @ w_true
        rel_mse = float(torch.mean((readout(width(x)).squeeze(-1) - y) ** 2) / torch.var(y))
    return float(width.width().detach()), width.eval_width(), rel_mse


@pytest.mark.parametrize(("m", "seed"), [(3, 0), (6, 1), (10, 2)])
def test_width_settles_at_needed_width(m, seed):
    k, n, rel_mse = _search(m, seed)
    assert abs(n - m) <= 1, f"needed width {m}: learned K={k:.2f} -> {n} channels"
    assert rel_mse < 0.05, f"accuracy lost: relative MSE {rel_mse:.3f} at width {n} (needed {m})"


def test_without_complexity_term_width_stays_large():
    """Control: the shrinking comes from the complexity term, not from the noise alone."""
    torch.manual_seed(0)
    width = DynamicWidth(N_INPUTS)
    start = float(width.width().detach())
    readout = torch.nn.Linear(N_INPUTS, 1)
    opt = torch.optim.Adam([{"params": readout.parameters(), "lr": 0.02}, {"params": [width.theta], "lr": 0.05}])
    for _ in range(300):
        x = torch.randn(256, N_INPUTS)
        loss = torch.mean((readout(width(x)).squeeze(-1) - x[:, :4].sum(1)) ** 2)
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert float(width.width().detach()) > start - 2.0


def test_noise_injection_matches_the_rule():
    """Training mode: first floor(K) pass, channel floor(K) = sqrt(l) x + noise, rest zero."""
    torch.manual_seed(0)
    width = DynamicWidth(8)
    width.set_width(3.25)
    x = torch.randn(20000, 8) * 2.0 + 1.0
    for _ in range(200):  # let the running variance settle
        width(x)
    y = width(x).detach()
    k = float(width.width().detach())
    lam = k - 3
    assert torch.equal(y[:, :3], x[:, :3])
    assert torch.all(y[:, 4:] == 0)
    resid = y[:, 3] - lam**0.5 * x[:, 3]
    assert abs(float(resid.mean())) < 0.05
    assert abs(float(resid.std()) - (1 - lam) ** 0.5 * 2.0) < 0.05
    width.eval()
    assert width.eval_width() == 3  # l = 0.25 < 0.5: the partial channel is dropped
    width.set_width(3.6)
    assert width.eval_width() == 4


def test_dynamic_vad_equals_its_consolidation_and_gradient_reaches_widths():
    from vad.training.dynamic import slice_into_frozen

    torch.manual_seed(0)
    model = DynamicVAD(ArchConfig(input_width=12, conv_width=10, gru_width=9))
    for name, k in (("input", 7.4), ("conv", 5.6), ("gru", 4.5)):
        model.widths[name].set_width(k)
    x = torch.randn(2, 30, 40)
    model.train()
    loss = model.logits(x).square().mean() + 1e-4 * model.flops_per_frame()
    loss.backward()
    for name, w in model.widths.items():
        assert w.theta.grad is not None and float(w.theta.grad) != 0.0, name
    model.eval()
    assert model.eval_widths() == {"input": 7, "conv": 6, "gru": 5}
    frozen = slice_into_frozen(model, model.eval_widths()).eval()
    with torch.no_grad():
        p_dyn = model(x)
        p_frozen, _c, _g = frozen(x, *frozen.initial_state(2))
    assert float((p_dyn - p_frozen).abs().max()) < 1e-5
