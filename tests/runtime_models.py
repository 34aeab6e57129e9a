"""Random-weight exported models for the export/runtime tests (until a trained model ships).

``random_model_path``: a session-scoped pytest fixture, a ``FrozenVAD`` of the default widths
with seeded random weights (scaled up so probabilities swing between 0 and 1), exported
with ``training.export`` into a temporary folder. Import the fixture into a test module
with ``from tests.runtime_models import random_model_path  # noqa: F401``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

RANDOM_MODEL_SEED = 7
WEIGHT_GAIN = 2.5  # larger than PyTorch's default init, so probabilities use the whole [0, 1]


def build_random_vad(seed: int = RANDOM_MODEL_SEED, gain: float = WEIGHT_GAIN, **widths):
    import torch
    from vad.training.model import ArchConfig, FrozenVAD

    torch.manual_seed(seed)
    model = FrozenVAD(ArchConfig(**widths))
    with torch.no_grad():
        for p in model.parameters():
            p.mul_(gain)
        model.feat_mean.fill_(-12.0)
        model.feat_std.fill_(3.0)
    return model.eval()


def export_random_model(path: str | Path, seed: int = RANDOM_MODEL_SEED, postprocess=None, name="random-test", **widths):
    from vad.training.export import build_metadata, export_onnx

    from vad.core.features import FeatureSpec

    model = build_random_vad(seed, **widths)
    metadata = build_metadata(model, FeatureSpec(), postprocess=postprocess, name=name)
    return export_onnx(model, metadata, path)


@pytest.fixture(scope="session")
def random_model_path(tmp_path_factory) -> Path:
    pytest.importorskip("torch")
    return export_random_model(tmp_path_factory.mktemp("runtime_models") / "random.onnx")
