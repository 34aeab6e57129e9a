"""A loaded VAD model: one ONNX inference session plus the metadata it carries.

``VADModel`` is immutable after loading and safe to share: many ``StreamingVAD``
instances (on many threads) can use one ``VADModel``; each stream keeps its own
recurrent state, so results do not depend on who else uses the model.

Model resolution: ``VADModel()`` (or ``VADModel(None)``) loads the shipped default,
``models/default.onnx`` inside the installed ``vad.models`` package
(``importlib.resources.files("vad.models")``); a str/Path loads that file.

Backends:

* ``"onnxruntime"`` (the reference): CPUExecutionProvider, ``intra_op_threads`` intra-op
  threads (1 by default), sequential execution.
* ``"numba"``: ``runtime.network.NumbaNetwork``, the same network in a numba kernel with the
  weights read from the file; ``StreamingVAD`` runs front end, network and post-processing in
  one compiled call per chunk with it. On load it is checked against onnxruntime (max abs
  difference <= 1e-5 on a probe sequence, else ModelFileError). The onnxruntime session is
  still created (metadata, I/O checks, parity).
* ``"auto"`` (the default): ``"numba"`` when the model's architecture is one it runs and
  it passes the parity probe, else ``"onnxruntime"``; ``VADModel.backend`` says which.
  Costs per 10 ms: ``vad bench`` (figures in models/README.md).
"""

from __future__ import annotations

import importlib.resources
from pathlib import Path

import numpy as np

from vad.core.errors import InvalidInputError, ModelFileError
from vad.core.features import FeatureSpec
from vad.core.modelmeta import (
    FEATURES_INPUT,
    PROBABILITY_OUTPUT,
    STATE_OUT_SUFFIX,
    STATE_PREFIX,
    ModelMetadata,
    parse_metadata_props,
)

DEFAULT_MODEL_NAME = "default.onnx"
BACKENDS = ("auto", "onnxruntime", "numba")
DEFAULT_BACKEND = "auto"
_PROBE_FRAMES = 64
_PROBE_BURST_FRAMES = 8  # the probe signal: noise bursts of 8 hops at random levels
_PROBE_SEED = 1234
_INT16_FULL_SCALE = 32767


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
        spec: ``metadata.feature_spec`` (what the front end must compute).
        state_shapes: {state input name: shape without the batch axis}.
    """

    def __init__(self, path: str | Path | None = None, intra_op_threads: int = 1, backend: str = DEFAULT_BACKEND):
        import onnxruntime as ort

        if isinstance(intra_op_threads, bool) or not isinstance(intra_op_threads, int) or intra_op_threads < 1:
            raise InvalidInputError(f"intra_op_threads={intra_op_threads!r}: must be an integer >= 1")
        if backend not in BACKENDS:
            raise InvalidInputError(f"backend={backend!r}: must be one of {', '.join(BACKENDS)}")
        self.path = default_model_path() if path is None else Path(path)
        if not self.path.is_file():
            raise ModelFileError(f"model file not found: {self.path}")
        self.backend = backend
        self.intra_op_threads = intra_op_threads
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(str(self.path), sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{self.path}: not a readable ONNX model: {exc}") from exc
        props = dict(self._session.get_modelmeta().custom_metadata_map)
        self.metadata: ModelMetadata = parse_metadata_props(props, source=str(self.path))
        self.spec: FeatureSpec = self.metadata.feature_spec
        self._check_io()
        self._net = None
        self.parity_max_abs_diff: float | None = None
        if backend != "onnxruntime":
            from vad.runtime.network import ARCHITECTURE_NAME, PARITY_TOLERANCE, NumbaNetwork

            if backend == "auto" and self.metadata.architecture.get("name") != ARCHITECTURE_NAME:
                self.backend = "onnxruntime"
            else:
                try:
                    net = NumbaNetwork(self.path, self.metadata.architecture, self.spec)
                except ModelFileError:
                    if backend != "auto":
                        raise
                    net = None
                self.parity_max_abs_diff = self._probe_parity(net) if net is not None else float("inf")
                if self.parity_max_abs_diff <= PARITY_TOLERANCE:
                    self._net = net
                    self.backend = "numba"
                elif backend == "auto":
                    self.backend = "onnxruntime"
                else:
                    raise ModelFileError(
                        f"{self.path}: numba backend differs from onnxruntime by {self.parity_max_abs_diff:.3g} "
                        f"(> {PARITY_TOLERANCE}); use backend='onnxruntime'"
                    )

    def _probe_parity(self, net) -> float:
        """Max abs probability difference, numba vs onnxruntime, on a seeded probe signal (two calls,
        state carried): the numba side is the engine's fused step on the int16 samples (front end
        included), the onnxruntime side the graph on the reference log-mel (``vad.core.features``)."""
        from vad.core.features import logmel

        rng = np.random.default_rng(_PROBE_SEED)
        hop = self.spec.hop_length_samples
        gains = np.repeat(rng.uniform(0.0, 0.5, _PROBE_FRAMES // _PROBE_BURST_FRAMES), _PROBE_BURST_FRAMES * hop)
        audio = (np.clip(rng.standard_normal(gains.size) * gains, -1.0, 1.0) * _INT16_FULL_SCALE).astype(np.int16)
        feats = logmel(audio, self.spec)
        half = _PROBE_FRAMES // 2
        ref = np.concatenate(self._run_onnxruntime_in_calls(feats, (feats[:half], feats[half:])))
        got = net.stream_probabilities(audio, (audio[: half * hop], audio[half * hop :]))
        return float(np.max(np.abs(ref - got)))

    def _run_onnxruntime_in_calls(self, feats: np.ndarray, parts) -> list[np.ndarray]:
        state = self._zero_state()
        out = []
        for part in parts:
            probs, state = self._run_onnxruntime(part, state)
            out.append(probs)
        return out

    def _check_io(self) -> None:
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if FEATURES_INPUT not in inputs or PROBABILITY_OUTPUT not in outputs:
            raise ModelFileError(
                f"{self.path}: graph must have input {FEATURES_INPUT!r} and output {PROBABILITY_OUTPUT!r}, "
                f"has inputs {sorted(inputs)} and outputs {sorted(outputs)}"
            )
        feat_shape = inputs[FEATURES_INPUT].shape
        if len(feat_shape) != 3 or (isinstance(feat_shape[2], int) and feat_shape[2] != self.spec.n_mels):
            raise ModelFileError(
                f"{self.path}: input {FEATURES_INPUT!r} has shape {feat_shape}, expected [batch, frames, {self.spec.n_mels}]"
            )
        self.state_shapes: dict[str, tuple[int, ...]] = {}
        self._state_outputs: dict[str, str] = {}
        for name, info in inputs.items():
            if name == FEATURES_INPUT:
                continue
            if not name.startswith(STATE_PREFIX):
                raise ModelFileError(f"{self.path}: unexpected graph input {name!r}")
            out_name = name + STATE_OUT_SUFFIX
            if out_name not in outputs:
                raise ModelFileError(f"{self.path}: state input {name!r} has no output {out_name!r}")
            shape = tuple(info.shape[1:])
            if not all(isinstance(d, int) and d >= 0 for d in shape):
                raise ModelFileError(f"{self.path}: state input {name!r} must have a fixed shape, has {info.shape}")
            self.state_shapes[name] = shape
            self._state_outputs[name] = out_name
        self._output_names = [PROBABILITY_OUTPUT] + [self._state_outputs[n] for n in self.state_shapes]

    @property
    def numba_network(self):
        """The ``runtime.network.NumbaNetwork`` when the backend is numba (the engine's fused step), else None."""
        return self._net

    @property
    def grouping_invariant(self) -> bool:
        """True when results do not depend on how frames are grouped into ``run`` calls
        (numba: bit-exact); onnxruntime results may differ in the last bits between groupings."""
        return self._net is not None

    def _zero_state(self) -> dict[str, np.ndarray]:
        return {name: np.zeros((1, *shape), dtype=np.float32) for name, shape in self.state_shapes.items()}

    def initial_state(self) -> dict[str, np.ndarray]:
        """Fresh (all-zero) recurrent state for one stream (batch 1), in the backend's format
        (the graph's state inputs as float32 for onnxruntime; float64 for numba)."""
        return self._net.initial_state() if self._net is not None else self._zero_state()

    def run(self, features: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Run the network on ``features`` float32 [frames, n_mels] from ``state``.

        Returns (probabilities float32 [frames], new state). Thread-safe across streams (each
        with its own state). The numba backend updates the state's arrays in place and returns
        them; onnxruntime returns new arrays: always continue with the returned state.
        """
        if self._net is not None:
            return self._net.run(features, state)
        return self._run_onnxruntime(features, state)

    def _run_onnxruntime(self, features: np.ndarray, state: dict[str, np.ndarray]):
        feeds = {FEATURES_INPUT: features[None, :, :]}
        feeds.update(state)
        outs = self._session.run(self._output_names, feeds)
        new_state = dict(zip(self.state_shapes, outs[1:], strict=True))
        return outs[0][0], new_state

    def __repr__(self) -> str:
        return f"VADModel({str(self.path)!r}, name={self.metadata.name!r}, backend={self.backend!r})"
