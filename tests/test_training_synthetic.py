"""The method's key evidence on toy problems whose needed width is known.

* Input width: 16 input channels x ~ N(0, 1); the target is a fixed linear function of the
  FIRST m of them only (the dynamic width keeps channels in index order). A DynamicWidth on
  the input followed by a linear read-out is trained on MSE + alpha * K / N. Channels beyond
  m carry no information, so the complexity term removes them; removing channel m-1 costs
  about w^2 = 1 of loss per unit of width, far above alpha / N, so the width stops at m.
* Recurrent width: the target is the read-out of a teacher GRU of m units, each a leaky
  filter of its own input channel with its own decay (so no unit can stand in for another);
  a student GRU of 6 units under a dynamic hidden width keeps every needed unit and settles
  within one unit above m.
* The task gradient with respect to each width (FLOP term excluded, noise held fixed)
  matches finite differences, and the GRU's bottleneck cannot be undone by the next weights.
* Consolidation folds: the frozen net is the trained one in expectation over the noise.
"""

from __future__ import annotations

import copy
import math

import numpy as np
import pytest
import torch
from vad.training.dynamic import DynamicVAD, DynamicWidth, dynamic_gru, slice_into_frozen
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


def _partial_vad(dtype=torch.float32) -> DynamicVAD:
    torch.manual_seed(0)
    model = DynamicVAD(ArchConfig(input_width=12, conv_width=10, gru_width=9)).to(dtype)
    for name, k in (("input", 7.4), ("conv", 5.6), ("gru", 4.5)):
        model.widths[name].set_width(k)
    return model


def test_dynamic_vad_in_eval_mode_equals_its_consolidation():
    model = _partial_vad()
    x = torch.randn(2, 30, 40)
    model.train()
    for _ in range(20):  # running means/variances away from their initial values, so the folds matter
        model.logits(x)
    model.eval()
    assert model.eval_widths() == {"input": 7, "conv": 6, "gru": 5}
    frozen = slice_into_frozen(model, model.eval_widths()).eval()
    with torch.no_grad():
        p_dyn = model(x)
        p_frozen, _c, _g = frozen(x, *frozen.initial_state(2))
    assert float((p_dyn - p_frozen).abs().max()) < 1e-5


def _task_loss(model: DynamicVAD, x, y, seed: int) -> torch.Tensor:
    torch.manual_seed(seed)  # the same noise at every evaluation
    return torch.nn.functional.binary_cross_entropy_with_logits(model.logits(x), y)


@pytest.mark.parametrize("name", ["input", "conv", "gru"])
def test_task_gradient_wrt_width_matches_finite_differences(name, monkeypatch):
    """d(task loss)/dK by autograd (no FLOP term) has the sign and size of a central difference
    with the noise held fixed: the gradient through l is the task's, not the complexity term's."""
    monkeypatch.setattr(DynamicWidth, "update_stats", lambda self, x: None)  # noise scale held fixed
    model = _partial_vad(torch.float64).train()
    x = torch.randn(2, 30, 40, dtype=torch.float64) * 2.0
    y = (torch.rand(2, 30, dtype=torch.float64) > 0.5).to(torch.float64)
    for w in model.widths.values():
        w.running_var.fill_(0.5)
    theta = model.widths[name].theta
    loss = _task_loss(model, x, y, seed=7)
    (grad,) = torch.autograd.grad(loss, theta)
    step = 1e-4
    with torch.no_grad():
        theta += step
        up = float(_task_loss(model, x, y, seed=7))
        theta -= 2 * step
        down = float(_task_loss(model, x, y, seed=7))
        theta += step
    fd = (up - down) / (2 * step)
    assert abs(fd) > 1e-6, f"{name}: the width has no effect on the task loss"
    assert float(grad) == pytest.approx(fd, rel=1e-4), f"{name}: autograd {float(grad):.6g} vs difference {fd:.6g}"


# --- recurrent width ---------------------------------------------------------------------
GRU_INPUTS = 6
GRU_MAX = 6
GRU_FRAMES = 16
GRU_BATCH = 32
GRU_STEPS = 700
GRU_WIDTH_WARMUP = 200
GRU_ALPHA = 0.5
TEACHER_DECAYS = (0.0, 0.5, 0.75, 0.3, 0.6)
TEACHER_INPUT_GAIN = 1.5


def _teacher_gru(m: int) -> torch.nn.GRU:
    """m units, unit i = leaky filter of tanh(1.5 x_i) with decay TEACHER_DECAYS[i]; no unit reads another."""
    gru = torch.nn.GRU(GRU_INPUTS, m, batch_first=True)
    with torch.no_grad():
        for p in gru.parameters():
            p.zero_()
        for i, decay in enumerate(TEACHER_DECAYS[:m]):
            gru.weight_ih_l0[2 * m + i, i] = TEACHER_INPUT_GAIN  # candidate gate reads channel i
            gru.bias_ih_l0[m + i] = math.log(decay / (1 - decay)) if decay > 0 else -10.0  # update gate = decay
    return gru


def _teacher_data(teacher: torch.nn.GRU, gen: torch.Generator, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    x = torch.randn(n, GRU_FRAMES, GRU_INPUTS, generator=gen)
    with torch.no_grad():
        h, _ = teacher(x)
    h = h / h.reshape(-1, h.shape[-1]).std(dim=0)  # every unit carries the same share of the target
    signs = torch.tensor([(-1.0) ** i for i in range(h.shape[-1])])
    return x, (h * signs).sum(-1)


def _recurrent_search(m: int, seed: int) -> tuple[float, int, float]:
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(100 + seed)
    teacher = _teacher_gru(m)
    x_all, y_all = _teacher_data(teacher, gen, 2048)
    var_y = float(y_all.var())
    width = DynamicWidth(GRU_MAX)
    gru = torch.nn.GRU(GRU_INPUTS, GRU_MAX, batch_first=True)
    readout = torch.nn.Linear(GRU_MAX, 1)
    opt = torch.optim.AdamW([
        {"params": [*gru.parameters(), *readout.parameters()], "lr": 0.02, "weight_decay": 0.1},
        {"params": [width.theta], "lr": 0.03, "weight_decay": 0.0},
    ])
    for step in range(GRU_STEPS):
        opt.param_groups[1]["lr"] = 0.03 * min(1.0, (step + 1) / GRU_WIDTH_WARMUP)
        idx = torch.randint(0, x_all.shape[0], (GRU_BATCH,), generator=gen)
        pred = readout(dynamic_gru(gru, width, x_all[idx])).squeeze(-1)
        loss = torch.mean((pred - y_all[idx]) ** 2) / var_y + GRU_ALPHA * width.width() / GRU_MAX
        opt.zero_grad()
        loss.backward()
        opt.step()
    width.eval()
    x, y = _teacher_data(teacher, gen, 512)
    with torch.no_grad():
        rel_mse = float(torch.mean((readout(dynamic_gru(gru, width, x)).squeeze(-1) - y) ** 2) / torch.var(y))
    return float(width.width().detach()), width.eval_width(), rel_mse


@pytest.mark.slow
@pytest.mark.parametrize(("m", "seed"), [(2, 0), (4, 1)])
def test_gru_width_keeps_needed_units_and_settles_near_them(m, seed):
    k, n, rel_mse = _recurrent_search(m, seed)
    assert m <= n <= m + 1, f"needed {m} GRU units: learned K={k:.2f} -> {n} units"
    assert rel_mse < 0.05, f"accuracy lost: relative MSE {rel_mse:.3f} at {n} units (needed {m})"


def test_gru_bottleneck_cannot_be_undone_by_the_next_weights(monkeypatch):
    """Information that reaches the read-out only THROUGH the recurrence is limited by the width:
    unit 1 reads the input, unit 0 reads unit 1, the read-out reads unit 0 only. With unit 1
    partial (K = 1.5), scaling its recurrent column by 1/sqrt(l) undoes the attenuation but not
    the noise, so the loss stays above the clean one (an attenuation-only width would be undone)."""
    monkeypatch.setattr(DynamicWidth, "update_stats", lambda self, x: None)
    torch.manual_seed(0)
    gru = torch.nn.GRU(1, 2, batch_first=True)
    with torch.no_grad():
        for p in gru.parameters():
            p.zero_()
        gru.weight_ih_l0[2 * 2 + 1, 0] = 1.0  # unit 1's candidate reads the input
        gru.weight_hh_l0[2 * 2 + 0, 1] = 2.0  # unit 0's candidate reads unit 1
        gru.bias_ih_l0[2 + 1] = -10.0  # unit 1: no memory
    readout_w = torch.tensor([1.0, 0.0])
    x = torch.randn(64, 30, 1)
    width = DynamicWidth(2)
    width.freeze(2)
    with torch.no_grad():
        target = dynamic_gru(gru, width, x) @ readout_w
    width = DynamicWidth(2).train()
    width.set_width(1.5)
    width.running_var.fill_(float(torch.tanh(x).var()))
    l_frac = float(width.width().detach()) - 1.0
    with torch.no_grad():
        gru.weight_hh_l0[:, 1] /= l_frac**0.5  # the next weights undo the sqrt(l) attenuation
        losses = [float(torch.mean((dynamic_gru(gru, width, x) @ readout_w - target) ** 2)) for _ in range(20)]
    assert float(np.mean(losses)) > 0.05 * float(target.var()), "the partial unit's information was not limited"


# --- consolidation folds ---------------------------------------------------------------------
def _expected_training_logits(model: DynamicVAD, x: torch.Tensor, draws: int) -> torch.Tensor:
    """Training-mode logits averaged over ``draws`` noise draws (one pass over ``draws`` copies of the batch)."""
    model.train()
    with torch.no_grad():
        return model.logits(x.repeat(draws, 1, 1)).view(draws, *x.shape[:2]).mean(0)


def _frozen_logits(frozen, x: torch.Tensor) -> torch.Tensor:
    frozen = frozen.to(x.dtype).eval()
    with torch.no_grad():
        return frozen.logits(x, *(s.to(x.dtype) for s in frozen.initial_state(x.shape[0])))[0]


@pytest.mark.parametrize("widths", [{"input": 7.3, "conv": 5.4, "gru": 4.2}, {"input": 7.7, "conv": 5.6, "gru": 4.8}])
def test_consolidated_net_matches_the_trained_one_in_expectation(widths, monkeypatch):
    """Partial channels dropped (l < 0.5) or kept (l >= 0.5): the consolidated net (scale and
    mean folded) is much closer to the training-mode net averaged over the noise than plain
    slicing (partial channel passed as x, dropped ones as 0, as before issue 10): the remaining
    offset is the nonlinearity's (a mean through tanh/sigmoid gates), the plain slice's is the
    missing means and scales."""
    torch.manual_seed(0)
    model = DynamicVAD(ArchConfig(input_width=12, conv_width=10, gru_width=9)).double()
    for name, k in widths.items():
        model.widths[name].set_width(k)
    x = torch.randn(4, 40, 40, dtype=torch.float64)
    model.train()
    with torch.no_grad():
        for _ in range(30):  # running statistics of this data
            model.logits(x)
    monkeypatch.setattr(DynamicWidth, "update_stats", lambda self, x: None)
    expected = _expected_training_logits(model, x, draws=200)
    model.eval()
    n = model.eval_widths()
    folded = _frozen_logits(slice_into_frozen(model, n), x)
    plain_model = copy.deepcopy(model)
    for name, w in plain_model.widths.items():
        w.freeze(n[name])  # no training scale, no means: the plain slice
    plain = _frozen_logits(slice_into_frozen(plain_model, n), x)
    bias_folded = abs(float((folded - expected).mean()))  # systematic offset over all frames
    bias_plain = abs(float((plain - expected).mean()))
    assert bias_folded < 0.4 * bias_plain, (bias_folded, bias_plain)
    assert float((folded - expected).abs().mean()) < float((plain - expected).abs().mean())


def test_kept_partial_channel_fold_is_exact_in_expectation(monkeypatch):
    """The next layer's pre-activation (linear in the partial channel) of the consolidated net
    equals the training-mode one averaged over the noise, sample by sample."""
    monkeypatch.setattr(DynamicWidth, "update_stats", lambda self, x: None)
    torch.manual_seed(0)
    model = DynamicVAD(ArchConfig(input_width=6, conv_width=5, gru_width=4)).double()
    model.widths["input"].set_width(4.7)  # channel 4 partial, kept (l >= 0.5)
    model.widths["input"].running_var.fill_(0.3)
    x = torch.randn(2, 20, 40, dtype=torch.float64)
    captured = []
    draws = 4000
    handle = model.pw.register_forward_hook(lambda _m, _i, out: captured.append(out.detach()))
    _expected_training_logits(model, x, draws=draws)
    handle.remove()
    expected = captured[0].view(draws, *x.shape[:2], -1).mean(0)
    model.eval()
    frozen = slice_into_frozen(model, model.eval_widths()).double().eval()
    got = []
    frozen.pw.register_forward_hook(lambda _m, _i, out: got.append(out.detach()))
    _frozen_logits(frozen, x)
    c2 = frozen.arch.conv_width
    with torch.no_grad():
        noise_scale = float(model.widths["input"].running_var[4].sqrt() * model.dw.weight[4].abs().sum()
                            * model.pw.weight[:, 4].abs().max())
    assert float((got[0] - expected[..., :c2]).abs().max()) < 5 * noise_scale / draws**0.5


def test_fine_tuning_keeps_a_moving_average_of_its_weights_when_asked():
    """train_fixed(ema_decay=d): the net it returns is the exponential moving average of the weights
    after each step (decay min(d, (1 + t) / (10 + t)) at step t, started at the starting weights);
    the trained net itself goes on as without it."""
    from vad.training.consolidate import Schedule, train_fixed

    from tests.runtime_models import build_random_vad

    gen = torch.Generator().manual_seed(0)
    batches = [(torch.randn(4, 30, 40, generator=gen), (torch.rand(4, 30, generator=gen) > 0.5).float())
               for _ in range(6)]
    start = build_random_vad(seed=3, gain=1.0, input_width=8, conv_width=8, gru_width=8)
    plain, averaged = copy.deepcopy(start), copy.deepcopy(start)
    trajectory = []

    def sample(step):
        trajectory.append([p.detach().clone() for p in plain.parameters()])
        return batches[step]

    train_fixed(plain, sample, Schedule(0.01), max_steps=6)
    trajectory = trajectory[1:] + [[p.detach().clone() for p in plain.parameters()]]  # the weights after each step
    result = train_fixed(averaged, lambda step: batches[step], Schedule(0.01), max_steps=6, ema_decay=0.9)
    for p, q in zip(plain.parameters(), averaged.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=0, atol=0)  # the raw weights are unaffected
    want = [p.detach().clone() for p in start.parameters()]
    for t, after in enumerate(trajectory):
        decay = min(0.9, (1 + t) / (10 + t))
        want = [m + (1 - decay) * (a - m) for m, a in zip(want, after, strict=True)]
    for got, w in zip(result.model.parameters(), want, strict=True):
        torch.testing.assert_close(got, w, rtol=1e-6, atol=1e-7)
    assert max(float((g - p).abs().max()) for g, p in zip(result.model.parameters(), plain.parameters(), strict=True)) > 1e-4
