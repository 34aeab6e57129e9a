"""End-to-end speed of our models and the baselines, single thread, each in its own process.

What is timed (``perf_counter`` around the whole loop, after loading):

* ours: int16 audio given to ``StreamingVAD.process`` in 10 ms chunks (as a microphone
  callback would; ``chunk_ms`` changes it, e.g. 32 ms = Silero's chunk), i.e. front end + network + post-processing, probabilities and events out;
* WebRTC VAD (``webrtcvad`` module of ``webrtcvad-wheels``, mode 3): ``is_speech`` on each
  10 ms frame (int16 bytes);
* Silero VAD v6: its bundled ONNX model on 512-sample chunks with Silero's context and state
  (``vad.apps.baselines.SileroBaseline``, onnxruntime, one thread; ``silero_vad`` is never imported).

Reported per system: microseconds per 10 ms of audio (median of ``DEFAULT_REPEATS`` timed
passes over the audio, and the best pass), real-time factor (median compute time / audio
time), peak RSS of the worker process (``ru_maxrss``: Python + numpy + the engine), model
load time, and first-frame latency (wall time of the first ``process`` call on a new stream
plus the algorithmic delay before a first probability exists: one hop, or one block/chunk).
Ours also reports the process CPU time per 10 ms (median and best pass, ``us_per_10ms_cpu``):
on a machine shared with other jobs it is the engine's own cost, which ``vad calibrate``
predicts; on an idle core it equals the wall time.

Each system runs in a fresh ``python -m vad.apps.benchmark --worker ...`` process so RSS and
caches are not shared. The test audio is a seeded synthetic signal (noise bursts with
silences), so the figures are reproducible without data files.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time

import numpy as np

SAMPLE_RATE_HZ = 16000
FRAME_MS = 10
FRAME_SAMPLES = SAMPLE_RATE_HZ * FRAME_MS // 1000
DEFAULT_SECONDS = 60.0
DEFAULT_REPEATS = 3  # the timed loop is run this many times; median and best are reported
SIGNAL_SEED = 20260
BURST_S = 0.7
WEBRTC_MODE = 3


def test_signal(seconds: float, seed: int = SIGNAL_SEED) -> np.ndarray:
    """Seeded int16 test audio: noise bursts of BURST_S with quiet gaps, at 16 kHz."""
    rng = np.random.default_rng(seed)
    n = int(seconds * SAMPLE_RATE_HZ)
    burst = int(BURST_S * SAMPLE_RATE_HZ)
    gains = np.repeat(rng.choice([0.002, 0.3], size=n // burst + 1), burst)[:n]
    x = rng.standard_normal(n) * gains
    return (np.clip(x, -1, 1) * 32767).astype(np.int16)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _timed(loop, repeats: int, cpu_times: list[float] | None = None) -> list[float]:
    """Wall seconds of each of ``repeats`` runs of ``loop``; their process CPU seconds go to
    ``cpu_times`` when given (on a machine shared with other jobs the CPU time is the engine's
    own cost, the wall time also counts the others')."""
    times = []
    for _ in range(repeats):
        c0, t0 = time.process_time(), time.perf_counter()
        loop()
        times.append(time.perf_counter() - t0)
        if cpu_times is not None:
            cpu_times.append(time.process_time() - c0)
    return times


def _row(name: str, kind: str, times_s: list[float], audio_s: float, **extra) -> dict:
    n_frames = audio_s * 1000.0 / FRAME_MS
    median = float(np.median(times_s))
    return {
        "name": name,
        "kind": kind,
        "us_per_10ms": 1e6 * median / n_frames,
        "us_per_10ms_best": 1e6 * min(times_s) / n_frames,
        "rtf": median / audio_s,
        "repeats": len(times_s),
        "audio_s": audio_s,
        "peak_rss_mb": _peak_rss_mb(),
        **extra,
    }


def bench_ours(model: str | None, seconds: float, block_frames: int | None = None, backend: str | None = None,
               repeats: int = DEFAULT_REPEATS, chunk_ms: float = FRAME_MS) -> dict:
    from vad.core.modelmeta import MFLOP
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import DEFAULT_BACKEND, VADModel

    audio = test_signal(seconds)
    t0 = time.perf_counter()
    vad_model = VADModel(model, backend=backend or DEFAULT_BACKEND)
    stream = StreamingVAD(vad_model, SAMPLE_RATE_HZ, block_frames=block_frames)
    load_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    stream.process(audio[:FRAME_SAMPLES])
    first_call_ms = 1e3 * (time.perf_counter() - t0)
    stream.reset()
    step = max(1, int(round(chunk_ms * SAMPLE_RATE_HZ / 1000)))
    chunks = [audio[i : i + step] for i in range(0, audio.size - step + 1, step)]
    n_events = []

    def loop():
        stream.reset()
        count = 0
        for chunk in chunks:
            count += len(stream.process(chunk).events)
        n_events.append(count + len(stream.flush().events))

    cpu_times: list[float] = []
    times = _timed(loop, repeats, cpu_times)
    n_frames = len(chunks) * step / SAMPLE_RATE_HZ * 1000.0 / FRAME_MS
    meta = vad_model.metadata
    return _row(
        meta.name,
        "ours",
        times,
        len(chunks) * step / SAMPLE_RATE_HZ,
        model=str(vad_model.path),
        chunk_samples=step,
        backend=vad_model.backend,
        block_frames=stream.block_frames,
        load_s=load_s,
        first_frame_latency_ms=first_call_ms + stream.latency_ms,
        algorithmic_latency_ms=stream.latency_ms,
        network_mflops_per_s=meta.network_flops_per_second / MFLOP,
        total_mflops_per_s=meta.total_flops_per_second / MFLOP,
        parameters=meta.parameters,
        file_kb=vad_model.path.stat().st_size / 1024.0,
        events=n_events[-1],
        us_per_10ms_cpu=1e6 * float(np.median(cpu_times)) / n_frames,
        us_per_10ms_cpu_best=1e6 * min(cpu_times) / n_frames,
    )


def bench_webrtc(seconds: float, repeats: int = DEFAULT_REPEATS) -> dict:
    from vad.apps.baselines import BASELINES_EXTRA
    from vad.core.errors import require

    webrtcvad = require("webrtcvad", BASELINES_EXTRA, "the WebRTC VAD benchmark")
    audio = test_signal(seconds)
    t0 = time.perf_counter()
    vad = webrtcvad.Vad(WEBRTC_MODE)
    load_s = time.perf_counter() - t0
    chunks = [audio[i : i + FRAME_SAMPLES] for i in range(0, audio.size - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    t0 = time.perf_counter()
    vad.is_speech(chunks[0].tobytes(), SAMPLE_RATE_HZ)
    first_ms = 1e3 * (time.perf_counter() - t0)

    def loop():
        for chunk in chunks:
            vad.is_speech(chunk.tobytes(), SAMPLE_RATE_HZ)

    return _row(
        f"webrtc (mode {WEBRTC_MODE})", "baseline", _timed(loop, repeats), len(chunks) * FRAME_MS / 1000.0,
        load_s=load_s, first_frame_latency_ms=first_ms + FRAME_MS, algorithmic_latency_ms=float(FRAME_MS),
    )


def bench_silero(seconds: float, repeats: int = DEFAULT_REPEATS) -> dict:
    from vad.apps.baselines import SILERO_CHUNK_SAMPLES, SileroBaseline

    audio = test_signal(seconds).astype(np.float32) / 32768.0
    t0 = time.perf_counter()
    silero = SileroBaseline()
    load_s = time.perf_counter() - t0
    n = (audio.size // SILERO_CHUNK_SAMPLES) * SILERO_CHUNK_SAMPLES
    t0 = time.perf_counter()
    silero.chunk_probabilities(audio[:SILERO_CHUNK_SAMPLES])
    first_ms = 1e3 * (time.perf_counter() - t0)
    chunk_ms = 1000.0 * SILERO_CHUNK_SAMPLES / SAMPLE_RATE_HZ
    times = _timed(lambda: silero.chunk_probabilities(audio[:n]), repeats)  # one onnxruntime call per chunk
    return _row(
        "silero v6 (onnx)", "baseline", times, n / SAMPLE_RATE_HZ,
        model=str(silero.model_path), load_s=load_s, first_frame_latency_ms=first_ms + chunk_ms,
        algorithmic_latency_ms=chunk_ms,
    )


def _worker(spec: str, seconds: float, block_frames: int | None, backend: str | None, chunk_ms: float) -> dict:
    kind, _, arg = spec.partition(":")
    if kind == "ours":
        return bench_ours(arg or None, seconds, block_frames, backend, chunk_ms=chunk_ms)
    if kind == "webrtc":
        return bench_webrtc(seconds)
    if kind == "silero":
        return bench_silero(seconds)
    raise ValueError(f"unknown worker {spec!r}")


def run_in_subprocess(spec: str, seconds: float, block_frames: int | None = None, backend: str | None = None,
                      chunk_ms: float = FRAME_MS) -> dict:
    """Run one benchmark in a fresh interpreter; returns its row or {"name", "error"}."""
    cmd = [sys.executable, "-m", "vad.apps.benchmark", "--worker", spec, "--seconds", str(seconds),
           "--chunk-ms", str(chunk_ms)]
    if block_frames:
        cmd += ["--block-frames", str(block_frames)]
    if backend:
        cmd += ["--backend", backend]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1")
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        message = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"name": spec, "error": message}
    return json.loads(lines[-1])


def run_benchmarks(
    models: list[str | None],
    seconds: float = DEFAULT_SECONDS,
    baselines: bool = True,
    block_frames: int | None = None,
    backend: str | None = None,
    chunk_ms: float = FRAME_MS,
) -> list[dict]:
    """Rows for each model (None = shipped default) then WebRTC and Silero (when installed)."""
    rows = [run_in_subprocess(f"ours:{m or ''}", seconds, block_frames, backend, chunk_ms) for m in models]
    if baselines:
        rows.append(run_in_subprocess("webrtc", seconds))
        rows.append(run_in_subprocess("silero", seconds))
    return rows


def format_table(rows: list[dict]) -> str:
    header = (f"{'system':<28} {'us/10ms':>8} {'(best)':>7} {'RTF':>8} {'RSS MB':>7} {'load s':>7} "
              f"{'1st ms':>7}  notes")
    lines = [header, "-" * len(header)]
    for r in rows:
        if "error" in r:
            lines.append(f"{r['name']:<28} unavailable: {r['error']}")
            continue
        notes = ""
        if r["kind"] == "ours":
            notes = (
                f"{r['backend']}, block {r['block_frames']}, chunk {r['chunk_samples']}, "
                f"{r['network_mflops_per_s']:.2f}+"
                f"{r['total_mflops_per_s'] - r['network_mflops_per_s']:.2f} MFLOP/s, {r['file_kb']:.0f} KB, "
                f"cpu {r['us_per_10ms_cpu']:.2f} ({r['us_per_10ms_cpu_best']:.2f}) us/10ms"
            )
        lines.append(
            f"{r['name']:<28} {r['us_per_10ms']:>8.2f} {r['us_per_10ms_best']:>7.2f} {r['rtf']:>8.5f} {r['peak_rss_mb']:>7.1f} "
            f"{r['load_s']:>7.3f} {r['first_frame_latency_ms']:>7.2f}  {notes}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark worker (use `vad bench`)")
    parser.add_argument("--worker", required=True)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--block-frames", type=int, default=None)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--chunk-ms", type=float, default=FRAME_MS)
    args = parser.parse_args(argv)
    print(json.dumps(_worker(args.worker, args.seconds, args.block_frames, args.backend, args.chunk_ms)))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["format_table", "run_benchmarks", "run_in_subprocess", "test_signal"]
