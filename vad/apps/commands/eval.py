"""`vad eval`: measure models against labeled audio, side by side with WebRTC VAD and Silero VAD."""

from __future__ import annotations

import argparse
import sys

NAME = "eval"
HELP = "measure models (and WebRTC/Silero/TEN baselines) against labeled audio; ROC, EER, F1, delays, speed"

_EPILOG = """\
examples:
  vad eval data/dev --baselines webrtc,silero --json eval.json --plot eval.png
  vad eval calls/ --model small.onnx --model big.onnx --labels calls_rttm/ --collar-ms 250
  vad eval --pareto runs/*/report.json eval.json --plot pareto.png

Labels: for each audio file a label file of the same stem (.rttm, .txt Audacity, .csv, .json)
next to it or in --labels DIR; an empty label file means no speech. Every system is scored on
the same 10 ms frames (a frame is speech when reference speech covers at least half of it).
Without --model the shipped default model is evaluated (skipped when none is shipped and
baselines are given). Unreadable files are reported and the others still finish (exit 1).
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("paths", nargs="*", metavar="PATH", help="audio files or folders (recursive)")
    parser.add_argument(
        "--model",
        action="append",
        metavar="M",
        help="exported .onnx model (repeat for several; default: shipped)",
    )
    parser.add_argument("--baselines", metavar="LIST", help="comma-separated baselines: webrtc,silero,ten")
    parser.add_argument(
        "--labels", metavar="DIR", help="folder holding the label files (default: next to the audio)"
    )
    parser.add_argument(
        "--collar-ms",
        type=float,
        default=0.0,
        metavar="C",
        help="leave frames within C ms of a reference boundary out of the frame figures (default 0)",
    )
    parser.add_argument("--json", metavar="OUT", help="write every figure as JSON")
    parser.add_argument("--markdown", metavar="OUT.md",
                        help="write a Markdown table: AUC (or false alarms on speech-free audio) per scope and system")
    parser.add_argument(
        "--plot", metavar="OUT.png", help="PNG: ROC curves + worst file (or the --pareto plot)"
    )
    parser.add_argument(
        "--pareto",
        nargs="+",
        metavar="RUNS",
        help="instead: collect training-run JSON reports (and eval reports for baselines) into an "
        "AUC-vs-MFLOP/s plot (--plot, default pareto.png)",
    )
    parser.add_argument(
        "--scope",
        metavar="NAME",
        help="with --pareto: the AUC of eval reports over this group/family/SNR (e.g. dev/mix, dev/ami, "
        "snr0; default pooled)",
    )
    parser.add_argument("--no-prime", action="store_true",
                        help="run our models on each file from the zero state, without start-of-stream priming "
                        "(vad.core.priming; the runtime's default primes)")
    parser.add_argument("--quiet", "-q", action="store_true", help="no progress on stderr")


def _systems(args) -> list:
    from vad.apps.baselines import make_baselines
    from vad.apps.evaluation import ModelSystem
    from vad.core.errors import ModelFileError

    systems = []
    if args.model:
        names = set()
        for path in args.model:
            system = ModelSystem(path, prime=not args.no_prime)
            if system.name in names:  # two models with one metadata name: tell them apart by file
                system.name = f"{system.name}:{system.path.name}"
            names.add(system.name)
            systems.append(system)
    else:
        try:
            systems.append(ModelSystem(None, prime=not args.no_prime))
        except ModelFileError as exc:
            if not args.baselines:
                raise
            print(f"vad eval: note: {exc}; evaluating the baselines only", file=sys.stderr)
    if args.baselines:
        systems += make_baselines(args.baselines)
    return systems


def _run_pareto(args) -> int:
    from vad.apps.evaluation import collect_pareto, plot_pareto, write_report

    collected = collect_pareto(args.pareto, scope=args.scope)
    for q in sorted(collected["points"], key=lambda q: q["mflops_per_second"]):
        print(f"{q['name']:<32} {q['mflops_per_second']:10.3f} MFLOP/s  AUC {q['auc']:.4f}  ({q['source']})")
    for line in collected["baselines"]:
        print(f"{line['name']:<32} {'baseline':>10}          AUC {line['auc']:.4f}  ({line['source']})")
    out = args.plot or "pareto.png"
    plot_pareto(collected, out)
    print(f"wrote {out}")
    if args.json:
        write_report(args.json, collected)
        print(f"wrote {args.json}")
    return 0


def run(args) -> int:
    from vad.core.errors import InvalidInputError, require_extra

    if args.plot or args.pareto:  # before the evaluation, not after it
        require_extra("plot", "plotting (--plot, --pareto)")
    from vad.core.atomicfile import prepare_output_file

    for option, out in (("--json", args.json), ("--markdown", args.markdown), ("--plot", args.plot)):
        if out:
            prepare_output_file(out, option)  # a bad output path fails now, not after the evaluation

    if args.pareto:
        if args.paths:
            raise InvalidInputError(
                "--pareto takes run reports only; give audio PATHs in a separate `vad eval`"
            )
        return _run_pareto(args)
    if not args.paths:
        raise InvalidInputError("give audio files or folders to evaluate (or --pareto RUNS...)")
    from vad.apps.evaluation import discover, evaluate, format_table, plot_report, write_report

    items = discover(args.paths, args.labels)
    systems = _systems(args)

    def progress(i: int, n: int, item) -> None:
        if not args.quiet:
            print(f"[{i + 1}/{n}] {item.audio_path}", file=sys.stderr, flush=True)

    report = evaluate(items, systems, collar_ms=args.collar_ms, on_file=progress)
    print(format_table(report))
    for failure in report["failed"]:
        print(f"vad eval: failed: {failure['error']}", file=sys.stderr)
    if args.json:
        write_report(args.json, report)
        print(f"wrote {args.json}")
    if args.markdown:
        from vad.apps.evaluation import format_markdown
        from vad.core.atomicfile import atomic_write_text

        atomic_write_text(args.markdown, format_markdown(report) + "\n")
        print(f"wrote {args.markdown}")
    if args.plot:
        plot_report(report, args.plot)
        print(f"wrote {args.plot} (worst file: {report['worst_file']['path']})")
    return 1 if report["failed"] else 0
