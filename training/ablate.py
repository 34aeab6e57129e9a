"""Recipe ablations with several seeds, decided on the tuning part of dev, reported on the rest.

``python -m vad.training.ablate --cache DIR --budget B --seeds 0 1 2 --variant NAME:KEY=VALUE,...
--tune DEV_TUNE --dev DEV -o OUT`` trains one net per (variant, seed) with ``vad train``'s loop in
budget mode (``training.train.train``: width search, then fixed-width fine-tuning) on the SAME
batches for every variant (``sample_batch(step)`` seeded by the seed), and scores it on:

* ``check``: the held-out half of the cache's synthetic validation streams;
* the *tuning part* (``--tune``, a folder of dev files: the AMI ``trn`` meetings and the other
  speech files): the yardstick a recipe change is **decided** on (``tune_*`` columns);
* the *untouched part* (every ``--dev`` file not in ``--tune``): ``dev/mix`` per SNR, the
  remaining AMI meetings and the ``dev/nonspeech`` false-alarm share (frames at p >= 0.5), only
  **reported** (``dev_*`` columns).

Each AUC is pooled over its own group's files (``training.report.dev_metrics``). A variant is
``NAME:KEY=VALUE,...`` with KEY one of ``teacher_weight`` (distillation weight, the cache must hold
teacher scores), ``feature_augment`` (0/1: the recipe's ``FeatureAugment``) or any numeric
``TrainConfig`` field (e.g. ``budget_mflops``, ``window_frames``, ``lr``). Every (variant, seed)
writes ``OUT/runs/NAME-seed-S.json`` (a rerun skips those already there, so an interrupted
ablation resumes); then ``OUT/ablation.json`` and ``OUT/ablation.md``: mean ± sd over seeds.
Jobs run in ``--jobs`` worker processes, one torch thread each.

Example (the reduced scale of ``training.report compare``, about 1.5 minutes per run on one core)::

    python -m vad.training.ablate --cache runs/cache-v3 --budget 1 --seeds 0 1 2 --steps 600 \\
        --finetune-steps 150 --width-warmup 150 --window-frames 256 --tune runs/dev-tune \\
        --dev ../shared/data/dev --variant t0:teacher_weight=0 --variant t3:teacher_weight=0.3 -o runs/abl
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import multiprocessing
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from vad.training.consolidate import atomic_torch_save, evaluate_auc, split_validation
from vad.training.report import DEFAULT_DEV_DIR, dev_metrics, load_dev

from vad.core.atomicfile import atomic_write_text
from vad.core.errors import InvalidInputError

DATA_KEYS = ("teacher_weight", "feature_augment")  # variant keys that change the batches, not the loop
COLUMNS = (  # (key, header): the decision yardstick first
    ("tune_dev_ami_auc", "tuning AMI AUC"), ("tune_dev_other_auc", "tuning other AUC"), ("check_auc", "check AUC"),
    ("dev_mix_auc", "dev/mix AUC"), ("dev_ami_auc", "untouched AMI AUC"),
    ("dev_nonspeech_false_alarm", "nonspeech FA (p>=0.5)"),
)


def parse_variant(text: str) -> tuple[str, dict[str, float]]:
    """``NAME:KEY=VALUE,...`` -> (NAME, {KEY: value}); InvalidInputError naming the bad part."""
    from vad.training.train import TrainConfig

    name, sep, rest = text.partition(":")
    if not name or not sep or "/" in name:
        raise InvalidInputError(f"--variant {text!r}: expected NAME:KEY=VALUE[,KEY=VALUE...]")
    numeric = {f.name for f in dataclasses.fields(TrainConfig) if f.type in ("int", "float", "int | None",
                                                                              "float | None")}
    knobs: dict[str, float] = {}
    for part in filter(None, rest.split(",")):
        key, eq, value = part.partition("=")
        if not eq or (key not in DATA_KEYS and key not in numeric):
            raise InvalidInputError(f"--variant {text!r}: {part!r} is not KEY=VALUE with KEY in "
                                    f"{', '.join(DATA_KEYS)} or a numeric TrainConfig field")
        try:
            knobs[key] = float(value)
        except ValueError:
            raise InvalidInputError(f"--variant {text!r}: {key}={value!r} is not a number") from None
    return name, knobs


def run_job(job: dict[str, Any]) -> dict[str, Any]:
    """One (variant, seed): train, score, write OUT/runs/NAME-seed-S.json (runs in a worker process)."""
    from vad.training.data import CachedStreams, FeatureAugment
    from vad.training.train import TrainConfig, train

    torch.set_num_threads(1)
    name, seed, knobs, out_dir = job["name"], job["seed"], job["knobs"], Path(job["out_dir"])
    run_dir = out_dir / "runs" / f"{name}-seed-{seed}"
    run_dir.mkdir(parents=True, exist_ok=True)
    overrides = {**job["config"], **{k: v for k, v in knobs.items() if k not in DATA_KEYS}}
    types = {f.name: f.type for f in dataclasses.fields(TrainConfig)}
    overrides = {k: int(v) if types[k].startswith("int") else v for k, v in overrides.items()}
    config = TrainConfig(max_minutes=1e4, seed=seed, num_threads=1, finetune_fraction=0.5, min_check_minutes=0.0,
                         **overrides)
    teacher = float(knobs.get("teacher_weight", 0.0))
    augment = bool(knobs.get("feature_augment", 1.0))
    streams = CachedStreams(job["cache"], "train", window_frames=config.window_frames, seed=seed, teacher_weight=teacher,
                            feature_augment=FeatureAugment() if augment else None)
    val = list(CachedStreams(job["cache"], "val", window_frames=1, seed=seed).iter_streams())
    _select, check = split_validation(val)
    spec = streams.spec
    tune = load_dev(job["tune"], spec, streams.input_leveling)  # dev audio leveled as the cache's mixtures were
    tuned = {it["name"] for it in tune}
    untouched = [it for it in load_dev(job["dev"], spec, streams.input_leveling) if it["name"] not in tuned]

    def sample_batch(step: int):
        return streams.sample_batch(config.batch_size, np.random.default_rng([seed, step]))

    with open(run_dir / "log.txt", "w") as log_file:
        t = time.monotonic()
        res = train(config, spec, sample_batch, val, streams.feature_mean, streams.feature_std, run_dir / "run",
                    data_info={"stream_options": streams.index.get("options")},  # (the input leveling, if any)
                    log=lambda line: print(line, file=log_file, flush=True))
    out = {"variant": name, "seed": seed, "knobs": knobs, "teacher_weight": teacher, "feature_augment": augment,
           "widths": dict(res.frozen.arch.widths), "train_seconds": time.monotonic() - t,
           "check_auc": evaluate_auc(res.frozen, check)}
    out.update({"tune_" + k: v for k, v in dev_metrics(res.frozen, tune).items()})
    out.update(dev_metrics(res.frozen, untouched))
    atomic_torch_save(res.checkpoint, run_dir / "model.pt")
    atomic_write_text(out_dir / "runs" / f"{name}-seed-{seed}.json", json.dumps(out, indent=1))
    return out


def summarize(runs: list[dict[str, Any]], names: list[str]) -> list[dict[str, Any]]:
    """One row per variant: mean and sd (over its seeds) of every column."""
    rows = []
    for name in names:
        sel = [r for r in runs if r["variant"] == name]
        row: dict[str, Any] = {"variant": name, "knobs": sel[0]["knobs"] if sel else {},
                               "seeds": sorted(r["seed"] for r in sel)}
        for key, _header in COLUMNS:
            x = np.array([r.get(key, math.nan) for r in sel], dtype=float)
            row[key] = {"mean": float(np.mean(x)) if x.size else math.nan,
                        "sd": float(np.std(x, ddof=1)) if x.size > 1 else math.nan}
        rows.append(row)
    return rows


def format_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| variant | knobs | seeds | " + " | ".join(h for _k, h in COLUMNS) + " |",
             "|---|---|---|" + "---:|" * len(COLUMNS)]
    for row in rows:
        knobs = ", ".join(f"{k}={v:g}" for k, v in row["knobs"].items())
        cells = [f"{row[k]['mean']:.3f}" + ("" if math.isnan(row[k]["sd"]) else f" ± {row[k]['sd']:.3f}")
                 for k, _h in COLUMNS]
        lines.append(f"| {row['variant']} | {knobs} | {','.join(map(str, row['seeds']))} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vad.training.ablate", description=__doc__.split("\n\n")[0])
    parser.add_argument("--cache", required=True, help="feature cache (python -m vad.training.report cache)")
    parser.add_argument("--variant", action="append", required=True, metavar="NAME:KEY=VALUE,...",
                        help="one recipe variant (repeat); KEY: teacher_weight, feature_augment or a TrainConfig field")
    parser.add_argument("--budget", type=float, default=1.0, help="network MFLOP/s (a variant may set budget_mflops)")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--steps", type=int, default=600, help="search steps")
    parser.add_argument("--finetune-steps", type=int, default=150, help="fixed-width fine-tuning steps")
    parser.add_argument("--width-warmup", type=int, default=150, help="width-lr warm-up steps")
    parser.add_argument("--window-frames", type=int, default=256)
    parser.add_argument("--tune", required=True, help="the tuning part of dev: a folder of *.flac + *.rttm")
    parser.add_argument("--dev", default=str(DEFAULT_DEV_DIR) if DEFAULT_DEV_DIR.is_dir() else None,
                        help="the dev folder (with mix/ and nonspeech/); its files not in --tune are reported")
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("-o", "--output", required=True, help="output folder")
    args = parser.parse_args(argv)
    try:
        variants = dict(parse_variant(v) for v in args.variant)
    except InvalidInputError as exc:
        parser.error(str(exc))
    for flag, folder in (("--tune", args.tune), ("--dev", args.dev), ("--cache", args.cache)):
        if not folder or not Path(folder).is_dir():
            parser.error(f"{flag} {folder!r}: not a folder")
    out_dir = Path(args.output)
    (out_dir / "runs").mkdir(parents=True, exist_ok=True)
    config = {"budget_mflops": args.budget, "max_steps": args.steps, "finetune_max_steps": args.finetune_steps,
              "width_warmup_steps": args.width_warmup, "window_frames": args.window_frames}
    jobs = [{"name": n, "knobs": k, "seed": s, "cache": args.cache, "tune": args.tune, "dev": args.dev,
             "out_dir": str(out_dir), "config": config} for s in args.seeds for n, k in variants.items()]
    todo = [j for j in jobs if not (out_dir / "runs" / f"{j['name']}-seed-{j['seed']}.json").is_file()]
    print(f"{len(jobs)} runs, {len(jobs) - len(todo)} already done; running {len(todo)} on {args.jobs} process(es)",
          file=sys.stderr)
    t = time.monotonic()
    if todo:
        with multiprocessing.get_context("spawn").Pool(min(args.jobs, len(todo))) as pool:
            pool.map(run_job, todo, chunksize=1)
    runs = [json.loads((out_dir / "runs" / f"{j['name']}-seed-{j['seed']}.json").read_text()) for j in jobs]
    rows = summarize(runs, list(variants))
    report = {"command": " ".join(sys.argv), "config": config, "decide_on": "tune_* columns (the tuning part)",
              "wall_minutes_this_call": (time.monotonic() - t) / 60, "rows": rows, "results": runs}
    atomic_write_text(out_dir / "ablation.json", json.dumps(report, indent=1))
    atomic_write_text(out_dir / "ablation.md", format_table(rows) + "\n")
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
