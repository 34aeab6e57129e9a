"""Loading a model file for inference: read it once, verify it, give every backend the same bytes.

``load_model_file(path)`` reads the file, parses its metadata (``vad.core.modelmeta``) and its
initializers (``vad.runtime.onnxproto``, pure Python), and refuses it with ``ModelFileError``
naming the file when

* it is not a readable ONNX protobuf, or its metadata is missing, malformed, of an older
  (log-mel input) or newer schema;
* its initializers do not hash to the metadata's ``weights_sha256`` (a weight changed after
  export: bit rot, a bad copy, an edit);
* a float initializer holds NaN or infinity (the digest may match such a file if it was
  exported that way; it still cannot give meaningful probabilities).

The backends then build from ``ModelFile.data`` and ``ModelFile.tensors``, never by
reading the path again, so what runs is what was verified.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
from vad.runtime.onnxproto import read_metadata_props, read_tensors

from vad.core.errors import ModelFileError
from vad.core.modelmeta import ModelMetadata, check_model_path, parse_metadata_props, weights_digest


@dataclasses.dataclass(frozen=True)
class ModelFile:
    """A verified model file.

    Attributes:
        path: where it was read from.
        data: the file's bytes (what the onnxruntime session is built from).
        metadata: the validated metadata.
        tensors: every initializer by name (float32/float64/int64 arrays, read-only views).
    """

    path: Path
    data: bytes
    metadata: ModelMetadata
    tensors: dict[str, np.ndarray]


def check_finite(tensors: dict[str, np.ndarray], source: str) -> None:
    """ModelFileError naming ``source`` and the first float tensor with a NaN/inf value."""
    for name in sorted(tensors):
        array = tensors[name]
        if array.dtype.kind != "f":
            continue
        bad = ~np.isfinite(array)
        if bad.any():
            first = int(np.flatnonzero(bad.reshape(-1))[0])
            raise ModelFileError(
                f"{source}: weight {name!r} has {int(bad.sum())} non-finite value(s) "
                f"(first at flat index {first}: {array.reshape(-1)[first]}); the model cannot be used"
            )


def verify_tensors(tensors: dict[str, np.ndarray], metadata: ModelMetadata, source: str) -> None:
    """Digest and finiteness checks of ``load_model_file`` (ModelFileError naming ``source``)."""
    actual = weights_digest(tensors)
    if actual != metadata.weights_sha256:
        raise ModelFileError(
            f"{source}: the weights do not match the digest in the model's metadata "
            f"(weights_sha256 {metadata.weights_sha256[:16]}..., computed {actual[:16]}...): the file is corrupt "
            "or was changed after export; use an intact copy or re-export it"
        )
    check_finite(tensors, source)


def load_model_file(path: str | Path) -> ModelFile:
    """Read, parse and verify the model file at ``path`` (see the module docstring)."""
    path = Path(path)
    check_model_path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise ModelFileError(f"{path}: cannot read the model file: {exc}") from exc
    source = str(path)
    try:
        props = read_metadata_props(data)
        tensors = read_tensors(data)
    except ModelFileError as exc:
        raise ModelFileError(f"{path}: not a readable ONNX model: {exc}") from exc
    metadata = parse_metadata_props(props, source=source)
    verify_tensors(tensors, metadata, source)
    for array in tensors.values():
        array.flags.writeable = False
    return ModelFile(path, data, metadata, tensors)
