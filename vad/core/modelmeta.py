"""The contract between an exported ONNX model and everything that runs it.

An exported model is ONE self-contained ``.onnx`` file that takes raw audio. Its graph
(metadata schema 2; ``models/README.md`` documents it for apps in other languages):

* input ``audio``: float32 ``[batch, samples]``, mono samples in [-1, 1] at the feature
  spec's ``sample_rate_hz``; ``samples`` is any whole number of hops, at least one;
* state inputs, each named ``state_<name>`` (float32, first axis = batch): ``state_frames``
  ``[batch, win - hop]`` (the last samples the causal framing needs), then the network's
  states (``state_conv``, ``state_gru``); a fresh stream starts with all-zero states of the
  shapes the graph declares (zeros in ``state_frames`` are the framing's left padding);
* output ``probability``: float32 ``[batch, samples / hop]``, one speech probability per hop;
* one output ``state_<name>_out`` per state input, fed back as that input next call.

The front end (framing, window, DFT, power, mel, log floor) is inside the graph, built from
the metadata's ``feature_spec``. Running the graph one hop at a time gives the same
probabilities as one call on the whole signal. Its ``metadata_props`` hold two keys:

* ``vad.schema_version``: an integer as text (``SCHEMA_VERSION``);
* ``vad.metadata``: JSON with the fields of ``ModelMetadata``, including ``weights_sha256``
  (``weights_digest`` of every initializer, checked at load) and ``interface`` (the graph's
  input/output names and shapes, see ``interface_description``).

``read_model_metadata`` refuses a file with missing, malformed, older- or newer-schema
metadata. It parses the protobuf with onnxruntime only (``onnx`` is not a runtime
dependency); ``vad.runtime.modelfile`` loads a model for inference and also verifies its
weights.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from vad.core.errors import ModelFileError, VADError
from vad.core.features import FeatureSpec
from vad.core.leveling import LevelingConfig
from vad.core.postprocess import PostprocessConfig

SCHEMA_VERSION = 2
FIRST_RAW_AUDIO_SCHEMA = 2  # schema 1 graphs took log-mel features; `vad export OLD.onnx` converts them
SCHEMA_KEY = "vad.schema_version"
METADATA_KEY = "vad.metadata"
AUDIO_INPUT = "audio"
PROBABILITY_OUTPUT = "probability"
STATE_PREFIX = "state_"
STATE_OUT_SUFFIX = "_out"
FRAMES_STATE = STATE_PREFIX + "frames"
NETWORK_STATES = (STATE_PREFIX + "conv", STATE_PREFIX + "gru")
DIGEST_ALGORITHM = "sha256"
# The one network architecture this project trains, exports and runs (training.model describes
# it; exported metadata and checkpoints carry this name; the numba backend checks it).
ARCHITECTURE_NAME = "causal-dwconv-gru"
MFLOP = 1e6  # FLOPs in one MFLOP: every "MFLOP/s" figure is FLOPs per second / MFLOP


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """What every exported model carries.

    Attributes:
        feature_spec: the front end the network was trained on (and the graph computes).
        architecture: {"name": str, "widths": {layer: int}, ...} of the frozen network.
        network_flops_per_second: FLOPs per second of audio of the network alone
            (from the training complexity counter; a multiply-add = 2 FLOPs).
        frontend_flops_per_second: same for the log-mel front end (FFT-based count).
        parameters: number of network parameters.
        frame_latency_ms: one hop: the time a frame needs to be complete.
        lookahead_ms: future context the network uses beyond the frame (0 = causal).
        postprocess: recommended post-processing defaults.
        metrics: validation (and, where measured, dev) figures, name -> value.
        training: data description and the config the model was trained with.
        name: short model name (e.g. "vad-1mflops").
        weights_sha256: ``weights_digest`` of the file's initializers; filled in by the
            exporter (empty until then), required in a model file.
        interface: the graph's inputs and outputs (``interface_description``); filled in by
            the exporter, required in a model file.
        leveling: the input leveling the runtime applies before the graph
            (``vad.core.leveling.LevelingConfig``), or None (absent from the file): none.
    """

    feature_spec: FeatureSpec
    architecture: dict[str, Any]
    network_flops_per_second: float
    frontend_flops_per_second: float
    parameters: int
    frame_latency_ms: float
    lookahead_ms: float
    postprocess: PostprocessConfig
    metrics: dict[str, Any]
    training: dict[str, Any]
    name: str = "vad"
    weights_sha256: str = ""
    interface: dict[str, Any] = dataclasses.field(default_factory=dict)
    leveling: LevelingConfig | None = None

    @property
    def total_flops_per_second(self) -> float:
        return self.network_flops_per_second + self.frontend_flops_per_second

    @property
    def algorithmic_latency_ms(self) -> float:
        return self.frame_latency_ms + self.lookahead_ms

    def to_dict(self) -> dict[str, Any]:
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        d["feature_spec"] = self.feature_spec.to_dict()
        d["postprocess"] = self.postprocess.to_dict()
        if self.leveling is None:
            del d["leveling"]  # files without leveling keep the metadata they always had
        else:
            d["leveling"] = self.leveling.to_dict()
        d["schema_version"] = SCHEMA_VERSION
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_metadata_props(self) -> dict[str, str]:
        return {SCHEMA_KEY: str(SCHEMA_VERSION), METADATA_KEY: self.to_json()}

    def replace(self, **changes: Any) -> ModelMetadata:
        return dataclasses.replace(self, **changes)

    @classmethod
    def from_dict(cls, data: Any, source: str = "model", from_file: bool = False) -> ModelMetadata:
        """Validate ``data`` (a ``to_dict`` result); ``from_file`` also requires the fields the
        exporter fills in (``weights_sha256``, ``interface``)."""
        if not isinstance(data, dict):
            raise ModelFileError(f"{source}: metadata must be a JSON object")
        data = dict(data)
        data.pop("schema_version", None)
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING
                    and f.default_factory is dataclasses.MISSING}
        if from_file:
            required |= {"weights_sha256", "interface"}
        missing = sorted(required - set(data))
        if missing:
            raise ModelFileError(f"{source}: metadata lacks field(s): {', '.join(missing)}")
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelFileError(f"{source}: metadata has unknown field(s): {', '.join(unknown)}")
        try:
            data["feature_spec"] = FeatureSpec.from_dict(data["feature_spec"])
            data["postprocess"] = PostprocessConfig.from_dict(data["postprocess"])
            if data.get("leveling") is not None:
                data["leveling"] = LevelingConfig.from_dict(data["leveling"], "leveling")
        except VADError as exc:
            raise ModelFileError(f"{source}: malformed metadata: {exc}") from exc
        for key in ("architecture", "metrics", "training", "interface"):
            if key in data and not isinstance(data[key], dict):
                raise ModelFileError(f"{source}: metadata field {key!r} must be an object")
        for key in ("network_flops_per_second", "frontend_flops_per_second", "frame_latency_ms", "lookahead_ms"):
            value = data[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value) or value < 0:
                raise ModelFileError(f"{source}: metadata field {key!r} must be a number >= 0, got {value!r}")
        if not isinstance(data["parameters"], int) or isinstance(data["parameters"], bool) or data["parameters"] < 0:
            raise ModelFileError(f"{source}: metadata field 'parameters' must be an integer >= 0")
        if not isinstance(data.get("name", ""), str):
            raise ModelFileError(f"{source}: metadata field 'name' must be a string")
        digest = data.get("weights_sha256", "")
        if not isinstance(digest, str) or (digest or from_file) and not _is_hex_digest(digest):
            raise ModelFileError(f"{source}: metadata field 'weights_sha256' must be 64 hex digits, got {digest!r}")
        return cls(**data)


def _is_hex_digest(text: str) -> bool:
    return len(text) == 2 * hashlib.new(DIGEST_ALGORITHM).digest_size and all(c in "0123456789abcdef" for c in text)


# --- the weights digest ---------------------------------------------------------------------


def weights_digest(tensors: Mapping[str, np.ndarray]) -> str:
    """SHA-256 (hex) of named tensors: for each name in sorted order, the header
    ``<UTF-8 name> NUL <numpy dtype str, little-endian> NUL <dims, comma-separated> NUL``
    followed by the tensor's little-endian bytes in C order.

    The exporter stores it as ``weights_sha256`` over every initializer of the graph; loading
    recomputes it from the file (``vad.runtime.modelfile``), so a changed weight is refused.
    """
    h = hashlib.new(DIGEST_ALGORITHM)
    for name in sorted(tensors):
        array = np.asarray(tensors[name])
        little = np.ascontiguousarray(array.astype(array.dtype.newbyteorder("<"), copy=False))
        header = "\0".join([name, little.dtype.str, ",".join(str(d) for d in little.shape)]) + "\0"
        h.update(header.encode("utf-8"))
        h.update(little.tobytes())
    return h.hexdigest()


# --- the graph interface ------------------------------------------------------------------


def interface_description(spec: FeatureSpec, state_shapes: Mapping[str, tuple[int, ...]]) -> dict[str, Any]:
    """The ``interface`` metadata entry: what an app in any language needs to run the graph.

    ``state_shapes``: {state input name: shape without the batch axis}, ``state_frames``
    first. Dimension names: ``batch``, ``samples`` (a whole number of hops), ``frames``
    (``samples / hop``).
    """
    inputs = {AUDIO_INPUT: ["batch", "samples"]}
    outputs = {PROBABILITY_OUTPUT: ["batch", "frames"]}
    for name, shape in state_shapes.items():
        inputs[name] = ["batch", *(int(d) for d in shape)]
        outputs[name + STATE_OUT_SUFFIX] = ["batch", *(int(d) for d in shape)]
    return {
        "dtype": "float32",
        "sample_rate_hz": spec.sample_rate_hz,
        "hop_length_samples": spec.hop_length_samples,
        "inputs": inputs,
        "outputs": outputs,
        "state_outputs": {name: name + STATE_OUT_SUFFIX for name in state_shapes},
        "initial_state": "zeros",
    }


# --- reading ----------------------------------------------------------------------------


def metadata_dict_from_props(props: Mapping[str, str], source: str = "model") -> tuple[int, dict[str, Any]]:
    """(schema version, the metadata JSON object) of a file's metadata_props, any schema version
    up to ``SCHEMA_VERSION``; errors name ``source``."""
    if SCHEMA_KEY not in props or METADATA_KEY not in props:
        raise ModelFileError(
            f"{source}: not a VAD model of this project: its metadata lacks {SCHEMA_KEY!r}/{METADATA_KEY!r} "
            "(export it with `vad export`)"
        )
    try:
        version = int(props[SCHEMA_KEY])
    except ValueError as exc:
        raise ModelFileError(f"{source}: malformed {SCHEMA_KEY}: {props[SCHEMA_KEY]!r}") from exc
    if version > SCHEMA_VERSION:
        raise ModelFileError(
            f"{source}: metadata schema {version} is newer than this build reads ({SCHEMA_VERSION}); upgrade the package"
        )
    if version < 1:
        raise ModelFileError(f"{source}: invalid metadata schema version {version}")
    try:
        data = json.loads(props[METADATA_KEY])
    except json.JSONDecodeError as exc:
        raise ModelFileError(f"{source}: metadata is not valid JSON: {exc}") from exc
    if not isinstance(data, dict):
        raise ModelFileError(f"{source}: metadata must be a JSON object")
    return version, data


def parse_metadata_props(props: Mapping[str, str], source: str = "model") -> ModelMetadata:
    """Validate the two metadata_props keys and build ModelMetadata (errors name source).

    Only raw-audio files (schema ``FIRST_RAW_AUDIO_SCHEMA`` and later) are accepted; an older
    file is refused with the command that converts it.
    """
    version, data = metadata_dict_from_props(props, source)
    if version < FIRST_RAW_AUDIO_SCHEMA:
        raise ModelFileError(
            f"{source}: metadata schema {version} is the old log-mel-input model format; convert it to the "
            f"raw-audio format this build runs: vad export {source} -o NEW.onnx (needs the train extra: "
            f"pip install 'learned-width-vad[train]')"
        )
    return ModelMetadata.from_dict(data, source=source, from_file=True)


def check_model_path(path: Path) -> None:
    """ModelFileError unless ``path`` is an existing regular file (a folder is named as one)."""
    if path.is_dir():
        raise ModelFileError(f"{path}: is a folder, not a model file (give the .onnx file)")
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")


def read_model_metadata(path: str | Path) -> ModelMetadata:
    """Read and validate the metadata of an exported model file (no inference session kept).

    The weights are not verified here; ``vad.runtime.modelfile.load_model_file`` does that.
    """
    import onnxruntime as ort

    path = Path(path)
    check_model_path(path)
    try:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelFileError(f"{path}: not a readable ONNX model: {exc}") from exc
    return parse_metadata_props(dict(sess.get_modelmeta().custom_metadata_map), source=str(path))
