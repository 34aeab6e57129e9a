"""Building the feature cache: synthesised streams -> log-mel features, labels (and teacher
scores) as .npy memmaps plus ``index.json``, in parallel worker processes."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import multiprocessing
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from vad.training import rooms
from vad.training.augment import LabelRule
from vad.training.clipio import load_rir
from vad.training.corpus import list_audio_files, pick_weights, readable_with_durations, split_files
from vad.training.rooms import RoomSimOptions
from vad.training.synthesis import SPLITS, StreamContext, StreamOptions, synthesize_stream

from vad.core.errors import AudioFileError, InvalidInputError
from vad.core.features import FeatureSpec

log = logging.getLogger(__name__)

CACHE_VERSION = 2

_WORKER_CTX: StreamContext | None = None  # set once per worker process by _init_worker


def _init_worker(ctx: StreamContext) -> None:
    global _WORKER_CTX
    _WORKER_CTX = ctx


def _stream_result(ctx: StreamContext, index: int) -> tuple:
    s = synthesize_stream(ctx, index)
    teacher = ctx.teacher_scores(s.audio).astype(np.float16) if ctx.teacher else None
    return index, s.features, s.labels, s.skipped, teacher


def _worker_stream(index: int) -> tuple:
    assert _WORKER_CTX is not None  # internal invariant, not user input
    return _stream_result(_WORKER_CTX, index)


def _write_split(out_dir: Path, ctx: StreamContext, n_streams: int, workers: int,
                 progress: Callable[[str], None] | None) -> dict[str, Any]:
    spec = ctx.spec
    frames_per_stream = spec.n_frames(int(round(ctx.options.stream_s * spec.sample_rate_hz)))
    total = n_streams * frames_per_stream
    tmp_feat = out_dir / f".{ctx.split}_features.tmp.npy"
    tmp_lab = out_dir / f".{ctx.split}_labels.tmp.npy"
    feats = np.lib.format.open_memmap(tmp_feat, mode="w+", dtype=np.float32, shape=(total, spec.n_mels))
    labs = np.lib.format.open_memmap(tmp_lab, mode="w+", dtype=np.uint8, shape=(total,))
    tmp_teacher = out_dir / f".{ctx.split}_teacher.tmp.npy"
    teach = (np.lib.format.open_memmap(tmp_teacher, mode="w+", dtype=np.float16, shape=(total,))
             if ctx.teacher else None)
    skipped: list[str] = []
    t0 = time.time()

    def store(result: tuple, done: int) -> None:
        i, f, lab, sk, teacher = result
        feats[i * frames_per_stream:(i + 1) * frames_per_stream] = f
        labs[i * frames_per_stream:(i + 1) * frames_per_stream] = lab
        if teach is not None:
            teach[i * frames_per_stream:(i + 1) * frames_per_stream] = teacher
        skipped.extend(sk)
        if progress and (done % max(1, n_streams // 20) == 0 or done == n_streams):
            progress(f"{ctx.split}: {done}/{n_streams} streams, {time.time() - t0:.0f} s")

    if workers <= 1 or n_streams <= 1:
        for done, i in enumerate(range(n_streams), 1):
            store(_stream_result(ctx, i), done)
    else:
        mp = multiprocessing.get_context("spawn")
        with mp.Pool(workers, initializer=_init_worker, initargs=(ctx,)) as pool:
            for done, result in enumerate(pool.imap_unordered(_worker_stream, range(n_streams)), 1):
                store(result, done)
    feats.flush()
    labs.flush()
    files = {"features": f"{ctx.split}_features.npy", "labels": f"{ctx.split}_labels.npy"}
    if teach is not None:
        teach.flush()
        files["teacher"] = f"{ctx.split}_teacher.npy"
        os.replace(tmp_teacher, out_dir / files["teacher"])
    speech_fraction = float(labs.mean()) if total else 0.0
    stats: dict[str, Any] = {
        "n_streams": n_streams,
        "frames_per_stream": frames_per_stream,
        "n_frames": total,
        "speech_fraction": speech_fraction,
        "skipped_files": sorted(set(skipped)),
        "files": files,
    }
    if teach is not None:
        hard = np.asarray(labs, dtype=bool)
        soft = np.asarray(teach, dtype=np.float32)
        stats["teacher_agreement"] = float(np.mean((soft >= 0.5) == hard)) if total else 0.0
    if ctx.split == "train":
        mean = np.zeros(spec.n_mels)
        sq = np.zeros(spec.n_mels)
        chunk = 100_000
        for a in range(0, total, chunk):
            block = np.asarray(feats[a:a + chunk], dtype=np.float64)
            mean += block.sum(axis=0)
            sq += (block * block).sum(axis=0)
        mean /= max(total, 1)
        std = np.sqrt(np.maximum(sq / max(total, 1) - mean * mean, 1e-12))
        stats["feature_mean"] = mean.tolist()
        stats["feature_std"] = std.tolist()
    os.replace(tmp_feat, out_dir / f"{ctx.split}_features.npy")
    os.replace(tmp_lab, out_dir / f"{ctx.split}_labels.npy")
    return stats


def build_cache(
    speech_dirs: Sequence[str | os.PathLike],
    noise_dirs: Sequence[str | os.PathLike],
    rir_dirs: Sequence[str | os.PathLike] | None,
    out_dir: str | os.PathLike,
    minutes_train: float = 120.0,
    minutes_val: float = 15.0,
    seed: int = 0,
    spec: FeatureSpec | None = None,
    options: StreamOptions | None = None,
    rule: LabelRule | None = None,
    room_options: RoomSimOptions | None = None,
    workers: int | None = None,
    teacher: Callable[[], Any] | None = None,
    rebuild: bool = False,
    progress: Callable[[str], None] | None = None,
) -> Path:
    """Synthesise and cache training and validation streams; returns ``out_dir``.

    ``rir_dirs`` may be None or empty (simulated rooms only; ``room_options.n_rooms = 0`` and
    no rir_dirs means no reverberation). A cache already in ``out_dir`` with the same
    configuration is reused unless ``rebuild``. ``teacher`` (a picklable factory of an
    object with ``frame_scores(audio_16k) -> one probability per 10 ms frame``, e.g. the
    application layer's ``vad.apps.baselines.SileroBaseline``) also stores the teacher's
    probability per frame of each mixture (``<split>_teacher.npy``, float16) for distillation (``CachedStreams(teacher_weight=...)``). ``workers`` defaults to min(2, cpu count);
    workers are *spawned* (safe when torch is loaded in the caller), so a script that calls
    this at top level needs the usual ``if __name__ == "__main__":`` guard.

    Measured on the 2-core machine (shared with other jobs, load average ~8-10): 180 + 20
    minutes of streams from ../shared/data/train in 89-129 s (2 workers), 188 MiB on disk
    (features 160 B per 10 ms frame); with ``teacher=True`` 181 s (about 1.9x).
    """
    spec = spec or FeatureSpec()
    options = options or StreamOptions()
    rule = rule or LabelRule()
    room_options = room_options or RoomSimOptions()
    for name, value in (("minutes_train", minutes_train), ("minutes_val", minutes_val)):
        if not (isinstance(value, (int, float)) and np.isfinite(value) and value > 0):
            raise InvalidInputError(f"{name}={value!r}: must be a positive number of minutes")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
        raise InvalidInputError(f"seed={seed!r}: must be a non-negative integer")
    out = Path(out_dir)
    speech_files = list_audio_files(speech_dirs, "speech")
    noise_files = list_audio_files(noise_dirs, "noise")
    rir_files = list_audio_files(rir_dirs, "room impulse response") if rir_dirs else []
    config = {
        "version": CACHE_VERSION,
        "spec": spec.to_dict(),
        "options": options.to_dict(),
        "rule": dataclasses.asdict(rule),
        "rooms": dataclasses.asdict(room_options),
        "minutes_train": float(minutes_train),
        "minutes_val": float(minutes_val),
        "seed": int(seed),
        "teacher": None if teacher is None else f"{teacher.__module__}.{teacher.__qualname__}",
        "speech": sorted(f.key for f in speech_files),
        "noise": sorted(f.key for f in noise_files),
        "rir": sorted(f.key for f in rir_files),
    }
    digest = hashlib.sha1(json.dumps(config, sort_keys=True).encode()).hexdigest()
    index_path = out / "index.json"
    if not rebuild and index_path.is_file():
        try:
            if json.loads(index_path.read_text()).get("config_sha1") == digest:
                if progress:
                    progress(f"reusing cache {out}")
                return out
        except (OSError, json.JSONDecodeError):
            pass
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    workers = int(workers or min(2, os.cpu_count() or 1))
    skipped: list[str] = []
    real = rooms.load_real_rirs([Path(f.path) for f in rir_files], spec.sample_rate_hz, load_rir)
    sim = rooms.simulated_bank_cached(room_options, spec.sample_rate_hz, seed, out)
    sim_train, sim_val = rooms.split_simulated(sim, room_options)
    if progress:
        progress(f"{len(real)} real + {len(sim)} simulated RIRs ready ({time.time() - t0:.0f} s)")
    index: dict[str, Any] = {"version": CACHE_VERSION, "config_sha1": digest, "spec": spec.to_dict(),
                             "seed": int(seed), "options": options.to_dict(), "rule": config["rule"],
                             "rooms": config["rooms"], "splits": {}}
    speech_split = split_files(speech_files, options.val_fraction)
    noise_split = split_files(noise_files, options.val_fraction)
    for k, split in enumerate(SPLITS):
        minutes = minutes_train if split == "train" else minutes_val
        noise_kept, noise_durs = readable_with_durations(noise_split[k], skipped)
        if not noise_kept:
            raise AudioFileError(f"no readable noise file for the {split} split under {list(map(str, noise_dirs))}")
        ctx = StreamContext(
            speech=[f.path for f in speech_split[k]], noise=[f.path for f in noise_kept], noise_duration_s=noise_durs,
            speech_cdf=pick_weights([f.key for f in speech_split[k]]),
            noise_cdf=pick_weights([f.key for f in noise_kept], noise_durs),
            real_rirs=real, sim_rirs=sim_train if split == "train" else sim_val,
            spec=spec, options=options, rule=rule, seed=int(seed), split=split, teacher=teacher,
        )
        n_streams = max(1, int(np.ceil(minutes * 60.0 / options.stream_s)))
        stats = _write_split(out, ctx, n_streams, workers, progress)
        stats["speech_files"] = len(speech_split[k])
        stats["noise_files"] = len(noise_kept)
        stats["rooms_simulated"] = len(ctx.sim_rirs)
        stats["rooms_real"] = len(real)
        skipped.extend(stats["skipped_files"])
        index["splits"][split] = stats
    index["feature_mean"] = index["splits"]["train"].pop("feature_mean")
    index["feature_std"] = index["splits"]["train"].pop("feature_std")
    index["skipped_files"] = sorted(set(skipped))
    index["build_seconds"] = round(time.time() - t0, 1)
    if index["skipped_files"]:
        log.warning("%d unreadable file(s) skipped (listed in %s)", len(index["skipped_files"]), index_path)
    tmp = out / f".index.tmp{os.getpid()}.json"
    tmp.write_text(json.dumps(index, indent=1))
    os.replace(tmp, index_path)
    if progress:
        n_skipped = len(index["skipped_files"])
        progress(f"cache built in {index['build_seconds']} s at {out}"
                 + (f" ({n_skipped} unreadable file(s) skipped, listed in index.json)" if n_skipped else ""))
    return out
