"""End-to-end speed of our models and the baselines, single thread, each in its own process.

What is timed (CPU time of the worker process around the whole loop, after loading; load and
start times are wall time):

* ours, streaming: int16 audio given to ``StreamingVAD.process`` in chunks of each ``chunk_ms``
  (10 ms: a typical microphone callback; 32 ms: Silero's chunk), i.e. front end + network +
  post-processing, probabilities and events out, after the stream's start (the opening it holds
  back and the priming pre-roll, ``vad.core.priming``: a once-per-stream cost, reported on its
  own as ``stream_start_ms``). ``breakdown=True`` splits that cost into
  front end, network, post-processing and glue (Python, argument passing, result objects) by
  timing the same chunks through ``vad.runtime.network.breakdown_chunks`` up to each stage;
* ours, batch: the whole signal through ``StreamingVAD.process_signal`` (what ``vad label`` and
  ``vad eval`` run per file);
* WebRTC VAD (``webrtcvad`` module of ``webrtcvad-wheels``, mode 3): ``is_speech`` on each
  10 ms frame (int16 bytes);
* Silero VAD v6: its bundled ONNX model on 512-sample chunks with Silero's context and state
  (``vad.apps.baselines.SileroBaseline``, onnxruntime, one thread; ``silero_vad`` is never imported);
* TEN VAD (``ten_vad``): ``TenVad.process`` on each 256-sample (16 ms) int16 hop, its default.

Reported per system: microseconds of process CPU time per 10 ms of audio (median of
``DEFAULT_REPEATS`` timed passes over the audio, and the best pass; on a machine shared with
other jobs the CPU time is the system's own cost, and on an idle core it equals the wall time,
which ours also reports as ``us_per_10ms_wall``/``us_per_10ms_wall_best``; the ratio to WebRTC VAD uses the best passes, since
other load on a shared machine only ever adds time), real-time factor (median compute time / audio
time), peak RSS of the worker process (``ru_maxrss``: Python + numpy + the engine), load time
(model + engine construction), and first-frame latency (a new stream fed one hop at a time: the
audio it took before a first probability came out, which is a primed stream's opening or the
onnxruntime block, whichever is longer, plus the wall time of the call that returned it).
``cold_start=True`` adds, for each model, the time from a fresh interpreter to the first
probability with an empty numba cache (the first call after installing: numba compiles the
kernels) and with the cache filled (every later start).

Each system runs in a fresh ``python -m vad.apps.benchmark --worker ...`` process so RSS and
caches are not shared. The test audio is a seeded synthetic signal (noise bursts with
silences), or a recording given as ``audio`` (any format ``vad.core.audio`` reads; resampled to
16 kHz and looped to the length asked for), so the figures are reproducible.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from vad.core.features import pcm_scale
from vad.core.priming import PRIME_OPENING_HOPS

SAMPLE_RATE_HZ = 16000
FRAME_MS = 10
FRAME_SAMPLES = SAMPLE_RATE_HZ * FRAME_MS // 1000
DEFAULT_SECONDS = 60.0
DEFAULT_CHUNKS_MS = (10.0, 32.0)
DEFAULT_REPEATS = 5  # the timed loop is run this many times; median and best are reported
BREAKDOWN_ROUNDS = 3  # --breakdown: each stage timed in this many rounds of DEFAULT_REPEATS passes
SIGNAL_SEED = 20260
BURST_S = 0.7
WEBRTC_MODE = 3
TEN_HOP_SAMPLES = 256
_INT16_FULL_SCALE = 32767


def test_signal(seconds: float, seed: int = SIGNAL_SEED, audio: str | None = None) -> np.ndarray:
    """int16 test audio at 16 kHz: seeded noise bursts of BURST_S with quiet gaps, or the
    recording ``audio`` looped to ``seconds``."""
    n = int(seconds * SAMPLE_RATE_HZ)
    if audio:
        from vad.core.audio import load_audio

        x, _rate = load_audio(audio, SAMPLE_RATE_HZ)
        x = np.tile(x, -(-n // x.size))[:n]
    else:
        rng = np.random.default_rng(seed)
        burst = int(BURST_S * SAMPLE_RATE_HZ)
        gains = np.repeat(rng.choice([0.002, 0.3], size=n // burst + 1), burst)[:n]
        x = rng.standard_normal(n) * gains
    return (np.clip(x, -1, 1) * _INT16_FULL_SCALE).astype(np.int16)


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _timed(loop, repeats: int, wall_times: list[float] | None = None, setup=None) -> list[float]:
    """CPU seconds of each pass (``time.process_time``: this process only, so time the scheduler
    gives to other processes on a shared machine is not counted; single-threaded, it equals the
    wall time of an otherwise idle core); the wall seconds go to ``wall_times`` when given.
    ``setup`` runs before each pass, untimed."""
    times = []
    for _ in range(repeats):
        if setup is not None:
            setup()
        c0, t0 = time.process_time(), time.perf_counter()
        loop()
        times.append(time.process_time() - c0)
        if wall_times is not None:
            wall_times.append(time.perf_counter() - t0)
    return times


def _per_10ms(seconds: float, audio_s: float) -> float:
    return 1e6 * seconds / (audio_s * 1000.0 / FRAME_MS)


def _row(name: str, kind: str, times_s: list[float], audio_s: float, **extra) -> dict:
    row = {"name": name, "kind": kind, "pass_s": [float(t) for t in times_s], "audio_s": audio_s,
           "peak_rss_mb": _peak_rss_mb(), **extra}
    _summarize(row)
    return row


def _summarize(row: dict) -> None:
    """us per 10 ms (median and best pass), RTF and pass count from the row's CPU pass times, and the
    wall-clock figures from its wall pass times where it has them (``wall_pass_s``)."""
    times, audio_s = row["pass_s"], row["audio_s"]
    median = float(np.median(times))
    row.update(us_per_10ms=_per_10ms(median, audio_s), us_per_10ms_best=_per_10ms(min(times), audio_s),
               rtf=median / audio_s, repeats=len(times))
    wall = row.get("wall_pass_s")
    if wall:
        row.update(us_per_10ms_wall=_per_10ms(float(np.median(wall)), audio_s),
                   us_per_10ms_wall_best=_per_10ms(min(wall), audio_s))


def _merge_rounds(rounds: list[list[dict]]) -> list[dict]:
    """One row per system from several rounds: every pass counted, the rest from its best round."""
    merged = []
    for same in zip(*rounds, strict=True):
        ok = [r for r in same if "error" not in r]
        if not ok:
            merged.append(same[0])
            continue
        best = dict(min(ok, key=lambda r: min(r["pass_s"])))
        best["pass_s"] = [t for r in ok for t in r["pass_s"]]
        if "wall_pass_s" in best:
            best["wall_pass_s"] = [t for r in ok for t in r["wall_pass_s"]]
        best["rounds"] = len(ok)
        _summarize(best)
        merged.append(best)
    return merged


def _load_ours(model: str | None, backend: str | None, block_frames: int | None):
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import DEFAULT_BACKEND, VADModel

    t0 = time.perf_counter()
    vad_model = VADModel(model, backend=backend or DEFAULT_BACKEND)
    stream = StreamingVAD(vad_model, SAMPLE_RATE_HZ, block_frames=block_frames)
    return vad_model, stream, time.perf_counter() - t0


def _model_fields(vad_model, stream) -> dict:
    from vad.core.modelmeta import MFLOP

    meta = vad_model.metadata
    return {
        "model": str(vad_model.path),
        "backend": vad_model.backend,
        "block_frames": stream.block_frames,
        "algorithmic_latency_ms": stream.latency_ms,
        "network_mflops_per_s": meta.network_flops_per_second / MFLOP,
        "total_mflops_per_s": meta.total_flops_per_second / MFLOP,
        "parameters": meta.parameters,
        "file_kb": vad_model.path.stat().st_size / 1024.0,
    }


def bench_ours(model: str | None, seconds: float, block_frames: int | None = None, backend: str | None = None,
               repeats: int = DEFAULT_REPEATS, chunk_ms: float = FRAME_MS, breakdown: bool = False,
               audio: str | None = None) -> dict:
    vad_model, stream, load_s = _load_ours(model, backend, block_frames)
    opening = _opening_samples(stream)
    signal = test_signal(seconds + opening / SAMPLE_RATE_HZ, audio=audio)  # `seconds` after the start
    hops_to_first, first_call_ms = _first_probability(stream, signal)
    first_wait_ms = 1e3 * vad_model.spec.hop_s * hops_to_first
    stream.reset()
    step = max(1, int(round(chunk_ms * SAMPLE_RATE_HZ / 1000)))
    n_chunks = signal.size // step
    chunks = [signal[i * step : (i + 1) * step] for i in range(n_chunks)]
    # a stream's start (its opening held back, then the priming pre-roll: vad.core.priming) is
    # timed on its own, once per stream; the passes time the steady state after it
    n_start = min(n_chunks, -(-opening // step))
    audio_s = (n_chunks - n_start) * step / SAMPLE_RATE_HZ
    n_events, start_s = [], []

    def start():
        stream.reset()
        c0 = time.process_time()
        count = sum(len(stream.process(chunk).events) for chunk in chunks[:n_start])
        start_s.append(time.process_time() - c0)
        n_events.append(count)

    def loop():
        count = 0
        for chunk in chunks[n_start:]:
            count += len(stream.process(chunk).events)
        n_events[-1] += count + len(stream.flush().events)

    wall: list[float] = []
    times = _timed(loop, repeats, wall, setup=start)
    row = _row(vad_model.metadata.name, "ours", times, audio_s, chunk_samples=step, chunk_ms=1000.0 * step / SAMPLE_RATE_HZ,
               wall_pass_s=[float(t) for t in wall], load_s=load_s, first_frame_latency_ms=first_call_ms + first_wait_ms,
               stream_start_ms=1e3 * float(np.median(start_s)), events=n_events[-1], **_model_fields(vad_model, stream))
    if breakdown:
        row["breakdown_us_per_10ms"] = _breakdown(stream, np.ascontiguousarray(np.stack(chunks)), n_start, audio_s,
                                                  repeats, row["us_per_10ms_best"])
    return row


def _breakdown(stream, chunks: np.ndarray, n_start: int, audio_s: float, repeats: int,
               total_best_us: float) -> dict | None:
    """Front end, network, post-processing and glue, us per 10 ms (numba backend only), from the best
    of ``BREAKDOWN_ROUNDS`` x repeats passes of each stage (differences of medians are too noisy
    on a shared machine) over the chunks after the stream's start (its first ``n_start``, untimed);
    glue = the best full ``process`` loop minus the best compiled loop."""
    from vad.runtime.network import STAGE_ALL, STAGE_FRONTEND, STAGE_NETWORK, breakdown_chunks

    fused = stream._fused
    if fused is None:
        return None
    scale = pcm_scale(chunks.dtype)
    best = {}
    for _round in range(BREAKDOWN_ROUNDS):
        for upto in (STAGE_FRONTEND, STAGE_NETWORK, STAGE_ALL):
            def start(upto=upto):
                fused.reset()
                breakdown_chunks(chunks[:n_start], scale, fused.model, fused.state, upto, fused.kind)

            def loop(upto=upto):
                breakdown_chunks(chunks[n_start:], scale, fused.model, fused.state, upto, fused.kind)
            start()
            loop()
            best[upto] = min(best.get(upto, np.inf), _per_10ms(min(_timed(loop, repeats, setup=start)), audio_s))
    fused.reset()
    return {
        "frontend": best[STAGE_FRONTEND],
        "network": best[STAGE_NETWORK] - best[STAGE_FRONTEND],
        "postprocess": best[STAGE_ALL] - best[STAGE_NETWORK],
        "glue": total_best_us - best[STAGE_ALL],
        "basis": "best passes",
    }


def _opening_samples(stream) -> int:
    """Samples a new stream holds back before its first frame: its opening when it is primed."""
    return (PRIME_OPENING_HOPS if stream.prime else 0) * stream.model.spec.hop_length_samples


def _first_probability(stream, signal: np.ndarray) -> tuple[int, float]:
    """Feed a new stream one hop at a time until a probability comes out: (hops fed, wall ms of
    that call). The hops fed are the algorithmic wait from the stream's first sample (the opening
    of a primed stream, the block of onnxruntime, whichever is longer); the call's time is the
    compute on top of it."""
    hop = stream.model.spec.hop_length_samples
    stream.reset()
    for k in range(1, signal.size // hop + 1):
        t0 = time.perf_counter()
        got = stream.process(signal[(k - 1) * hop : k * hop]).probabilities.size
        call_ms = 1e3 * (time.perf_counter() - t0)
        if got:
            return k, call_ms
    raise RuntimeError(f"no probability from {signal.size} samples: the benchmark signal is too short")


def bench_ours_batch(model: str | None, seconds: float, backend: str | None = None, repeats: int = DEFAULT_REPEATS,
                     audio: str | None = None) -> dict:
    """The signal through process_signal (the per-file path of vad label / vad eval), after the
    stream's start (its opening and the priming pre-roll, untimed: once per file, which a long
    file does not feel; ``stream_start_ms`` times it)."""
    vad_model, stream, load_s = _load_ours(model, backend, None)
    opening = _opening_samples(stream)
    signal = test_signal(seconds + opening / SAMPLE_RATE_HZ, audio=audio)  # `seconds` after the start
    stream.process_signal(signal[: 10 * FRAME_SAMPLES])
    n_events, start_s = [], []

    def start():
        stream.reset()
        c0 = time.process_time()
        n_events.append(len(stream.process(signal[:opening]).events))
        start_s.append(time.process_time() - c0)

    def loop():
        n_events[-1] += len(stream.process_signal(signal[opening:]).events)

    times = _timed(loop, repeats, setup=start)
    return _row(f"{vad_model.metadata.name} batch", "ours-batch", times, (signal.size - opening) / SAMPLE_RATE_HZ,
                load_s=load_s, first_frame_latency_ms=float("nan"), stream_start_ms=1e3 * float(np.median(start_s)),
                events=n_events[-1], **_model_fields(vad_model, stream))


def cold_start(model: str | None, backend: str | None = None) -> dict:
    """This process's time to the first probability: imports, model load, engine, first chunk."""
    t0 = time.perf_counter()
    import vad.runtime  # noqa: F401  (timed: the imports are part of a start)

    vad_model, stream, _load_s = _load_ours(model, backend, None)
    _first_probability(stream, np.zeros(SAMPLE_RATE_HZ, dtype=np.int16))  # (a primed stream's comes after its opening)
    return {"start_s": time.perf_counter() - t0, "peak_rss_mb": _peak_rss_mb(), "backend": vad_model.backend}


def bench_webrtc(seconds: float, repeats: int = DEFAULT_REPEATS, audio: str | None = None) -> dict:
    from vad.apps.baselines import BASELINES_EXTRA
    from vad.core.errors import require

    webrtcvad = require("webrtcvad", BASELINES_EXTRA, "the WebRTC VAD benchmark")
    signal = test_signal(seconds, audio=audio)
    t0 = time.perf_counter()
    vad = webrtcvad.Vad(WEBRTC_MODE)
    load_s = time.perf_counter() - t0
    chunks = [signal[i : i + FRAME_SAMPLES] for i in range(0, signal.size - FRAME_SAMPLES + 1, FRAME_SAMPLES)]
    t0 = time.perf_counter()
    vad.is_speech(chunks[0].tobytes(), SAMPLE_RATE_HZ)
    first_ms = 1e3 * (time.perf_counter() - t0)

    def loop():
        for chunk in chunks:
            vad.is_speech(chunk.tobytes(), SAMPLE_RATE_HZ)

    return _row(
        f"webrtc (mode {WEBRTC_MODE})", "baseline", _timed(loop, repeats), len(chunks) * FRAME_MS / 1000.0,
        chunk_ms=float(FRAME_MS), load_s=load_s, first_frame_latency_ms=first_ms + FRAME_MS,
        algorithmic_latency_ms=float(FRAME_MS),
    )


def bench_silero(seconds: float, repeats: int = DEFAULT_REPEATS, audio: str | None = None) -> dict:
    from vad.apps.baselines import SILERO_CHUNK_SAMPLES, SileroBaseline

    pcm = test_signal(seconds, audio=audio)
    signal = pcm.astype(np.float32) * np.float32(pcm_scale(pcm))
    t0 = time.perf_counter()
    silero = SileroBaseline()
    load_s = time.perf_counter() - t0
    n = (signal.size // SILERO_CHUNK_SAMPLES) * SILERO_CHUNK_SAMPLES
    t0 = time.perf_counter()
    silero.chunk_probabilities(signal[:SILERO_CHUNK_SAMPLES])
    first_ms = 1e3 * (time.perf_counter() - t0)
    chunk_ms = 1000.0 * SILERO_CHUNK_SAMPLES / SAMPLE_RATE_HZ
    times = _timed(lambda: silero.chunk_probabilities(signal[:n]), repeats)  # one onnxruntime call per chunk
    return _row(
        "silero v6 (onnx)", "baseline", times, n / SAMPLE_RATE_HZ, chunk_ms=chunk_ms,
        model=str(silero.model_path), load_s=load_s, first_frame_latency_ms=first_ms + chunk_ms,
        algorithmic_latency_ms=chunk_ms,
    )


def bench_ten(seconds: float, repeats: int = DEFAULT_REPEATS, audio: str | None = None) -> dict:
    from vad.apps.baselines import TEN_HOP_SAMPLES as HOP
    from vad.apps.baselines import TenBaseline

    signal = test_signal(seconds, audio=audio)
    t0 = time.perf_counter()
    ten = TenBaseline()
    vad = ten.new_instance()
    load_s = time.perf_counter() - t0
    hops = [np.ascontiguousarray(signal[i : i + HOP]) for i in range(0, signal.size - HOP + 1, HOP)]
    t0 = time.perf_counter()
    vad.process(hops[0])
    first_ms = 1e3 * (time.perf_counter() - t0)
    hop_ms = 1000.0 * HOP / SAMPLE_RATE_HZ

    fresh = [ten.new_instance() for _ in range(repeats)]  # a new stream per pass, made before timing

    def loop():
        process = fresh.pop().process
        for hop in hops:
            process(hop)

    return _row(
        "ten vad", "baseline", _timed(loop, repeats), len(hops) * HOP / SAMPLE_RATE_HZ, chunk_ms=hop_ms,
        load_s=load_s, first_frame_latency_ms=first_ms + hop_ms, algorithmic_latency_ms=hop_ms,
    )


BASELINE_WORKERS = ("webrtc", "silero", "ten")


def _worker(args) -> dict:
    kind, _, arg = args.worker.partition(":")
    model = arg or None
    if kind == "ours":
        return bench_ours(model, args.seconds, args.block_frames, args.backend, chunk_ms=args.chunk_ms,
                          breakdown=args.breakdown, audio=args.audio)
    if kind == "batch":
        return bench_ours_batch(model, args.seconds, args.backend, audio=args.audio)
    if kind == "start":
        return cold_start(model, args.backend)
    if kind == "webrtc":
        return bench_webrtc(args.seconds, audio=args.audio)
    if kind == "silero":
        return bench_silero(args.seconds, audio=args.audio)
    if kind == "ten":
        return bench_ten(args.seconds, audio=args.audio)
    raise ValueError(f"unknown worker {args.worker!r}")


def run_in_subprocess(spec: str, seconds: float, block_frames: int | None = None, backend: str | None = None,
                      chunk_ms: float = FRAME_MS, breakdown: bool = False, audio: str | None = None,
                      env_extra: dict | None = None) -> dict:
    """Run one benchmark in a fresh interpreter; returns its row or {"name", "error"}."""
    cmd = [sys.executable, "-m", "vad.apps.benchmark", "--worker", spec, "--seconds", str(seconds),
           "--chunk-ms", str(chunk_ms)]
    if block_frames:
        cmd += ["--block-frames", str(block_frames)]
    if backend:
        cmd += ["--backend", backend]
    if breakdown:
        cmd.append("--breakdown")
    if audio:
        cmd += ["--audio", str(audio)]
    env = dict(os.environ, OMP_NUM_THREADS="1", OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", NUMBA_NUM_THREADS="1",
               **(env_extra or {}))
    proc = subprocess.run(cmd, capture_output=True, text=True, env=env)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("{")]
    if proc.returncode != 0 or not lines:
        message = (proc.stderr.strip().splitlines() or ["failed"])[-1]
        return {"name": spec, "error": message}
    return json.loads(lines[-1])


def start_times(model: str | None, backend: str | None = None) -> dict:
    """Seconds from a fresh interpreter to the first probability: with an empty numba cache (the
    first call after installing) and then with the cache that run filled."""
    with tempfile.TemporaryDirectory(prefix="vad-bench-numba-") as cache:
        env = {"NUMBA_CACHE_DIR": cache}
        cold = run_in_subprocess(f"start:{model or ''}", 0.0, backend=backend, env_extra=env)
        warm = run_in_subprocess(f"start:{model or ''}", 0.0, backend=backend, env_extra=env)
    if "error" in cold or "error" in warm:
        return {"error": cold.get("error") or warm.get("error")}
    return {"cold_start_s": cold["start_s"], "warm_start_s": warm["start_s"], "start_rss_mb": warm["peak_rss_mb"]}


def run_benchmarks(
    models: list[str | None],
    seconds: float = DEFAULT_SECONDS,
    baselines: bool = True,
    block_frames: int | None = None,
    backend: str | None = None,
    chunks_ms: tuple[float, ...] = DEFAULT_CHUNKS_MS,
    breakdown: bool = False,
    cold: bool = False,
    audio: str | None = None,
    rounds: int = 1,
) -> list[dict]:
    """Rows for each model (None = shipped default) at each chunk size, its batch row, then the
    baselines (each row says why when one is not installed). With ``rounds`` > 1 every system is
    run that many times, round-robin (so slow spells of a shared machine hit all of them), and
    its passes are pooled."""
    jobs = []
    for m in models:
        for chunk_ms in chunks_ms:
            jobs.append((f"ours:{m or ''}", dict(block_frames=block_frames, backend=backend, chunk_ms=chunk_ms,
                                                breakdown=breakdown, audio=audio)))
        jobs.append((f"batch:{m or ''}", dict(backend=backend, audio=audio)))
    if baselines:
        jobs += [(name, dict(audio=audio)) for name in BASELINE_WORKERS]
    rows = _merge_rounds([[run_in_subprocess(spec, seconds, **kw) for spec, kw in jobs] for _ in range(max(1, rounds))])
    if cold:
        for m in models:
            starts = start_times(m, backend)
            for row in rows:
                if row.get("kind") == "ours" and row.get("model") and "error" not in row and \
                        (m is None or Path(row["model"]).resolve() == Path(m).resolve()):
                    row.update(starts)
    return rows


def format_table(rows: list[dict]) -> str:
    header = (f"{'system':<26} {'chunk':>6} {'us/10ms':>8} {'(best)':>7} {'x webrtc':>8} {'RTF':>8} {'RSS MB':>7} "
              f"{'load s':>7} {'1st ms':>7}  notes")
    lines = [header, "-" * len(header)]
    # ratios from the best passes: on a shared machine other load only ever adds time
    webrtc = next((r["us_per_10ms_best"] for r in rows if r.get("kind") == "baseline" and r["name"].startswith("webrtc")),
                  None)
    for r in rows:
        if "error" in r:
            lines.append(f"{r['name']:<26} unavailable: {r['error']}")
            continue
        notes = ""
        if r["kind"] in ("ours", "ours-batch"):
            notes = (
                f"{r['backend']}, {r['network_mflops_per_s']:.2f}+"
                f"{r['total_mflops_per_s'] - r['network_mflops_per_s']:.2f} MFLOP/s, {r['file_kb']:.0f} KB"
            )
            if r.get("stream_start_ms"):
                notes += f", stream start {r['stream_start_ms']:.2f} ms"
            if "cold_start_s" in r:
                notes += f", start {r['cold_start_s']:.1f} s cold / {r['warm_start_s']:.2f} s warm"
        if r["kind"] == "ours-batch":
            notes += f", {1.0 / r['rtf']:.0f}x real time"
        ratio = f"{r['us_per_10ms_best'] / webrtc:8.2f}" if webrtc else f"{'':>8}"
        chunk = f"{r['chunk_ms']:.0f} ms" if r.get("chunk_ms") else "file"
        first = f"{r['first_frame_latency_ms']:>7.2f}" if r["first_frame_latency_ms"] == r["first_frame_latency_ms"] else f"{'':>7}"
        lines.append(
            f"{r['name']:<26} {chunk:>6} {r['us_per_10ms']:>8.2f} {r['us_per_10ms_best']:>7.2f} {ratio} {r['rtf']:>8.5f} "
            f"{r['peak_rss_mb']:>7.1f} {r['load_s']:>7.3f} {first}  {notes}"
        )
        b = r.get("breakdown_us_per_10ms")
        if b:
            lines.append(f"{'':<26} {'':>6}   breakdown (best) us/10ms: front end {b['frontend']:.2f}, network {b['network']:.2f}, "
                         f"post-processing {b['postprocess']:.2f}, glue {b['glue']:.2f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="benchmark worker (use `vad bench`)")
    parser.add_argument("--worker", required=True)
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS)
    parser.add_argument("--block-frames", type=int, default=None)
    parser.add_argument("--backend", default=None)
    parser.add_argument("--chunk-ms", type=float, default=FRAME_MS)
    parser.add_argument("--breakdown", action="store_true")
    parser.add_argument("--audio", default=None)
    print(json.dumps(_worker(parser.parse_args(argv))))
    return 0


if __name__ == "__main__":
    sys.exit(main())


__all__ = ["format_table", "run_benchmarks", "run_in_subprocess", "start_times", "test_signal"]
