"""`vad bench`: single-thread end-to-end speed of our models next to WebRTC, Silero and TEN VAD."""

from __future__ import annotations

import argparse

NAME = "bench"
HELP = "benchmark end-to-end cost (us per 10 ms of audio, RTF, RSS, load and start time) vs WebRTC, Silero and TEN VAD"

_EPILOG = """\
Each system runs single-threaded in its own process on the same audio (seeded synthetic noise
bursts, or --audio FILE looped to --seconds).
Ours: int16 chunks of each --chunk-ms through StreamingVAD (front end + network + post-processing),
then the whole signal at once (the batch path of vad label / vad eval).
WebRTC VAD: 10 ms frames. Silero VAD v6: its ONNX model on 512-sample chunks. TEN VAD: 256-sample hops.
--breakdown splits our streaming cost into front end, network, post-processing and glue.
--cold-start adds the time to a first probability from a fresh process, with an empty numba cache
(the first call after installing: the kernels compile, minutes) and with it filled.
Times are CPU time of each worker; ratios to WebRTC use the best passes. For stable figures on a
shared machine pin one core and pool rounds:
  NUMBA_NUM_THREADS=1 taskset -c 1 vad bench --breakdown --rounds 3
Baselines need the `baselines` extra: pip install 'learned-width-vad[baselines]'.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument(
        "--model", action="append", metavar="M",
        help="model file to measure (repeat; default: the shipped default and its siblings in models/)",
    )
    parser.add_argument("--seconds", type=float, default=60.0, help="audio length per system (default 60)")
    parser.add_argument("--block-frames", type=int, help="frames per network call (onnxruntime; default: by backend)")
    parser.add_argument("--backend", choices=("auto", "numba", "onnxruntime"), help="inference backend (default auto)")
    parser.add_argument("--chunk-ms", default="10,32", metavar="MS[,MS...]",
                        help="chunk lengths given to our engine per call (default 10,32: a mic callback, Silero's chunk)")
    parser.add_argument("--breakdown", action="store_true",
                        help="split our streaming cost into front end, network, post-processing and glue")
    parser.add_argument("--cold-start", action="store_true",
                        help="also time a fresh start with an empty numba cache (compiles; minutes) and a warm one")
    parser.add_argument("--audio", metavar="FILE", help="benchmark on this recording (looped) instead of synthetic audio")
    parser.add_argument("--rounds", type=int, default=1,
                        help="run every system this many times, round-robin, pooling the passes (default 1)")
    parser.add_argument("--no-baselines", action="store_true", help="measure our models only")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON (atomically)")


def _chunks(text: str) -> tuple[float, ...]:
    from vad.core.errors import InvalidInputError

    try:
        values = tuple(float(v) for v in str(text).split(",") if v.strip())
    except ValueError:
        values = ()
    if not values or not all(v > 0 for v in values):
        raise InvalidInputError(f"--chunk-ms={text!r}: must be one or more comma-separated lengths > 0 (ms)")
    return values


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from vad.apps.benchmark import format_table, run_benchmarks
    from vad.core.errors import InvalidInputError, ModelFileError
    from vad.runtime.model import shipped_model_paths

    if args.seconds <= 0:
        raise InvalidInputError(f"--seconds={args.seconds}: must be > 0")
    chunks_ms = _chunks(args.chunk_ms)
    if args.audio and not Path(args.audio).is_file():
        raise InvalidInputError(f"--audio {args.audio}: no such file")
    models = args.model or [str(p) for p in shipped_model_paths()]
    if not models:
        raise ModelFileError("no model shipped in models/ and none given: pass --model MODEL.onnx")
    if args.rounds < 1:
        raise InvalidInputError(f"--rounds={args.rounds}: must be >= 1")
    if args.json:
        from vad.core.atomicfile import prepare_output_file

        prepare_output_file(args.json, "--json")  # before the benchmarks, not after them
    rows = run_benchmarks(models, args.seconds, not args.no_baselines, args.block_frames, args.backend, chunks_ms,
                          args.breakdown, args.cold_start, args.audio, args.rounds)
    print(format_table(rows))
    for row in rows:
        if "error" in row and row["name"] in ("webrtc", "silero", "ten"):
            print(f"note: {row['name']} baseline unavailable; install the extra: "
                  "pip install 'learned-width-vad[baselines]'", file=sys.stderr)
    if args.json:
        from vad.core.atomicfile import atomic_write_text

        atomic_write_text(args.json, json.dumps({"rows": rows, "seconds": args.seconds, "chunks_ms": list(chunks_ms),
                                                 "audio": args.audio}, indent=2))
    failed = [r for r in rows if "error" in r and r["name"].split(":")[0] in ("ours", "batch")]
    return 1 if failed else 0
