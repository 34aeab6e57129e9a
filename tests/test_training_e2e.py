"""End to end on a tiny synthetic corpus: `vad train` for a few steps, consolidation, a
checkpoint that loads with weights_only=True, and the FLOP counter against an independent
count; plus the command's clear errors on bad input."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from vad.training.consolidate import fit_widths_to_budget, load_consolidated, widths_flops_per_frame
from vad.training.model import ArchConfig, FrozenVAD
from vad.training.train import DataConfig, TargetNotMetError, TrainConfig, run

from vad.apps.cli import main
from vad.core.costmodel import CostModel
from vad.core.errors import InvalidInputError
from vad.core.features import FeatureSpec

SR = 16000


@pytest.fixture(scope="module")
def corpus(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    (root / "speech").mkdir()
    t = np.arange(int(1.2 * SR)) / SR
    for i in range(6):
        # voiced-like: harmonics of a wobbling pitch, amplitude-modulated into syllables
        f0 = 110 + 40 * i + 10 * np.sin(2 * np.pi * 3 * t)
        phase = 2 * np.pi * np.cumsum(f0) / SR
        x = sum(np.sin(k * phase) / k for k in range(1, 12)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t)) ** 2
        x[: SR // 10] = 0
        x[-SR // 10 :] = 0
        sf.write(root / "speech" / f"utt{i}.wav", (0.3 * x / np.abs(x).max()).astype(np.float32), SR)
    (root / "noise").mkdir()
    for i in range(3):
        sf.write(root / "noise" / f"n{i}.flac", (0.1 * rng.standard_normal(SR * 4)).astype(np.float32), SR)
    return root


def _independent_flops_per_frame(model: FrozenVAD) -> float:
    """FLOPs of one frame counted from the parameter shapes (not from vad.training.model)."""
    f = model.feat_mean.numel()
    total = 2 * f  # (x - mean) / std
    for lin in (model.inp, model.pw):
        n_out, n_in = lin.weight.shape
        total += 2 * n_in * n_out + 2 * n_out  # matmul + bias + ReLU
    c1, _one, k = model.dw.weight.shape
    total += 2 * k * c1 + c1  # depthwise taps + bias
    h = model.gru.hidden_size
    w_ih, w_hh = model.gru.weight_ih_l0, model.gru.weight_hh_l0
    total += 2 * w_ih.numel() + 2 * w_hh.numel()  # the two matmuls
    total += 6 * h  # six bias vectors
    total += 3 * h  # sigmoid r, sigmoid z, tanh n
    total += h  # r * (W_hn h + b_hn)
    total += 3 * h  # h' = (1 - z) * n + z * h: subtract, 2 mults, add -> 1 + 2 + ... counted as 3
    total += 2 * model.out.weight.numel() + 2  # read-out + bias + sigmoid
    return float(total)


def test_flops_counter_matches_independent_count():
    for widths in ((5, 7, 3), (32, 32, 32), (17, 9, 24)):
        model = FrozenVAD(ArchConfig(input_width=widths[0], conv_width=widths[1], gru_width=widths[2]))
        ours = model.flops_per_second(100.0) / 100.0
        assert abs(ours - _independent_flops_per_frame(model)) / ours < 0.01


def test_fit_widths_to_budget_is_exact():
    cont = {"input": 30.7, "conv": 20.2, "gru": 25.6}
    widths = {"input": 31, "conv": 20, "gru": 26}

    def cost(w):
        return widths_flops_per_frame(w, 40, 4)

    for budget in (3000.0, 8000.0, 12000.0, 1e6):
        fitted = fit_widths_to_budget(widths, cont, budget, cost)
        assert cost(fitted) <= budget
        assert all(fitted[n] <= widths[n] for n in widths)
        # tight: no single channel more fits (where there is a channel to give back)
        for n in widths:
            if fitted[n] < widths[n]:
                assert cost({**fitted, n: fitted[n] + 1}) > budget, (budget, fitted, n)
    with pytest.raises(ValueError, match="smallest"):
        fit_widths_to_budget(widths, cont, 10.0, cost)


def _tiny_data(corpus: Path) -> DataConfig:
    # speech in every validation stream, so both validation halves (select / check) have both classes
    return DataConfig((str(corpus / "speech"),), (str(corpus / "noise"),), minutes_train=0.5, minutes_val=0.25,
                      stream_options={"nonspeech_stream_prob": 0.0, "snr_db_range": [0.0, 30.0]})


def test_train_few_steps_consolidate_and_load(corpus, tmp_path):
    config = TrainConfig(
        budget_mflops=0.8, max_minutes=2.0, max_steps=12, eval_every_steps=6, batch_size=8, window_frames=100,
        input_width=16, conv_width=16, gru_width=16, finetune_max_steps=3, warmup_steps=2,
    )
    data = _tiny_data(corpus)
    lines: list[str] = []
    result, path = run(config, data, tmp_path / "work", log=lines.append)
    assert path.is_file() and (tmp_path / "work" / "search.pt").is_file()
    assert any("select auc" in line and "MFLOP/s" in line and "min left" in line for line in lines)
    # the consolidated checkpoint loads with weights_only=True and carries its config
    raw = torch.load(path, weights_only=True)
    assert raw["training"]["config"]["budget_mflops"] == 0.8
    model, info = load_consolidated(path)
    spec = FeatureSpec.from_dict(info["feature_spec"])
    assert info["network_flops_per_second"] <= 0.8e6
    assert info["widths"] == model.arch.widths
    assert math.isfinite(info["metrics"]["val_auc"])
    fps = spec.frames_per_second
    independent = _independent_flops_per_frame(model) * fps
    assert abs(info["network_flops_per_second"] - independent) / independent < 0.01
    assert info["parameters"] == sum(p.numel() for p in model.parameters())
    # the search checkpoint resumes
    config2 = TrainConfig.from_dict({**config.to_dict(), "max_steps": 18})
    result2, _ = run(config2, data, tmp_path / "work", resume_path=tmp_path / "work" / "search.pt", log=lines.append)
    assert result2.checkpoint["training"]["search"]["steps"] == 18
    assert any("resumed at step 12" in line for line in lines)


def test_unmet_target_writes_no_model_unless_asked(corpus, tmp_path):
    config = TrainConfig(
        target_auc=0.999, max_minutes=2.0, max_steps=6, eval_every_steps=3, batch_size=8, window_frames=100,
        input_width=8, conv_width=8, gru_width=8, finetune_max_steps=2, warmup_steps=2, min_check_minutes=0.05,
    )
    data = _tiny_data(corpus)
    cache = tmp_path / "cache"
    with pytest.raises(TargetNotMetError, match="No model file was written"):
        run(config, data, tmp_path / "a", log=lambda _line: None, cache_dir=cache)
    assert not (tmp_path / "a" / "consolidated.pt").exists()
    with pytest.raises(TargetNotMetError, match="written to"):
        run(config, data, tmp_path / "b", log=lambda _line: None, cache_dir=cache, write_unmet=True)
    _model, info = load_consolidated(tmp_path / "b" / "consolidated.pt")
    assert info["training"]["search"]["target_met"] is False
    assert info["metrics"]["val_auc"] < 0.999  # the held-out check figure decided
    with pytest.raises(InvalidInputError, match="held-out validation"):  # too little check audio to decide on
        run(dataclasses.replace(config, min_check_minutes=5.0), data, tmp_path / "c", log=lambda _l: None,
            cache_dir=cache)


def test_latency_budget_fits_the_cost_model(corpus, tmp_path):
    """--budget-us: the consolidated widths cost <= U by the cost model, which the file then carries."""
    cost_model = CostModel({"const": 5.0, "input": 0.02, "input_conv": 0.004, "conv_gru": 0.012, "gru_gru": 0.012,
                            "gru": 0.05}, n_features=40, conv_kernel_frames=4, hop_ms=10.0)
    budget_us = cost_model.us_of({"input": 9, "conv": 7, "gru": 8})
    config = TrainConfig(
        budget_us=budget_us, cost_model=cost_model.to_dict(), max_minutes=2.0, max_steps=8, eval_every_steps=4,
        batch_size=8, window_frames=100, input_width=16, conv_width=16, gru_width=16, finetune_max_steps=2,
        warmup_steps=2,
    )
    result, path = run(config, _tiny_data(corpus), tmp_path / "w", log=lambda _line: None)
    _model, info = load_consolidated(path)
    assert cost_model.us_of(info["widths"]) <= budget_us
    assert info["training"]["latency"]["us_per_frame"] == pytest.approx(cost_model.us_of(info["widths"]))
    assert info["training"]["search"]["cost_unit"] == "us/10ms"


def test_cli_bad_input_gives_clear_errors(corpus, tmp_path, capsys):
    base = ["train", "--speech", str(corpus / "speech"), "--noise", str(corpus / "noise"), "-o", str(tmp_path / "m.pt")]
    assert main([*base[:2], str(tmp_path / "missing"), *base[3:], "--budget-mflops", "1"]) == 2
    assert "speech directory not found" in capsys.readouterr().err
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main([*base[:4], str(empty), *base[5:], "--budget-mflops", "1", "--work-dir", str(tmp_path / "w")]) == 2
    err = capsys.readouterr().err
    assert "error" in err and "Traceback" not in err
    assert main([*base, "--budget-mflops", "0.001", "--work-dir", str(tmp_path / "w")]) == 2
    assert "below the smallest network" in capsys.readouterr().err
    assert main([*base, "--target-auc", "1.5"]) == 2
    assert "--target-auc" in capsys.readouterr().err
    assert main([*base, "--budget-us", "20", "--cost-model", str(tmp_path / "none.json")]) == 2
    assert "vad calibrate" in capsys.readouterr().err
    assert main([*base, "--budget-mflops", "1", "--write-unmet"]) == 2
    assert "--write-unmet only applies to --target-auc" in capsys.readouterr().err
    assert main([*base, "--budget-mflops", "1", "--nonspeech-weight", "0"]) == 2
    assert "--nonspeech-weight 0.0 must be in (0, inf)" in capsys.readouterr().err
    for option, why in (("evnt_prob=0.5", "KEY one of"), ("event_prob=1.5", "event_prob=1.5: must be in [0, 1]"),
                        ("event_prob=half", "not JSON"), ("max_noise_segments=2.5", "like the default, 3"),
                        ("event_prob=true", "like the default"), ("event_rate_hz_range=[-2,-1]", "rates must be >= 0"),
                        ("snr_db_range=[0]", "like the default"), ("snr_db_range=[0,Infinity]", "finite numbers"),
                        ("input_leveling=-26", "like the default, null"),
                        ('input_leveling={"attack_ms": -1}', "StreamOptions.input_leveling")):
        assert main([*base, "--budget-mflops", "1", "--stream-option", option]) == 2
        assert why in capsys.readouterr().err


def test_the_recipe_trains_on_leveled_input_and_the_model_levels_its_own(corpus, tmp_path):
    """The recipe (RECIPE_STREAM_OPTIONS) trains on leveled input: the run's checkpoint records
    it and its export carries it, so the runtime levels what the net hears the same way;
    ``--stream-option input_leveling=null`` turns it off."""
    from vad.training.export import export_checkpoint
    from vad.training.train import RECIPE_LEVELING, RECIPE_STREAM_OPTIONS

    from vad.apps.commands.train import _stream_options
    from vad.core.leveling import LevelingConfig
    from vad.core.modelmeta import read_model_metadata

    assert RECIPE_STREAM_OPTIONS["input_leveling"] == RECIPE_LEVELING
    assert _stream_options(["input_leveling=null"]) == {"input_leveling": None}
    config = TrainConfig(budget_mflops=0.8, max_minutes=2.0, max_steps=4, eval_every_steps=4, batch_size=8,
                         window_frames=100, input_width=16, conv_width=16, gru_width=16, finetune_max_steps=2)
    data = dataclasses.replace(_tiny_data(corpus), stream_options={
        **_tiny_data(corpus).stream_options, **RECIPE_STREAM_OPTIONS})
    _result, path = run(config, data, tmp_path / "work", log=lambda _line: None)
    onnx = export_checkpoint(path, tmp_path / "lev.onnx")
    assert read_model_metadata(onnx).leveling == LevelingConfig(**RECIPE_LEVELING)


def test_magnitude_prune_keeps_largest_channels():
    from vad.training.report import magnitude_prune

    torch.manual_seed(0)
    full = FrozenVAD(ArchConfig(input_width=8, conv_width=6, gru_width=5)).eval()
    x = torch.randn(2, 20, 40)
    same = magnitude_prune(full, full.arch.widths).eval()
    with torch.no_grad():
        assert torch.allclose(full(x, *full.initial_state(2))[0], same(x, *same.initial_state(2))[0], atol=1e-6)
        full.inp.weight[3].mul_(100.0)  # make input channel 3 the most important
    small = magnitude_prune(full, {"input": 1, "conv": 2, "gru": 2})
    assert small.arch.widths == {"input": 1, "conv": 2, "gru": 2}
    assert torch.equal(small.inp.weight[0], full.inp.weight[3])


def test_comparison_aggregates_seeds_and_sizes_the_uniform_baseline(tmp_path):
    from vad.training.report import METHODS, aggregate, format_table, uniform_width, write_outputs

    budget_per_frame = 5e5 / 100.0
    u = uniform_width(budget_per_frame, 40, 4, 48)
    assert widths_flops_per_frame({"input": u, "conv": u, "gru": u}, 40, 4) <= budget_per_frame
    assert widths_flops_per_frame({"input": u + 1, "conv": u + 1, "gru": u + 1}, 40, 4) > budget_per_frame

    def run_result(seed, shift):
        res = {"budget_mflops": 0.5, "seed": seed}
        for i, m in enumerate(METHODS):
            res[m] = {"widths": {"input": 9, "conv": 8, "gru": 7}, "network_mflops": 0.45, "check_auc": 0.9 + shift,
                      "dev_mix_auc": 0.8 + 0.01 * i + shift, "dev_ami_auc": 0.85, "dev_nonspeech_false_alarm": 0.01}
        return res

    rows = aggregate([run_result(0, 0.0), run_result(1, 0.02)])
    assert rows[0]["seeds"] == [0, 1]
    assert rows[0]["learned"]["dev_mix_auc"]["mean"] == pytest.approx(0.81)
    assert rows[0]["learned"]["dev_mix_auc"]["sd"] == pytest.approx(0.02 / 2**0.5)
    table = format_table(rows)
    assert table.count("\n") == 1 + len(METHODS) and "0.8100 ± 0.0141" in table
    write_outputs(tmp_path, {"rows": rows})
    assert (tmp_path / "comparison.png").stat().st_size > 0 and (tmp_path / "comparison.md").is_file()


def _labelled_clip(path: Path, audio: np.ndarray, speech: list[tuple[float, float]]) -> None:
    sf.write(path, audio, SR)
    path.with_suffix(".rttm").write_text("".join(
        f"SPEAKER {path.stem} 1 {start:.3f} {end - start:.3f} <NA> <NA> spk <NA> <NA>\n" for start, end in speech))


def test_ablation_decides_on_the_tuning_part_and_reports_the_rest(corpus, tmp_path):
    from vad.training.ablate import format_table, parse_variant, run_job, summarize
    from vad.training.train import prepare_data

    assert parse_variant("t3:teacher_weight=0.3,feature_augment=0") == (
        "t3", {"teacher_weight": 0.3, "feature_augment": 0.0})
    for bad in ("t3", "t3:speed=2", "t3:lr=fast", ":lr=1"):
        with pytest.raises(InvalidInputError, match="--variant"):
            parse_variant(bad)
    prepare_data(_tiny_data(corpus), tmp_path / "cache", 0, window_frames=50, log=lambda _line: None)
    speech, _ = sf.read(corpus / "speech" / "utt0.wav", dtype="float32")
    noise = 0.01 * np.random.default_rng(1).standard_normal(SR).astype(np.float32)
    clip = np.concatenate([noise, speech, noise])
    dev, tune = tmp_path / "dev", tmp_path / "tune"
    for folder in (dev, dev / "mix", dev / "nonspeech", tune):
        folder.mkdir()
    for name in ("ami_trn00", "ami_dev00"):
        _labelled_clip(dev / f"{name}.flac", clip, [(1.1, 2.1)])
    _labelled_clip(tune / "ami_trn00.flac", clip, [(1.1, 2.1)])
    _labelled_clip(dev / "mix" / "devmix_01_music_snr05.flac", clip, [(1.1, 2.1)])
    _labelled_clip(dev / "nonspeech" / "hum.flac", noise, [])
    config = {"budget_mflops": 0.3, "max_steps": 4, "finetune_max_steps": 2, "eval_every_steps": 2, "batch_size": 4,
              "window_frames": 50, "input_width": 8, "conv_width": 8, "gru_width": 8, "warmup_steps": 1,
              "width_warmup_steps": 1}
    runs = [run_job({"name": name, "knobs": knobs, "seed": seed, "cache": str(tmp_path / "cache"), "tune": str(tune),
                     "dev": str(dev), "out_dir": str(tmp_path / "out"), "config": config})
            for seed in (0, 1) for name, knobs in (("base", {}), ("lr", {"lr": 0.01, "feature_augment": 0.0}))]
    assert (tmp_path / "out" / "runs" / "lr-seed-1.json").is_file()
    for r in runs:  # the tuning part's meeting scores as tuning, the other as untouched; no file in both
        assert 0.0 <= r["tune_dev_ami_auc"] <= 1.0 and 0.0 <= r["dev_ami_auc"] <= 1.0
        assert math.isnan(r["tune_dev_mix_auc"]) and 0.0 <= r["dev_mix_auc"] <= 1.0
        assert 0.0 <= r["dev_nonspeech_false_alarm"] <= 1.0
    assert runs[1]["feature_augment"] is False and runs[0]["feature_augment"] is True
    rows = summarize(runs, ["base", "lr"])
    assert rows[0]["seeds"] == [0, 1] and not math.isnan(rows[0]["check_auc"]["sd"])
    assert format_table(rows).count("\n") == 3 and "lr=0.01" in format_table(rows)


def test_nonspeech_weight_weighs_the_non_speech_side_of_the_loss():
    from vad.training.consolidate import bce_on_logits

    torch.manual_seed(0)
    logits, targets = torch.randn(3, 50), torch.rand(3, 50)
    plain = torch.nn.functional.binary_cross_entropy_with_logits(logits, targets)
    assert torch.equal(bce_on_logits(logits, targets), plain)
    for w in (0.5, 3.0):
        want = -(targets * torch.nn.functional.logsigmoid(logits)
                 + w * (1 - targets) * torch.nn.functional.logsigmoid(-logits)).mean()
        torch.testing.assert_close(bce_on_logits(logits, targets, w), want)
    for bad in (0.0, -1.0, float("nan"), float("inf")):
        with pytest.raises(InvalidInputError, match="nonspeech_weight"):
            TrainConfig(budget_mflops=1.0, nonspeech_weight=bad)
