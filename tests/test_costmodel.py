"""Latency budgets: the cost model (vad.core.costmodel), `vad calibrate` and what models carry."""

from __future__ import annotations

import json

import numpy as np
import pytest

from vad.core.costmodel import (
    WIDTH_TERMS,
    CostModel,
    default_cost_model_path,
    flop_coefficients,
    linear_cost,
    load_cost_model,
    width_terms,
)
from vad.core.errors import InvalidInputError, ModelFileError

COEFS = {"const": 8.0, "input": 0.03, "input_conv": 0.002, "conv": 0.01, "conv_gru": 0.006, "gru_gru": 0.007,
         "gru": 0.09}


def _model(**kw) -> CostModel:
    return CostModel(dict(COEFS), n_features=40, conv_kernel_frames=4, hop_ms=10.0, **kw)


def test_flop_count_is_a_linear_cost_of_the_width_terms():
    from vad.training.model import flops_per_frame

    for c1, c2, h in ((5, 7, 3), (32, 32, 32), (17, 9, 24)):
        assert linear_cost(flop_coefficients(40, 4), c1, c2, h) == flops_per_frame(40, c1, c2, h, 4)
    assert set(width_terms(1, 2, 3)) == set(WIDTH_TERMS)


def test_cost_model_round_trip_and_clear_errors(tmp_path):
    cm = _model(points=[{"widths": {"input": 1, "conv": 1, "gru": 1}, "us_per_frame": 8.2}])
    path = cm.save(tmp_path / "sub" / "cm.json")
    back = load_cost_model(path)
    assert back == cm
    assert back.us_of({"input": 10, "conv": 10, "gru": 10}) == pytest.approx(
        8.0 + 0.3 + 0.2 + 0.1 + 0.6 + 0.7 + 0.9)
    assert "points" not in cm.summary()
    with pytest.raises(ModelFileError, match="vad calibrate"):
        load_cost_model(tmp_path / "missing.json")
    (tmp_path / "bad.json").write_text(json.dumps({"format": "something else"}))
    with pytest.raises(ModelFileError, match="not a cost model"):
        load_cost_model(tmp_path / "bad.json")
    data = cm.to_dict()
    data["coefficients_us"]["gru"] = -1.0
    (tmp_path / "neg.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="gru"):
        load_cost_model(tmp_path / "neg.json")
    data["version"] = 99
    (tmp_path / "new.json").write_text(json.dumps(data))
    with pytest.raises(ModelFileError, match="newer"):
        load_cost_model(tmp_path / "new.json")
    with pytest.raises(InvalidInputError, match="vad calibrate"):
        cm.check_architecture(64, 4)


def test_default_path_follows_xdg_cache_home(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_cost_model_path() == tmp_path / "learned-width-vad" / "cost-model.json"


def test_design_spreads_widths_and_the_fit_recovers_known_coefficients():
    from vad.apps.calibration import design_widths, fit_coefficients

    design = design_widths(48, 16)
    assert len(design) == 16 and len({tuple(w.values()) for w in design}) == 16
    assert all(1 <= v <= 48 for w in design for v in w.values())
    a = np.array([[float(width_terms(w["input"], w["conv"], w["gru"])[t]) for t in WIDTH_TERMS] for w in design])
    assert np.linalg.matrix_rank(a) == len(WIDTH_TERMS)  # every coefficient is identifiable
    times = [float(linear_cost(COEFS, w["input"], w["conv"], w["gru"])) for w in design]
    fitted = fit_coefficients(design, times)
    for name, value in COEFS.items():
        assert fitted[name] == pytest.approx(value, rel=1e-6, abs=1e-9)
    with pytest.raises(InvalidInputError, match="at least"):
        design_widths(48, 5)


@pytest.mark.slow
def test_calibrate_writes_a_cost_model_that_export_and_info_use(tmp_path, monkeypatch, capsys):
    """End to end with the real engine (tiny settings: the figures themselves are not checked)."""
    from vad.training.consolidate import atomic_torch_save, frozen_checkpoint
    from vad.training.export import export_checkpoint

    from tests.runtime_models import build_random_vad
    from vad.apps.cli import main
    from vad.core.features import FeatureSpec
    from vad.core.modelmeta import read_model_metadata

    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    assert main(["calibrate", "--points", "8", "--seconds", "0.3", "--rounds", "1", "--passes", "1",
                 "--max-width", "8"]) == 0
    out = capsys.readouterr().out
    assert "fit: max |error|" in out and "vad train --budget-us" in out
    cm = load_cost_model()
    assert len(cm.points) == 8 and cm.engine["statistic"] == "cpu" and cm.us_of({"input": 8, "conv": 8, "gru": 8}) > 0
    # export stores this machine's prediction; vad info prints it
    model = build_random_vad(seed=3, input_width=6, conv_width=5, gru_width=4)
    ckpt = tmp_path / "m.pt"
    atomic_torch_save(frozen_checkpoint(model, FeatureSpec(), {}, {"data": "unit"}), ckpt)
    onnx = export_checkpoint(ckpt, tmp_path / "m.onnx")
    latency = read_model_metadata(onnx).training["latency"]
    assert latency["us_per_frame"] == pytest.approx(cm.us_of({"input": 6, "conv": 5, "gru": 4}))
    assert main(["info", str(onnx)]) == 0
    text = capsys.readouterr().out
    assert "predicted at export" in text and "on this machine" in text
    # --check: predicted vs measured, with the machine's drift from re-measuring the design points
    assert main(["calibrate", "--check", str(onnx), "--seconds", "0.3", "--rounds", "1", "--passes", "1",
                 "-o", str(tmp_path / "check.json")]) == 0
    assert "drift" in capsys.readouterr().out
    check = json.loads((tmp_path / "check.json").read_text())
    assert check["rows"][0]["predicted_us_per_10ms"] == pytest.approx(latency["us_per_frame"])
    assert check["drift"] > 0
