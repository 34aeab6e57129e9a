"""Freeze a consolidated ``FrozenVAD`` into ONE self-contained ONNX file with its metadata.

The graph follows ``vad.core.modelmeta``: input ``features`` [batch, frames, n_mels], state
inputs ``state_conv`` [batch, k-1, input_width] and ``state_gru`` [batch, gru_width];
outputs ``probability`` [batch, frames], ``state_conv_out``, ``state_gru_out``. Batch and
frames are dynamic axes, so the same file runs one frame at a time (streaming) or a whole
sequence, with the same probabilities (tested to 1e-5).

Choices (measured on this machine, torch 2.13 / onnxruntime 1.32):

* Exporter: the legacy TorchScript exporter (``dynamo=False``) with a 3-frame example
  input: ~0.25 s per export, one file, weights embedded. The dynamo exporter took ~45 s on
  a toy GRU and writes external data by default.
* ``do_constant_folding=False`` and ``keep_initializers_as_inputs=True``: every initializer
  keeps its ``FrozenVAD.state_dict()`` name and torch layout (``inp.weight``,
  ``gru.weight_ih_l0``, ...), and equal weights (e.g. two all-zero biases) are not merged
  into one, so any reader of the file (``runtime.network``) finds each weight by name. The
  initializers are then removed from the graph inputs again
  (``runtime.onnxproto.drop_initializer_inputs``) so they are constants and onnxruntime
  folds the gate re-ordering when it loads the session: inference speed is unchanged.
* Opset ``OPSET`` = 17: every op used here (MatMul, Conv, GRU, Slice, Concat, Sigmoid) has
  had its current definition since opset 14 or earlier; 17 is accepted by onnxruntime
  >= 1.12 (2022), including the mobile/web builds still shipped in apps, by 1.32 (here),
  and by TensorRT/OpenVINO releases of the same period. Newer opsets would only shut out
  older runtimes without gaining anything for this network.
* Metadata: ``ModelMetadata.to_metadata_props()`` is appended to the serialized
  ``ModelProto`` as ``metadata_props`` entries (protobuf field 14;
  ``runtime.onnxproto.append_metadata_props``). Appending a repeated field to a serialized
  message is valid protobuf, so no ``onnx`` package is needed.
* The file is written atomically (temp file in the target folder + ``os.replace``).
"""

from __future__ import annotations

import io
import warnings
from pathlib import Path
from typing import Any

import torch
from vad.runtime.onnxproto import append_metadata_props, drop_initializer_inputs
from vad.training.model import FrozenVAD

from vad.core.atomicfile import atomic_write_bytes
from vad.core.errors import InvalidInputError, ModelFileError
from vad.core.features import FeatureSpec
from vad.core.modelmeta import (
    ARCHITECTURE_NAME,
    FEATURES_INPUT,
    PROBABILITY_OUTPUT,
    STATE_OUT_SUFFIX,
    STATE_PREFIX,
    ModelMetadata,
)
from vad.core.postprocess import PostprocessConfig

OPSET = 17
STATE_NAMES = ("conv", "gru")
EXAMPLE_FRAMES = 3


def build_metadata(
    model: FrozenVAD,
    feature_spec: FeatureSpec,
    postprocess: PostprocessConfig | None = None,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    name: str = "vad",
) -> ModelMetadata:
    """Metadata for ``model`` run on ``feature_spec`` frames (FLOPs from the single counter)."""
    arch = model.arch
    if arch.n_features != feature_spec.n_mels:
        raise InvalidInputError(
            f"model reads {arch.n_features} features per frame but the feature spec has n_mels={feature_spec.n_mels}"
        )
    hop_ms = 1000.0 * feature_spec.hop_s
    return ModelMetadata(
        feature_spec=feature_spec,
        architecture={
            "name": ARCHITECTURE_NAME,
            "widths": dict(arch.widths),
            "n_features": arch.n_features,
            "conv_kernel_frames": arch.conv_kernel_frames,
        },
        network_flops_per_second=model.flops_per_second(feature_spec.frames_per_second),
        frontend_flops_per_second=feature_spec.flops_per_second(),
        parameters=int(model.parameter_count()),
        frame_latency_ms=hop_ms,
        lookahead_ms=0.0,
        postprocess=postprocess or PostprocessConfig(),
        metrics=dict(metrics or {}),
        training=dict(training or {}),
        name=name,
    )


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def onnx_bytes(model: FrozenVAD, metadata: ModelMetadata) -> bytes:
    """The serialized ONNX model (graph + weights + metadata_props)."""
    if not isinstance(model, FrozenVAD):
        raise InvalidInputError(f"export_onnx needs a FrozenVAD, got {type(model).__name__}")
    if model.arch.n_features != metadata.feature_spec.n_mels:
        raise InvalidInputError(
            f"model reads {model.arch.n_features} features but metadata.feature_spec.n_mels={metadata.feature_spec.n_mels}"
        )
    was_training = model.training
    model = model.eval()
    state_in = [STATE_PREFIX + s for s in STATE_NAMES]
    state_out = [n + STATE_OUT_SUFFIX for n in state_in]
    example = (torch.zeros(1, EXAMPLE_FRAMES, model.arch.n_features), *model.initial_state(1))
    dynamic_axes = {FEATURES_INPUT: {0: "batch", 1: "frames"}, PROBABILITY_OUTPUT: {0: "batch", 1: "frames"}}
    dynamic_axes.update({n: {0: "batch"} for n in state_in + state_out})
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # legacy-exporter deprecation and GRU batch notes
            torch.onnx.export(
                model,
                example,
                buf,
                dynamo=False,
                opset_version=OPSET,
                do_constant_folding=False,
                keep_initializers_as_inputs=True,  # also skips deduplicating equal weights
                export_params=True,
                input_names=[FEATURES_INPUT, *state_in],
                output_names=[PROBABILITY_OUTPUT, *state_out],
                dynamic_axes=dynamic_axes,
            )
    finally:
        model.train(was_training)
    data = drop_initializer_inputs(buf.getvalue())
    return append_metadata_props(data, metadata.to_metadata_props())


def export_onnx(model: FrozenVAD, metadata: ModelMetadata, path: str | Path) -> Path:
    """Write ``model`` with ``metadata`` to ``path`` as one self-contained ONNX file (atomically).

    Returns the path. The written file is checked by loading it back with onnxruntime and
    reading its metadata; a failure raises ModelFileError and leaves no file behind.
    """
    from vad.core.modelmeta import parse_metadata_props

    path = Path(path)
    data = onnx_bytes(model, metadata)
    try:
        import onnxruntime as ort

        sess = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
        parse_metadata_props(dict(sess.get_modelmeta().custom_metadata_map), source=str(path))
    except Exception as exc:  # pragma: no cover - would be an exporter bug
        raise ModelFileError(f"exported model for {path} does not load back: {exc}") from exc
    _atomic_write_bytes(path, data)
    return path


# --- from a consolidated checkpoint ---------------------------------------------------------


def export_checkpoint(
    checkpoint: str | Path, path: str | Path, name: str | None = None, postprocess: PostprocessConfig | None = None
) -> Path:
    """Export a consolidated checkpoint (``training.consolidate``, kind ``vad-frozen``) to ``path``.

    Feature spec, widths, FLOPs, parameters, latency, metrics and training config come from
    the checkpoint (``training.consolidate.metadata_fields``); post-processing defaults from
    ``postprocess``, else the checkpoint's ``postprocess`` entry when it has one, else
    ``PostprocessConfig()``. The name defaults to the checkpoint's ``name`` or the file stem.
    """
    from vad.training.consolidate import load_consolidated, metadata_fields

    model, info = load_consolidated(checkpoint)
    if postprocess is None:
        pp = info.get("postprocess")
        postprocess = PostprocessConfig.from_dict(pp) if isinstance(pp, dict) else PostprocessConfig()
    try:
        fields = metadata_fields(info)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{checkpoint}: consolidated checkpoint lacks metadata: {exc}") from exc
    metadata = ModelMetadata(
        **fields, postprocess=postprocess, name=name or str(info.get("name") or Path(path).stem)
    )
    return export_onnx(model, metadata, path)
