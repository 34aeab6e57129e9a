"""Consolidation: from a width search to a frozen network, fixed-width training, and the checkpoint files.

Steps (``training.train`` runs them at the end of a search):

1. Widths: each dynamic layer keeps ``round_half_up(K)`` whole channels (the evaluation
   rule of ``training.dynamic``). In budget mode ``fit_widths_to_budget`` then lowers widths
   until the frozen net's cost (FLOPs or measured microseconds, any ``cost(widths)``) is
   ``<= budget`` exactly: first every width that was rounded up goes back to ``floor(K)``; if
   that is not enough, all continuous widths are scaled by the largest common factor whose
   floors fit (binary search), so the search's proportions between layers are kept; then
   channels are given back one at a time (to the layer furthest below its rounded width)
   while the budget allows.
2. ``slice_into_frozen`` (``training.dynamic``): the first ``n`` channels of every dynamic
   layer are copied into a ``FrozenVAD``, with the partial channel's training scale folded
   into the next layer and dropped channels' means into its bias, so the frozen net is the
   trained one in expectation over the noise.
3. ``train_fixed``: training at fixed widths (BCE on logits, AdamW) with a warm-up +
   constant or a cosine learning rate, evaluated every ``eval_every`` steps on a selection
   split; the best snapshot is kept (the starting weights compete when their AUC is given).
   The same function fine-tunes a consolidated search and trains every baseline of
   ``training.report``, so they share schedule and selection rule.
4. Validation is split in two (``split_validation``): *select* (controller and snapshot
   selection) and *check* (measured once on the final net: the held-out figure that
   decides whether a target was met).

Checkpoints are plain ``torch.save`` dicts that load with ``torch.load(weights_only=True)``:
configs are dicts/lists/numbers/strings, tensors live in ``state_dict``. A consolidated
checkpoint (``kind == "vad-frozen"``) holds::

    kind, format_version, arch (ArchConfig dict), state_dict (FrozenVAD), feature_spec
    (FeatureSpec dict), widths {input, conv, gru}, network_flops_per_second,
    frontend_flops_per_second, parameters, frame_latency_ms, lookahead_ms, metrics
    {val_auc (check split), val_auc_select, ...}, training {config, data, search summary,
    times, latency}, search_history (one dict per evaluation: step, widths, cost, AUC, alpha)

``load_consolidated(path) -> (FrozenVAD, info)`` reads it back; ``metadata_fields(info)``
gives the keyword arguments ``vad.core.modelmeta.ModelMetadata`` needs except ``postprocess``;
its ``training["latency"]`` carries the microseconds per 10 ms frame predicted by the cost
model the net was trained for, or else by this machine's calibration
(``vad.core.costmodel``, ``vad calibrate``) when there is one.
"""

from __future__ import annotations

import copy
import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vad.training.dynamic import WIDTH_NAMES, DynamicVAD, slice_into_frozen
from vad.training.model import ArchConfig, FrozenVAD, flops_per_frame

from vad.core.atomicfile import atomic_output
from vad.core.costmodel import CostModel
from vad.core.errors import InvalidInputError, ModelFileError
from vad.core.features import FeatureSpec
from vad.core.metrics import roc_auc
from vad.core.modelmeta import ARCHITECTURE_NAME

CHECKPOINT_FORMAT_VERSION = 1
FROZEN_KIND = "vad-frozen"
DYNAMIC_KIND = "vad-dynamic"
EVAL_CHUNK_FRAMES = 3000  # validation sequences run in chunks (state carried) to bound memory
LOG_EVERY_STEPS = 200
GRAD_CLIP_NORM = 1.0

ValData = Sequence[tuple[np.ndarray, np.ndarray]]  # (features [T, F] float32, labels [T] 0/1)
WidthCost = Callable[[dict[str, int]], float]
SampleBatch = Callable[[int], tuple[torch.Tensor, torch.Tensor]]


# --- widths ---------------------------------------------------------------------------
def widths_flops_per_frame(widths: dict[str, int | float], n_features: int, conv_kernel_frames: int) -> float:
    return float(flops_per_frame(n_features, widths["input"], widths["conv"], widths["gru"], conv_kernel_frames))


def fit_widths_to_budget(
    widths: dict[str, int],
    continuous: dict[str, float],
    budget: float,
    cost: WidthCost,
    min_widths: dict[str, int] | None = None,
) -> dict[str, int]:
    """Lower ``widths`` until ``cost(widths) <= budget`` (see module doc); never above ``widths``.

    ``cost`` maps a widths dict to a cost per frame in the budget's unit (FLOPs, us).
    Raises ValueError when even the minimum widths exceed the budget.
    """
    mins = {"input": 1, "conv": 1, "gru": 1, **(min_widths or {})}
    w = dict(widths)
    if cost(w) <= budget:
        return w
    floored = {n: max(mins[n], min(w[n], int(math.floor(continuous[n])))) for n in WIDTH_NAMES}
    if cost(floored) <= budget:
        return floored
    if cost(mins) > budget:
        raise ValueError(f"budget {budget:.4g} per frame is below the smallest network ({cost(mins):.4g} per frame)")

    def scaled(s):
        return {n: max(mins[n], min(w[n], int(math.floor(s * continuous[n])))) for n in WIDTH_NAMES}

    lo, hi = 0.0, 1.0  # cost(scaled(lo)) fits, cost(scaled(hi)) does not
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cost(scaled(mid)) <= budget else (lo, mid)
    fitted = scaled(lo)
    while True:  # give channels back while they fit, to the layer furthest below its rounded width
        order = sorted((n for n in WIDTH_NAMES if fitted[n] < w[n]), key=lambda n: fitted[n] / w[n])
        for name in order:
            trial = {**fitted, name: fitted[name] + 1}
            if cost(trial) <= budget:
                fitted = trial
                break
        else:
            return fitted


def consolidate(model: DynamicVAD, widths: dict[str, int] | None = None) -> FrozenVAD:
    """Slice ``model`` into a FrozenVAD (default widths: the evaluation rule's)."""
    return slice_into_frozen(model, widths or model.eval_widths()).eval()


# --- evaluation -----------------------------------------------------------------------
@torch.no_grad()
def predict(model: FrozenVAD, features: np.ndarray) -> np.ndarray:
    """Speech probabilities of whole sequences: features [T, F] -> [T] or [B, T, F] -> [B, T].

    Runs in chunks of EVAL_CHUNK_FRAMES with the streaming state carried across chunks.
    """
    model.eval()
    x = torch.from_numpy(np.ascontiguousarray(features, dtype=np.float32))
    single = x.ndim == 2
    if single:
        x = x.unsqueeze(0)
    state_conv, state_gru = model.initial_state(x.shape[0])
    outs = [torch.zeros(x.shape[0], 0)]
    for start in range(0, x.shape[1], EVAL_CHUNK_FRAMES):
        p, state_conv, state_gru = model(x[:, start : start + EVAL_CHUNK_FRAMES], state_conv, state_gru)
        outs.append(p)
    probs = torch.cat(outs, dim=1).numpy()
    return probs[0] if single else probs


def predict_all(model: FrozenVAD, val: ValData) -> list[np.ndarray]:
    """Probabilities of every sequence in ``val`` (sequences of equal length run as one batch)."""
    by_len: dict[int, list[int]] = {}
    for i, (x, _y) in enumerate(val):
        by_len.setdefault(len(x), []).append(i)
    out: list[np.ndarray] = [np.zeros(0, dtype=np.float32)] * len(val)
    for idx in by_len.values():
        probs = predict(model, np.stack([val[i][0] for i in idx]))
        for row, i in enumerate(idx):
            out[i] = probs[row]
    return out


def evaluate_auc(model: FrozenVAD, val: ValData) -> float:
    """Frame-level ROC-AUC over all validation sequences pooled."""
    scores = predict_all(model, val)
    labels = [np.asarray(y) >= 0.5 for _x, y in val]
    return roc_auc(np.concatenate(labels), np.concatenate(scores))


def split_validation(val: ValData) -> tuple[list, list]:
    """(select, check): alternate whole sequences (every other one to check). When that
    leaves a part with one class only (few sequences, e.g. speech-free streams), every
    sequence is cut in two halves instead (first half to select)."""
    val = list(val)
    if not val:
        raise InvalidInputError("validation data is empty")

    def both_classes(part) -> bool:
        labels = np.concatenate([np.asarray(y) >= 0.5 for _x, y in part]) if part else np.zeros(0, bool)
        return bool(labels.any() and not labels.all())

    select, check = val[0::2], val[1::2]
    if both_classes(select) and both_classes(check):
        return select, check
    halves = [(x[: len(y) // 2], y[: len(y) // 2], x[len(y) // 2 :], y[len(y) // 2 :]) for x, y in val]
    return [(a, b) for a, b, _c, _d in halves], [(c, d) for _a, _b, c, d in halves]


def frame_count(val: ValData) -> int:
    return int(sum(len(y) for _x, y in val))


# --- training at fixed widths ---------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Schedule:
    """Learning rate of ``train_fixed``: linear warm-up to ``lr``, then constant or a cosine to 0.

    Attributes:
        lr: peak learning rate.
        kind: "constant" (after warm-up) or "cosine" (from lr to 0 over the run).
        warmup_steps: linear warm-up from lr / warmup_steps.
        weight_decay: AdamW's decoupled weight decay.
    """

    lr: float
    kind: str = "constant"
    warmup_steps: int = 0
    weight_decay: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in ("constant", "cosine"):
            raise InvalidInputError(f"Schedule.kind={self.kind!r}: must be 'constant' or 'cosine'")

    def lr_at(self, step: int, progress: float) -> float:
        """lr at ``step`` (0-based) when ``progress`` in [0, 1] of the run is done."""
        warm = min(1.0, (step + 1) / self.warmup_steps) if self.warmup_steps > 0 else 1.0
        if self.kind == "cosine":
            return self.lr * warm * 0.5 * (1.0 + math.cos(math.pi * min(max(progress, 0.0), 1.0)))
        return self.lr * warm


@dataclasses.dataclass
class FixedResult:
    """What ``train_fixed`` returns: the selected net and how it was found."""

    model: FrozenVAD
    steps: int
    selected_step: int
    select_auc: float
    history: list[dict[str, Any]]


def bce_on_logits(logits: torch.Tensor, targets: torch.Tensor, nonspeech_weight: float = 1.0) -> torch.Tensor:
    """The training loss everywhere: binary cross-entropy on logits (soft targets allowed).

    ``nonspeech_weight`` w weighs the non-speech side of every frame's loss:
    ``-(y log p + w (1 - y) log(1 - p))``; 1 is plain BCE."""
    if nonspeech_weight == 1.0:
        return torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    pos_weight = torch.tensor(1.0 / nonspeech_weight, dtype=logits.dtype, device=logits.device)
    return nonspeech_weight * torch.nn.functional.binary_cross_entropy_with_logits(logits, targets,
                                                                                   pos_weight=pos_weight)


def train_fixed(
    model: FrozenVAD,
    sample_batch: SampleBatch,
    schedule: Schedule,
    max_steps: int | None = None,
    seconds: float | None = None,
    select: ValData | None = None,
    eval_every: int | None = None,
    candidate: Callable[[FrozenVAD], FrozenVAD] | None = None,
    start_auc: float | None = None,
    step_offset: int = 0,
    log: Callable[[str], None] | None = None,
    nonspeech_weight: float = 1.0,
    ema_decay: float = 0.0,
) -> FixedResult:
    """Train ``model`` at fixed widths (in place) and return the best evaluated snapshot.

    Stops after ``max_steps`` steps or ``seconds`` seconds, whichever comes first (a cosine
    schedule decays over whichever is nearer to its end). With ``select``, the net (or
    ``candidate(net)``, e.g. its pruned version) is evaluated every ``eval_every`` steps and
    at the end, and the snapshot of highest ``select`` AUC is returned; ``start_auc`` is the
    starting weights' AUC, which then competes too. Without ``select`` the last weights are
    returned. ``sample_batch(step_offset + step)`` gives the batches; ``nonspeech_weight`` is
    ``bce_on_logits``'. ``ema_decay`` > 0: what is evaluated and returned is an exponential
    moving average of the weights instead (started at the starting weights; the decay of step t
    is min(ema_decay, (1 + t) / (10 + t)), so a short run is not held back by its start).
    """
    if max_steps is None and seconds is None:
        raise InvalidInputError("train_fixed needs max_steps or seconds")
    candidate = candidate or (lambda m: m)
    params = list(model.parameters())
    opt = torch.optim.AdamW(params, lr=schedule.lr, weight_decay=schedule.weight_decay)
    history: list[dict[str, Any]] = []
    best = None
    if select is not None and start_auc is not None:
        best = (float(start_auc), 0, copy.deepcopy(candidate(model)).eval())
    start = time.monotonic()
    step = 0
    average = copy.deepcopy(model) if ema_decay > 0 else None

    def snapshot() -> None:
        nonlocal best
        net = candidate(model if average is None else average).eval()
        auc = evaluate_auc(net, select)
        history.append({"step": step, "select_auc": float(auc)})
        score = auc if math.isfinite(auc) else -1.0
        if best is None or score > best[0]:
            best = (score, step, copy.deepcopy(net))

    while True:
        elapsed = time.monotonic() - start
        if (seconds is not None and elapsed >= seconds) or (max_steps is not None and step >= max_steps):
            break
        progress = max(elapsed / seconds if seconds else 0.0, step / max_steps if max_steps else 0.0)
        for group in opt.param_groups:
            group["lr"] = schedule.lr_at(step, progress)
        model.train()
        x, y = sample_batch(step_offset + step)
        logits, _c, _g = model.logits(x, *model.initial_state(x.shape[0]))
        loss = bce_on_logits(logits, y, nonspeech_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, GRAD_CLIP_NORM)
        opt.step()
        if average is not None:
            decay = min(ema_decay, (1.0 + step) / (10.0 + step))
            with torch.no_grad():
                for mean, now in zip(average.parameters(), params, strict=True):
                    mean.lerp_(now, 1.0 - decay)
        step += 1
        if log is not None and step % LOG_EVERY_STEPS == 0:
            left = f"{max(0.0, seconds - elapsed) / 60:.1f} min left" if seconds else f"{max_steps - step} steps left"
            log(f"fixed-width step {step} | loss {loss.item():.4f} | {left}")
        if select is not None and eval_every and step % eval_every == 0:
            snapshot()
    model.eval()
    final = model if average is None else average
    if select is None:
        return FixedResult(candidate(final).eval(), step, step, float("nan"), history)
    if not history or history[-1]["step"] != step:
        snapshot()
    score, best_step, net = best
    return FixedResult(net.eval(), step, best_step, score, history)


def finetune(
    model: FrozenVAD,
    sample_batch: SampleBatch,
    seconds: float,
    lr: float,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = None,
    nonspeech_weight: float = 1.0,
) -> int:
    """Train ``model`` in place at fixed widths with a cosine from ``lr`` (no selection); returns the steps done."""
    return train_fixed(model, sample_batch, Schedule(lr, "cosine"), max_steps=max_steps, seconds=seconds,
                       log=log, nonspeech_weight=nonspeech_weight).steps


# --- latency --------------------------------------------------------------------------
def latency_entry(widths: dict[str, int], cost_model: CostModel, source: str) -> dict[str, Any]:
    """``training["latency"]`` of a model file: predicted us per frame and the cost model's summary."""
    return {
        "us_per_frame": cost_model.us_of(widths),
        "hop_ms": cost_model.hop_ms,
        "source": source,
        "cost_model": cost_model.summary(),
    }


def local_cost_model() -> CostModel | None:
    """This machine's calibration (``vad calibrate``) when there is a readable one, else None."""
    from vad.core.costmodel import default_cost_model_path, load_cost_model

    if not default_cost_model_path().is_file():
        return None
    try:
        return load_cost_model()
    except ModelFileError:
        return None


# --- checkpoint files -----------------------------------------------------------------
def atomic_torch_save(obj: Any, path: str | Path) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(path, "wb") as fh:
        torch.save(obj, fh)


def frozen_checkpoint(
    model: FrozenVAD,
    spec: FeatureSpec,
    metrics: dict[str, Any],
    training: dict[str, Any],
) -> dict[str, Any]:
    """The consolidated checkpoint dict (see module doc)."""
    arch = model.arch
    return {
        "kind": FROZEN_KIND,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "arch_name": ARCHITECTURE_NAME,
        "arch": arch.to_dict(),
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
        "feature_spec": spec.to_dict(),
        "widths": dict(arch.widths),
        "network_flops_per_second": model.flops_per_second(spec.frames_per_second),
        "frontend_flops_per_second": spec.flops_per_second(),
        "parameters": model.parameter_count(),
        "frame_latency_ms": 1000.0 * spec.hop_s,
        "lookahead_ms": 0.0,
        "metrics": dict(metrics),
        "training": training,
    }


def load_checkpoint_dict(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"checkpoint not found: {path}")
    try:
        ckpt = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types (pickle, zip, runtime)
        raise ModelFileError(f"{path}: not a readable checkpoint: {exc}") from exc
    if not isinstance(ckpt, dict) or ckpt.get("kind") not in (FROZEN_KIND, DYNAMIC_KIND):
        raise ModelFileError(f"{path}: not a checkpoint of this project (no 'kind' {FROZEN_KIND!r}/{DYNAMIC_KIND!r})")
    if ckpt.get("format_version", 0) > CHECKPOINT_FORMAT_VERSION:
        raise ModelFileError(f"{path}: checkpoint format {ckpt.get('format_version')} is newer than this build reads")
    return ckpt


def load_consolidated(path: str | Path) -> tuple[FrozenVAD, dict[str, Any]]:
    """(FrozenVAD in eval mode, the checkpoint dict without its state_dict)."""
    ckpt = load_checkpoint_dict(path)
    if ckpt["kind"] != FROZEN_KIND:
        raise ModelFileError(
            f"{path}: this is a search checkpoint ({DYNAMIC_KIND}); consolidate it first "
            "(it is resumed with `vad train --resume`)"
        )
    try:
        model = FrozenVAD(ArchConfig.from_dict(ckpt["arch"]))
        model.load_state_dict(ckpt["state_dict"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise ModelFileError(f"{path}: malformed consolidated checkpoint: {exc}") from exc
    info = {k: v for k, v in ckpt.items() if k != "state_dict"}
    return model.eval(), info


def metadata_fields(info: dict[str, Any]) -> dict[str, Any]:
    """Keyword arguments for ``vad.core.modelmeta.ModelMetadata`` (all but ``postprocess``/``name``)."""
    return {
        "feature_spec": FeatureSpec.from_dict(info["feature_spec"]),
        "architecture": {
            "name": info.get("arch_name", ARCHITECTURE_NAME),
            "widths": dict(info["widths"]),
            **{k: v for k, v in info["arch"].items() if k not in ("input_width", "conv_width", "gru_width")},
        },
        "network_flops_per_second": float(info["network_flops_per_second"]),
        "frontend_flops_per_second": float(info["frontend_flops_per_second"]),
        "parameters": int(info["parameters"]),
        "frame_latency_ms": float(info["frame_latency_ms"]),
        "lookahead_ms": float(info["lookahead_ms"]),
        "metrics": dict(info["metrics"]),
        "training": _with_latency(dict(info["training"]), info),
    }


def _with_latency(training: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """Add this machine's predicted latency when the checkpoint carries none (see module doc)."""
    if "latency" in training:
        return training
    cost_model = local_cost_model()
    arch = info["arch"]
    if cost_model is not None and (cost_model.n_features, cost_model.conv_kernel_frames) == (
        arch.get("n_features"), arch.get("conv_kernel_frames")
    ):
        training["latency"] = latency_entry(dict(info["widths"]), cost_model, "calibration of the exporting machine")
    return training
