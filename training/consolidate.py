"""Consolidation: from a width search to a frozen network, and the checkpoint files.

Steps (``training.train`` runs them at the end of a search):

1. Widths: each dynamic layer keeps ``round_half_up(K)`` whole channels (the evaluation
   rule of ``training.dynamic``). In budget mode ``fit_widths_to_budget`` then lowers widths
   until the frozen net's FLOPs/s are ``<= budget`` exactly: first every width that was
   rounded up goes back to ``floor(K)``; if that is not enough, all continuous widths are
   scaled by the largest common factor whose floors fit (binary search), so the search's
   proportions between layers are kept.
2. ``slice_into_frozen``: the first ``n`` channels of every dynamic layer are copied into a
   ``FrozenVAD`` (``training.dynamic``): dropped channels are removed for real, and the
   frozen net computes exactly what the dynamic one computes in eval mode.
3. ``finetune``: a brief training of the frozen net at its fixed widths (BCE, cosine decay).
4. Re-measure the validation AUC (``evaluate_auc``).

Checkpoints are plain ``torch.save`` dicts that load with ``torch.load(weights_only=True)``:
configs are dicts/lists/numbers/strings, tensors live in ``state_dict``. A consolidated
checkpoint (``kind == "vad-frozen"``) holds::

    kind, format_version, arch (ArchConfig dict), state_dict (FrozenVAD), feature_spec
    (FeatureSpec dict), widths {input, conv, gru}, network_flops_per_second,
    frontend_flops_per_second, parameters, frame_latency_ms, lookahead_ms, metrics
    {val_auc, val_auc_before_finetune, ...}, training {config, data, search summary, times},
    search_history (one dict per evaluation: step, widths, MFLOP/s, val AUC, alpha)

``load_consolidated(path) -> (FrozenVAD, info)`` reads it back; ``metadata_fields(info)``
gives the keyword arguments ``vad.core.modelmeta.ModelMetadata`` needs except ``postprocess``.
"""

from __future__ import annotations

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
from vad.core.errors import ModelFileError
from vad.core.features import FeatureSpec
from vad.core.metrics import roc_auc
from vad.core.modelmeta import ARCHITECTURE_NAME

CHECKPOINT_FORMAT_VERSION = 1
FROZEN_KIND = "vad-frozen"
DYNAMIC_KIND = "vad-dynamic"
EVAL_CHUNK_FRAMES = 3000  # validation sequences run in chunks (state carried) to bound memory

ValData = Sequence[tuple[np.ndarray, np.ndarray]]  # (features [T, F] float32, labels [T] 0/1)


# --- widths ---------------------------------------------------------------------------
def widths_flops_per_frame(widths: dict[str, int | float], n_features: int, conv_kernel_frames: int) -> float:
    return float(flops_per_frame(n_features, widths["input"], widths["conv"], widths["gru"], conv_kernel_frames))


def fit_widths_to_budget(
    widths: dict[str, int],
    continuous: dict[str, float],
    budget_flops_per_frame: float,
    n_features: int,
    conv_kernel_frames: int,
    min_widths: dict[str, int] | None = None,
) -> dict[str, int]:
    """Lower ``widths`` until their FLOPs per frame are <= the budget (see module doc).

    Raises ValueError when even the minimum widths exceed the budget.
    """
    mins = {"input": 1, "conv": 1, "gru": 1, **(min_widths or {})}
    w = dict(widths)

    def cost(ws):
        return widths_flops_per_frame(ws, n_features, conv_kernel_frames)

    if cost(w) <= budget_flops_per_frame:
        return w
    floored = {n: max(mins[n], min(w[n], int(math.floor(continuous[n])))) for n in WIDTH_NAMES}
    if cost(floored) <= budget_flops_per_frame:
        return floored
    if cost(mins) > budget_flops_per_frame:
        raise ValueError(
            f"budget {budget_flops_per_frame:.0f} FLOPs/frame is below the smallest network "
            f"({cost(mins):.0f} FLOPs/frame)"
        )

    def scaled(s):
        return {n: max(mins[n], int(math.floor(s * continuous[n]))) for n in WIDTH_NAMES}

    lo, hi = 0.0, 1.0  # cost(scaled(lo)) fits, cost(scaled(hi)) does not
    for _ in range(40):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if cost(scaled(mid)) <= budget_flops_per_frame else (lo, mid)
    return scaled(lo)


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


# --- fine-tuning ----------------------------------------------------------------------
def finetune(
    model: FrozenVAD,
    sample_batch: Callable[[int], tuple[torch.Tensor, torch.Tensor]],
    seconds: float,
    lr: float,
    max_steps: int | None = None,
    log: Callable[[str], None] | None = None,
) -> int:
    """Train ``model`` at fixed widths for ``seconds`` (or ``max_steps``); returns steps done.

    ``sample_batch(step) -> (features [B, T, F], labels [B, T])``. The learning rate decays
    from ``lr`` to 0 on a cosine over the time budget.
    """
    model.train()
    params = [p for name, p in model.named_parameters()]
    opt = torch.optim.AdamW(params, lr=lr, weight_decay=0.0)
    start = time.monotonic()
    step = 0
    while True:
        elapsed = time.monotonic() - start
        if elapsed >= seconds or (max_steps is not None and step >= max_steps):
            break
        frac = elapsed / seconds if seconds > 0 else 1.0
        if max_steps:
            frac = max(frac, step / max_steps)
        for group in opt.param_groups:
            group["lr"] = lr * 0.5 * (1.0 + math.cos(math.pi * min(frac, 1.0)))
        x, y = sample_batch(step)
        state_conv, state_gru = model.initial_state(x.shape[0])
        probs, _c, _g = model(x, state_conv, state_gru)
        loss = torch.nn.functional.binary_cross_entropy(probs.clamp(1e-6, 1 - 1e-6), y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(params, 1.0)
        opt.step()
        step += 1
        if log is not None and step % 200 == 0:
            log(f"finetune step {step} | loss {loss.item():.4f} | {max(0.0, seconds - elapsed) / 60:.1f} min left")
    model.eval()
    return step


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
        "training": dict(info["training"]),
    }
