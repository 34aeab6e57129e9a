"""`vad bench`: single-thread end-to-end speed of our models next to WebRTC VAD and Silero VAD."""

from __future__ import annotations

import argparse

NAME = "bench"
HELP = "benchmark end-to-end cost (us per 10 ms of audio, RTF, RSS, load time, latency) vs WebRTC and Silero"

_EPILOG = """\
Each system runs single-threaded in its own process on the same seeded synthetic audio.
Ours: 10 ms int16 chunks through StreamingVAD (front end + network + post-processing).
WebRTC VAD: 10 ms frames. Silero VAD v6: its ONNX model on 512-sample chunks.
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
    parser.add_argument("--block-frames", type=int, help="frames per network call (default: by backend)")
    parser.add_argument("--backend", choices=("auto", "numba", "onnxruntime"), help="inference backend (default auto)")
    parser.add_argument("--chunk-ms", type=float, default=10.0,
                        help="chunk length given to our engine per call (default 10 ms, a typical mic callback)")
    parser.add_argument("--no-baselines", action="store_true", help="measure our models only")
    parser.add_argument("--json", metavar="OUT", help="also write the rows as JSON (atomically)")


def run(args) -> int:
    import json
    import sys
    from pathlib import Path

    from vad.apps.benchmark import format_table, run_benchmarks
    from vad.core.errors import InvalidInputError, ModelFileError
    from vad.runtime.model import shipped_model_paths

    if args.seconds <= 0:
        raise InvalidInputError(f"--seconds={args.seconds}: must be > 0")
    models = args.model or [str(p) for p in shipped_model_paths()]
    if not models:
        raise ModelFileError("no model shipped in models/ and none given: pass --model MODEL.onnx")
    if args.chunk_ms <= 0:
        raise InvalidInputError(f"--chunk-ms={args.chunk_ms}: must be > 0")
    rows = run_benchmarks(models, args.seconds, not args.no_baselines, args.block_frames, args.backend, args.chunk_ms)
    print(format_table(rows))
    for row in rows:
        if "error" in row and row["name"] in ("webrtc", "silero"):
            print(f"note: {row['name']} baseline unavailable; install the extra: "
                  "pip install 'learned-width-vad[baselines]'", file=sys.stderr)
    if args.json:
        out = Path(args.json)
        out.parent.mkdir(parents=True, exist_ok=True)
        from vad.core.atomicfile import atomic_write_text

        atomic_write_text(out, json.dumps({"rows": rows, "seconds": args.seconds}, indent=2))
    failed = [r for r in rows if "error" in r and r["name"].startswith("ours")]
    return 1 if failed else 0
