"""The onnxruntime backend: the model file's raw-audio graph in one onnxruntime session.

It needs nothing but onnxruntime and numpy (no numba), runs any model file of this project
and is the reference the numba backend is checked against at load. One ``run`` call is
one ``InferenceSession.run`` over a whole number of hops:

    backend = OrtBackend(load_model_file(path))
    state = backend.initial_state()
    probs, state = backend.run(samples_float32, state)   # len(samples) % hop == 0

The session uses the CPU provider with ``intra_op_threads`` threads (1 by default: a tiny
graph per stream gains nothing from a thread pool), sequential execution and all graph
optimisations (onnxruntime folds the graph's constant front-end tables at load).
"""

from __future__ import annotations

import numpy as np

from vad.core.errors import InvalidInputError, ModelFileError
from vad.core.modelmeta import AUDIO_INPUT, FRAMES_STATE, PROBABILITY_OUTPUT, STATE_OUT_SUFFIX, STATE_PREFIX


class OrtBackend:
    """One model file's graph in onnxruntime (see the module docstring).

    Args:
        model: a verified ``vad.runtime.modelfile.ModelFile``.
        intra_op_threads: onnxruntime intra-op threads (>= 1).

    Attributes:
        name: ``"onnxruntime"``.
        state_shapes: {state input name: shape without the batch axis}, in graph order.
        grouping_invariant: False: results may differ in the last bits between groupings
            of the same hops into calls.
    """

    name = "onnxruntime"
    grouping_invariant = False

    def __init__(self, model, intra_op_threads: int = 1):
        import onnxruntime as ort

        if isinstance(intra_op_threads, bool) or not isinstance(intra_op_threads, int) or intra_op_threads < 1:
            raise InvalidInputError(f"intra_op_threads={intra_op_threads!r}: must be an integer >= 1")
        self.source = str(model.path)
        self.hop = model.metadata.feature_spec.hop_length_samples
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = intra_op_threads
        opts.inter_op_num_threads = 1
        opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        try:
            self._session = ort.InferenceSession(model.data, sess_options=opts, providers=["CPUExecutionProvider"])
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{self.source}: not a readable ONNX model: {exc}") from exc
        self._check_io(model.metadata)

    def _check_io(self, metadata) -> None:
        src = self.source
        inputs = {i.name: i for i in self._session.get_inputs()}
        outputs = {o.name: o for o in self._session.get_outputs()}
        if AUDIO_INPUT not in inputs or PROBABILITY_OUTPUT not in outputs:
            raise ModelFileError(
                f"{src}: graph must have input {AUDIO_INPUT!r} and output {PROBABILITY_OUTPUT!r}, "
                f"has inputs {sorted(inputs)} and outputs {sorted(outputs)}"
            )
        for name, info in [(AUDIO_INPUT, inputs[AUDIO_INPUT]), (PROBABILITY_OUTPUT, outputs[PROBABILITY_OUTPUT])]:
            if len(info.shape) != 2 or info.type != "tensor(float)":
                raise ModelFileError(f"{src}: {name!r} must be float32 [batch, n], is {info.type} {info.shape}")
        self.state_shapes: dict[str, tuple[int, ...]] = {}
        for name, info in inputs.items():
            if name == AUDIO_INPUT:
                continue
            if not name.startswith(STATE_PREFIX):
                raise ModelFileError(f"{src}: unexpected graph input {name!r}")
            out_name = name + STATE_OUT_SUFFIX
            if out_name not in outputs:
                raise ModelFileError(f"{src}: state input {name!r} has no output {out_name!r}")
            shape = tuple(info.shape[1:])
            if not all(isinstance(d, int) and d >= 0 for d in shape) or info.type != "tensor(float)":
                raise ModelFileError(f"{src}: state input {name!r} must be float32 with a fixed shape, has {info.shape}")
            self.state_shapes[name] = shape
        if FRAMES_STATE not in self.state_shapes:
            raise ModelFileError(f"{src}: graph lacks the framing state input {FRAMES_STATE!r}")
        spec = metadata.feature_spec
        if self.state_shapes[FRAMES_STATE] != (spec.left_pad_samples,):
            raise ModelFileError(
                f"{src}: {FRAMES_STATE!r} has shape {self.state_shapes[FRAMES_STATE]}, the feature spec needs "
                f"({spec.left_pad_samples},) (win - hop)"
            )
        declared = metadata.interface.get("inputs", {})
        graph = {AUDIO_INPUT: ["batch", "samples"]}
        graph.update({n: ["batch", *s] for n, s in self.state_shapes.items()})
        if declared != graph:
            raise ModelFileError(f"{src}: the graph's inputs {graph} differ from the metadata's interface {declared}")
        self._output_names = [PROBABILITY_OUTPUT] + [n + STATE_OUT_SUFFIX for n in self.state_shapes]

    def initial_state(self) -> dict[str, np.ndarray]:
        """All-zero float32 states (batch 1) of the graph's state inputs."""
        return {name: np.zeros((1, *shape), dtype=np.float32) for name, shape in self.state_shapes.items()}

    def run(self, samples: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Probabilities float32 [len(samples) // hop] and the new state, for float32 ``samples``
        (1-D, a whole number of hops; the caller validates them). Thread-safe across streams."""
        feeds = {AUDIO_INPUT: samples.reshape(1, -1)}
        feeds.update(state)
        outs = self._session.run(self._output_names, feeds)
        return outs[0][0], dict(zip(self.state_shapes, outs[1:], strict=True))
