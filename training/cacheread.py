"""Reading the feature cache: random training windows (with per-window feature
augmentation and optional teacher targets) and whole validation streams."""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from vad.training.cachebuild import CACHE_VERSION

from vad.core.errors import InvalidInputError
from vad.core.features import FeatureSpec
from vad.core.leveling import LevelingConfig


@dataclasses.dataclass(frozen=True)
class FeatureAugment:
    """Augmentation of cached log-mel windows, drawn per window at batch time, so that a
    window replayed from the cache is never seen twice the same way.

    Attributes:
        prob: probability that a window is augmented at all.
        gain_db_range: a level change (a constant added to the natural-log mel power;
            values stay at or above the spec's log floor).
        tilt_db_range: a spectral tilt: this many dB from the lowest to the highest band.
        freq_masks / freq_mask_bands: SpecAugment frequency masks (count, max width).
        time_masks / time_mask_frames: SpecAugment time masks (count, max length).
        Masked cells take the band's training mean (0 after the network's normalisation).
    """

    prob: float = 0.8
    gain_db_range: tuple[float, float] = (-10.0, 10.0)
    tilt_db_range: tuple[float, float] = (-6.0, 6.0)
    freq_masks: int = 1
    freq_mask_bands: int = 4
    time_masks: int = 2
    time_mask_frames: int = 10

    def apply(self, rng: np.random.Generator, window: np.ndarray, band_mean: np.ndarray, log_floor: float) -> np.ndarray:
        """An augmented copy of window [T, F] (natural-log mel power)."""
        if rng.random() >= self.prob:
            return window
        t, f = window.shape
        db_to_ln = np.log(10.0) / 10.0
        offset = rng.uniform(*self.gain_db_range) + rng.uniform(*self.tilt_db_range) * (np.arange(f) / max(f - 1, 1) - 0.5)
        out = np.maximum(window + (offset * db_to_ln).astype(np.float32), np.float32(np.log(log_floor)))
        for _ in range(self.freq_masks):
            w = int(rng.integers(0, self.freq_mask_bands + 1))
            a = int(rng.integers(0, f - w + 1))
            out[:, a:a + w] = band_mean[a:a + w]
        for _ in range(self.time_masks):
            w = int(rng.integers(0, self.time_mask_frames + 1))
            a = int(rng.integers(0, max(t - w, 0) + 1))
            out[a:a + w] = band_mean
        return out


class CachedStreams:
    """Random fixed-length windows of cached (features, labels) for one split.

    ``sample_batch(batch_size, rng)`` -> (features float32 tensor [B, T, F], labels float32
    tensor [B, T]); ``iter_streams()`` yields whole streams as numpy arrays (validation).
    Also indexable (``len`` = non-overlapping windows per epoch; item ``i`` is a window at a
    random offset drawn from (seed, epoch, i); ``set_epoch`` changes the draw) for a
    torch DataLoader. Windows never cross stream boundaries.
    """

    def __init__(self, cache_dir: str | os.PathLike, split: str = "train", window_frames: int = 600,
                 seed: int = 0, teacher_weight: float = 0.0, feature_augment: FeatureAugment | None = None):
        root = Path(cache_dir)
        index_path = root / "index.json"
        if not index_path.is_file():
            raise InvalidInputError(f"{str(root)!r} is not a data cache (no index.json); run build_cache first")
        try:
            index = json.loads(index_path.read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise InvalidInputError(f"data cache index {str(index_path)!r} is unreadable: {exc}") from exc
        if index.get("version") != CACHE_VERSION:
            raise InvalidInputError(f"data cache {str(root)!r} has version {index.get('version')!r}, "
                                    f"this build reads {CACHE_VERSION}; rebuild it")
        if split not in index["splits"]:
            raise InvalidInputError(f"split={split!r}: the cache has {sorted(index['splits'])}")
        info = index["splits"][split]
        self.index = index
        self.split = split
        self.spec = FeatureSpec.from_dict(index["spec"])
        leveling = index.get("options", {}).get("input_leveling")
        # the input leveling its features were computed with (StreamOptions.input_leveling), or None
        self.input_leveling = None if leveling is None else LevelingConfig.from_dict(leveling)
        self.features = np.load(root / info["files"]["features"], mmap_mode="r")
        self.labels = np.load(root / info["files"]["labels"], mmap_mode="r")
        self.frames_per_stream = int(info["frames_per_stream"])
        self.n_streams = int(info["n_streams"])
        self.feature_mean = np.asarray(index["feature_mean"], dtype=np.float32)
        self.feature_std = np.asarray(index["feature_std"], dtype=np.float32)
        self.speech_fraction = float(info["speech_fraction"])
        if not (isinstance(teacher_weight, (int, float)) and 0.0 <= teacher_weight <= 1.0):
            raise InvalidInputError(f"teacher_weight={teacher_weight!r}: must be in [0, 1]")
        self.teacher_weight = float(teacher_weight)
        self.teacher = None
        if "teacher" in info["files"]:
            self.teacher = np.load(root / info["files"]["teacher"], mmap_mode="r")
        elif self.teacher_weight > 0:
            raise InvalidInputError(
                f"teacher_weight={teacher_weight}: the cache {str(root)!r} has no teacher scores "
                f"(build it with teacher=True)"
            )
        if isinstance(window_frames, bool) or not isinstance(window_frames, (int, np.integer)) or not (
            1 <= window_frames <= self.frames_per_stream
        ):
            raise InvalidInputError(
                f"window_frames={window_frames!r}: must be an integer in [1, {self.frames_per_stream}] "
                f"(the cached stream length)"
            )
        self.window_frames = int(window_frames)
        self.feature_augment = feature_augment
        self.seed = int(seed)
        self.epoch = 0

    @property
    def n_frames(self) -> int:
        return self.n_streams * self.frames_per_stream

    def __len__(self) -> int:
        return self.n_streams * (self.frames_per_stream // self.window_frames)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def _window_start(self, rng: np.random.Generator) -> int:
        stream = int(rng.integers(self.n_streams))
        offset = int(rng.integers(self.frames_per_stream - self.window_frames + 1))
        return stream * self.frames_per_stream + offset

    def _targets(self, s: int) -> np.ndarray:
        """Training targets of the window at s: hard labels, mixed with the teacher if asked."""
        w = self.window_frames
        y = np.asarray(self.labels[s:s + w], dtype=np.float32)
        if self.teacher_weight > 0:
            y = (1.0 - self.teacher_weight) * y + self.teacher_weight * np.asarray(self.teacher[s:s + w], np.float32)
        return y

    def __getitem__(self, i: int):
        import torch

        if not 0 <= i < len(self):
            raise IndexError(f"window {i} out of range [0, {len(self)})")
        s = self._window_start(np.random.default_rng([self.seed, self.epoch, int(i)]))
        w = self.window_frames
        return (torch.from_numpy(np.array(self.features[s:s + w], dtype=np.float32)),
                torch.from_numpy(self._targets(s)))

    def sample_batch(self, batch_size: int, rng: np.random.Generator):
        """A batch of random windows as torch tensors (features [B, T, F], targets [B, T]: the
        hard labels, or (1 - teacher_weight) * labels + teacher_weight * teacher); features
        augmented by ``feature_augment`` when set."""
        import torch

        w = self.window_frames
        starts = [self._window_start(rng) for _ in range(batch_size)]
        feats = np.stack([self.features[s:s + w] for s in starts]).astype(np.float32, copy=False)
        if self.feature_augment is not None:
            floor = self.spec.log_floor
            feats = np.stack([self.feature_augment.apply(rng, x, self.feature_mean, floor) for x in feats])
        labs = np.stack([self._targets(s) for s in starts])
        return torch.from_numpy(feats), torch.from_numpy(labs)

    def iter_streams(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Whole streams in order: (features [T, F] float32, labels [T] uint8)."""
        for k in range(self.n_streams):
            a = k * self.frames_per_stream
            b = a + self.frames_per_stream
            yield np.asarray(self.features[a:b]), np.asarray(self.labels[a:b])
