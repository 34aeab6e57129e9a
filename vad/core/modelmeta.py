"""The contract between an exported ONNX model and everything that runs it.

An exported model is ONE self-contained ``.onnx`` file. Its graph:

* input ``features``: float32 ``[batch, frames, n_features]`` log-mel frames from the
  front end described by the metadata's ``feature_spec`` (``n_features == n_mels``);
* zero or more state inputs, each named ``state_<name>`` (float32, first axis = batch);
  a fresh stream starts with all-zero states of the shapes the graph declares;
* output ``probability``: float32 ``[batch, frames]`` speech probability per frame;
* one output ``state_<name>_out`` per state input, fed back as that input next call.

Running the graph one frame at a time gives the same probabilities as one call on the
whole sequence. Its ``metadata_props`` hold two keys:

* ``vad.schema_version``: an integer as text (``SCHEMA_VERSION``);
* ``vad.metadata``: JSON with the fields of ``ModelMetadata``.

``read_model_metadata`` refuses a file with missing, malformed or newer-schema metadata.
It parses the protobuf with onnxruntime only (``onnx`` is not a runtime dependency).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from vad.core.errors import ModelFileError, VADError
from vad.core.features import FeatureSpec
from vad.core.postprocess import PostprocessConfig

SCHEMA_VERSION = 1
SCHEMA_KEY = "vad.schema_version"
METADATA_KEY = "vad.metadata"
FEATURES_INPUT = "features"
PROBABILITY_OUTPUT = "probability"
STATE_PREFIX = "state_"
STATE_OUT_SUFFIX = "_out"
# The one network architecture this project trains, exports and runs (training.model describes
# it; exported metadata and checkpoints carry this name; the numba backend checks it).
ARCHITECTURE_NAME = "causal-dwconv-gru"
MFLOP = 1e6  # FLOPs in one MFLOP: every "MFLOP/s" figure is FLOPs per second / MFLOP


@dataclasses.dataclass(frozen=True)
class ModelMetadata:
    """What every exported model carries.

    Attributes:
        feature_spec: the front end the network was trained on.
        architecture: {"name": str, "widths": {layer: int}, ...} of the frozen network.
        network_flops_per_second: FLOPs per second of audio of the network alone
            (from the training complexity counter; a multiply-add = 2 FLOPs).
        frontend_flops_per_second: same for the log-mel front end.
        parameters: number of network parameters.
        frame_latency_ms: one hop: the time a frame needs to be complete.
        lookahead_ms: future context the network uses beyond the frame (0 = causal).
        postprocess: recommended post-processing defaults.
        metrics: validation (and, where measured, dev) figures, name -> value.
        training: data description and the config the model was trained with.
        name: short model name (e.g. "vad-1mflops").
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
        d["schema_version"] = SCHEMA_VERSION
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), sort_keys=True)

    def to_metadata_props(self) -> dict[str, str]:
        return {SCHEMA_KEY: str(SCHEMA_VERSION), METADATA_KEY: self.to_json()}

    @classmethod
    def from_dict(cls, data: Any, source: str = "model") -> ModelMetadata:
        if not isinstance(data, dict):
            raise ModelFileError(f"{source}: metadata must be a JSON object")
        data = dict(data)
        data.pop("schema_version", None)
        names = {f.name for f in dataclasses.fields(cls)}
        required = {f.name for f in dataclasses.fields(cls) if f.default is dataclasses.MISSING}
        missing = sorted(required - set(data))
        if missing:
            raise ModelFileError(f"{source}: metadata lacks field(s): {', '.join(missing)}")
        unknown = sorted(set(data) - names)
        if unknown:
            raise ModelFileError(f"{source}: metadata has unknown field(s): {', '.join(unknown)}")
        try:
            data["feature_spec"] = FeatureSpec.from_dict(data["feature_spec"])
            data["postprocess"] = PostprocessConfig.from_dict(data["postprocess"])
        except VADError as exc:
            raise ModelFileError(f"{source}: malformed metadata: {exc}") from exc
        for key in ("architecture", "metrics", "training"):
            if not isinstance(data[key], dict):
                raise ModelFileError(f"{source}: metadata field {key!r} must be an object")
        for key in ("network_flops_per_second", "frontend_flops_per_second", "frame_latency_ms", "lookahead_ms"):
            if not isinstance(data[key], (int, float)) or isinstance(data[key], bool) or data[key] < 0:
                raise ModelFileError(f"{source}: metadata field {key!r} must be a number >= 0, got {data[key]!r}")
        if not isinstance(data["parameters"], int) or data["parameters"] < 0:
            raise ModelFileError(f"{source}: metadata field 'parameters' must be an integer >= 0")
        return cls(**data)


def parse_metadata_props(props: dict[str, str], source: str = "model") -> ModelMetadata:
    """Validate the two metadata_props keys and build ModelMetadata (errors name source)."""
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
    return ModelMetadata.from_dict(data, source=source)


def read_model_metadata(path: str | Path) -> ModelMetadata:
    """Read and validate the metadata of an exported model file (no inference session kept)."""
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise ModelFileError(f"model file not found: {path}")
    try:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = 1
        sess = ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types
        raise ModelFileError(f"{path}: not a readable ONNX model: {exc}") from exc
    return parse_metadata_props(dict(sess.get_modelmeta().custom_metadata_map), source=str(path))
