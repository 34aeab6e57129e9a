"""The width-search training loop (nanoGPT style: one config, one loop, read top to bottom).

Two modes (exactly one of ``TrainConfig.target_auc`` / ``TrainConfig.budget_mflops``):

* **target** (``--target-auc A``): minimise FLOPs subject to validation ROC-AUC >= A.
  ``loss = BCE + alpha * F(K) / F_max`` where ``F(K)`` is the network's FLOPs per second at
  the continuous widths and ``F_max`` at the maximum widths. ``alpha`` is a controller
  driven by the measured validation AUC of the *consolidated* net at every evaluation:
  ``alpha *= alpha_up`` while AUC >= A + target_margin (room to shrink), ``alpha *=
  alpha_down`` when AUC < A (shrinking too fast), unchanged in between; the first
  ``controller_warmup_evals`` evaluations only raise it (an untrained net is below any
  target). The result is the smallest evaluated consolidated net with AUC >= A (ties:
  higher AUC), fine-tuned; if none met A, the run ends with ``TargetNotMetError`` after
  writing the best net it found.
* **budget** (``--budget-mflops B``): maximise AUC subject to ``F <= B``:
  ``loss = BCE + budget_penalty * relu(F(K) - B) / F_max`` (only the excess is penalised).
  At every evaluation the widths are made whole and fitted to the budget exactly
  (``training.consolidate.fit_widths_to_budget``); the best such net by validation AUC is
  kept and fine-tuned. Its FLOPs/s are <= B by construction. The search starts from the
  uniform width fraction whose FLOPs equal B (target mode starts near the maximum widths).

Validation AUC is always measured on the consolidated ``FrozenVAD`` sliced from the search
net (so what is selected is what is shipped). Optimiser: AdamW on the weights (linear
warm-up, constant lr) and Adam on the width parameters ``theta`` (``width_lr``). After the
search, ``finetune_fraction`` of the time budget fine-tunes the consolidated net at fixed
widths (cosine decay); the fine-tuned weights are kept only if their validation AUC is not
lower.

Checkpoints (``torch.load(weights_only=True)``): ``<out_dir>/search.pt`` after every
evaluation (kind ``vad-dynamic``: model + optimiser state, config, controller, history, best
snapshot; ``--resume`` continues from it) and the consolidated result (``training.consolidate``
documents its fields).
"""

from __future__ import annotations

import copy
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
    ValData,
    atomic_torch_save,
    evaluate_auc,
    finetune,
    fit_widths_to_budget,
    frozen_checkpoint,
    widths_flops_per_frame,
)
from vad.training.dynamic import WIDTH_NAMES, DynamicVAD, slice_into_frozen
from vad.training.model import ArchConfig, FrozenVAD

from vad.core.errors import InvalidInputError, VADError
from vad.core.features import FeatureSpec
from vad.core.modelmeta import MFLOP


class TargetNotMetError(VADError, RuntimeError):
    """The validation target was not reached in the time given (best model still written)."""


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that defines a width search (stored in every checkpoint).

    Attributes:
        target_auc: target mode: smallest net with validation ROC-AUC >= this.
        budget_mflops: budget mode: best net with network MFLOP/s <= this.
        max_minutes: wall-clock budget of search + fine-tuning (data preparation excluded).
        seed: seeds torch and the batch sampler.
        input_width / conv_width / gru_width: maximum widths of the dynamic layers.
        min_width: smallest width any dynamic layer may reach.
        conv_kernel_frames: depthwise conv kernel (frames of context).
        batch_size / window_frames: training batch of random windows (frames of 10 ms).
        lr / weight_decay / warmup_steps: AdamW on the weights.
        width_lr: Adam on the width parameters theta.
        eval_every_steps: validation + controller + checkpoint period.
        max_steps: optional cap on search steps (tests).
        alpha_init / alpha_up / alpha_down / alpha_min / alpha_max / target_margin /
            controller_warmup_evals: the target-mode controller (module doc).
        budget_penalty: weight of the relative FLOPs excess in budget mode.
        finetune_fraction: share of max_minutes for fixed-width fine-tuning after the search.
        finetune_lr: peak learning rate of the fine-tuning.
        finetune_max_steps: optional cap on fine-tuning steps (tests).
        num_threads: torch intra-op threads. 1 by default: on this 2-core machine shared with
            other jobs, a batch 64 x 200 frames step took 0.13 s with 1 thread and 3.5 s with 2
            (threads spin-waiting on a busy core); the GRU's per-frame work is too small to split.
    """

    target_auc: float | None = None
    budget_mflops: float | None = None
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
    width_lr: float = 0.02
    eval_every_steps: int = 200
    max_steps: int | None = None
    alpha_init: float = 0.05
    alpha_up: float = 1.3
    alpha_down: float = 0.5
    alpha_min: float = 1e-4
    alpha_max: float = 20.0
    target_margin: float = 0.004
    controller_warmup_evals: int = 2
    budget_penalty: float = 20.0
    finetune_fraction: float = 0.2
    finetune_lr: float = 1e-3
    finetune_max_steps: int | None = None
    num_threads: int = 1

    def __post_init__(self) -> None:
        if (self.target_auc is None) == (self.budget_mflops is None):
            raise InvalidInputError("give exactly one of target_auc (--target-auc) or budget_mflops (--budget-mflops)")
        if self.target_auc is not None and not 0.5 < self.target_auc < 1.0:
            raise InvalidInputError(f"target AUC {self.target_auc!r} must be in (0.5, 1)")
        if self.budget_mflops is not None and not (math.isfinite(self.budget_mflops) and self.budget_mflops > 0):
            raise InvalidInputError(f"budget {self.budget_mflops!r} MFLOP/s must be a positive number")
        if not self.max_minutes > 0:
            raise InvalidInputError(f"max_minutes={self.max_minutes!r} must be > 0")
        if not 0.0 <= self.finetune_fraction < 1.0:
            raise InvalidInputError(f"finetune_fraction={self.finetune_fraction!r} must be in [0, 1)")
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


def min_network_mflops(config: TrainConfig, n_features: int, frames_per_second: float) -> float:
    """MFLOP/s of the smallest net the search can reach (all widths at min_width)."""
    w = {name: config.min_width for name in WIDTH_NAMES}
    return widths_flops_per_frame(w, n_features, config.conv_kernel_frames) * frames_per_second / MFLOP


def check_budget(config: TrainConfig, n_features: int, frames_per_second: float) -> None:
    if config.budget_mflops is None:
        return
    smallest = min_network_mflops(config, n_features, frames_per_second)
    if config.budget_mflops < smallest:
        raise InvalidInputError(
            f"budget {config.budget_mflops} MFLOP/s is below the smallest network this search can build "
            f"({smallest:.4f} MFLOP/s at width {config.min_width} everywhere)"
        )


# --- the loop -------------------------------------------------------------------------
def _start_at_budget(model: DynamicVAD, budget_flops_per_frame: float) -> None:
    """Budget mode starts from the uniform width fraction whose FLOPs equal the budget.

    (Target mode starts near the maximum widths.) Starting at the budget spends the search on
    how to share it between layers instead of on descending from the maximum.
    """
    lo, hi = 0.0, 1.0
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        for w in model.widths.values():
            w.set_width(w.n_min + mid * (w.n_max - w.n_min))
        lo, hi = (mid, hi) if float(model.flops_per_frame().detach()) <= budget_flops_per_frame else (lo, mid)
    for w in model.widths.values():
        w.set_width(w.n_min + min(lo, 0.95) * (w.n_max - w.n_min))


SampleBatch = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


@dataclasses.dataclass
class SearchResult:
    frozen: FrozenVAD
    checkpoint: dict[str, Any]
    target_met: bool


def _fmt_widths(w: dict[str, float]) -> str:
    return "/".join(f"{w[n]:.1f}" if isinstance(w[n], float) else str(w[n]) for n in WIDTH_NAMES)


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
    """Width search + consolidation + fine-tuning; writes ``out_dir/search.pt`` and returns the result.

    ``sample_batch(step) -> (features [B, T, F] float32, labels [B, T] float32 in [0, 1])``
    must be deterministic in ``step`` for a given seed. ``val`` is a list of whole
    validation sequences ``(features [T, F], labels [T])``. ``resume`` is a ``search.pt``
    dict from an earlier run of the same config.
    """
    torch.set_num_threads(config.num_threads)
    torch.manual_seed(config.seed)
    out_dir = Path(out_dir)
    fps = spec.frames_per_second
    check_budget(config, spec.n_mels, fps)
    arch = config.arch(spec.n_mels)
    model = DynamicVAD(arch, min_widths={name: config.min_width for name in WIDTH_NAMES})
    with torch.no_grad():
        model.feat_mean.copy_(torch.as_tensor(feat_mean, dtype=torch.float32))
        model.feat_std.copy_(torch.as_tensor(np.maximum(feat_std, 1e-3), dtype=torch.float32))
    opt = torch.optim.AdamW(
        [
            {"params": model.weight_parameters(), "lr": config.lr, "weight_decay": config.weight_decay},
            {"params": model.width_parameters(), "lr": config.width_lr, "weight_decay": 0.0},
        ]
    )
    f_max = model.max_flops_per_frame() * fps
    budget = config.budget_mflops * MFLOP if config.budget_mflops is not None else None
    if budget is not None and resume is None:
        _start_at_budget(model, budget / fps)
    state = {"step": 0, "alpha": config.alpha_init, "elapsed_s": 0.0, "n_evals": 0, "history": [], "best": None}
    if resume is not None:
        if resume.get("kind") != DYNAMIC_KIND:
            raise InvalidInputError("--resume needs a search checkpoint (search.pt), not a consolidated model")
        model.load_state_dict(resume["state_dict"])
        opt.load_state_dict(resume["optimizer"])
        state.update(resume["loop"])
        log(f"resumed at step {state['step']} ({state['elapsed_s'] / 60:.1f} min already spent)")

    total_s = config.max_minutes * 60.0
    search_s = total_s * (1.0 - config.finetune_fraction)
    t0 = time.monotonic() - state["elapsed_s"]
    frames_per_step = config.batch_size * config.window_frames

    def evaluate_and_select() -> None:
        cont = model.continuous_widths()
        widths = model.eval_widths()
        if budget is not None:
            widths = fit_widths_to_budget(
                widths, cont, budget / fps, spec.n_mels, config.conv_kernel_frames,
                {name: config.min_width for name in WIDTH_NAMES},
            )
        frozen = slice_into_frozen(model, widths).eval()
        auc = evaluate_auc(frozen, val)  # nan when validation has one class only
        net_flops = frozen.flops_per_second(fps)
        state["n_evals"] += 1
        best = state["best"]
        if config.mode == "target":
            ok = auc >= config.target_auc
            better = best is None or (ok and (not best["ok"] or (net_flops, -auc) < (best["flops"], -best["auc"])))
            better = better or (not ok and best is not None and not best["ok"] and auc > best["auc"])
            margin = auc - config.target_auc
            if margin >= config.target_margin or state["n_evals"] <= config.controller_warmup_evals:
                state["alpha"] = min(config.alpha_max, state["alpha"] * config.alpha_up)
            elif margin < 0:
                state["alpha"] = max(config.alpha_min, state["alpha"] * config.alpha_down)
        else:
            ok = net_flops <= budget
            better = best is None or auc > best["auc"]
        if better or state["best"] is None:
            state["best"] = {
                "ok": bool(ok), "auc": float(auc) if math.isfinite(auc) else -1.0, "flops": float(net_flops), "step": int(state["step"]),
                "widths": dict(widths), "arch": frozen.arch.to_dict(),
                "state_dict": {k: v.detach().clone() for k, v in frozen.state_dict().items()},
            }
        state["history"].append(
            {"step": int(state["step"]), "elapsed_s": float(time.monotonic() - t0), "val_auc": float(auc),
             "continuous_widths": cont, "widths": dict(widths), "network_mflops": net_flops / MFLOP,
             "alpha": float(state["alpha"])}
        )
        left = max(0.0, total_s - (time.monotonic() - t0))
        epoch = f" | epoch {state['step'] * frames_per_step / train_frames:.2f}" if train_frames else ""
        log(
            f"step {state['step']}{epoch} | loss {state.get('last_loss', float('nan')):.4f} "
            f"(bce {state.get('last_bce', float('nan')):.4f}) | val auc {auc:.4f} | widths {_fmt_widths(cont)} "
            f"-> {_fmt_widths(widths)} | net {net_flops / MFLOP:.3f} MFLOP/s "
            f"(+{spec.flops_per_second() / MFLOP:.2f} front end) | alpha {state['alpha']:.3g} | {left / 60:.1f} min left"
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
    log(
        f"search ({config.mode}: "
        + (f"val AUC >= {config.target_auc}" if budget is None else f"<= {config.budget_mflops} MFLOP/s")
        + f") max widths {arch.input_width}/{arch.conv_width}/{arch.gru_width} = {f_max / MFLOP:.3f} MFLOP/s, "
        f"front end {spec.flops_per_second() / MFLOP:.3f} MFLOP/s, {search_s / 60:.1f} min search"
    )
    while time.monotonic() - t0 < search_s and (config.max_steps is None or state["step"] < config.max_steps):
        step = state["step"]
        warm = min(1.0, (step + 1) / config.warmup_steps)
        opt.param_groups[0]["lr"] = config.lr * warm
        x, y = sample_batch(step)
        logits = model.logits(x)
        bce = torch.nn.functional.binary_cross_entropy_with_logits(logits, y)
        flops = model.flops_per_frame() * fps
        if budget is None:
            penalty = state["alpha"] * flops / f_max
        else:
            penalty = config.budget_penalty * torch.relu(flops - budget) / f_max
        loss = bce + penalty
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.weight_parameters(), 1.0)
        opt.step()
        state["step"] = step + 1
        state["last_loss"], state["last_bce"] = float(loss.item()), float(bce.item())
        if state["step"] % config.eval_every_steps == 0:
            model.eval()
            evaluate_and_select()
            model.train()
            save_search()
    model.eval()
    evaluate_and_select()
    save_search()
    search_time_s = time.monotonic() - t0

    # --- consolidation + fine-tuning ----------------------------------------------------
    best = state["best"]
    frozen = FrozenVAD(ArchConfig.from_dict(best["arch"]))
    frozen.load_state_dict(best["state_dict"])
    frozen.eval()
    auc_before = best["auc"]
    ft_s = max(0.0, total_s - (time.monotonic() - t0))
    ft_steps = 0
    auc_after = auc_before
    if config.finetune_fraction > 0 and ft_s > 1.0:
        log(f"consolidated widths {_fmt_widths(best['widths'])} (val auc {auc_before:.4f}); fine-tuning {ft_s / 60:.1f} min")
        tuned = copy.deepcopy(frozen)
        ft_steps = finetune(
            tuned, lambda s: sample_batch(10_000_000 + s), ft_s, config.finetune_lr,
            max_steps=config.finetune_max_steps, log=log,
        )
        auc_after = evaluate_auc(tuned, val)
        if auc_after >= auc_before:
            frozen = tuned
        log(f"fine-tuned {ft_steps} steps: val auc {auc_before:.4f} -> {auc_after:.4f}"
            + ("" if auc_after >= auc_before else " (kept the search weights)"))
    final_auc = max(auc_before, auc_after)
    target_met = config.target_auc is None or final_auc >= config.target_auc
    metrics = {
        "val_auc": float(final_auc),
        "val_auc_before_finetune": float(auc_before),
        "val_auc_after_finetune": float(auc_after),
    }
    training_info = {
        "config": config.to_dict(),
        "data": dict(data_info or {}),
        "search": {
            "mode": config.mode,
            "steps": int(state["step"]),
            "finetune_steps": int(ft_steps),
            "selected_step": int(best["step"]),
            "search_minutes": search_time_s / 60.0,
            "total_minutes": (time.monotonic() - t0) / 60.0,
            "final_alpha": float(state["alpha"]),
            "target_met": bool(target_met),
        },
    }
    ckpt = frozen_checkpoint(frozen, spec, metrics, training_info)
    ckpt["search_history"] = state["history"]  # per-evaluation log; kept out of the export metadata
    log(
        f"done: widths {_fmt_widths(ckpt['widths'])} | net {ckpt['network_flops_per_second'] / MFLOP:.3f} MFLOP/s "
        f"+ front end {ckpt['frontend_flops_per_second'] / MFLOP:.3f} | {ckpt['parameters']} params | "
        f"val auc {final_auc:.4f} | {(time.monotonic() - t0) / 60:.1f} min"
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
RECIPE_STREAM_OPTIONS: dict[str, Any] = {}

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
) -> tuple[SearchResult, Path]:
    """The whole recipe: cache -> search -> consolidation -> fine-tuning.

    ``config.max_minutes`` bounds the whole call; the time the data cache takes is taken off
    the search. Writes ``work_dir/search.pt`` and ``work_dir/consolidated.pt`` and returns
    (result, path of consolidated.pt). Raises TargetNotMetError after writing when a target
    was not met.
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
    check_budget(config, spec.n_mels, spec.frames_per_second)
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
    atomic_torch_save(result.checkpoint, out)
    log(f"wrote {out}")
    if not result.target_met:
        raise TargetNotMetError(
            f"validation AUC target {config.target_auc} not met: best {result.checkpoint['metrics']['val_auc']:.4f} "
            f"(widths {result.checkpoint['widths']}); the best model found was written to {out}. "
            "Lower the target, allow more --max-minutes, or give more data."
        )
    return result, out
