"""A loaded VAD model: the verified model file, its metadata and one inference backend.

``VADModel`` is immutable after loading and safe to share: many ``StreamingVAD``
instances (on many threads) can use one ``VADModel``; each stream keeps its own state
(``initial_state()``), so results do not depend on who else uses the model.

Model resolution: ``VADModel()`` (or ``VADModel(None)``) loads the shipped default,
``models/default.onnx`` inside the installed ``vad.models`` package
(``importlib.resources.files("vad.models")``); a str/Path loads that file. Loading verifies
the file (``vad.runtime.modelfile``: metadata schema, weights digest, finite weights).

The backend contract (both backends): ``run(samples, state)`` takes float32 samples at the
model's rate, a whole number of hops, and returns one probability per hop and the new state.

Backends:

* ``"onnxruntime"`` (the reference, ``vad.runtime.ortbackend``): the file's raw-audio graph
  (front end included) in onnxruntime; needs neither numba nor torch.
* ``"numba"`` (``vad.runtime.network.NumbaBackend``): the numba front end built from the
  metadata's feature spec and the network in one compiled kernel, weights from the file; the
  engine runs it with the post-processing in one call per chunk (``numba_backend``). On load
  it is checked against onnxruntime (max abs difference <= ``PARITY_TOLERANCE`` on a seeded
  probe, else ModelFileError).
* ``"auto"`` (the default): ``"numba"`` when numba can be imported, the model's architecture
  is one it runs and it passes the parity probe, else ``"onnxruntime"``.
  ``VADModel.backend`` says which one runs and ``backend_note`` why, when auto fell back.
  ``vad bench --backend numba|onnxruntime`` measures the cost of each.
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np
from vad.runtime.modelfile import load_model_file
from vad.runtime.ortbackend import OrtBackend

from vad.core.errors import InvalidInputError, MissingDependencyError, ModelFileError
from vad.core.features import FeatureSpec
from vad.core.modelmeta import ModelMetadata

DEFAULT_MODEL_NAME = "default.onnx"
BACKENDS = ("auto", "onnxruntime", "numba")
DEFAULT_BACKEND = "auto"
PARITY_TOLERANCE = 1e-5  # max abs probability difference numba vs onnxruntime on the load probe
_PROBE_FRAMES = 64
_PROBE_SEED = 1234
_PROBE_LEVELS_DB = (-80.0, -10.0)  # per-hop noise level range of the probe signal (dB re full scale)


def default_model_path() -> Path:
    """Path of the shipped default model (``models/default.onnx`` of the installed package).

    Raises ModelFileError when the package ships no default model.
    """
    path = Path(str(importlib.resources.files("vad.models") / DEFAULT_MODEL_NAME))
    if not path.is_file():
        raise ModelFileError(
            f"no default model shipped at {path}; pass a model file explicitly"
        )
    return path


def shipped_model_paths() -> list[Path]:
    """All ``*.onnx`` files shipped in the ``vad.models`` package (default first, then by name)."""
    root = Path(str(importlib.resources.files("vad.models")))
    paths = sorted(root.glob("*.onnx"), key=lambda p: (p.name != DEFAULT_MODEL_NAME, p.name))
    return paths


class VADModel:
    """One exported model loaded for inference.

    Args:
        path: model file; None loads the shipped default (``default_model_path()``).
        intra_op_threads: onnxruntime intra-op threads (1 = no thread pool, best for
            a tiny network run per stream).
        backend: inference backend, one of ``BACKENDS`` (see the module docstring).

    Attributes:
        path: the loaded file.
        metadata: the validated ``ModelMetadata`` (feature spec, widths, post-processing defaults...).
        spec: ``metadata.feature_spec`` (what the front end computes).
        backend: the backend that runs: ``"numba"`` or ``"onnxruntime"``.
        backend_note: why ``"auto"`` chose onnxruntime ("" when it did not fall back).
        state_shapes: {graph state input name: shape without the batch axis}.
        parity_max_abs_diff: numba vs onnxruntime on the load probe (None without numba).
    """

    def __init__(self, path: str | Path | None = None, intra_op_threads: int = 1, backend: str = DEFAULT_BACKEND):
        if isinstance(intra_op_threads, bool) or not isinstance(intra_op_threads, int) or intra_op_threads < 1:
            raise InvalidInputError(f"intra_op_threads={intra_op_threads!r}: must be an integer >= 1")
        if backend not in BACKENDS:
            raise InvalidInputError(f"backend={backend!r}: must be one of {', '.join(BACKENDS)}")
        self.path = default_model_path() if path is None else Path(path)
        self.intra_op_threads = intra_op_threads
        self._file = load_model_file(self.path)
        self.metadata: ModelMetadata = self._file.metadata
        self.spec: FeatureSpec = self.metadata.feature_spec
        self._reference = OrtBackend(self._file, intra_op_threads)
        self.state_shapes = dict(self._reference.state_shapes)
        self.parity_max_abs_diff: float | None = None
        self.backend_note = ""
        self._backend = self._reference
        if backend != "onnxruntime":
            numba_backend = self._load_numba(required=backend == "numba")
            if numba_backend is not None:
                self._backend = numba_backend
        self.backend: str = self._backend.name

    def _load_numba(self, required: bool):
        """The checked numba backend, or None (with ``backend_note`` set) when auto falls back."""
        try:
            from vad.runtime.network import NumbaBackend
        except ImportError as exc:
            if required:
                raise MissingDependencyError(
                    f"backend='numba' needs numba and rocket-fft, which cannot be imported here ({exc}); "
                    "pip install numba rocket-fft, or use backend='onnxruntime'"
                ) from exc
            self.backend_note = f"numba is not importable ({exc})"
            return None
        try:
            candidate = NumbaBackend(self._file)
        except ModelFileError as exc:
            if required:
                raise
            self.backend_note = str(exc)
            return None
        self.parity_max_abs_diff = self._probe_parity(candidate)
        if self.parity_max_abs_diff <= PARITY_TOLERANCE:
            return candidate
        message = (f"{self.path}: numba backend differs from onnxruntime by {self.parity_max_abs_diff:.3g} "
                   f"(> {PARITY_TOLERANCE})")
        if required:
            raise ModelFileError(message + "; use backend='onnxruntime'")
        self.backend_note = message
        return None

    def probe_signal(self) -> np.ndarray:
        """The seeded load-time probe: float32 noise, ``_PROBE_FRAMES`` hops at random levels."""
        rng = np.random.default_rng(_PROBE_SEED)
        hop = self.spec.hop_length_samples
        levels = 10.0 ** (rng.uniform(*_PROBE_LEVELS_DB, _PROBE_FRAMES) / 20.0)
        return (rng.standard_normal(_PROBE_FRAMES * hop) * np.repeat(levels, hop)).astype(np.float32)

    def _probe_parity(self, candidate) -> float:
        """Max abs probability difference candidate vs onnxruntime on the probe (two calls, state carried)."""
        samples = self.probe_signal()
        half = (_PROBE_FRAMES // 2) * self.spec.hop_length_samples
        ref_state = self._reference.initial_state()
        got_state = candidate.initial_state()
        worst = 0.0
        for part in (samples[:half], samples[half:]):
            ref, ref_state = self._reference.run(part, ref_state)
            got, got_state = candidate.run(part, got_state)
            worst = max(worst, float(np.max(np.abs(ref - got))))
        return worst

    @property
    def numba_backend(self):
        """The ``vad.runtime.network.NumbaBackend`` when numba runs (the engine then uses its fused
        per-chunk step), else None."""
        return self._backend if self._backend.name == "numba" else None

    @property
    def grouping_invariant(self) -> bool:
        """True when results do not depend on how hops are grouped into ``run`` calls
        (numba: bit-exact); onnxruntime results may differ in the last bits between groupings."""
        return self._backend.grouping_invariant

    def initial_state(self):
        """Fresh state for one stream, in the backend's format (opaque: pass it to ``run``)."""
        return self._backend.initial_state()

    def run(self, samples: np.ndarray, state):
        """Run ``samples`` (1-D C-contiguous float32 at ``spec.sample_rate_hz``, a whole number
        of hops, finite; the engine validates them) from ``state``.

        Returns (probabilities float32 [len(samples) // hop], new state). Thread-safe across
        streams (each with its own state). The numba backend updates the state in place and
        returns it; onnxruntime returns new arrays: always continue with the returned state.
        """
        return self._backend.run(samples, state)

    def __repr__(self) -> str:
        return f"VADModel({str(self.path)!r}, name={self.metadata.name!r}, backend={self.backend!r})"
