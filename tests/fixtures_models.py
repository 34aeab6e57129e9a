"""Small exported models for tests that need events without a trained model.

``energy_model`` is a ``FrozenVAD`` with hand-set weights whose speech probability rises
with the frame's loudness: it averages the 40 log-mel bands, subtracts a threshold,
smooths over the conv kernel and squashes the result through the GRU and the output
layer. It is a real exported model (``training.export``), run by the real runtime, so
tests of labeling and listening see genuine start/end events on speech recordings.

Use it from a test module with ``from tests.fixtures_models import energy_model_path``
(a session-scoped pytest fixture) or call ``export_energy_model(path)``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

# Mean natural-log mel power (over the 40 bands) at which the probability is about 0.5:
# dev recordings measure about -16 in pauses and -12 .. -9 in speech (vad.core.features.logmel).
ENERGY_THRESHOLD_LOG_MEL = -13.0
_GRU_GAIN = 2.0  # h = tanh(gain * excess log-mel)
_OUT_WEIGHT = 10.0  # probability = sigmoid(weight * h + bias)
_OUT_BIAS = -5.0
_GATE_CLOSED_BIAS = -20.0  # update gate z ~ 0: the GRU forgets at once (h = n)


def build_energy_vad():
    """A FrozenVAD (torch) whose probability tracks mean log-mel energy."""
    import torch
    from vad.training.model import ArchConfig, FrozenVAD

    arch = ArchConfig(n_features=40, input_width=2, conv_width=2, gru_width=2, conv_kernel_frames=4)
    model = FrozenVAD(arch)
    k = arch.conv_kernel_frames
    with torch.no_grad():
        for p in model.parameters():
            p.zero_()
        model.feat_mean.fill_(ENERGY_THRESHOLD_LOG_MEL)
        model.feat_std.fill_(1.0)
        model.inp.weight[0, :] = 1.0 / arch.n_features  # channel 0: mean excess log-mel
        model.dw.weight[0, 0, :] = 1.0 / k  # moving average over k frames (causal)
        model.pw.weight[0, 0] = 1.0
        h = arch.gru_width
        # gate order in torch's GRU weights: reset (r), update (z), new (n)
        model.gru.bias_ih_l0[h : 2 * h] = _GATE_CLOSED_BIAS
        model.gru.weight_ih_l0[2 * h, 0] = _GRU_GAIN
        model.out.weight[0, 0] = _OUT_WEIGHT
        model.out.bias[0] = _OUT_BIAS
        # channel 1 of each layer is unused downstream; distinct biases there keep the
        # exporter from merging equal (all-zero) initializers into one
        model.inp.bias[1] = 0.1
        model.dw.bias[1] = 0.2
        model.pw.bias[1] = 0.3
    return model.eval()


def export_energy_model(path: str | Path, name: str = "energy-test") -> Path:
    """Export the energy-tracking model to ``path`` (one ONNX file with metadata)."""
    from vad.training.export import build_metadata, export_onnx

    from vad.core.features import FeatureSpec
    from vad.core.postprocess import PostprocessConfig

    model = build_energy_vad()
    metadata = build_metadata(model, FeatureSpec(), postprocess=PostprocessConfig(), name=name)
    return export_onnx(model, metadata, path)


@pytest.fixture(scope="session")
def energy_model_path(tmp_path_factory) -> Path:
    """Path of the exported energy-tracking test model (built once per test session)."""
    pytest.importorskip("torch")
    return export_energy_model(tmp_path_factory.mktemp("models") / "energy.onnx")
