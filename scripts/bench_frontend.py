"""Benchmark the streaming numba front end against the numpy reference (microseconds per frame).

Run on one core:

    NUMBA_NUM_THREADS=1 OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 taskset -c 0 \\
        .venv/bin/python scripts/bench_frontend.py

Prints, for the default FeatureSpec (or --spec-json), the cost of one 10 ms frame for
* the numba streaming front end fed hop-sized chunks (one ``process`` call per frame, the live case),
* the same fed hop-sized chunks through ``process_into`` (no output allocation),
* the same fed the whole signal as one chunk (kernel cost without per-call Python overhead),
* the numpy reference ``vad.core.features.logmel`` on the whole signal.
Each figure is the best of --repeats runs over --seconds of white noise.
"""

from __future__ import annotations

import argparse
import os
import time

# One core: set before numba / numpy start their thread pools.
for _name in ("NUMBA_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")

import numpy as np  # noqa: E402
from vad.runtime.frontend import StreamingLogMel  # noqa: E402

from vad.core.features import FeatureSpec, logmel  # noqa: E402


def _best_seconds(fn, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the test signal (s)")
    parser.add_argument("--repeats", type=int, default=5, help="runs per measurement; the best is kept")
    parser.add_argument("--spec-json", default=None, help="FeatureSpec as JSON (default: FeatureSpec())")
    args = parser.parse_args(argv)

    spec = FeatureSpec.from_json(args.spec_json) if args.spec_json else FeatureSpec()
    hop = spec.hop_length_samples
    rng = np.random.default_rng(0)
    signal = (0.1 * rng.standard_normal(int(args.seconds * spec.sample_rate_hz))).astype(np.float32)
    n_frames = spec.n_frames(signal.size)
    chunks = [signal[i:i + hop] for i in range(0, n_frames * hop, hop)]

    start = time.perf_counter()
    frontend = StreamingLogMel(spec)
    construct_s = time.perf_counter() - start
    start = time.perf_counter()
    frontend.process(chunks[0])  # the first live frame: must not wait for compilation
    first_frame_s = time.perf_counter() - start
    out = np.empty((1, spec.n_mels), dtype=np.float32)

    def stream_hops() -> None:
        frontend.reset()
        for chunk in chunks:
            frontend.process(chunk)

    def stream_hops_into() -> None:
        frontend.reset()
        for chunk in chunks:
            frontend.process_into(chunk, out)

    def stream_whole() -> None:
        frontend.reset()
        frontend.process(signal)

    def reference() -> None:
        logmel(signal, spec)

    frame_ms = 1000.0 * spec.hop_s
    print(f"spec: {spec.to_json()}")
    print(f"signal: {args.seconds:g} s white noise = {n_frames} frames of {frame_ms:g} ms; "
          f"NUMBA_NUM_THREADS={os.environ['NUMBA_NUM_THREADS']}; best of {args.repeats}")
    print(f"StreamingLogMel construction (compile or cache load + warm-up): {construct_s * 1e3:.1f} ms")
    print(f"first process() call after construction (one hop): {first_frame_s * 1e6:.1f} us")
    rows = [
        ("numba streaming, process() per hop-sized chunk", stream_hops),
        ("numba streaming, process_into() per hop-sized chunk", stream_hops_into),
        ("numba streaming, whole signal as one chunk", stream_whole),
        ("numpy reference logmel(), whole signal", reference),
    ]
    for label, fn in rows:
        us_per_frame = _best_seconds(fn, args.repeats) / n_frames * 1e6
        print(f"{label:55s} {us_per_frame:8.2f} us/frame")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
