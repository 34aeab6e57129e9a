"""`vad tune`: the grid search finds post-processing at least as good as the model's own
defaults, on audio where the right answer is known."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf

from tests.fixtures_models import energy_model_path  # noqa: F401 - pytest fixture
from vad.apps.evaluation import discover
from vad.apps.tuning import TuneResult, full_grid, tune_postprocess
from vad.core.postprocess import PostprocessConfig

RATE = 16000


def _case(root, name, segments, total_s, rng):
    x = 1e-5 * rng.standard_normal(int(total_s * RATE))
    for a, b in segments:
        i, j = int(a * RATE), int(b * RATE)
        x[i:j] += 0.1 * rng.standard_normal(j - i)  # broadband bursts: loud in every mel band
    root.mkdir(parents=True, exist_ok=True)
    sf.write(root / f"{name}.wav", x.astype(np.float32), RATE)
    (root / f"{name}.rttm").write_text("".join(
        f"SPEAKER {name} 1 {a:.3f} {b - a:.3f} <NA> <NA> s <NA> <NA>\n" for a, b in segments))


def test_tune_finds_options_no_worse_than_the_defaults(tmp_path, energy_model_path):  # noqa: F811
    rng = np.random.default_rng(0)
    # turns with short pauses inside: bridging them (min silence) is what the labels want
    _case(tmp_path, "a", [(0.5, 1.2), (1.28, 2.0), (3.0, 3.6), (3.66, 4.4)], 5.0, rng)
    _case(tmp_path, "b", [(0.3, 2.5)], 3.0, rng)
    grid = [c for c in full_grid(PostprocessConfig()) if c.speech_pad_ms == 30.0 and c.min_speech_ms == 100.0]
    result = tune_postprocess(energy_model_path, discover([tmp_path]), grid=grid)
    assert isinstance(result, TuneResult) and result.files == 2
    assert result.f1 >= result.current_f1 and result.f1 > 0.9
    flags = result.export_flags()
    assert "--onset" in flags and "--min-silence-ms" in flags
    assert result.to_dict()["config"]["onset_threshold"] == pytest.approx(result.config.onset_threshold)
