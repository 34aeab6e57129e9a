"""Room impulse responses for reverberation augmentation: real measured ones plus a bank
of rooms simulated once with pyroomacoustics and cached on disk.

Every RIR in a ``RirBank`` is float32 at the model's sample rate, starts shortly before its
direct sound and is scaled so that its direct-path peak is 1. ``direct_index`` is the sample
of the direct sound: convolving dry speech with the RIR delays it by that many samples, so
labels derived from the dry speech are shifted by the same amount (see ``training.augment``).

Simulated rooms (``simulate_rooms``): shoebox rooms of random size (3-12 m x 3-10 m x 2.4-4 m),
random target RT60 (``RoomSimOptions.rt60_range_s``) turned into a wall absorption with
Sabine's formula, image-source method up to ``max_order`` reflections (capped for speed; the
cap shortens the longest tails a little), source and microphone at random positions with a
source-microphone distance in ``distance_range_m`` (far-field meeting microphones are 1-4 m
from the talker). Rooms are split between training and validation by index (every
``val_every``-th room is a validation room) so validation rooms are unseen in training; the
9 real RIRs are too few to split and are used by both.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import os
from pathlib import Path

import numpy as np

from vad.core.errors import AudioFileError, InvalidInputError, require

log = logging.getLogger(__name__)

_DIRECT_LEAD_MS = 2.0  # samples kept before the direct sound
_TAIL_FLOOR_DB = -60.0  # cut the RIR where its envelope stays below this (relative to peak)
_MAX_RIR_S = 1.2  # never keep more than this much tail


@dataclasses.dataclass(frozen=True)
class RoomSimOptions:
    """How the simulated room bank is drawn.

    Attributes:
        n_rooms: number of simulated RIRs in the bank.
        rt60_range_s: target reverberation time, drawn uniformly.
        distance_range_m: source-microphone distance, drawn uniformly (clipped to the room).
        max_order: image-source reflection order cap (speed; 30 keeps a room under ~0.2 s).
        val_every: every n-th room goes to the validation split.
    """

    n_rooms: int = 120
    rt60_range_s: tuple[float, float] = (0.15, 0.9)
    distance_range_m: tuple[float, float] = (0.5, 4.5)
    max_order: int = 30
    val_every: int = 10

    def __post_init__(self) -> None:
        if self.n_rooms < 0:
            raise InvalidInputError(f"RoomSimOptions.n_rooms={self.n_rooms}: must be >= 0")
        lo, hi = self.rt60_range_s
        if not 0.05 <= lo <= hi <= 3.0:
            raise InvalidInputError(f"RoomSimOptions.rt60_range_s={self.rt60_range_s}: need 0.05 <= lo <= hi <= 3")
        lo, hi = self.distance_range_m
        if not 0.1 <= lo <= hi <= 20.0:
            raise InvalidInputError(
                f"RoomSimOptions.distance_range_m={self.distance_range_m}: need 0.1 <= lo <= hi <= 20"
            )
        if self.max_order < 1:
            raise InvalidInputError(f"RoomSimOptions.max_order={self.max_order}: must be >= 1")
        if self.val_every < 2:
            raise InvalidInputError(f"RoomSimOptions.val_every={self.val_every}: must be >= 2")


@dataclasses.dataclass
class RirBank:
    """A list of RIRs (float32, direct peak 1) with their direct-path sample index."""

    rirs: list[np.ndarray]
    direct_index: list[int]
    names: list[str]

    def __len__(self) -> int:
        return len(self.rirs)

    def subset(self, keep: list[int]) -> RirBank:
        return RirBank([self.rirs[i] for i in keep], [self.direct_index[i] for i in keep],
                       [self.names[i] for i in keep])

    def __add__(self, other: RirBank) -> RirBank:
        return RirBank(self.rirs + other.rirs, self.direct_index + other.direct_index, self.names + other.names)


def normalize_rir(rir: np.ndarray, sample_rate_hz: int) -> tuple[np.ndarray, int]:
    """Trim to start ``_DIRECT_LEAD_MS`` before the direct sound (the largest peak), cut the
    tail below ``_TAIL_FLOOR_DB``, scale the direct peak to 1. Returns (rir, direct_index)."""
    rir = np.asarray(rir, dtype=np.float64)
    if rir.ndim != 1 or rir.size == 0 or not np.all(np.isfinite(rir)) or not np.any(rir):
        raise InvalidInputError("room impulse response must be a non-empty, finite, non-silent 1-D array")
    peak = int(np.argmax(np.abs(rir)))
    lead = int(round(_DIRECT_LEAD_MS * sample_rate_hz / 1000.0))
    start = max(0, peak - lead)
    rir = rir[start:]
    peak -= start
    rir = rir / rir[peak]
    above = np.flatnonzero(np.abs(rir) >= 10.0 ** (_TAIL_FLOOR_DB / 20.0))
    end = min(int(above[-1]) + 1, int(_MAX_RIR_S * sample_rate_hz))
    return rir[: max(end, peak + 1)].astype(np.float32), peak


def load_real_rirs(paths: list[Path], sample_rate_hz: int, load) -> RirBank:
    """Read measured RIRs with ``load(path, rate) -> (samples, rate)``; unreadable ones raise
    AudioFileError naming the file (there are few, each matters)."""
    rirs, idx, names = [], [], []
    for path in paths:
        samples, _ = load(path, sample_rate_hz)
        try:
            rir, direct = normalize_rir(samples, sample_rate_hz)
        except InvalidInputError as exc:
            raise AudioFileError(f"{path}: not a usable room impulse response ({exc})") from exc
        rirs.append(rir)
        idx.append(direct)
        names.append(str(path))
    return RirBank(rirs, idx, names)


def _simulate_one(rng: np.random.Generator, opts: RoomSimOptions, sample_rate_hz: int):
    pra = require("pyroomacoustics", "train", "room simulation")
    dims = np.array([rng.uniform(3.0, 12.0), rng.uniform(3.0, 10.0), rng.uniform(2.4, 4.0)])
    rt60_s = float(rng.uniform(*opts.rt60_range_s))
    try:
        absorption, order = pra.inverse_sabine(rt60_s, dims)
    except ValueError:  # room too small for this RT60: fall back to a fully reflective-ish wall
        absorption, order = 0.05, opts.max_order
    margin_m = 0.4
    distance_m = float(rng.uniform(*opts.distance_range_m))
    for _ in range(50):
        src = np.array([rng.uniform(margin_m, d - margin_m) for d in dims])
        src[2] = rng.uniform(1.0, min(2.0, dims[2] - margin_m))
        direction = rng.normal(size=3)
        direction[2] *= 0.2
        direction /= np.linalg.norm(direction)
        mic = src + distance_m * direction
        if np.all(mic > margin_m) and np.all(mic < dims - margin_m):
            break
        distance_m *= 0.9
    else:  # pragma: no cover - the shrinking distance always fits eventually
        mic = dims / 2
    room = pra.ShoeBox(dims, fs=sample_rate_hz, materials=pra.Material(float(absorption)),
                       max_order=int(min(order, opts.max_order)), air_absorption=False)
    room.add_source(src.tolist())
    room.add_microphone(mic.tolist())
    room.compute_rir()
    rir = np.asarray(room.rir[0][0], dtype=np.float64)
    name = f"sim rt60={rt60_s:.2f}s dist={float(np.linalg.norm(mic - src)):.2f}m room={dims.round(1).tolist()}"
    return rir, name


def simulate_rooms(opts: RoomSimOptions, sample_rate_hz: int, seed: int) -> RirBank:
    """Simulate ``opts.n_rooms`` RIRs, deterministic for ``seed``."""
    rirs, idx, names = [], [], []
    for i in range(opts.n_rooms):
        rng = np.random.default_rng([seed, 7001, i])
        raw, name = _simulate_one(rng, opts, sample_rate_hz)
        rir, direct = normalize_rir(raw, sample_rate_hz)
        rirs.append(rir)
        idx.append(direct)
        names.append(name)
    return RirBank(rirs, idx, names)


def simulated_bank_cached(opts: RoomSimOptions, sample_rate_hz: int, seed: int, cache_dir: Path) -> RirBank:
    """``simulate_rooms`` memoised in ``cache_dir/rooms-<hash>.npz`` (written atomically)."""
    key = json.dumps({"opts": dataclasses.asdict(opts), "rate": sample_rate_hz, "seed": seed, "v": 1},
                     sort_keys=True)
    path = Path(cache_dir) / f"rooms-{hashlib.sha1(key.encode()).hexdigest()[:12]}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as z:
            lengths = z["lengths"]
            flat = z["flat"]
            starts = np.concatenate([[0], np.cumsum(lengths)[:-1]]).astype(int)
            rirs = [flat[s:s + n].copy() for s, n in zip(starts, lengths, strict=True)]
            return RirBank(rirs, [int(i) for i in z["direct_index"]], [str(n) for n in z["names"]])
    bank = simulate_rooms(opts, sample_rate_hz, seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + f".tmp{os.getpid()}.npz")
    np.savez(tmp, flat=np.concatenate(bank.rirs) if bank.rirs else np.zeros(0, np.float32),
             lengths=np.array([len(r) for r in bank.rirs], dtype=np.int64),
             direct_index=np.array(bank.direct_index, dtype=np.int64), names=np.array(bank.names))
    os.replace(tmp, path)
    return bank


def split_simulated(bank: RirBank, opts: RoomSimOptions) -> tuple[RirBank, RirBank]:
    """(train rooms, validation rooms): every ``val_every``-th room is for validation."""
    val = [i for i in range(len(bank)) if i % opts.val_every == opts.val_every - 1]
    train = [i for i in range(len(bank)) if i % opts.val_every != opts.val_every - 1]
    return bank.subset(train), bank.subset(val)
