"""The width-search training loop (nanoGPT style: one config, one loop, read top to bottom).

Three goals (exactly one of ``TrainConfig.target_auc`` / ``budget_mflops`` / ``budget_us``):

* **target** (``--target-auc A``): the smallest net (network FLOPs) whose held-out AUC >= A.
* **budget** (``--budget-mflops B``): the best net with network MFLOP/s <= B.
* **latency budget** (``--budget-us U``): the best net that runs in <= U microseconds per
  10 ms of audio on this machine, front end included, as predicted by the measured cost
  model of ``vad calibrate`` (``vad.core.costmodel.CostModel``, given as ``cost_model``).

The complexity ``C(K)`` is one linear cost over the width terms (``vad.core.costmodel``):
FLOPs per frame, or microseconds per frame, at the continuous widths K (differentiable).
The loss is ``BCE(logits) + alpha * C(K) / C_max`` (``C_max`` at the maximum widths), and
``alpha`` is the dual variable (Lagrange multiplier) of the goal's constraint, updated by
dual ascent in log space, clipped to ``[alpha_min, alpha_max]``:

* budget: every step ``log alpha += clip(dual_lr_budget * (C(K) - B) / B, +-dual_clip_budget)``
  (the constraint ``C <= B`` is known exactly at every step): alpha grows while the widths
  cost more than the budget and shrinks while they cost less, so the search settles on the
  budget and trades width between layers along it. The search starts from the uniform width
  fraction whose cost equals B.
* target: at every evaluation ``log alpha += clip(dual_lr_target * (AUC - A - target_margin),
  +-dual_clip_target)`` with AUC measured on the *select* half of validation: the further
  above the target, the faster the pressure to shrink grows; below it, alpha falls. No
  update during the width warm-up (an untrained net is below any target). The search starts
  near the maximum widths.

Optimisers: AdamW on the weights (linear warm-up over ``warmup_steps``, constant lr) and Adam
on the width parameters ``theta`` with ``width_lr`` warmed up linearly over
``width_warmup_steps``: Adam moves theta by about its lr per step whatever the gradient's
size, so the width lr, not alpha, sets how fast widths can move; the warm-up keeps them in
place while the weights learn what each channel is for.

Validation is split (``training.consolidate.split_validation``) into *select* and *check*.
Every ``eval_every_steps`` the widths are made whole (budget modes: fitted to the budget
exactly, ``fit_widths_to_budget``), consolidated (``slice_into_frozen``, with the folds) and
measured on *select*. Selection: budget modes keep the snapshot of best select AUC; target
mode keeps the smallest snapshot that meets A on select by itself AND on the mean of the
last ``target_snapshots`` snapshots (so one lucky snapshot does not qualify; ties: higher
AUC), else the best unmet one. The selected net is then trained at fixed widths
(``train_fixed``: ``finetune_fraction`` of the time, cosine lr, BCE on logits, evaluated on
select, the starting weights competing) and measured ONCE on *check*, which no decision
has seen. That figure is ``metrics["val_auc"]``; target mode requires at least
``min_check_minutes`` of check audio and reports the target met only when the check AUC is
>= A. ``run`` writes no model file for an unmet target unless ``write_unmet``.

Checkpoints (``torch.load(weights_only=True)``): ``<out_dir>/search.pt`` after every
evaluation (kind ``vad-dynamic``: model + optimiser state, config, controller, history, best
snapshot; ``--resume`` continues from it) and the consolidated result (``training.consolidate``
documents its fields).
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vad.training.consolidate import (
    CHECKPOINT_FORMAT_VERSION,
    DYNAMIC_KIND,
    GRAD_CLIP_NORM,
    SampleBatch,
    Schedule,
    ValData,
    atomic_torch_save,
    bce_on_logits,
    evaluate_auc,
    fit_widths_to_budget,
    frame_count,
    frozen_checkpoint,
    latency_entry,
    split_validation,
    train_fixed,
)
from vad.training.dynamic import WIDTH_NAMES, DynamicVAD, slice_into_frozen
from vad.training.model import ArchConfig, FrozenVAD

from vad.core.costmodel import CostModel, flop_coefficients, linear_cost
from vad.core.errors import InvalidInputError, VADError
from vad.core.features import FeatureSpec
from vad.core.modelmeta import MFLOP

US_BUDGET_HOP_MS = 10.0  # --budget-us is microseconds of compute per 10 ms of audio


class TargetNotMetError(VADError, RuntimeError):
    """The held-out AUC target was not reached in the time given."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a width search (stored in every checkpoint).

    Attributes:
        target_auc: target mode: smallest net with held-out ROC-AUC >= this.
        budget_mflops: budget mode: best net with network MFLOP/s <= this.
        budget_us: latency budget: best net with <= this many microseconds per 10 ms of
            audio on the calibrated machine (needs ``cost_model``).
        cost_model: ``CostModel.to_dict()`` of ``vad calibrate`` (budget_us only).
        max_minutes: wall-clock budget of search + fine-tuning (data preparation excluded).
        seed: seeds torch and the batch sampler.
        input_width / conv_width / gru_width: maximum widths of the dynamic layers.
        min_width: smallest width any dynamic layer may reach.
        conv_kernel_frames: depthwise conv kernel (frames of context).
        batch_size / window_frames: training batch of random windows (frames of 10 ms).
        lr / weight_decay / warmup_steps: AdamW on the weights.
        width_lr / width_warmup_steps: Adam on the width parameters theta, linear warm-up.
        eval_every_steps: validation + controller (target mode) + checkpoint period.
        max_steps: optional cap on search steps (tests, smoke runs).
        alpha_init / alpha_min / alpha_max: the dual variable's start and range.
        dual_lr_target / dual_clip_target: target mode's dual step per evaluation (log alpha
            per unit of AUC above target + margin) and its largest size.
        dual_lr_budget / dual_clip_budget: budget modes' dual step per training step (log
            alpha per relative excess over the budget) and its largest size.
        target_margin: target mode aims this far above the target.
        target_snapshots: target mode: consecutive snapshots whose mean select AUC must meet it.
        min_check_minutes: target mode: least held-out (check) audio to decide on.
        finetune_fraction: share of max_minutes for fixed-width fine-tuning after the search.
        finetune_lr: peak learning rate of the fine-tuning (cosine to 0).
        finetune_max_steps: optional cap on fine-tuning steps (tests).
        finetune_ema_decay: > 0: the fine-tuning evaluates and keeps an exponential moving
            average of its weights (``train_fixed``) with this decay per step; 0: off.
        nonspeech_weight: weight of the non-speech side of the loss (``bce_on_logits``; 1 = BCE).
        num_threads: torch intra-op threads. 1 by default: on this 2-core machine shared with
            other jobs, a batch 64 x 200 frames step took 0.13 s with 1 thread and 3.5 s with 2
            (threads spin-waiting on a busy core); the GRU's per-frame work is too small to split.
    """

    target_auc: float | None = None
    budget_mflops: float | None = None
    budget_us: float | None = None
    cost_model: dict[str, Any] | None = None
    max_minutes: float = 20.0
    seed: int = 0
    input_width: int = 48
    conv_width: int = 48
    gru_width: int = 48
    min_width: int = 1
    conv_kernel_frames: int = 4
    batch_size: int = 32
    window_frames: int = 512
    lr: float = 3e-3
    weight_decay: float = 1e-4
    warmup_steps: int = 100
    width_lr: float = 0.005
    width_warmup_steps: int = 500
    eval_every_steps: int = 100
    max_steps: int | None = None
    alpha_init: float = 0.05
    alpha_min: float = 1e-4
    alpha_max: float = 100.0
    dual_lr_target: float = 50.0
    dual_clip_target: float = 0.5
    dual_lr_budget: float = 1.0
    dual_clip_budget: float = 0.05
    target_margin: float = 0.002
    target_snapshots: int = 3
    min_check_minutes: float = 5.0
    finetune_fraction: float = 0.2
    finetune_lr: float = 1e-3
    finetune_max_steps: int | None = None
    finetune_ema_decay: float = 0.0
    nonspeech_weight: float = 1.0
    num_threads: int = 1

    def __post_init__(self) -> None:
        goals = [g for g in (self.target_auc, self.budget_mflops, self.budget_us) if g is not None]
        if len(goals) != 1:
            raise InvalidInputError(
                "give exactly one of target_auc (--target-auc), budget_mflops (--budget-mflops) or budget_us (--budget-us)"
            )
        if self.target_auc is not None and not 0.5 < self.target_auc < 1.0:
            raise InvalidInputError(f"target AUC {self.target_auc!r} must be in (0.5, 1)")
        for name, value in {"budget_mflops": self.budget_mflops, "budget_us": self.budget_us}.items():
            if value is not None and not (math.isfinite(value) and value > 0):
                raise InvalidInputError(f"{name}={value!r} must be a positive number")
        if self.budget_us is not None and self.cost_model is None:
            raise InvalidInputError("budget_us needs a cost model: measure this machine with `vad calibrate`")
        if self.cost_model is not None:
            CostModel.from_dict(self.cost_model, source="TrainConfig.cost_model")
        if not self.max_minutes > 0:
            raise InvalidInputError(f"max_minutes={self.max_minutes!r} must be > 0")
        if not (math.isfinite(self.nonspeech_weight) and self.nonspeech_weight > 0):
            raise InvalidInputError(f"nonspeech_weight={self.nonspeech_weight!r} must be a positive number")
        if not (math.isfinite(self.finetune_ema_decay) and 0.0 <= self.finetune_ema_decay < 1.0):
            raise InvalidInputError(f"finetune_ema_decay={self.finetune_ema_decay!r} must be in [0, 1)")
        if not 0.0 <= self.finetune_fraction < 1.0:
            raise InvalidInputError(f"finetune_fraction={self.finetune_fraction!r} must be in [0, 1)")
        if self.target_snapshots < 1:
            raise InvalidInputError(f"target_snapshots={self.target_snapshots!r} must be >= 1")
        for name in ("input_width", "conv_width", "gru_width"):
            if getattr(self, name) < self.min_width:
                raise InvalidInputError(f"{name}={getattr(self, name)} is below min_width={self.min_width}")

    @property
    def mode(self) -> str:
        return "target" if self.target_auc is not None else "budget"

    def arch(self, n_features: int) -> ArchConfig:
        return ArchConfig(
            n_features=n_features,
            input_width=self.input_width,
            conv_width=self.conv_width,
            gru_width=self.gru_width,
            conv_kernel_frames=self.conv_kernel_frames,
        )

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


@dataclasses.dataclass(frozen=True)
class Complexity:
    """The cost the search controls, per frame, and how it reads in the goal's unit.

    Attributes:
        coefficients: cost per frame by width term (``vad.core.costmodel.WIDTH_TERMS``).
        unit: "MFLOP/s" (network FLOPs) or "us/10ms" (measured latency, front end included).
        to_unit: multiply a cost per frame by this to get it in ``unit``.
        budget: the budget per frame (None in target mode).
    """

    coefficients: dict[str, float]
    unit: str
    to_unit: float
    budget: float | None

    def of(self, widths: dict[str, int | float]) -> float:
        return float(linear_cost(self.coefficients, widths["input"], widths["conv"], widths["gru"]))

    def fmt(self, per_frame: float) -> str:
        return f"{per_frame * self.to_unit:.3f} {self.unit}"


def complexity_of(config: TrainConfig, spec: FeatureSpec) -> Complexity:
    """FLOPs for target and MFLOP budget modes, the cost model's microseconds for budget_us."""
    fps = spec.frames_per_second
    if config.budget_us is None:
        budget = None if config.budget_mflops is None else config.budget_mflops * MFLOP / fps
        return Complexity(flop_coefficients(spec.n_mels, config.conv_kernel_frames), "MFLOP/s", fps / MFLOP, budget)
    cost_model = CostModel.from_dict(config.cost_model, source="cost model")
    cost_model.check_architecture(spec.n_mels, config.conv_kernel_frames)
    hop_ms = 1000.0 * spec.hop_s
    if not math.isclose(cost_model.hop_ms, hop_ms):
        raise InvalidInputError(f"the cost model was measured at a {cost_model.hop_ms} ms hop, the features use {hop_ms} ms")
    to_unit = US_BUDGET_HOP_MS / hop_ms
    return Complexity(dict(cost_model.coefficients_us), "us/10ms", to_unit, config.budget_us / to_unit)


def check_budget(config: TrainConfig, spec: FeatureSpec, log: Callable[[str], None] | None = None) -> None:
    """Refuse a budget below the smallest net the search can build; note one above the largest."""
    cx = complexity_of(config, spec)
    if cx.budget is None:
        return
    smallest = cx.of({name: config.min_width for name in WIDTH_NAMES})
    if cx.budget < smallest:
        what = "--budget-mflops" if config.budget_us is None else "--budget-us"
        raise InvalidInputError(
            f"budget {what} {cx.budget * cx.to_unit:g} is below the smallest network this search can build "
            f"({cx.fmt(smallest)} at width {config.min_width} everywhere)"
        )
    largest = cx.of(config.arch(spec.n_mels).widths)
    if log is not None and cx.budget >= largest:
        log(f"note: the budget is above the largest network ({cx.fmt(largest)} at the maximum widths): it does not bind")


# --- the loop -------------------------------------------------------------------------
def _start_at_budget(model: DynamicVAD, cx: Complexity) -> None:
    """Budget modes start from the uniform width fraction whose cost equals the budget.

    (Target mode starts near the maximum widths.) Starting at the budget spends the search on
    how to share it between layers instead of on descending from the maximum.
    """
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        for w in model.widths.values():
            w.set_width(w.n_min + mid * (w.n_max - w.n_min))
        lo, hi = (mid, hi) if float(model.cost(cx.coefficients).detach()) <= cx.budget else (lo, mid)
    for w in model.widths.values():
        w.set_width(w.n_min + min(lo, 0.95) * (w.n_max - w.n_min))


@dataclasses.dataclass
class SearchResult:
    frozen: FrozenVAD
    checkpoint: dict[str, Any]
    target_met: bool


def _fmt_widths(w: dict[str, float]) -> str:
    return "/".join(f"{w[n]:.1f}" if isinstance(w[n], float) else str(w[n]) for n in WIDTH_NAMES)


def _frozen_state(frozen: FrozenVAD) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in frozen.state_dict().items()}


def train(
    config: TrainConfig,
    spec: FeatureSpec,
    sample_batch: SampleBatch,
    val: ValData,
    feat_mean: np.ndarray,
    feat_std: np.ndarray,
    out_dir: str | Path,
    data_info: dict[str, Any] | None = None,
    resume: dict[str, Any] | None = None,
    train_frames: int | None = None,
    log: Callable[[str], None] = print,
) -> SearchResult:
    """Width search + consolidation + fine-tuning + held-out check; writes ``out_dir/search.pt``.

    ``sample_batch(step) -> (features [B, T, F] float32, targets [B, T] float32 in [0, 1])``
    must be deterministic in ``step`` for a given seed. ``val`` is a list of whole
    validation sequences ``(features [T, F], labels [T])``, split here into select and check.
    ``resume`` is a ``search.pt`` dict from an earlier run of the same config.
    """
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    out_dir = Path(out_dir)
    fps = spec.frames_per_second
    cx = complexity_of(config, spec)
    check_budget(config, spec, log)
    select, check = split_validation(val)
    check_minutes = frame_count(check) / fps / 60.0
    if config.mode == "target" and check_minutes < config.min_check_minutes:
        raise InvalidInputError(
            f"target mode decides on held-out validation audio: it has {check_minutes:.1f} min, needs at least "
            f"{config.min_check_minutes:g} min (half of the validation streams); give more --minutes-val"
        )
    arch = config.arch(spec.n_mels)
    mins = {name: config.min_width for name in WIDTH_NAMES}
    model = DynamicVAD(arch, min_widths=mins)
    with torch.no_grad():
        model.feat_mean.copy_(torch.as_tensor(feat_mean, dtype=torch.float32))
        model.feat_std.copy_(torch.as_tensor(np.maximum(feat_std, 1e-3), dtype=torch.float32))
    opt = torch.optim.AdamW(
        [
            {"params": model.weight_parameters(), "lr": config.lr, "weight_decay": config.weight_decay},
            {"params": model.width_parameters(), "lr": config.width_lr, "weight_decay": 0.0},
        ]
    )
    cost_max = cx.of(arch.widths)
    if cx.budget is not None and resume is None:
        _start_at_budget(model, cx)
    state = {"step": 0, "log_alpha": math.log(config.alpha_init), "elapsed_s": 0.0, "n_evals": 0,
             "history": [], "best": None}
    if resume is not None:
        if resume.get("kind") != DYNAMIC_KIND:
            raise InvalidInputError("--resume needs a search checkpoint (search.pt), not a consolidated model")
        try:
            model.load_state_dict(resume["state_dict"])
            opt.load_state_dict(resume["optimizer"])
        except (RuntimeError, ValueError, KeyError) as exc:
            raise InvalidInputError(f"--resume: the search checkpoint does not match this version's network: {exc}") from exc
        state.update(resume["loop"])
        log(f"resumed at step {state['step']} ({state['elapsed_s'] / 60:.1f} min already spent)")

    total_s = config.max_minutes * 60.0
    search_s = total_s * (1.0 - config.finetune_fraction)
    t0 = time.monotonic() - state["elapsed_s"]
    frames_per_step = config.batch_size * config.window_frames
    log_alpha_range = (math.log(config.alpha_min), math.log(config.alpha_max))

    def move_alpha(delta: float, clip: float) -> None:
        value = state["log_alpha"] + max(-clip, min(clip, delta))
        state["log_alpha"] = max(log_alpha_range[0], min(log_alpha_range[1], value))

    def evaluate_and_select() -> None:
        cont = model.continuous_widths()
        widths = model.eval_widths()
        if cx.budget is not None:
            widths = fit_widths_to_budget(widths, cont, cx.budget, cx.of, mins)
        frozen = slice_into_frozen(model, widths).eval()
        auc = evaluate_auc(frozen, select)  # nan when validation has one class only
        score = float(auc) if math.isfinite(auc) else -1.0
        cost = cx.of(widths)
        state["n_evals"] += 1
        state["history"].append(
            {"step": int(state["step"]), "elapsed_s": float(time.monotonic() - t0), "select_auc": float(auc),
             "continuous_widths": cont, "widths": dict(widths), "cost": cost * cx.to_unit, "cost_unit": cx.unit,
             "network_mflops": frozen.flops_per_second(fps) / MFLOP, "alpha": math.exp(state["log_alpha"])}
        )
        best = state["best"]
        if config.mode == "target":
            if state["step"] >= config.width_warmup_steps:
                move_alpha(config.dual_lr_target * (score - config.target_auc - config.target_margin),
                           config.dual_clip_target)
            recent = [h["select_auc"] for h in state["history"][-config.target_snapshots:]]
            ok = (len(recent) == config.target_snapshots and score >= config.target_auc
                  and float(np.mean(recent)) >= config.target_auc)
            if ok:
                better = best is None or not best["ok"] or (cost, -score) < (best["cost"], -best["auc"])
            else:
                better = best is None or (not best["ok"] and score > best["auc"])
        else:
            ok = cost <= cx.budget
            better = best is None or score > best["auc"]
        if better:
            state["best"] = {
                "ok": bool(ok), "auc": score, "cost": float(cost), "step": int(state["step"]),
                "widths": dict(widths), "arch": frozen.arch.to_dict(), "state_dict": _frozen_state(frozen),
            }
        left = max(0.0, total_s - (time.monotonic() - t0))
        epoch = f" | epoch {state['step'] * frames_per_step / train_frames:.2f}" if train_frames else ""
        log(
            f"step {state['step']}{epoch} | loss {state.get('last_loss', float('nan')):.4f} "
            f"(bce {state.get('last_bce', float('nan')):.4f}) | select auc {auc:.4f} | widths {_fmt_widths(cont)} "
            f"-> {_fmt_widths(widths)} | {cx.fmt(cost)}"
            + (f" | net {frozen.flops_per_second(fps) / MFLOP:.3f} MFLOP/s" if cx.unit != "MFLOP/s" else "")
            + f" | alpha {math.exp(state['log_alpha']):.3g} | {left / 60:.1f} min left"
        )

    def save_search() -> None:
        loop = {k: v for k, v in state.items() if k not in ("last_loss", "last_bce")}
        loop["elapsed_s"] = float(time.monotonic() - t0)
        atomic_torch_save(
            {
                "kind": DYNAMIC_KIND, "format_version": CHECKPOINT_FORMAT_VERSION, "config": config.to_dict(),
                "arch": arch.to_dict(), "feature_spec": spec.to_dict(), "state_dict": model.state_dict(),
                "optimizer": opt.state_dict(), "loop": loop, "data": dict(data_info or {}),
            },
            out_dir / "search.pt",
        )

    # --- search -----------------------------------------------------------------------
    model.train()
    goal = (f"select/check AUC >= {config.target_auc}" if cx.budget is None
            else f"<= {cx.fmt(cx.budget)}")
    log(
        f"search ({config.mode}: {goal}) max widths {arch.input_width}/{arch.conv_width}/{arch.gru_width} = "
        f"{cx.fmt(cost_max)}, front end {spec.flops_per_second() / MFLOP:.3f} MFLOP/s, {search_s / 60:.1f} min search, "
        f"validation {frame_count(select) / fps / 60:.1f} min select + {check_minutes:.1f} min check"
    )
    while time.monotonic() - t0 < search_s and (config.max_steps is None or state["step"] < config.max_steps):
        step = state["step"]
        opt.param_groups[0]["lr"] = config.lr * min(1.0, (step + 1) / config.warmup_steps)
        opt.param_groups[1]["lr"] = config.width_lr * min(1.0, (step + 1) / max(1, config.width_warmup_steps))
        x, y = sample_batch(step)
        bce = bce_on_logits(model.logits(x), y, config.nonspeech_weight)
        cost = model.cost(cx.coefficients)
        loss = bce + math.exp(state["log_alpha"]) * cost / cost_max
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.weight_parameters(), GRAD_CLIP_NORM)
        opt.step()
        if cx.budget is not None:
            move_alpha(config.dual_lr_budget * (float(cost.detach()) - cx.budget) / cx.budget, config.dual_clip_budget)
        state["step"] = step + 1
        state["last_loss"], state["last_bce"] = float(loss.item()), float(bce.item())
        if state["step"] % config.eval_every_steps == 0:
            model.eval()
            evaluate_and_select()
            model.train()
            save_search()
    model.eval()
    if not state["history"] or state["history"][-1]["step"] != state["step"]:
        evaluate_and_select()
    save_search()
    search_time_s = time.monotonic() - t0

    # --- consolidation, fixed-width fine-tuning, held-out check ----------------------------
    best = state["best"]
    frozen = FrozenVAD(ArchConfig.from_dict(best["arch"]))
    frozen.load_state_dict(best["state_dict"])
    frozen.eval()
    ft_s = max(0.0, total_s - (time.monotonic() - t0))
    ft_steps, ft_selected, select_auc = 0, 0, best["auc"]
    if config.finetune_fraction > 0 and ft_s > 1.0:
        log(f"selected step {best['step']}: widths {_fmt_widths(best['widths'])} (select auc {best['auc']:.4f}); "
            f"fine-tuning {ft_s / 60:.1f} min")
        ft = train_fixed(
            frozen, sample_batch, Schedule(config.finetune_lr, "cosine"), max_steps=config.finetune_max_steps,
            seconds=ft_s, select=select, eval_every=config.eval_every_steps, start_auc=best["auc"],
            step_offset=10_000_000, log=log, nonspeech_weight=config.nonspeech_weight,
            ema_decay=config.finetune_ema_decay,
        )
        frozen, ft_steps, ft_selected, select_auc = ft.model, ft.steps, ft.selected_step, ft.select_auc
        log(f"fine-tuned {ft_steps} steps: select auc {best['auc']:.4f} -> {select_auc:.4f} "
            + ("(kept the search weights)" if ft_selected == 0 else f"(step {ft_selected})"))
    check_auc = evaluate_auc(frozen, check)
    target_met = config.target_auc is None or (math.isfinite(check_auc) and check_auc >= config.target_auc)
    metrics = {
        "val_auc": float(check_auc),
        "val_auc_select": float(select_auc),
        "val_auc_select_before_finetune": float(best["auc"]),
        "val_check_minutes": float(check_minutes),
    }
    final_cost = cx.of(frozen.arch.widths)
    training_info = {
        "config": config.to_dict(),
        "data": dict(data_info or {}),
        "search": {
            "mode": config.mode,
            "goal": goal,
            "cost": final_cost * cx.to_unit,
            "cost_unit": cx.unit,
            "steps": int(state["step"]),
            "finetune_steps": int(ft_steps),
            "selected_step": int(best["step"]),
            "finetune_selected_step": int(ft_selected),
            "search_minutes": search_time_s / 60.0,
            "total_minutes": (time.monotonic() - t0) / 60.0,
            "final_alpha": math.exp(state["log_alpha"]),
            "target_met": bool(target_met),
        },
    }
    if config.cost_model is not None:
        training_info["latency"] = latency_entry(
            dict(frozen.arch.widths), CostModel.from_dict(config.cost_model), "cost model the net was trained for"
        )
    ckpt = frozen_checkpoint(frozen, spec, metrics, training_info)
    ckpt["search_history"] = state["history"]  # per-evaluation log; kept out of the export metadata
    log(
        f"done: widths {_fmt_widths(ckpt['widths'])} | {cx.fmt(final_cost)} | net "
        f"{ckpt['network_flops_per_second'] / MFLOP:.3f} MFLOP/s + front end {ckpt['frontend_flops_per_second'] / MFLOP:.3f} | "
        f"{ckpt['parameters']} params | held-out check auc {check_auc:.4f} ({check_minutes:.1f} min)"
        + ("" if config.target_auc is None else f" | target {config.target_auc} {'met' if target_met else 'NOT met'}")
        + f" | {(time.monotonic() - t0) / 60:.1f} min"
    )
    return SearchResult(frozen=frozen, checkpoint=ckpt, target_met=target_met)


# --- from directories to a consolidated checkpoint ---------------------------------------
# The recipe's data choices (over training.data.StreamOptions defaults), measured on
# ../shared/data/dev with the default 2 MFLOP/s search (frame AUC pooled over dev incl. the
# non-speech clips / share of dev/nonspeech frames at p >= 0.5):
#   25 % music/noise-only streams, SNR -5..30 dB: 0.839 / 30 %  (step 1600; older data.py)
#   45 %, SNR 0..30 dB:                          0.955 / 1.4 % (step 2200)
#   60 %, SNR 0..30 dB:                          0.980 / 0.005 % (step 1600)
#   (v3, issue 10) the recipe's choices are now StreamOptions' own defaults (tight labels,
#   30 % non-speech streams, SNR mostly 0-15 dB, levels to -50 dBFS, babble, clipping, AGC)
#   plus FeatureAugment at batch time: see models/README.md for what was measured on what.
#   (session 20) features from input leveled by a slow tracker (StreamOptions.input_leveling; the
#   exported model carries it): the model card's recipe ablations, round 5.
RECIPE_LEVELING: dict[str, float] = {"target_dbfs": -26.0, "max_gain_db": 20.0, "attack_ms": 10000.0,
                                     "release_ms": 30000.0}
RECIPE_STREAM_OPTIONS: dict[str, Any] = {"input_leveling": RECIPE_LEVELING}

@dataclasses.dataclass(frozen=True)
class DataConfig:
    """Which audio and how much of it is synthesised into the feature cache.

    Attributes:
        speech_dirs / noise_dirs / rir_dirs: input directories (any libsndfile format/rate).
        minutes_train / minutes_val: minutes of synthesised training / validation streams.
        stream_options: overrides of ``training.data.StreamOptions`` fields (the recipe's
            choices; JSON-able values, tuples as lists).
        teacher_weight: distillation: targets are (1 - w) * label + w * teacher probability
            (the cache then also holds the teacher's scores; the caller supplies the teacher).
        feature_augment: draw ``training.data.FeatureAugment`` on every training window.
    """

    speech_dirs: tuple[str, ...]
    noise_dirs: tuple[str, ...]
    rir_dirs: tuple[str, ...] = ()
    minutes_train: float = 240.0
    minutes_val: float = 20.0
    stream_options: dict[str, Any] = dataclasses.field(default_factory=lambda: dict(RECIPE_STREAM_OPTIONS))
    teacher_weight: float = 0.0
    feature_augment: bool = True

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in dataclasses.asdict(self).items()}

    def options(self):
        from vad.training.data import StreamOptions

        return StreamOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in self.stream_options.items()})


def prepare_data(
    data: DataConfig, cache_dir: str | Path, seed: int, window_frames: int, log: Callable[[str], None] = print,
    teacher: Callable[[], Any] | None = None,
):
    """Build (or reuse) the feature cache; returns (train CachedStreams, val sequences, seconds taken).
    ``teacher`` (needed when ``data.teacher_weight > 0``) makes the frame scorer whose
    probabilities the cache stores for distillation (``training.data.build_cache``); a cache
    built with a teacher can also serve runs with ``teacher_weight`` 0 (pass the same teacher)."""
    from vad.training.data import CachedStreams, FeatureAugment, build_cache

    if data.teacher_weight > 0 and teacher is None:
        raise InvalidInputError(f"teacher_weight={data.teacher_weight}: no teacher given to score the mixtures")
    t0 = time.monotonic()
    build_cache(
        list(data.speech_dirs), list(data.noise_dirs), list(data.rir_dirs) or None, cache_dir,
        minutes_train=data.minutes_train, minutes_val=data.minutes_val, seed=seed, options=data.options(),
        progress=log, teacher=teacher,
    )
    streams = CachedStreams(cache_dir, "train", window_frames=window_frames, seed=seed,
                            teacher_weight=data.teacher_weight,
                            feature_augment=FeatureAugment() if data.feature_augment else None)
    val = list(CachedStreams(cache_dir, "val", window_frames=1, seed=seed).iter_streams())
    return streams, val, time.monotonic() - t0


def describe_data(data: DataConfig, streams) -> dict[str, Any]:
    index = streams.index
    splits = {
        name: {k: v for k, v in info.items() if k not in ("files", "skipped_files")}
        for name, info in index["splits"].items()
    }
    return {
        **data.to_dict(),
        "synthesis": "LibriParty-style streams (training.data): speech + silences + music/noise at random SNR, "
        "real and simulated room impulse responses, band-limiting; labels from the dry speech energy",
        "splits": splits,
        "skipped_files": len(index.get("skipped_files", [])),
        "cache_build_seconds": index.get("build_seconds"),
        "stream_options": index.get("options"),
        "label_rule": index.get("rule"),
    }


def run(
    config: TrainConfig,
    data: DataConfig,
    work_dir: str | Path,
    resume_path: str | Path | None = None,
    log: Callable[[str], None] = print,
    cache_dir: str | Path | None = None,
    teacher: Callable[[], Any] | None = None,
    write_unmet: bool = False,
) -> tuple[SearchResult, Path]:
    """The whole recipe: cache -> search -> consolidation -> fine-tuning -> held-out check.

    ``config.max_minutes`` bounds the whole call; the time the data cache takes is taken off
    the search. Writes ``work_dir/search.pt`` and ``work_dir/consolidated.pt`` and returns
    (result, path of consolidated.pt). When a target is not met on the held-out check it
    raises TargetNotMetError and writes no consolidated.pt, unless ``write_unmet`` (then it
    writes the best net found first).
    """
    from vad.training.consolidate import load_checkpoint_dict

    t_start = time.monotonic()
    work_dir = Path(work_dir)
    work_dir.mkdir(parents=True, exist_ok=True)
    resume = None
    if resume_path is not None:
        resume = load_checkpoint_dict(resume_path)
        if resume.get("kind") != DYNAMIC_KIND:
            raise InvalidInputError(f"--resume {resume_path}: needs a search checkpoint (search.pt)")
        config = TrainConfig.from_dict(
            {**resume["config"], "max_minutes": config.max_minutes, "max_steps": config.max_steps}
        )
    spec = FeatureSpec()
    check_budget(config, spec)
    cache_dir = Path(cache_dir) if cache_dir is not None else work_dir / "cache"
    streams, val, prep_s = prepare_data(data, cache_dir, config.seed, config.window_frames, log, teacher=teacher)
    spec = streams.spec
    log(f"data ready in {prep_s:.0f} s: {streams.n_frames / 360000:.2f} h train, "
        f"{sum(len(y) for _x, y in val) / 360000:.2f} h validation (speech fraction {streams.speech_fraction:.2f})")
    remaining_min = config.max_minutes - (time.monotonic() - t_start) / 60.0
    if remaining_min < 0.2:
        raise InvalidInputError(
            f"--max-minutes {config.max_minutes}: data preparation alone took {prep_s / 60:.1f} min; allow more time"
        )
    run_config = dataclasses.replace(config, max_minutes=remaining_min)

    def sample_batch(step: int):
        return streams.sample_batch(config.batch_size, np.random.default_rng([config.seed, step]))

    data_info = describe_data(data, streams)
    result = train(
        run_config, spec, sample_batch, val, streams.feature_mean, streams.feature_std, work_dir,
        data_info=data_info, resume=resume, train_frames=streams.n_frames, log=log,
    )
    result.checkpoint["training"]["requested_max_minutes"] = config.max_minutes
    result.checkpoint["training"]["data_prep_seconds"] = prep_s
    result.checkpoint["training"]["wall_minutes"] = (time.monotonic() - t_start) / 60.0
    out = work_dir / "consolidated.pt"
    if result.target_met or write_unmet:
        atomic_torch_save(result.checkpoint, out)
        log(f"wrote {out}")
    if not result.target_met:
        m = result.checkpoint["metrics"]
        raise TargetNotMetError(
            f"held-out AUC target {config.target_auc} not met: the selected net (widths {result.checkpoint['widths']}) "
            f"has {m['val_auc']:.4f} on the check split ({m['val_check_minutes']:.1f} min; {m['val_auc_select']:.4f} "
            "on the select split). "
            + (f"The best net found was written to {out} anyway. " if write_unmet else "No model file was written. ")
            + "Lower the target, allow more --max-minutes, or give more data."
        )
    return result, out
