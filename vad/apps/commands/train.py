"""`vad train`: search the widths of a VAD network for an accuracy target, a compute budget or a latency budget.

The recipe (``training.train.run``): synthesise and cache training streams from the speech,
noise and room-impulse-response directories, search the widths (noise-injection dynamic
widths, ``training.dynamic``), consolidate, fine-tune, check on held-out validation, and
write the consolidated checkpoint or, when ``-o`` ends with ``.onnx``, export it
(``training.export``). torch is imported only when the command runs.

Exit status 3: the target AUC was not met on the held-out check; no model is written unless
``--write-unmet`` is given.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

from vad.core.errors import InvalidInputError

NAME = "train"
HELP = "train a VAD network whose widths meet an AUC target, a MFLOP/s budget or a latency budget"
EXIT_TARGET_NOT_MET = 3
DEFAULT_MAX_MINUTES = 30.0
_RESERVE_MINUTES = 0.5  # kept back from --max-minutes for writing and exporting


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--speech", nargs="+", required=True, metavar="DIR", help="directories of clean speech")
    parser.add_argument("--noise", nargs="+", required=True, metavar="DIR", help="directories of non-speech noise/music")
    parser.add_argument("--rir", nargs="+", default=[], metavar="DIR", help="directories of room impulse responses")
    goal = parser.add_mutually_exclusive_group(required=True)
    goal.add_argument("--target-auc", type=float, metavar="A",
                      help="smallest network with ROC-AUC >= A on held-out validation audio (no model is written "
                      "when it is not met, unless --write-unmet)")
    goal.add_argument("--budget-mflops", type=float, metavar="B", help="best network with <= B MFLOP/s (network)")
    goal.add_argument("--budget-us", type=float, metavar="U",
                      help="best network that runs in <= U microseconds per 10 ms of audio on this machine, "
                      "front end included (uses the cost model of `vad calibrate`; check with `vad calibrate --check` or `vad bench`)")
    parser.add_argument("--cost-model", metavar="JSON",
                        help="cost model for --budget-us (default: the one `vad calibrate` wrote for this machine)")
    parser.add_argument("--write-unmet", action="store_true",
                        help="with --target-auc: when the target is not met on the held-out check, still write the "
                        "best network found to -o (exit status 3 either way; without this flag nothing is written)")
    parser.add_argument("--max-steps", type=int, metavar="N", help="stop the search after N steps (smoke runs)")
    parser.add_argument("--max-minutes", type=float, default=DEFAULT_MAX_MINUTES, metavar="M",
                        help=f"wall-clock bound of the whole run, data preparation included (default {DEFAULT_MAX_MINUTES:g})")
    parser.add_argument("--seed", type=int, default=0, metavar="S", help="random seed (default 0)")
    parser.add_argument("--resume", metavar="CKPT", help="continue a search from its search.pt")
    parser.add_argument("--work-dir", metavar="D", help="cache and checkpoints (default: <output stem>.work next to -o)")
    parser.add_argument("--cache-dir", metavar="D",
                        help="feature cache (default <work-dir>/cache); runs with the same data and seed can share it")
    parser.add_argument("--minutes-train", type=float, default=240.0, metavar="MIN",
                        help="minutes of synthesised training streams (default 240)")
    parser.add_argument("--minutes-val", type=float, default=20.0, metavar="MIN",
                        help="minutes of synthesised validation streams (default 20)")
    parser.add_argument("--nonspeech-fraction", type=float, metavar="F",
                        help="share of training streams with music/noise only (default: the recipe's, "
                        "training.train.RECIPE_STREAM_OPTIONS)")
    parser.add_argument("--snr-db", type=float, nargs=2, metavar=("LOW", "HIGH"),
                        help="speech-to-noise ratio range of the mixtures (default: the recipe's)")
    parser.add_argument("--stream-option", action="append", default=[], metavar="KEY=VALUE",
                        help="override one field of the mixture recipe (training.synthesis.StreamOptions), "
                        "VALUE as JSON, e.g. event_prob=0.5 or snr_core_db_range=[0,10]; repeatable. The recipe "
                        "trains on leveled input and the model then levels its input the same way "
                        "(input_leveling, a vad.core.leveling.LevelingConfig object; input_leveling=null: off)")
    parser.add_argument("--teacher-weight", type=float, default=0.0, metavar="W",
                        help="distil from Silero VAD: targets are (1-W)*label + W*Silero's probability "
                        "(scored once per mixture into the cache; needs the baselines extra; default 0)")
    parser.add_argument("--nonspeech-weight", type=float, default=1.0, metavar="W",
                        help="weight of the non-speech side of the loss: -(y log p + W (1-y) log(1-p)); "
                        "above 1 trades misses for fewer false alarms (default 1: plain BCE)")
    parser.add_argument("--no-feature-augment", action="store_true",
                        help="turn off the per-window gain/tilt/SpecAugment of cached features")
    parser.add_argument("--max-width", type=int, default=48, metavar="N",
                        help="maximum width of every dynamic layer (default 48)")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL",
                        help="output: MODEL.onnx (exported) or a consolidated checkpoint (.pt)")


def _check_dirs(paths: list[str], what: str) -> None:
    for p in paths:
        path = Path(p)
        if not path.exists():
            raise InvalidInputError(f"{what} directory not found: {p}")
        if not path.is_dir():
            raise InvalidInputError(f"{what} path is not a directory: {p}")


def _check_number(value: float | None, name: str, low: float, high: float = math.inf) -> None:
    if value is not None and not (math.isfinite(value) and low < value < high):
        raise InvalidInputError(f"{name} {value!r} must be in ({low:g}, {high:g})")


def _stream_options(items: list[str]) -> dict:
    """``--stream-option KEY=VALUE`` items as StreamOptions overrides (checked by building one)."""
    import dataclasses
    import json

    from vad.training.synthesis import StreamOptions

    defaults = {f.name: getattr(StreamOptions(), f.name) for f in dataclasses.fields(StreamOptions)}
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or key not in defaults:
            raise InvalidInputError(f"--stream-option {item!r}: need KEY=VALUE with KEY one of {', '.join(sorted(defaults))}")
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"--stream-option {item!r}: VALUE is not JSON ({exc.msg})") from exc
        if not _same_kind(parsed, defaults[key]):
            raise InvalidInputError(f"--stream-option {item!r}: VALUE must be like the default, {json.dumps(defaults[key])}")
        out[key] = parsed
    try:
        StreamOptions(**{k: tuple(v) if isinstance(v, list) else v for k, v in out.items()})
    except InvalidInputError as exc:
        raise InvalidInputError(f"--stream-option: {exc}") from exc
    return out


def _same_kind(value, default) -> bool:
    """A JSON value fits a StreamOptions field: ints for ints, numbers for floats, lists of numbers
    of the same length for tuples (bools are not numbers here), an object or null for an optional
    object (``input_leveling``: StreamOptions checks its fields)."""
    if default is None:
        return value is None or isinstance(value, dict)

    def fits(v, d) -> bool:
        if isinstance(v, bool):
            return False
        return isinstance(v, int) if isinstance(d, int) else isinstance(v, (int, float))

    if isinstance(default, tuple):
        return isinstance(value, list) and len(value) == len(default) and all(
            fits(v, d) for v, d in zip(value, default, strict=True))
    return fits(value, default)


def run(args: argparse.Namespace) -> int:
    from vad.core.errors import require_extra

    require_extra("train", "vad train")  # before any work, not after data preparation
    _check_dirs(args.speech, "speech")
    _check_dirs(args.noise, "noise")
    _check_dirs(args.rir, "room impulse response")
    _check_number(args.target_auc, "--target-auc", 0.5, 1.0)
    _check_number(args.budget_mflops, "--budget-mflops", 0.0)
    _check_number(args.budget_us, "--budget-us", 0.0)
    if args.max_steps is not None and args.max_steps < 1:
        raise InvalidInputError(f"--max-steps {args.max_steps} must be >= 1")
    _check_number(args.nonspeech_weight, "--nonspeech-weight", 0.0)
    if args.write_unmet and args.target_auc is None:
        raise InvalidInputError("--write-unmet only applies to --target-auc")
    _check_number(args.max_minutes, "--max-minutes", _RESERVE_MINUTES)
    _check_number(args.minutes_train, "--minutes-train", 0.0)
    _check_number(args.minutes_val, "--minutes-val", 0.0)
    if args.seed < 0:
        raise InvalidInputError(f"--seed {args.seed} must be >= 0")
    if args.max_width < 1:
        raise InvalidInputError(f"--max-width {args.max_width} must be >= 1")
    output = Path(args.output)
    if output.exists() and output.is_dir():
        raise InvalidInputError(f"-o {output} is a directory; give a file name (MODEL.onnx or MODEL.pt)")
    work_dir = Path(args.work_dir) if args.work_dir else output.with_name(output.stem + ".work")

    t0 = time.monotonic()
    from vad.training.consolidate import atomic_torch_save
    from vad.training.train import RECIPE_STREAM_OPTIONS, DataConfig, TargetNotMetError, TrainConfig
    from vad.training.train import run as run_training

    cost_model = None
    if args.budget_us is not None:
        from vad.core.costmodel import load_cost_model

        cost_model = load_cost_model(args.cost_model).summary()  # the measured points stay in the JSON
    elif args.cost_model is not None:
        raise InvalidInputError("--cost-model only applies to --budget-us")
    config = TrainConfig(
        target_auc=args.target_auc,
        budget_mflops=args.budget_mflops,
        budget_us=args.budget_us,
        cost_model=cost_model,
        max_steps=args.max_steps,
        max_minutes=args.max_minutes - _RESERVE_MINUTES,
        seed=args.seed,
        input_width=args.max_width,
        conv_width=args.max_width,
        gru_width=args.max_width,
        nonspeech_weight=args.nonspeech_weight,
    )
    stream_options = dict(RECIPE_STREAM_OPTIONS)
    if args.nonspeech_fraction is not None:
        _check_number(args.nonspeech_fraction, "--nonspeech-fraction", 0.0, 1.0)
        stream_options["nonspeech_stream_prob"] = args.nonspeech_fraction
    if args.snr_db is not None:
        low, high = args.snr_db
        if not (math.isfinite(low) and math.isfinite(high) and low <= high):
            raise InvalidInputError(f"--snr-db {low} {high}: need finite LOW <= HIGH")
        stream_options["snr_db_range"] = [low, high]
    stream_options.update(_stream_options(args.stream_option))
    if not (math.isfinite(args.teacher_weight) and 0.0 <= args.teacher_weight <= 1.0):
        raise InvalidInputError(f"--teacher-weight {args.teacher_weight!r} must be in [0, 1]")
    teacher = None
    if args.teacher_weight > 0:
        from vad.apps.baselines import SileroBaseline, silero_onnx_path

        silero_onnx_path()  # names the baselines extra now, before any data is built
        teacher = SileroBaseline
    data = DataConfig(
        speech_dirs=tuple(args.speech), noise_dirs=tuple(args.noise), rir_dirs=tuple(args.rir),
        minutes_train=args.minutes_train, minutes_val=args.minutes_val, stream_options=stream_options,
        teacher_weight=args.teacher_weight, feature_augment=not args.no_feature_augment,
    )

    def log(line: str) -> None:
        print(f"[{(time.monotonic() - t0) / 60:5.1f} min] {line}", file=sys.stderr, flush=True)

    status = 0
    try:
        _result, ckpt_path = run_training(config, data, work_dir, resume_path=args.resume, log=log,
                                         cache_dir=args.cache_dir, teacher=teacher, write_unmet=args.write_unmet)
    except TargetNotMetError as exc:
        log(f"error: {exc}")
        if not args.write_unmet:
            return EXIT_TARGET_NOT_MET
        ckpt_path = work_dir / "consolidated.pt"
        status = EXIT_TARGET_NOT_MET
    if output.suffix.lower() == ".onnx":
        from vad.training.export import export_checkpoint

        export_checkpoint(ckpt_path, output, name=output.stem)
        log(f"exported {output}")
        if args.budget_us is not None:
            log(f"check the latency on this machine: vad bench --no-baselines --model {output}")
    else:
        from vad.training.consolidate import load_checkpoint_dict

        atomic_torch_save(load_checkpoint_dict(ckpt_path), output)
        log(f"wrote {output}")
    return status
