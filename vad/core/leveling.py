"""Input leveling: a slow, causal gain that brings a stream's level near a target before the network.

A quiet far-field recording (a meeting microphone across the room) reaches the network 20-30 dB
below a close-talk one, and its speech then scores low throughout; across recordings the same
threshold means different things. A model whose metadata holds a ``leveling`` configuration gets
its input scaled hop by hop: each hop's level (mean power in dB re full scale) updates a level
tracker that follows rises fast (``attack_ms``) and falls slowly (``release_ms``), and the hop is
multiplied by the gain that brings the tracked level to ``target_dbfs``, within
``+-max_gain_db``. The gain of a hop depends on that hop and the ones before it only: nothing
waits (a frame needs its hop anyway). The tracker starts at the level of the first hop it sees;
with priming (``vad.core.priming``) that is the pre-roll's, so it has settled on the stream's
opening before the stream starts.

The one definition is ``LevelingConfig`` with ``level_hops`` (numpy, hop by hop); the numba front
end (``vad.runtime.frontend.frame_samples``) applies the same recurrence to each hop as its frame
completes, the onnxruntime path of ``vad.runtime.engine`` and the JavaScript client
(``runtime/js/vad_stream.mjs``) scale the samples before the graph. The tests check them against
each other.

    >>> cfg = LevelingConfig()
    >>> x = np.full(320, 0.001, dtype=np.float32)           # two hops at -60 dBFS
    >>> y, state = level_hops(x, 160, cfg.coefficients(0.01), LevelState())
    >>> round(float(20 * np.log10(y[0])), 1)                 # raised by max_gain_db
    -40.0
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from vad.core.errors import InvalidInputError

LEVEL_FLOOR_POWER = 1e-12  # added to a hop's mean power before the log: -120 dBFS for digital silence
DB_TO_LN_AMPLITUDE = math.log(10.0) / 20.0  # gain = exp(gain_db * this)
LEVEL_COEFFICIENTS = 5  # LevelingConfig.coefficients: [on, target dBFS, max gain dB, rising, falling factor]


@dataclasses.dataclass(frozen=True)
class LevelingConfig:
    """A model's input leveling (stored as the ``leveling`` object of its metadata).

    Attributes:
        target_dbfs: level the tracker is brought to (dB re full scale, mean power of a hop).
        max_gain_db: the gain stays within +-this.
        attack_ms: time constant of the tracker when a hop is louder than the tracked level.
        release_ms: time constant when it is quieter.
    """

    target_dbfs: float = -20.0
    max_gain_db: float = 20.0
    attack_ms: float = 50.0
    release_ms: float = 3000.0

    def __post_init__(self):
        for name in ("target_dbfs", "max_gain_db", "attack_ms", "release_ms"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
                raise InvalidInputError(f"leveling {name}={value!r}: must be a finite number")
        if self.max_gain_db < 0 or self.attack_ms <= 0 or self.release_ms <= 0:
            raise InvalidInputError(
                f"leveling: max_gain_db >= 0 and attack_ms, release_ms > 0 are needed, got {self.to_dict()}")

    def to_dict(self) -> dict[str, float]:
        return {f.name: float(getattr(self, f.name)) for f in dataclasses.fields(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "leveling") -> LevelingConfig:
        if not isinstance(data, dict):
            raise InvalidInputError(f"{source}: must be a JSON object, got {type(data).__name__}")
        unknown = sorted(set(data) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise InvalidInputError(f"{source}: unknown field(s) {', '.join(unknown)}")
        return cls(**data)

    def coefficients(self, hop_s: float) -> np.ndarray:
        """float64 [LEVEL_COEFFICIENTS]: 1 (on), target dBFS, max gain dB, the tracker's smoothing
        factors per hop rising and falling (``exp(-hop / time constant)``): what every
        implementation runs on."""
        return np.array([1.0, self.target_dbfs, self.max_gain_db, math.exp(-1000.0 * hop_s / self.attack_ms),
                         math.exp(-1000.0 * hop_s / self.release_ms)], dtype=np.float64)


@dataclasses.dataclass
class LevelState:
    """The tracker of one stream: its level in dBFS, and whether it has seen a hop yet."""

    level_db: float = 0.0
    started: bool = False


def level_hops(samples: np.ndarray, hop: int, coefficients: np.ndarray, state: LevelState) -> tuple[np.ndarray, LevelState]:
    """``samples`` (1-D float, a whole number of hops, full scale +-1) scaled hop by hop by the
    leveling gain (same dtype), and the tracker after them (``state`` is updated in place)."""
    x = np.asarray(samples)
    if x.ndim != 1 or x.shape[0] % hop:
        raise InvalidInputError(f"level_hops needs a whole number of {hop}-sample hops, got shape {x.shape}")
    target, max_gain, up, down = (float(c) for c in coefficients[1:])
    out = np.empty_like(x)
    level, started = state.level_db, state.started
    powers = np.mean(np.square(x.reshape(-1, hop), dtype=np.float64), axis=1) if x.size else np.zeros(0)
    for i, power in enumerate(powers):
        d = 10.0 * math.log10(power + LEVEL_FLOOR_POWER)
        if not started:
            level, started = d, True
        else:
            a = up if d > level else down
            level = a * level + (1.0 - a) * d
        gain_db = min(max(target - level, -max_gain), max_gain)
        out[i * hop : (i + 1) * hop] = x[i * hop : (i + 1) * hop] * math.exp(gain_db * DB_TO_LN_AMPLITUDE)
    state.level_db, state.started = level, started
    return out, state



def level_stream(samples: np.ndarray, hop: int, coefficients: np.ndarray, primed: bool = True) -> np.ndarray:
    """A whole stream as the runtime's front end receives it from a model with input leveling:
    ``samples`` (1-D float, full scale +-1) cut to whole hops and leveled with ``coefficients``
    (``LevelingConfig.coefficients``), the tracker first run over the stream's pre-roll when
    ``primed`` (``vad.core.priming``, as a primed runtime stream does; the pre-roll itself is
    dropped), else starting at the first hop. Training mixtures and the training tools' dev
    features go through this for a recipe that trains on leveled input."""
    from vad.core.priming import PRIME_OPENING_HOPS, prime_samples

    x = np.asarray(samples)
    x = x[: x.shape[0] // hop * hop]
    state = LevelState()
    if primed and x.size:
        level_hops(prime_samples(x[: PRIME_OPENING_HOPS * hop], hop), hop, coefficients, state)
    return level_hops(x, hop, coefficients, state)[0]
