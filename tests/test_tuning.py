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


def test_false_alarm_budget_restricts_the_onset_threshold(tmp_path, energy_model_path):  # noqa: F811
    from vad.core.errors import InvalidInputError

    rng = np.random.default_rng(1)
    folder = tmp_path / "speech"
    folder.mkdir()

    def write(name, bursts_s, total_s, burst_len_s, labelled):
        # quiet bursts that the energy model scores in between (p ~0.6-0.9): recall wants a low onset
        x = 1e-5 * rng.standard_normal(int(total_s * RATE))
        for a in bursts_s:
            x[int(a * RATE):int((a + burst_len_s) * RATE)] += 9e-4 * rng.standard_normal(int(burst_len_s * RATE))
        sf.write(folder / f"{name}.wav", x.astype(np.float32), RATE)
        (folder / f"{name}.rttm").write_text("".join(
            f"SPEAKER {name} 1 {a:.3f} {burst_len_s:.3f} <NA> <NA> s <NA> <NA>\n" for a in bursts_s) if labelled else "")

    write("a", (0.5, 2.0, 3.5), 5.0, 1.0, labelled=True)
    write("quiet", (0.5, 1.5, 2.5), 4.0, 0.4, labelled=False)  # speech-free: an empty label file
    grid = [c for c in full_grid(PostprocessConfig()) if c.speech_pad_ms == 30.0 and c.min_speech_ms == 100.0]
    items = discover([folder])
    free = tune_postprocess(energy_model_path, items, grid=grid)
    assert free.speech_free_files == 1 and free.false_alarm > 0.05  # F1 alone picks a low onset here
    budget = free.false_alarm / 2
    capped = tune_postprocess(energy_model_path, items, grid=grid, max_false_alarm=budget)
    assert capped.false_alarm <= budget and capped.config.onset_threshold > free.config.onset_threshold
    assert capped.to_dict()["false_alarm"] == capped.false_alarm
    with pytest.raises(InvalidInputError, match="speech-free files"):
        tune_postprocess(energy_model_path, discover([folder / "a.wav"]), grid=grid, max_false_alarm=0.01)
    loud = tmp_path / "loud"
    _case(loud, "b", [(0.5, 1.5)], 3.0, rng)
    sf.write(loud / "bursts.wav", (0.1 * rng.standard_normal(2 * RATE)).astype(np.float32), RATE)
    (loud / "bursts.rttm").write_text("")
    with pytest.raises(InvalidInputError, match=r"the least is \d"):
        tune_postprocess(energy_model_path, discover([loud]), grid=grid, max_false_alarm=0.0)
    with pytest.raises(InvalidInputError, match="share in"):
        tune_postprocess(energy_model_path, items, grid=grid, max_false_alarm=2.0)
