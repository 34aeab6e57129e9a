"""`vad calibrate`: measure this machine's latency of the streaming engine per layer width.

Exports probe networks at a design of widths, times each with the real engine exactly as
`vad bench` does, fits microseconds per 10 ms frame as a linear model of the width terms
(``vad.apps.calibration``, ``vad.core.costmodel``) and stores it as JSON, by default where
`vad train --budget-us` looks for it. Needs the `train` extra (torch exports the probes).
"""

from __future__ import annotations

import argparse

NAME = "calibrate"
HELP = "measure this machine's engine latency per layer width and store the cost model for `vad train --budget-us`"

_EPILOG = """\
The measurement is the engine's whole per-chunk cost (front end + network + post-processing,
one thread, 10 ms int16 chunks), so `vad bench --model M` on a trained model should agree with
the prediction `vad info M` prints (`vad bench` times process CPU time, the default
--statistic cpu; on an idle machine the wall-clock figures of `vad bench --json` agree with it). Re-run after upgrading the
package or moving to another machine.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from vad.apps.calibration import (
        DEFAULT_MAX_WIDTH,
        DEFAULT_PASSES,
        DEFAULT_POINTS,
        DEFAULT_ROUNDS,
        DEFAULT_SECONDS,
        STATISTICS,
    )

    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("-o", "--output", metavar="JSON",
                        help="where to write the cost model (default: the per-user cache, "
                        "$XDG_CACHE_HOME/learned-width-vad/cost-model.json, where `vad train --budget-us` reads it); "
                        "with --check: where to write the rows as JSON")
    parser.add_argument("--max-width", type=int, default=DEFAULT_MAX_WIDTH, metavar="N",
                        help=f"largest layer width measured (default {DEFAULT_MAX_WIDTH}, `vad train`'s maximum)")
    parser.add_argument("--points", type=int, default=DEFAULT_POINTS, metavar="P",
                        help=f"number of width combinations measured (default {DEFAULT_POINTS})")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, metavar="S",
                        help=f"seconds of audio per timed pass (default {DEFAULT_SECONDS:g})")
    parser.add_argument("--rounds", type=int, default=DEFAULT_ROUNDS, metavar="R",
                        help=f"interleaved rounds over all widths (default {DEFAULT_ROUNDS})")
    parser.add_argument("--passes", type=int, default=DEFAULT_PASSES, metavar="N",
                        help=f"timed passes per model load and round (default {DEFAULT_PASSES})")
    parser.add_argument("--statistic", choices=STATISTICS, default="cpu",
                        help="fit each width's least process CPU time per 10 ms (default: the engine's own cost even "
                        "on a machine shared with other jobs; `vad bench`'s '(best)' column), its fastest wall-clock "
                        "pass ('min', `vad bench --json`'s us_per_10ms_wall_best) or its median wall-clock pass "
                        "('median', its us_per_10ms_wall)")
    parser.add_argument("--check", nargs="+", metavar="MODEL",
                        help="instead of calibrating: measure these exported models with the calibration's protocol "
                        "and statistic, interleaved with its design points, and print predicted (cost model) vs "
                        "measured us per 10 ms and the machine's drift since the calibration")
    parser.add_argument("--cost-model", metavar="JSON", help="with --check: the cost model to check against "
                        "(default: this machine's, where calibrate writes it)")
    parser.add_argument("--backend", choices=("auto", "numba", "onnxruntime"), help="inference backend (default auto)")
    parser.add_argument("--block-frames", type=int, help="frames per network call (default: by backend)")
    parser.add_argument("--chunk-ms", type=float, default=10.0, help="chunk length per call (default 10 ms)")


def run(args) -> int:
    import sys

    from vad.apps.calibration import calibrate, format_points
    from vad.core.costmodel import default_cost_model_path
    from vad.core.errors import InvalidInputError

    if args.max_width < 2:
        raise InvalidInputError(f"--max-width {args.max_width} must be >= 2")
    if args.chunk_ms <= 0:
        raise InvalidInputError(f"--chunk-ms={args.chunk_ms}: must be > 0")
    if args.block_frames is not None and args.block_frames < 1:
        raise InvalidInputError(f"--block-frames {args.block_frames} must be >= 1")

    def log(line: str) -> None:
        print(line, file=sys.stderr, flush=True)

    if args.check:
        import json

        from vad.apps.calibration import check_models, format_check
        from vad.core.costmodel import load_cost_model

        rows, drift = check_models(args.check, load_cost_model(args.cost_model), seconds=args.seconds,
                                   rounds=args.rounds, passes=args.passes, log=log)
        print(format_check(rows, drift))
        if args.output:
            from vad.core.atomicfile import atomic_write_text

            atomic_write_text(args.output, json.dumps({"rows": rows, "drift": drift}, indent=1))
        return 0
    if args.cost_model:
        raise InvalidInputError("--cost-model only applies to --check (calibration writes -o)")

    cost_model = calibrate(max_width=args.max_width, n_points=args.points, seconds=args.seconds, rounds=args.rounds,
                           passes=args.passes, statistic=args.statistic, backend=args.backend, block_frames=args.block_frames, chunk_ms=args.chunk_ms, log=log)
    print(format_points(cost_model))
    path = cost_model.save(args.output or default_cost_model_path())
    print(f"wrote {path} ({cost_model.engine['backend']} backend, {cost_model.fit['calibration_seconds']:.0f} s); "
          "use it with: vad train --budget-us U" + ("" if args.output is None else f" --cost-model {path}"))
    return 0
