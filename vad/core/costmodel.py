"""What a network of given layer widths costs per frame: FLOPs, or microseconds on this machine.

Every cost of the ``causal-dwconv-gru`` network (``training.model``) is linear in the same
seven *width terms* of its input width ``c1``, conv width ``c2`` and GRU width ``h``::

    const, c1, c1*c2, c2, c2*h, h*h, h                                   (WIDTH_TERMS)

(the input projection and depthwise conv are ``O(c1)`` for a fixed number of features and
kernel, the pointwise conv ``c1*c2``, the GRU's input and recurrent matrices ``c2*h`` and
``h*h``, its gates and the read-out ``O(h)``; the front end, the engine's per-call work and
the post-processing are the constant). So a cost model is one coefficient per term:

* the FLOP count (``flop_coefficients``: a multiply-add = 2 FLOPs), exact by construction;
* the measured microseconds per frame of the real streaming engine on this machine
  (``CostModel``, fitted by ``vad calibrate``, ``vad.apps.calibration``), front end included.

``linear_cost`` evaluates a coefficient dict on plain numbers or torch tensors (it is only
arithmetic), so the same function is the differentiable complexity term of the width search
and the figure of a frozen model.

A ``CostModel`` is stored as JSON (``CostModel.save`` / ``load_cost_model``); by default at
``default_cost_model_path()`` (``$XDG_CACHE_HOME/learned-width-vad/cost-model.json``, else
``~/.cache/...``): it describes one machine, so it is user data, not part of the package.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from pathlib import Path
from typing import Any

from vad.core.errors import InvalidInputError, ModelFileError

WIDTH_TERMS = ("const", "input", "input_conv", "conv", "conv_gru", "gru_gru", "gru")
COST_MODEL_FORMAT = "vad-cost-model"
COST_MODEL_VERSION = 1
COST_MODEL_FILE = "cost-model.json"
APP_DIR_NAME = "learned-width-vad"


def width_terms(input_width, conv_width, gru_width) -> dict[str, Any]:
    """The seven terms (numbers or tensors) every cost is linear in, by name (WIDTH_TERMS)."""
    c1, c2, h = input_width, conv_width, gru_width
    return {
        "const": 1.0,
        "input": c1,
        "input_conv": c1 * c2,
        "conv": c2,
        "conv_gru": c2 * h,
        "gru_gru": h * h,
        "gru": h,
    }


def linear_cost(coefficients: dict[str, float], input_width, conv_width, gru_width):
    """sum_t coefficients[t] * term_t(widths); differentiable when the widths are tensors."""
    terms = width_terms(input_width, conv_width, gru_width)
    total = 0.0
    for name in WIDTH_TERMS:
        coef = coefficients.get(name, 0.0)
        if coef:
            total = total + coef * terms[name]
    return total


def flop_coefficients(n_features: int, conv_kernel_frames: int) -> dict[str, float]:
    """FLOPs per frame of the network by width term (a multiply-add = 2 FLOPs).

    norm 2F; inp 2*F*c1 + 2*c1 (bias, ReLU); dw 2*k*c1 + c1 (bias); pw 2*c1*c2 + 2*c2
    (bias, ReLU); gru 6*h*(c2 + h) + 13*h (two matmuls, 6 biases, 3 activations,
    r*(.), (1-z)*n + z*h); out 2*h + 2 (bias, sigmoid).
    """
    f, k = float(n_features), float(conv_kernel_frames)
    return {
        "const": 2 * f + 2,
        "input": 2 * f + 2 + 2 * k + 1,
        "input_conv": 2.0,
        "conv": 2.0,
        "conv_gru": 6.0,
        "gru_gru": 6.0,
        "gru": 13.0 + 2.0,
    }


def default_cost_model_path() -> Path:
    """Where ``vad calibrate`` writes and ``vad train --budget-us`` reads by default."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / APP_DIR_NAME / COST_MODEL_FILE


@dataclasses.dataclass(frozen=True)
class CostModel:
    """Measured microseconds per frame (one hop of audio, 10 ms) as a linear model of width terms.

    Attributes:
        coefficients_us: microseconds per frame per width term (WIDTH_TERMS), all >= 0.
        n_features / conv_kernel_frames / hop_ms: the architecture facts the terms assume.
        engine: how it was measured (backend, block frames, chunk ms, package version...).
        machine: where (host name, processor, CPU count, Python).
        measured_at: ISO time of the calibration.
        points: the measured widths with measured and fitted microseconds per frame.
        fit: summary of the fit (max and rms relative error over the points).
    """

    coefficients_us: dict[str, float]
    n_features: int
    conv_kernel_frames: int
    hop_ms: float
    engine: dict[str, Any] = dataclasses.field(default_factory=dict)
    machine: dict[str, Any] = dataclasses.field(default_factory=dict)
    measured_at: str = ""
    points: list[dict[str, Any]] = dataclasses.field(default_factory=list)
    fit: dict[str, Any] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = sorted(set(self.coefficients_us) - set(WIDTH_TERMS))
        if unknown:
            raise InvalidInputError(f"cost model has unknown term(s): {', '.join(unknown)}")
        for name, value in self.coefficients_us.items():
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 0):
                raise InvalidInputError(f"cost model coefficient {name}={value!r} must be a finite number >= 0")
        for name in ("n_features", "conv_kernel_frames"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise InvalidInputError(f"cost model {name}={value!r} must be an integer >= 1")
        if not (isinstance(self.hop_ms, (int, float)) and self.hop_ms > 0):
            raise InvalidInputError(f"cost model hop_ms={self.hop_ms!r} must be > 0")

    def us_per_frame(self, input_width, conv_width, gru_width):
        """Microseconds per frame at these widths (numbers or differentiable tensors)."""
        return linear_cost(self.coefficients_us, input_width, conv_width, gru_width)

    def us_of(self, widths: dict[str, Any]) -> float:
        return float(self.us_per_frame(widths["input"], widths["conv"], widths["gru"]))

    def check_architecture(self, n_features: int, conv_kernel_frames: int) -> None:
        if (self.n_features, self.conv_kernel_frames) != (n_features, conv_kernel_frames):
            raise InvalidInputError(
                f"the cost model was measured for {self.n_features} features and conv kernel "
                f"{self.conv_kernel_frames}, this network has {n_features} and {conv_kernel_frames}: "
                "run `vad calibrate` for it"
            )

    def summary(self) -> dict[str, Any]:
        """``to_dict()`` without the measured points (what a model file's metadata carries; it
        reads back with ``from_dict``)."""
        d = self.to_dict()
        d.pop("points")
        return d

    def to_dict(self) -> dict[str, Any]:
        return {"format": COST_MODEL_FORMAT, "version": COST_MODEL_VERSION, **dataclasses.asdict(self)}

    @classmethod
    def from_dict(cls, data: Any, source: str = "cost model") -> CostModel:
        if not isinstance(data, dict) or data.get("format") != COST_MODEL_FORMAT:
            raise ModelFileError(f"{source}: not a cost model (no \"format\": {COST_MODEL_FORMAT!r}); "
                                 "write one with `vad calibrate`")
        if data.get("version", 0) > COST_MODEL_VERSION:
            raise ModelFileError(f"{source}: cost model version {data.get('version')} is newer than this build reads")
        names = {f.name for f in dataclasses.fields(cls)}
        try:
            return cls(**{k: v for k, v in data.items() if k in names})
        except (TypeError, InvalidInputError) as exc:
            raise ModelFileError(f"{source}: malformed cost model: {exc}") from exc

    def save(self, path: str | os.PathLike) -> Path:
        from vad.core.atomicfile import atomic_write_text

        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        atomic_write_text(path, json.dumps(self.to_dict(), indent=1))
        return path


def load_cost_model(path: str | os.PathLike | None = None) -> CostModel:
    """Read a cost model (default: ``default_cost_model_path()``); ModelFileError names what is wrong."""
    path = Path(path) if path is not None else default_cost_model_path()
    if not path.is_file():
        raise ModelFileError(f"no cost model at {path}: measure this machine first with `vad calibrate`")
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise ModelFileError(f"{path}: unreadable cost model: {exc}") from exc
    return CostModel.from_dict(data, source=str(path))
