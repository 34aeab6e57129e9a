"""`vad tune`: choose a model's post-processing defaults on labelled audio."""

from __future__ import annotations

import argparse
import json
import math
import sys

from vad.core.errors import InvalidInputError

NAME = "tune"
HELP = ("grid-search a model's post-processing (thresholds, min speech/silence, padding) for the best "
        "segment-frame F1 on labelled audio; prints the `vad export` flags")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("paths", nargs="+", metavar="PATH", help="labelled audio files or folders (labels as for vad eval)")
    parser.add_argument("--model", metavar="MODEL.onnx", help="model to tune (default: the shipped model)")
    parser.add_argument("--labels", metavar="DIR", help="folder of label files (default: next to the audio)")
    parser.add_argument("--max-false-alarm", type=float, metavar="PCT",
                        help="only options whose onset threshold keeps the speech-free files among PATH (empty "
                        "label files) at or below PCT %% of their frames scored as speech (vad eval's FA)")
    parser.add_argument("--json", metavar="OUT", help="also write the result as JSON")


def run(args: argparse.Namespace) -> int:
    from vad.apps.evaluation import discover
    from vad.apps.tuning import tune_postprocess
    from vad.core.atomicfile import atomic_write_text

    budget = None
    if args.max_false_alarm is not None:
        if not (math.isfinite(args.max_false_alarm) and 0.0 <= args.max_false_alarm <= 100.0):
            raise InvalidInputError(f"--max-false-alarm {args.max_false_alarm!r}: must be a percentage in [0, 100]")
        budget = args.max_false_alarm / 100.0
    if args.json:
        from vad.core.atomicfile import prepare_output_file

        prepare_output_file(args.json, "--json")  # before the grid search, not after it
    items = discover(args.paths, args.labels)
    result = tune_postprocess(args.model, items, on_file=lambda i, n, it: print(
        f"\r[{i + 1}/{n}] {it.audio_path.name}", end="", file=sys.stderr, flush=True), max_false_alarm=budget)
    print(file=sys.stderr)
    c = result.config
    print(f"best on {result.files} files: F1 {result.f1:.4f} (P {result.precision:.4f}, R {result.recall:.4f}); "
          f"the model's current defaults: F1 {result.current_f1:.4f}")
    print(f"onset {c.onset_threshold:g}  offset {c.offset_threshold:g}  min-speech {c.min_speech_ms:g} ms  "
          f"min-silence {c.min_silence_ms:g} ms  pad {c.speech_pad_ms:g} ms")
    if result.false_alarm is not None:
        print(f"false alarms on the {result.speech_free_files} speech-free files: {100 * result.false_alarm:.3g} % of frames")
    print(f"vad export CHECKPOINT -o MODEL.onnx {result.export_flags()}")
    if args.json:
        atomic_write_text(args.json, json.dumps(result.to_dict(), indent=1))
    return 0
