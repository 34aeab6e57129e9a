"""Evidence for the width search: a fair comparison with baselines, and dev-set figures of checkpoints.

Sub-commands (``python -m vad.training.report ...``):

* ``cache --speech DIR... --noise DIR... [--rir DIR...] -o CACHE``: the feature cache every run
  of ``compare`` shares (``training.train.prepare_data``: ``vad train``'s recipe).

* ``compare --cache DIR --budgets B... --seeds S... --steps N --finetune-steps M --dev DIR -o OUT``:
  at every budget B (network MFLOP/s) and seed S, four nets trained on the SAME batches
  (``sample_batch(step)`` seeded by S), with the SAME schedule and selection rule:

  1. ``learned``: the width search in budget mode (``training.train.train``);
  2. ``uniform``: every layer at the largest common width whose FLOPs fit B, from scratch;
  3. ``fixed``: the widths W that ``learned`` found, from scratch;
  4. ``pruned``: magnitude pruning: the full-width net trained, and at every evaluation
     pruned to W (each layer keeps its W channels of largest L1 incoming-weight norm; a GRU
     unit's rows in all gates of W_ih and W_hh) and evaluated as pruned.

  Batches: ``CachedStreams.sample_batch`` with the recipe's ``FeatureAugment`` (as ``vad train``).
  Schedule (all four): phase 1 = N steps of AdamW (lr ``TrainConfig.lr``, linear warm-up
  over ``warmup_steps``, then constant; weight decay ``weight_decay``) -- the search itself
  for ``learned``; phase 2 = M steps at fixed widths from the best phase-1 snapshot, fresh
  AdamW, cosine from ``finetune_lr`` to 0, no weight decay (``training.consolidate.train_fixed``).
  Selection (all four): every ``eval_every_steps`` and at the end of each phase the net (as it
  would be shipped: consolidated / pruned) is measured on the *select* half of the cache's
  validation streams; the best snapshot of phase 1 starts phase 2 and competes with phase
  2's snapshots. Nothing is selected on the scores below.

  Scores: the *check* half of validation (held-out synthetic streams), and the real
  recordings of ``--dev``: ``dev/mix`` (speech in real noise, tight labels; pooled, and per
  SNR) and the AMI meeting files, each pooled frame ROC-AUC over its own files only (no
  speech-free file is ever pooled into an AUC), and the share of ``dev/nonspeech`` frames at
  p >= 0.5. Every (budget, seed) writes ``OUT/runs/budget-B-seed-S.json`` (a rerun skips
  the ones already there, so an interrupted comparison resumes); then ``OUT/comparison.json``
  (mean and sd over seeds), ``OUT/comparison.md`` (table) and ``OUT/comparison.png``.
  (budget, seed) jobs run in ``--jobs`` worker processes, one torch thread each.

* ``evaluate CKPT... [--cache DIR] [--dev DIR]``: check AUC and dev figures of consolidated
  checkpoints, as JSON on stdout (to mark shipped models on the plot: ``--extra``).
* ``replot OUT`` redraws the plot and table from ``OUT/comparison.json``.

Dev data (``load_dev``): audio read with ``vad.core.audio.load_audio`` at the model's rate,
features by the numpy reference ``vad.core.features.logmel``, labels from the RTTM files
(``vad.core.labelfiles``; a frame is speech when at least half covered).
"""

from __future__ import annotations

import argparse
import json
import math
import multiprocessing
import re
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vad.training.consolidate import (
    Schedule,
    atomic_torch_save,
    evaluate_auc,
    frozen_checkpoint,
    load_consolidated,
    predict,
    split_validation,
    train_fixed,
    widths_flops_per_frame,
)
from vad.training.model import ArchConfig, FrozenVAD, slice_channels

from vad.core.atomicfile import atomic_write_text
from vad.core.features import FeatureSpec, logmel
from vad.core.leveling import LevelingConfig
from vad.core.metrics import roc_auc
from vad.core.modelmeta import MFLOP

DEFAULT_DEV_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "dev"
FALSE_ALARM_THRESHOLD = 0.5
METHODS = ("learned", "uniform", "fixed", "pruned")
FINETUNE_BATCH_OFFSET = 10_000_000  # phase 2 draws other batches than phase 1 (as training.train does)
SCORES = ("check_auc", "dev_mix_auc", "dev_ami_auc", "dev_nonspeech_false_alarm", "network_mflops")
_SNR_TOKEN = re.compile(r"snr(m?\d+)", re.IGNORECASE)


# --- dev set ----------------------------------------------------------------------------
def _group(path: Path, dev_dir: Path) -> tuple[str, str | None]:
    if path.parent.name == "nonspeech":
        return "nonspeech", None
    if path.parent.name == "mix" and path.parent.parent == dev_dir:
        token = _SNR_TOKEN.findall(path.stem)
        return "mix", (token[-1].lower() if token else None)
    if path.name.startswith("ami_"):
        return "ami", None
    return "other", None


def load_dev(dev_dir: str | Path, spec: FeatureSpec, leveling: LevelingConfig | None = None) -> list[dict[str, Any]]:
    """Every ``*.flac`` + ``*.rttm`` in dev_dir, dev_dir/mix and dev_dir/nonspeech: name, group, snr, features,
    labels; ``leveling``: the features of the audio leveled as a primed runtime stream (``vad.core.leveling.level_stream``),
    for nets trained on leveled input (``CachedStreams.input_leveling``)."""
    from vad.core.audio import load_audio
    from vad.core.labelfiles import read_rttm, segments_to_frames
    from vad.core.leveling import level_stream

    dev_dir = Path(dev_dir)
    items = []
    paths = sorted(dev_dir.glob("*.flac")) + sorted((dev_dir / "mix").glob("*.flac")) + sorted(
        (dev_dir / "nonspeech").glob("*.flac"))
    for audio_path in paths:
        samples, _rate = load_audio(audio_path, spec.sample_rate_hz)
        if leveling is not None:
            samples = level_stream(samples, spec.hop_length_samples, leveling.coefficients(spec.hop_s))
        feats = logmel(samples, spec)
        labels = segments_to_frames(read_rttm(audio_path.with_suffix(".rttm")), len(feats), spec.hop_s)
        group, snr = _group(audio_path, dev_dir)
        items.append({"name": audio_path.stem, "group": group, "snr": snr, "features": feats, "labels": labels})
    return items


def dev_metrics(model: FrozenVAD, items: list[dict[str, Any]]) -> dict[str, float]:
    """Pooled frame AUC per speech group (mix, per SNR, AMI, other) and the non-speech false-alarm share."""
    scores = {it["name"]: predict(model, it["features"]) for it in items}

    def pooled(select) -> float:
        sel = [it for it in items if select(it)]
        if not sel:
            return float("nan")
        return roc_auc(np.concatenate([it["labels"] for it in sel]), np.concatenate([scores[it["name"]] for it in sel]))

    out = {
        "dev_mix_auc": pooled(lambda it: it["group"] == "mix"),
        "dev_ami_auc": pooled(lambda it: it["group"] == "ami"),
        "dev_other_auc": pooled(lambda it: it["group"] == "other"),
    }
    for snr in sorted({it["snr"] for it in items if it["group"] == "mix" and it["snr"]}):
        out[f"dev_mix_auc_{snr}"] = pooled(lambda it, snr=snr: it["group"] == "mix" and it["snr"] == snr)
    nonspeech = [scores[it["name"]] for it in items if it["group"] == "nonspeech"]
    out["dev_nonspeech_false_alarm"] = (float(np.mean(np.concatenate(nonspeech) >= FALSE_ALARM_THRESHOLD))
                                        if nonspeech else float("nan"))
    return out


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


def uniform_width(budget_flops_per_frame: float, n_features: int, conv_kernel_frames: int, max_width: int) -> int:
    """Largest width w (<= max_width) with every layer at w within the budget."""
    best = 1
    for w in range(1, max_width + 1):
        if widths_flops_per_frame({"input": w, "conv": w, "gru": w}, n_features, conv_kernel_frames) <= budget_flops_per_frame:
            best = w
    return best


def _fresh(arch: ArchConfig, feature_mean: np.ndarray, feature_std: np.ndarray, seed: int) -> FrozenVAD:
    torch.manual_seed(seed)
    model = FrozenVAD(arch)
    with torch.no_grad():
        model.feat_mean.copy_(torch.as_tensor(feature_mean))
        model.feat_std.copy_(torch.as_tensor(np.maximum(feature_std, 1e-3)))
    return model


def two_phase(model: FrozenVAD, config, sample_batch, select, candidate=None, log=None) -> tuple[FrozenVAD, dict]:
    """The shared schedule and selection rule (module doc) for a net at fixed widths."""
    phase1 = train_fixed(
        model, sample_batch,
        Schedule(config.lr, "constant", warmup_steps=config.warmup_steps, weight_decay=config.weight_decay),
        max_steps=config.max_steps, select=select, eval_every=config.eval_every_steps, candidate=candidate, log=log,
        nonspeech_weight=config.nonspeech_weight,
    )
    phase2 = train_fixed(
        phase1.model, sample_batch, Schedule(config.finetune_lr, "cosine"), max_steps=config.finetune_max_steps,
        select=select, eval_every=config.eval_every_steps, start_auc=phase1.select_auc,
        step_offset=FINETUNE_BATCH_OFFSET, log=log, nonspeech_weight=config.nonspeech_weight,
    )
    info = {"steps": phase1.steps + phase2.steps, "selected": ["phase1", phase1.selected_step] if phase2.selected_step == 0
            else ["phase2", phase2.selected_step], "select_auc": phase2.select_auc}
    return phase2.model, info


def _scores(model: FrozenVAD, spec: FeatureSpec, check, dev, seconds: float, info: dict) -> dict[str, Any]:
    out = {
        "widths": dict(model.arch.widths),
        "network_mflops": model.flops_per_second(spec.frames_per_second) / MFLOP,
        "parameters": model.parameter_count(),
        "check_auc": evaluate_auc(model, check),
        "train_seconds": seconds,
        **info,
    }
    if dev:
        out.update(dev_metrics(model, dev))
    return out


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """The four methods at one (budget, seed) (runs in a worker process); writes the run's JSON."""
    from vad.training.data import CachedStreams, FeatureAugment
    from vad.training.train import TrainConfig, train

    torch.set_num_threads(1)
    budget, seed, out_dir = job["budget"], job["seed"], Path(job["out_dir"])
    run_dir = out_dir / "runs" / f"budget-{budget:g}-seed-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    log_file = open(run_dir / "log.txt", "w")  # noqa: SIM115 - closed below

    def log(line: str) -> None:
        print(line, file=log_file, flush=True)

    config = TrainConfig(budget_mflops=budget, max_minutes=1e4, seed=seed, num_threads=1, finetune_fraction=0.5,
                         min_check_minutes=0.0, **job["config"])
    streams = CachedStreams(job["cache"], "train", window_frames=config.window_frames, seed=seed,
                            feature_augment=FeatureAugment() if job.get("feature_augment", True) else None)
    val = list(CachedStreams(job["cache"], "val", window_frames=1, seed=seed).iter_streams())
    select, check = split_validation(val)
    spec = streams.spec
    dev = load_dev(job["dev"], spec, streams.input_leveling) if job.get("dev") else []

    def sample_batch(step: int):
        return streams.sample_batch(config.batch_size, np.random.default_rng([seed, step]))

    results: dict[str, Any] = {"budget_mflops": budget, "seed": seed}
    t = time.monotonic()
    log("== learned")
    res = train(config, spec, sample_batch, val, streams.feature_mean, streams.feature_std, run_dir / "learned", log=log)
    search = res.checkpoint["training"]["search"]
    info = {"steps": search["steps"] + search["finetune_steps"], "select_auc": res.checkpoint["metrics"]["val_auc_select"],
            "selected": ["phase1", search["selected_step"]] if search["finetune_selected_step"] == 0
            else ["phase2", search["finetune_selected_step"]]}
    results["learned"] = _scores(res.frozen, spec, check, dev, time.monotonic() - t, info)
    atomic_torch_save(res.checkpoint, run_dir / "learned.pt")
    widths = dict(res.frozen.arch.widths)
    n_feat, k = spec.n_mels, config.conv_kernel_frames

    def fixed_arch(w: dict[str, int]) -> ArchConfig:
        return ArchConfig(n_feat, w["input"], w["conv"], w["gru"], k)

    u = uniform_width(budget * MFLOP / spec.frames_per_second, n_feat, k,
                      min(config.input_width, config.conv_width, config.gru_width))
    plans = {
        "uniform": (fixed_arch({"input": u, "conv": u, "gru": u}), None),
        "fixed": (fixed_arch(widths), None),
        "pruned": (config.arch(n_feat), lambda m: magnitude_prune(m, widths)),
    }
    for method, (arch, candidate) in plans.items():
        log(f"== {method} {arch.widths}")
        t = time.monotonic()
        model = _fresh(arch, streams.feature_mean, streams.feature_std, seed)
        net, info = two_phase(model, config, sample_batch, select, candidate=candidate, log=log)
        results[method] = _scores(net, spec, check, dev, time.monotonic() - t, info)
        atomic_torch_save(frozen_checkpoint(net, spec, {"val_auc": results[method]["check_auc"]}, {"method": method}),
                          run_dir / f"{method}.pt")
        log(f"{method}: {results[method]}")
    log_file.close()
    atomic_write_text(out_dir / "runs" / f"budget-{budget:g}-seed-{seed}.json", json.dumps(results, indent=1))
    return results


# --- aggregation and plot --------------------------------------------------------------------
def aggregate(runs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One row per budget: per method, mean and sd (over seeds) of every score, and the seeds."""
    rows = []
    for budget in sorted({r["budget_mflops"] for r in runs}):
        sel = [r for r in runs if r["budget_mflops"] == budget]
        row: dict[str, Any] = {"budget_mflops": budget, "seeds": sorted(r["seed"] for r in sel)}
        for method in METHODS:
            stats = {}
            for key in SCORES:
                values = np.array([r[method].get(key, math.nan) for r in sel], dtype=float)
                stats[key] = {"mean": float(np.mean(values)),
                              "sd": float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")}
            stats["widths"] = [r[method]["widths"] for r in sel]
            row[method] = stats
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    head = "| budget MFLOP/s | method | widths (seed 1st) | net MFLOP/s | dev/mix AUC | AMI AUC | check AUC | nonspeech FA |"
    lines = [head, "|" + "---|" * 8]

    def cell(stats, key, digits=4):
        m, sd = stats[key]["mean"], stats[key]["sd"]
        return f"{m:.{digits}f}" + ("" if math.isnan(sd) else f" ± {sd:.{digits}f}")

    for row in rows:
        for method in METHODS:
            st = row[method]
            w = st["widths"][0]
            lines.append(f"| {row['budget_mflops']:g} | {method} | {w['input']}/{w['conv']}/{w['gru']} | "
                         f"{cell(st, 'network_mflops', 3)} | {cell(st, 'dev_mix_auc')} | {cell(st, 'dev_ami_auc')} | "
                         f"{cell(st, 'check_auc')} | {cell(st, 'dev_nonspeech_false_alarm')} |")
    return "\n".join(lines)


def plot(rows: list[dict[str, Any]], extra: list[dict[str, Any]], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [("dev_mix_auc", "dev/mix (speech in real noise)"), ("dev_ami_auc", "AMI meetings (dev)"),
              ("check_auc", "held-out synthetic (check)")]
    fig, axes = plt.subplots(1, len(panels), figsize=(15, 4.2))
    for ax, (key, title) in zip(axes, panels, strict=True):
        for i, (method, marker) in enumerate(zip(METHODS, ("o-", "s--", "^:", "v-."), strict=True)):
            dodge = 0.01 * (i - 1.5) if len(rows) > 1 else 0.0  # keep error bars apart across budgets
            xs = [r[method]["network_mflops"]["mean"] * (1 + dodge) for r in rows]
            ys = [r[method][key]["mean"] for r in rows]
            es = [0.0 if math.isnan(r[method][key]["sd"]) else r[method][key]["sd"] for r in rows]
            ax.errorbar(xs, ys, yerr=es, fmt=marker, capsize=3, label=method)
        for e in extra:  # rows of `evaluate` (shipped models)
            if key in e:
                ax.plot([e["network_mflops"]], [e[key]], "k*", markersize=11)
                ax.annotate(e["name"], (e["network_mflops"], e[key]), fontsize=8)
        ax.set_xlabel("network MFLOP/s")
        ax.set_ylabel("frame ROC-AUC")
        ax.set_title(title)
        ax.grid(alpha=0.3)
        ax.legend()
    n_seeds = max(len(r["seeds"]) for r in rows) if rows else 0
    fig.suptitle(f"learned widths vs baselines, same data / schedule / selection; mean ± sd over {n_seeds} seed(s)")
    fig.tight_layout()
    from vad.core.atomicfile import atomic_output

    with atomic_output(path, "wb") as fh:
        fig.savefig(fh, dpi=120, format="png")


def write_outputs(out_dir: Path, report: dict[str, Any]) -> None:
    atomic_write_text(out_dir / "comparison.json", json.dumps(report, indent=1))
    atomic_write_text(out_dir / "comparison.md", format_table(report["rows"]) + "\n")
    plot(report["rows"], report.get("shipped_models", []), out_dir / "comparison.png")


# --- command line -----------------------------------------------------------------------
def _evaluate(args) -> int:
    from vad.training.data import CachedStreams
    from vad.training.export import trained_leveling

    torch.set_num_threads(1)
    out = []
    devs: dict[str, list] = {}  # dev features per input leveling the checkpoints were trained on
    check = None
    if args.cache:
        _select, check = split_validation(list(CachedStreams(args.cache, "val", window_frames=1).iter_streams()))
    for ckpt in args.checkpoints:
        model, info = load_consolidated(ckpt)
        spec = FeatureSpec.from_dict(info["feature_spec"])
        dev = None
        if args.dev:
            leveling = trained_leveling(info)
            key = repr(leveling)
            if key not in devs:
                devs[key] = load_dev(args.dev, spec, leveling)
            dev = devs[key]
        row = {
            "checkpoint": str(ckpt),
            "name": Path(ckpt).stem if Path(ckpt).stem != "consolidated" else Path(ckpt).parent.name,
            "widths": info["widths"],
            "network_mflops": info["network_flops_per_second"] / MFLOP,
            "frontend_mflops": info["frontend_flops_per_second"] / MFLOP,
            "parameters": info["parameters"],
            "metrics": info["metrics"],
            "train_minutes": info["training"].get("wall_minutes"),
        }
        if check is not None:
            row["check_auc"] = evaluate_auc(model, check)
        if dev:
            row.update(dev_metrics(model, dev))
        out.append(row)
    text = json.dumps(out, indent=1)
    print(text)
    if args.output:
        atomic_write_text(Path(args.output), text)
    return 0


def _compare(args) -> int:
    out_dir = Path(args.output)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    config = {"max_steps": args.steps, "finetune_max_steps": args.finetune_steps, "eval_every_steps": args.eval_every,
              "input_width": args.max_width, "conv_width": args.max_width, "gru_width": args.max_width}
    config.update({k: v for k, v in (("batch_size", args.batch_size), ("window_frames", args.window_frames),
                                     ("width_warmup_steps", args.width_warmup)) if v})
    jobs = [{"budget": b, "seed": s, "cache": str(args.cache), "dev": args.dev, "out_dir": str(out_dir), "config": config,
             "feature_augment": not args.no_feature_augment} for b in args.budgets for s in args.seeds]
    todo = [j for j in jobs if not (out_dir / "runs" / f"budget-{j['budget']:g}-seed-{j['seed']}.json").is_file()]
    print(f"{len(jobs)} runs, {len(jobs) - len(todo)} already done; running {len(todo)} on {args.jobs} process(es)",
          file=sys.stderr)
    t = time.monotonic()
    if todo:
        ctx = multiprocessing.get_context("spawn")
        with ctx.Pool(min(args.jobs, len(todo))) as pool:
            pool.map(run_job, todo, chunksize=1)
    runs = [json.loads((out_dir / "runs" / f"budget-{j['budget']:g}-seed-{j['seed']}.json").read_text()) for j in jobs]
    extra = json.loads(Path(args.extra).read_text()) if args.extra else []
    report = {"command": " ".join(sys.argv), "config": config, "methods": list(METHODS),
              "selection": "best select-split AUC every eval_every_steps and at each phase's end (module doc)",
              "wall_minutes_this_call": (time.monotonic() - t) / 60, "rows": aggregate(runs), "results": runs,
              "shipped_models": extra}
    write_outputs(out_dir, report)
    print(format_table(report["rows"]))
    return 0


def _cache(args) -> int:
    from vad.training.train import DataConfig, prepare_data

    data = DataConfig(tuple(args.speech), tuple(args.noise), tuple(args.rir), minutes_train=args.minutes_train,
                      minutes_val=args.minutes_val)
    _streams, val, seconds = prepare_data(data, args.output, args.seed, window_frames=1,
                                          log=lambda line: print(line, file=sys.stderr))
    print(f"cache ready at {args.output} in {seconds:.0f} s ({len(val)} validation streams)")
    return 0


def _replot(args) -> int:
    out_dir = Path(args.output)
    report = json.loads((out_dir / "comparison.json").read_text())
    if args.extra:
        report["shipped_models"] = json.loads(Path(args.extra).read_text())
    write_outputs(out_dir, report)
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vad.training.report", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    default_dev = str(DEFAULT_DEV_DIR) if DEFAULT_DEV_DIR.is_dir() else None
    ev = sub.add_parser("evaluate", help="check/dev figures of consolidated checkpoints (JSON)")
    ev.add_argument("checkpoints", nargs="+")
    ev.add_argument("--cache", help="feature cache whose check split to measure on")
    ev.add_argument("--dev", default=default_dev)
    ev.add_argument("-o", "--output", help="also write the JSON here")
    cp = sub.add_parser("compare", help="learned widths vs uniform, fixed-at-learned and pruned nets (module doc)")
    cp.add_argument("--cache", required=True, help="feature cache (training.data.build_cache) shared by every run")
    cp.add_argument("--budgets", type=float, nargs="+", default=[0.5, 1.0, 2.0], help="network MFLOP/s")
    cp.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    cp.add_argument("--steps", type=int, default=3000, help="phase-1 steps (the search for learned widths)")
    cp.add_argument("--finetune-steps", type=int, default=750, help="phase-2 steps at fixed widths")
    cp.add_argument("--eval-every", type=int, default=100, help="selection period in steps")
    cp.add_argument("--max-width", type=int, default=48)
    cp.add_argument("--batch-size", type=int, help="default: TrainConfig's")
    cp.add_argument("--window-frames", type=int, help="default: TrainConfig's")
    cp.add_argument("--width-warmup", type=int, help="width-lr warm-up steps of the search (default: TrainConfig's)")
    cp.add_argument("--no-feature-augment", action="store_true", help="as `vad train --no-feature-augment`")
    cp.add_argument("--jobs", type=int, default=2)
    cp.add_argument("--dev", default=default_dev, help="the dev folder (with mix/ and nonspeech/)")
    cp.add_argument("--extra", help="JSON list from `evaluate` to mark shipped models on the plot")
    cp.add_argument("-o", "--output", required=True)
    ca = sub.add_parser("cache", help="build the feature cache compare reads (the recipe of `vad train`)")
    ca.add_argument("--speech", nargs="+", required=True)
    ca.add_argument("--noise", nargs="+", required=True)
    ca.add_argument("--rir", nargs="+", default=[])
    ca.add_argument("--minutes-train", type=float, default=240.0)
    ca.add_argument("--minutes-val", type=float, default=20.0)
    ca.add_argument("--seed", type=int, default=0)
    ca.add_argument("-o", "--output", required=True, help="cache folder")
    rp = sub.add_parser("replot", help="redraw OUT/comparison.png and .md, optionally marking shipped models")
    rp.add_argument("output", help="the compare OUT folder")
    rp.add_argument("--extra", help="JSON list from `evaluate` to mark on the plot")
    args = parser.parse_args(argv)
    return {"evaluate": _evaluate, "compare": _compare, "cache": _cache, "replot": _replot}[args.cmd](args)


if __name__ == "__main__":
    sys.exit(main())
