"""Evidence for the width search: baselines at equal compute, and dev-set figures of checkpoints.

Two sub-commands (``python -m vad.training.report ...``):

* ``evaluate CKPT... [--cache DIR] [--dev DIR]``: validation AUC (re-measured on the cache's
  validation streams) and dev figures of consolidated checkpoints, as JSON on stdout.
* ``baselines --cache DIR --budgets B... [--steps N] [--dev DIR] -o OUT_DIR``: for every
  budget B (network MFLOP/s), three nets trained with the SAME number of optimiser steps
  (same batch, same data, same seed):

  1. ``dynamic``: the width search in budget mode (``training.train.train``): ``N`` search
     steps + ``N // 4`` fine-tuning steps; its consolidated widths W define the comparison;
  2. ``fixed``: ``FrozenVAD`` at widths W trained from scratch for ``N + N // 4`` steps;
  3. ``pruned``: magnitude pruning: ``FrozenVAD`` at the maximum widths trained ``N // 2``
     steps, then every layer keeps its W largest-magnitude channels (L1 norm of the channel's
     incoming weights -- for a GRU unit, of its rows in all gates of W_ih and W_hh) and the
     pruned net is fine-tuned ``N // 2 + N // 4`` steps.

  Writes ``OUT_DIR/baselines.json`` (widths, MFLOP/s, val and dev AUC per method and budget)
  and ``OUT_DIR/baselines.png`` (AUC vs MFLOP/s). Budgets run in parallel worker processes
  (``--jobs``), one torch thread each.

Dev figures (``dev_metrics``): audio read with ``vad.core.audio.load_audio`` at the model's rate,
features by the numpy reference ``vad.core.features.logmel``, labels from the RTTM files with
``vad.core.labelfiles`` (frame = speech when at least half covered); pooled frame ROC-AUC over all dev
files (the non-speech clips included), AUC on the AMI far-field clips and on the others,
and the fraction of frames at probability >= 0.5 on ``dev/nonspeech``.
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vad.training.consolidate import (
    atomic_torch_save,
    evaluate_auc,
    finetune,
    frozen_checkpoint,
    load_consolidated,
    predict,
)
from vad.training.model import ArchConfig, FrozenVAD, slice_channels

from vad.core.features import FeatureSpec, logmel
from vad.core.metrics import roc_auc
from vad.core.modelmeta import MFLOP

DEFAULT_DEV_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
FALSE_ALARM_THRESHOLD = 0.5
FROM_SCRATCH_LR = 3e-3


# --- dev set ----------------------------------------------------------------------------
def load_dev(dev_dir: str | Path, spec: FeatureSpec) -> list[dict[str, Any]]:
    """Every ``*.flac`` + ``*.rttm`` under dev_dir (and dev_dir/nonspeech): name, group, features, labels."""
    from vad.core.audio import load_audio
    from vad.core.labelfiles import read_rttm, segments_to_frames

    dev_dir = Path(dev_dir)
    items = []
    for audio_path in sorted(dev_dir.glob("*.flac")) + sorted((dev_dir / "nonspeech").glob("*.flac")):
        samples, _rate = load_audio(audio_path, spec.sample_rate_hz)
        feats = logmel(samples, spec)
        labels = segments_to_frames(read_rttm(audio_path.with_suffix(".rttm")), len(feats), spec.hop_s)
        if audio_path.parent.name == "nonspeech":
            group = "nonspeech"
        elif audio_path.name.startswith("ami_"):
            group = "ami"
        else:
            group = "other"
        items.append({"name": audio_path.stem, "group": group, "features": feats, "labels": labels})
    return items


def dev_metrics(model: FrozenVAD, items: list[dict[str, Any]]) -> dict[str, float]:
    scores = {it["name"]: predict(model, it["features"]) for it in items}

    def pooled(groups):
        sel = [it for it in items if it["group"] in groups]
        return roc_auc(np.concatenate([it["labels"] for it in sel]), np.concatenate([scores[it["name"]] for it in sel]))

    nonspeech = [scores[it["name"]] for it in items if it["group"] == "nonspeech"]
    speech_items = [it for it in items if it["group"] != "nonspeech"]
    all_labels = np.concatenate([it["labels"] for it in speech_items])
    all_scores = np.concatenate([scores[it["name"]] for it in speech_items])
    detected = all_scores >= FALSE_ALARM_THRESHOLD
    return {
        "dev_auc": pooled(("ami", "other", "nonspeech")),
        "dev_auc_ami": pooled(("ami",)),
        "dev_auc_other": pooled(("other",)),
        "dev_nonspeech_false_alarm": float(np.mean(np.concatenate(nonspeech) >= FALSE_ALARM_THRESHOLD))
        if nonspeech else float("nan"),
        "dev_miss_rate": float(np.mean(~detected[all_labels])),
        "dev_false_alarm_rate": float(np.mean(detected[~all_labels])),
    }


# --- baselines ---------------------------------------------------------------------------
def magnitude_prune(model: FrozenVAD, widths: dict[str, int]) -> FrozenVAD:
    """Keep each layer's ``widths[...]`` channels of largest L1 incoming-weight norm."""
    c1, c2, h = model.arch.input_width, model.arch.conv_width, model.arch.gru_width
    with torch.no_grad():
        imp_in = model.inp.weight.abs().sum(1) + model.dw.weight.abs().reshape(c1, -1).sum(1)
        imp_conv = model.pw.weight.abs().sum(1)
        gates_ih = model.gru.weight_ih_l0.abs().reshape(3, h, c2).sum((0, 2))
        gates_hh = model.gru.weight_hh_l0.abs().reshape(3, h, h).sum((0, 2))
        imp_gru = gates_ih + gates_hh
    importance = {"input": imp_in, "conv": imp_conv, "gru": imp_gru}
    keep = {n: torch.sort(torch.argsort(imp, descending=True)[: widths[n]]).values for n, imp in importance.items()}
    return slice_channels(model, keep)


def _fresh(arch: ArchConfig, streams, seed: int) -> FrozenVAD:
    torch.manual_seed(seed)
    model = FrozenVAD(arch)
    with torch.no_grad():
        model.feat_mean.copy_(torch.as_tensor(streams.feature_mean))
        model.feat_std.copy_(torch.as_tensor(np.maximum(streams.feature_std, 1e-3)))
    return model


def _summary(model: FrozenVAD, spec: FeatureSpec, val, dev, seconds: float, steps: int) -> dict[str, Any]:
    out = {
        "widths": dict(model.arch.widths),
        "network_mflops": model.flops_per_second(spec.frames_per_second) / MFLOP,
        "frontend_mflops": spec.flops_per_second() / MFLOP,
        "parameters": model.parameter_count(),
        "val_auc": evaluate_auc(model, val),
        "train_seconds": seconds,
        "steps": steps,
    }
    if dev:
        out.update(dev_metrics(model, dev))
    return out


def run_budget(job: dict[str, Any]) -> dict[str, Any]:
    """All three methods at one budget (runs in a worker process)."""
    from vad.training.data import CachedStreams
    from vad.training.train import TrainConfig, train

    torch.set_num_threads(1)
    budget, steps, seed, cache = job["budget"], job["steps"], job["seed"], job["cache"]
    log_path = Path(job["out_dir"]) / f"budget-{budget:g}.log"
    log_file = open(log_path, "w")  # noqa: SIM115 - closed below

    def log(line: str) -> None:
        print(line, file=log_file, flush=True)

    config = TrainConfig(budget_mflops=budget, max_minutes=1e4, max_steps=steps, finetune_max_steps=steps // 4,
                         finetune_fraction=0.5, seed=seed, num_threads=1, eval_every_steps=max(50, steps // 8))
    streams = CachedStreams(cache, "train", window_frames=config.window_frames, seed=seed)
    val = list(CachedStreams(cache, "val", window_frames=1, seed=seed).iter_streams())
    spec = streams.spec
    dev = load_dev(job["dev"], spec) if job.get("dev") else []

    def sample_batch(step: int):
        return streams.sample_batch(config.batch_size, np.random.default_rng([seed, step]))

    results: dict[str, Any] = {"budget_mflops": budget}
    t = time.monotonic()
    res = train(config, spec, sample_batch, val, streams.feature_mean, streams.feature_std,
                Path(job["out_dir"]) / f"dynamic-{budget:g}", log=log)
    out_dir = Path(job["out_dir"])
    atomic_torch_save(res.checkpoint, out_dir / f"dynamic-{budget:g}" / "consolidated.pt")
    total_steps = res.checkpoint["training"]["search"]["steps"] + res.checkpoint["training"]["search"]["finetune_steps"]
    results["dynamic"] = _summary(res.frozen, spec, val, dev, time.monotonic() - t, total_steps)
    widths = dict(res.frozen.arch.widths)
    log(f"dynamic: {results['dynamic']}")

    t = time.monotonic()
    fixed = _fresh(ArchConfig(spec.n_mels, widths["input"], widths["conv"], widths["gru"], config.conv_kernel_frames),
                   streams, seed)
    n = finetune(fixed, sample_batch, 1e9, FROM_SCRATCH_LR, max_steps=total_steps, log=log)
    results["fixed"] = _summary(fixed, spec, val, dev, time.monotonic() - t, n)
    atomic_torch_save(frozen_checkpoint(fixed, spec, {"val_auc": results["fixed"]["val_auc"]}, {"method": "fixed"}),
                      out_dir / f"fixed-{budget:g}.pt")
    log(f"fixed: {results['fixed']}")

    t = time.monotonic()
    full = _fresh(config.arch(spec.n_mels), streams, seed)
    n1 = finetune(full, sample_batch, 1e9, FROM_SCRATCH_LR, max_steps=total_steps // 2, log=log)
    pruned = magnitude_prune(full, widths)
    n2 = finetune(pruned, lambda s: sample_batch(5_000_000 + s), 1e9, config.finetune_lr,
                  max_steps=total_steps - n1, log=log)
    results["pruned"] = _summary(pruned, spec, val, dev, time.monotonic() - t, n1 + n2)
    atomic_torch_save(frozen_checkpoint(pruned, spec, {"val_auc": results["pruned"]["val_auc"]}, {"method": "pruned"}),
                      out_dir / f"pruned-{budget:g}.pt")
    log(f"pruned: {results['pruned']}")
    log_file.close()
    return results


def plot(results: list[dict[str, Any]], extra: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    metrics = [("val_auc", "validation AUC (synthetic streams)"), ("dev_auc", "dev AUC (shared/data/dev)")]
    fig, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for ax, (key, title) in zip(axes, metrics, strict=True):
        for method, marker in (("dynamic", "o-"), ("fixed", "s--"), ("pruned", "^:")):
            pts = sorted((r[method]["network_mflops"], r[method].get(key, math.nan)) for r in results)
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker, label=method)
        for e in extra:  # rows of `evaluate` (val AUC measured on their own cache's validation split)
            value = e.get(key, e.get("metrics", {}).get(key, math.nan))
            ax.plot([e["network_mflops"]], [value], "k*", markersize=11)
            ax.annotate(e["name"], (e["network_mflops"], value), fontsize=8)
        ax.set_xlabel("network MFLOP/s")
        ax.set_ylabel("ROC-AUC")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)


# --- command line -----------------------------------------------------------------------
def _evaluate(args) -> int:
    from vad.training.data import CachedStreams

    torch.set_num_threads(1)
    out = []
    dev = None
    val = list(CachedStreams(args.cache, "val", window_frames=1).iter_streams()) if args.cache else None
    for ckpt in args.checkpoints:
        model, info = load_consolidated(ckpt)
        spec = FeatureSpec.from_dict(info["feature_spec"])
        if dev is None and args.dev:
            dev = load_dev(args.dev, spec)
        row = {
            "checkpoint": str(ckpt),
            "name": Path(ckpt).parent.name,
            "widths": info["widths"],
            "network_mflops": info["network_flops_per_second"] / MFLOP,
            "frontend_mflops": info["frontend_flops_per_second"] / MFLOP,
            "parameters": info["parameters"],
            "metrics": info["metrics"],
            "train_minutes": info["training"].get("wall_minutes"),
        }
        if val is not None:
            row["val_auc_remeasured"] = evaluate_auc(model, val)
        if dev:
            row.update(dev_metrics(model, dev))
        out.append(row)
    text = json.dumps(out, indent=1)
    print(text)
    if args.output:
        Path(args.output).write_text(text)
    return 0


def _baselines(args) -> int:
    out_dir = Path(args.output)
    out_dir.mkdir(parents=True, exist_ok=True)
    jobs = [{"budget": b, "steps": args.steps, "seed": args.seed, "cache": str(args.cache), "dev": args.dev,
             "out_dir": str(out_dir)} for b in args.budgets]
    t = time.monotonic()
    ctx = multiprocessing.get_context("spawn")
    with ctx.Pool(args.jobs) as pool:
        results = pool.map(run_budget, jobs)
    extra = json.loads(Path(args.extra).read_text()) if args.extra else []
    report = {"command": " ".join(sys.argv), "steps_per_method": args.steps + args.steps // 4, "seed": args.seed,
              "wall_minutes": (time.monotonic() - t) / 60, "results": results, "shipped_models": extra}
    (out_dir / "baselines.json").write_text(json.dumps(report, indent=1))
    plot(results, extra, out_dir / "baselines.png")
    print(json.dumps(report, indent=1))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vad.training.report", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    ev = sub.add_parser("evaluate", help="val/dev figures of consolidated checkpoints (JSON)")
    ev.add_argument("checkpoints", nargs="+")
    ev.add_argument("--cache", help="feature cache whose validation streams to re-measure on")
    ev.add_argument("--dev", default=str(DEFAULT_DEV_DIR) if DEFAULT_DEV_DIR.is_dir() else None)
    ev.add_argument("-o", "--output", help="also write the JSON here")
    bl = sub.add_parser("baselines", help="dynamic vs fixed-width vs magnitude pruning at equal steps")
    bl.add_argument("--cache", required=True)
    bl.add_argument("--budgets", type=float, nargs="+", default=[0.25, 0.5, 1.0])
    bl.add_argument("--steps", type=int, default=1200, help="search steps (each method gets steps + steps//4)")
    bl.add_argument("--seed", type=int, default=0)
    bl.add_argument("--jobs", type=int, default=2)
    bl.add_argument("--dev", default=str(DEFAULT_DEV_DIR) if DEFAULT_DEV_DIR.is_dir() else None)
    bl.add_argument("--extra", help="JSON list from `evaluate` to mark shipped models on the plot")
    bl.add_argument("-o", "--output", required=True)
    rp = sub.add_parser("replot", help="redraw OUT_DIR/baselines.png, optionally marking shipped models")
    rp.add_argument("output", help="the baselines OUT_DIR")
    rp.add_argument("--extra", help="JSON list from `evaluate` to mark on the plot")
    args = parser.parse_args(argv)
    if args.cmd == "replot":
        return _replot(args)
    return _evaluate(args) if args.cmd == "evaluate" else _baselines(args)


def _replot(args) -> int:
    out_dir = Path(args.output)
    report = json.loads((out_dir / "baselines.json").read_text())
    if args.extra:
        report["shipped_models"] = json.loads(Path(args.extra).read_text())
        (out_dir / "baselines.json").write_text(json.dumps(report, indent=1))
    plot(report["results"], report.get("shipped_models", []), out_dir / "baselines.png")
    return 0


if __name__ == "__main__":
    sys.exit(main())
