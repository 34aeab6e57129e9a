"""`vad label`: write speech segments of audio files (and whole folders) as label files."""

from __future__ import annotations

import argparse
import sys

NAME = "label"
HELP = "label speech in audio files and folders (RTTM, Audacity, CSV or JSON)"

_EPILOG = """\
examples:
  vad label meeting.flac                       # meeting.vad.rttm next to it
  vad label corpus/ -o labels/ --format json   # the corpus tree mirrored under labels/
  vad label 'calls/**/*.wav' --threshold 0.6 0.4 --jobs 4
  vad label /shared/corpus/ --engine ray --address auto   # on a running Ray cluster

Outputs are named X.vad.rttm (.vad.txt, .vad.csv, .vad.json) and written atomically; inputs
whose output exists are skipped. --overwrite relabels them, but only files vad label wrote
(listed with their hash in the folder's .vad-label.jsonl): anything else is never replaced.
Unreadable files are reported and the others still finish (exit code 1 if any failed).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vad.apps.labeling import ENGINES, FORMATS

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("paths", nargs="+", metavar="PATH", help="audio files, folders (recursive) or glob patterns")
    parser.add_argument("-o", "--outdir", metavar="OUTDIR", help="output folder (default: next to each input)")
    parser.add_argument("--format", choices=FORMATS, default="rttm", help="label file format (default: rttm)")
    parser.add_argument(
        "--probabilities", action="store_true", help="json only: also write the speech probability of every frame"
    )
    parser.add_argument("--model", metavar="M", help="exported .onnx model (default: the shipped default model)")
    parser.add_argument(
        "--jobs", "-j", type=int, metavar="N", help="worker processes (default: one per CPU core)"
    )
    parser.add_argument(
        "--overwrite", action="store_true",
        help="relabel inputs whose output already exists (only outputs vad label wrote are replaced)",
    )  # fmt: skip
    parser.add_argument(
        "--engine", choices=ENGINES, default="local",
        help="local: worker processes on this machine (default); ray: Ray tasks (needs the [cluster] extra)",
    )  # fmt: skip
    parser.add_argument(
        "--address", metavar="ADDR",
        help="--engine ray: the cluster to join (auto, HOST:PORT or ray://HOST:PORT; default: start a local "
        "Ray instance with --jobs CPUs)",
    )  # fmt: skip
    add_postprocess_arguments(parser)


def add_postprocess_arguments(parser: argparse.ArgumentParser) -> None:
    """Post-processing overrides shared by `vad label` and `vad listen` (default: the model's)."""
    g = parser.add_argument_group("post-processing (defaults come from the model)")
    g.add_argument(
        "--threshold", nargs="+", type=float, metavar=("ONSET", "OFFSET"),
        help="ONSET [OFFSET]: speech starts at probability >= ONSET and ends below OFFSET "
        "(default OFFSET: ONSET minus the model's onset-offset gap)",
    )  # fmt: skip
    g.add_argument("--min-speech-ms", type=float, metavar="MS", help="drop segments shorter than this")
    g.add_argument("--min-silence-ms", type=float, metavar="MS", help="bridge pauses shorter than this")
    g.add_argument("--speech-pad-ms", type=float, metavar="MS", help="widen each segment by this on both sides")
    g.add_argument("--max-speech-s", type=float, metavar="S", help="split segments longer than this (0: no limit)")


def postprocess_from_args(args, defaults):
    """The PostprocessConfig: the model's defaults with the command-line overrides applied."""
    from vad.core.errors import InvalidInputError

    changes = {
        "min_speech_ms": args.min_speech_ms,
        "min_silence_ms": args.min_silence_ms,
        "speech_pad_ms": args.speech_pad_ms,
        "max_speech_s": args.max_speech_s,
    }
    if args.threshold is not None:
        if len(args.threshold) > 2:
            raise InvalidInputError(f"--threshold takes ONSET [OFFSET], got {len(args.threshold)} values")
        onset = args.threshold[0]
        if len(args.threshold) == 2:
            offset = args.threshold[1]
        else:
            offset = max(0.0, onset - (defaults.onset_threshold - defaults.offset_threshold))
        changes["onset_threshold"] = onset
        changes["offset_threshold"] = offset
    return defaults.replace(**changes)


def model_path_from_args(model_arg):
    """The --model path, or the shipped default model (an error that names --model if none)."""
    from pathlib import Path

    from vad.core.errors import ModelFileError
    from vad.runtime.model import default_model_path

    if model_arg:
        return Path(model_arg)
    try:
        return default_model_path()
    except ModelFileError as exc:
        raise ModelFileError(f"{exc} with --model M") from exc


def model_defaults(model_arg):
    """Post-processing defaults carried by the model (or the default model)."""
    from vad.core.modelmeta import read_model_metadata

    return read_model_metadata(model_path_from_args(model_arg)).postprocess


def run(args) -> int:
    from vad.apps import labeling
    from vad.core.errors import InvalidInputError

    if args.probabilities and args.format != "json":
        raise InvalidInputError("--probabilities needs --format json")
    if args.jobs is not None and args.jobs < 1:
        raise InvalidInputError(f"--jobs {args.jobs}: must be >= 1")
    labeling.check_setup(args.outdir, args.engine, args.address)  # once, before any work
    postprocess = postprocess_from_args(args, model_defaults(args.model))

    files, unmatched = labeling.find_audio_files(args.paths)
    if not files and not unmatched:
        raise InvalidInputError(f"no audio files found in: {' '.join(args.paths)}")
    progress = labeling.ProgressBar(len(files) + len(unmatched), 0.0, stream=sys.stderr)
    if progress.enabled:
        durations = {f: labeling.audio_duration_s(f) for f in files}
        progress.total_audio_s = sum(durations.values())
    else:
        durations = {}

    def on_progress(outcome) -> None:
        if outcome.status == labeling.FAILED:
            progress.message(f"vad label: {outcome.path}: {outcome.error}")
        progress.update(outcome, durations.get(outcome.path, 0.0))

    summary = labeling.label_corpus(
        args.paths,
        args.outdir,
        args.format,
        model=args.model,
        postprocess=postprocess,
        probabilities=args.probabilities,
        overwrite=args.overwrite,
        jobs=args.jobs,
        engine=args.engine,
        address=args.address,
        on_progress=on_progress,
    )
    progress.close()
    _print_summary(summary)
    return 1 if summary.failed else 0


def _print_summary(summary) -> None:
    from vad.apps.labeling import FAILED, SKIPPED

    audio_h = summary.audio_s / 3600
    rtf = summary.audio_s / summary.wall_s if summary.wall_s > 0 else 0.0
    skipped = f"{summary.skipped} skipped"
    if summary.skipped:
        foreign = sum(o.status == SKIPPED and bool(o.error) for o in summary.outcomes)
        skipped += " (output exists; --overwrite relabels" + (
            f" all but {foreign} that vad label did not write, which are kept)" if foreign else ")")
    parts = [f"{summary.written} labeled", skipped, f"{summary.failed} failed"]
    jobs = summary.workers
    how = f"{jobs} job{'s' if jobs != 1 else ''}" + (" on Ray" if summary.engine == "ray" else "")
    print(
        f"vad label: {', '.join(parts)}; {audio_h:.3f} h of audio in {summary.wall_s:.1f} s "
        f"({rtf:,.{0 if rtf >= 10 else 2}f}x real time, {how})",
        file=sys.stderr,
    )
    failed = [o for o in summary.outcomes if o.status == FAILED]
    if failed:
        print("vad label: failed files:", file=sys.stderr)
        for o in failed:
            print(f"  {o.path}: {o.error}", file=sys.stderr)
