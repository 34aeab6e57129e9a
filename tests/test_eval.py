"""`vad eval`: figures on hand-made cases, label discovery, errors, baselines, CLI."""

from __future__ import annotations

import json
import math
import sys

import numpy as np
import pytest
import soundfile as sf

from tests.fixtures_models import energy_model_path  # noqa: F401 - pytest fixture
from vad.apps.baselines import (
    TEN_HOP_SAMPLES,
    SileroBaseline,
    TenBaseline,
    WebRTCBaseline,
    make_baselines,
    map_scores_to_frames,
)
from vad.apps.cli import main as cli_main
from vad.apps.evaluation import (
    FRAME_HOP_SAMPLES,
    SystemOutput,
    collar_mask,
    collect_pareto,
    discover,
    evaluate,
    find_label_file,
    format_table,
    plot_pareto,
    plot_report,
    report_json,
    snr_from_name,
)
from vad.core.errors import AudioFileError, InvalidInputError, LabelFormatError, MissingDependencyError
from vad.core.labelfiles import Segment, write_labels

RATE = 16000
LEVEL = 0.5  # "speech" frames of the synthetic files are a constant at this level, silence is 0


def _write_case(folder, stem, segments, duration_s, fmt=".rttm"):
    """Audio whose samples are LEVEL inside the segments and 0 outside, plus its labels."""
    folder.mkdir(parents=True, exist_ok=True)
    x = np.zeros(int(round(duration_s * RATE)), dtype=np.float32)
    for a, b in segments:
        x[int(round(a * RATE)) : int(round(b * RATE))] = LEVEL
    sf.write(folder / f"{stem}.wav", x, RATE, subtype="FLOAT")
    write_labels(folder / f"{stem}{fmt}", [Segment(a, b) for a, b in segments])
    return folder / f"{stem}.wav"


def _frame_level(audio):
    n = audio.size // FRAME_HOP_SAMPLES
    return np.abs(audio[: n * FRAME_HOP_SAMPLES]).reshape(n, FRAME_HOP_SAMPLES).mean(axis=1) / LEVEL


class Perfect:
    name = "perfect"
    default_threshold = 0.5

    def frame_scores(self, audio):
        return _frame_level(audio)


class Inverted:
    name = "inverted"
    default_threshold = 0.5

    def frame_scores(self, audio):
        return 1.0 - _frame_level(audio)


class Late:
    """Says speech 50 ms late (and 50 ms too long), with its own segments."""

    name = "late"
    default_threshold = 0.5
    flops_per_second = 1.0e6

    def score(self, audio):
        s = np.concatenate([np.zeros(5), _frame_level(audio)[:-5]])
        edges = np.diff(np.concatenate([[0], (s >= 0.5).astype(int), [0]]))
        starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
        return SystemOutput(s, [Segment(a * 0.01, b * 0.01) for a, b in zip(starts, ends, strict=True)])


@pytest.fixture
def corpus(tmp_path):
    root = tmp_path / "set"
    _write_case(root, "talk", [(1.0, 2.0), (3.0, 3.5)], 5.0)
    _write_case(root, "all_speech", [(0.0, 4.0)], 4.0, ".txt")
    _write_case(root / "quiet", "nothing", [], 6.0, ".csv")
    return root


# --- figures on hand-made cases -------------------------------------------------------------


def test_perfect_and_inverted_systems(corpus):
    items = discover([corpus])
    report = evaluate(items, [Perfect(), Inverted()])
    p = report["systems"]["perfect"]["pooled"]
    assert p["files"] == 3 and p["frames"] == 1500 and p["speech_frames"] == 550
    assert p["roc_auc"] == 1.0 and p["eer"] == 0.0
    assert (p["precision"], p["recall"], p["f1"], p["miss_rate"], p["false_alarm_rate"]) == (1, 1, 1, 0, 0)
    assert p["false_alarms_per_minute"] == 0.0 and p["nonspeech_minutes"] == pytest.approx(0.1)
    # segments from the shared post-processing: its default 30 ms padding on both sides
    # (clipped at the ends of the all-speech file): onsets -30, -30, 0 ms; offsets +30, +30, 0 ms
    assert p["onset_delay_ms_median"] == pytest.approx(-30) and p["offset_delay_ms_median"] == pytest.approx(
        30
    )
    assert p["onset_delay_ms_p90"] == pytest.approx(-6) and p["offset_delay_ms_p90"] == pytest.approx(30)
    assert p["missed_segments"] == 0 and p["reference_segments"] == 3
    assert p["real_time_factor"] >= 0
    q = report["systems"]["inverted"]["pooled"]
    assert q["roc_auc"] == 0.0 and q["eer"] == 1.0
    assert q["recall"] == 0.0 and q["miss_rate"] == 1.0 and q["false_alarm_rate"] == 1.0
    # inverted says "speech" over the whole 6 s no-speech file: one false alarm in 0.1 min
    assert q["false_alarms_per_minute"] == pytest.approx(10.0)
    # inverted finds nothing in the all-speech file; in the talk file its detections
    # [0,1), [2,3), [3.5,5) reach into the references [1,2), [3,3.5) by their 30 ms padding:
    # padded [0,1.03), [1.97,3.03), [3.47,5): onsets 0-1 s and 1.97-3 s, offsets 3.03-2 s and 5-3.5 s
    assert q["missed_segments"] == 1
    assert q["onset_delay_ms_median"] == pytest.approx((-1000 - 1030) / 2)
    assert q["offset_delay_ms_median"] == pytest.approx((1030 + 1500) / 2)


def test_all_speech_and_no_speech_files(corpus):
    report = evaluate(discover([corpus]), [Perfect(), Inverted()])
    files = report["systems"]["perfect"]["files"]
    allsp = files[str(corpus / "all_speech.wav")]
    nosp = files[str(corpus / "quiet" / "nothing.wav")]
    assert math.isnan(allsp["roc_auc"]) and allsp["recall"] == 1.0 and math.isnan(allsp["false_alarm_rate"])
    assert math.isnan(nosp["roc_auc"]) and math.isnan(nosp["recall"]) and nosp["false_alarm_rate"] == 0.0
    assert math.isnan(allsp["false_alarms_per_minute"]) and nosp["false_alarms_per_minute"] == 0.0
    inv = report["systems"]["inverted"]["files"][str(corpus / "quiet" / "nothing.wav")]
    assert inv["false_alarm_rate"] == 1.0
    # groups: the root folder and its subfolder
    assert set(report["systems"]["perfect"]["groups"]) == {"set", "set/quiet"}
    assert report["systems"]["perfect"]["groups"]["set/quiet"]["speech_frames"] == 0
    # worst file: inverted is wrong everywhere, perfect nowhere -> mean error 0.5 on every file;
    # argmax takes the first
    assert report["worst_file"]["mean_frame_error_rate"] == pytest.approx(0.5)
    # nan becomes null in JSON
    data = json.loads(report_json(report))
    assert data["systems"]["perfect"]["files"][str(corpus / "all_speech.wav")]["roc_auc"] is None
    assert "_curves" not in data


def test_delays_and_collar(corpus):
    report = evaluate(discover([corpus / "talk.wav"]), [Late()], collar_ms=0)
    f = report["systems"]["late"]["pooled"]
    assert f["onset_delay_ms_median"] == pytest.approx(50) and f["offset_delay_ms_median"] == pytest.approx(
        50
    )
    assert f["recall"] == pytest.approx(140 / 150) and f["false_alarm_rate"] == pytest.approx(10 / 350)
    assert report["systems"]["late"]["flops_per_second"] == 1.0e6
    # a 60 ms collar hides the 50 ms shift: every boundary drops 12 frames
    report = evaluate(discover([corpus / "talk.wav"]), [Late()], collar_ms=60)
    f = report["systems"]["late"]["pooled"]
    assert f["frames"] == 500 - 4 * 12
    assert f["recall"] == 1.0 and f["false_alarm_rate"] == 0.0 and f["roc_auc"] == 1.0
    # delays are segment figures: the collar does not change them
    assert f["onset_delay_ms_median"] == pytest.approx(50)


def test_collar_mask_counts():
    keep = collar_mask([Segment(1.0, 2.0)], 300, 20.0)
    assert np.flatnonzero(~keep).tolist() == [98, 99, 100, 101, 198, 199, 200, 201]
    assert collar_mask([Segment(1.0, 2.0)], 300, 0.0).all()


def test_snr_breakdown(tmp_path):
    _write_case(tmp_path / "d", "a_snr10", [(0.5, 1.0)], 2.0)
    _write_case(tmp_path / "d", "b_snr10", [(0.2, 1.0)], 2.0)
    _write_case(tmp_path / "d", "c_snr-5", [(0.2, 1.0)], 2.0)
    report = evaluate(discover([tmp_path / "d"]), [Perfect()])
    snr = report["systems"]["perfect"]["snr"]
    assert set(snr) == {"snr10", "snr-5"} and snr["snr10"]["files"] == 2
    assert "snr10" in format_table(report)


def test_snr_from_name():
    assert snr_from_name("noisy_snr10.wav") == 10.0
    assert snr_from_name("x/SNR_-5/a.wav") == -5.0
    assert snr_from_name("snrm2.5.flac") == -2.5
    assert snr_from_name("speech.wav") is None


def test_table_lists_every_system(corpus):
    text = format_table(evaluate(discover([corpus]), [Perfect(), Inverted()]))
    assert "perfect" in text and "inverted" in text and "AUC" in text and "set/quiet" in text


def test_system_returning_wrong_length_is_an_error(corpus):
    class Short(Perfect):
        name = "short"

        def frame_scores(self, audio):
            return super().frame_scores(audio)[:-1]

    with pytest.raises(InvalidInputError, match="short"):
        evaluate(discover([corpus / "talk.wav"]), [Short()])


def test_bad_arguments(corpus):
    items = discover([corpus])
    with pytest.raises(InvalidInputError, match="collar_ms"):
        evaluate(items, [Perfect()], collar_ms=-1)
    with pytest.raises(InvalidInputError, match="no system"):
        evaluate(items, [])
    with pytest.raises(InvalidInputError, match="differ"):
        evaluate(items, [Perfect(), Perfect()])


# --- label discovery ------------------------------------------------------------------------


def test_discovery_next_to_audio_all_formats(corpus):
    items = discover([corpus])
    got = {i.audio_path.name: i.label_path.name for i in items}
    assert got == {"all_speech.wav": "all_speech.txt", "talk.wav": "talk.rttm", "nothing.wav": "nothing.csv"}
    (corpus / "talk.rttm").unlink()
    write_labels(corpus / "talk.json", [Segment(1.0, 2.0)])
    assert find_label_file(corpus / "talk.wav").name == "talk.json"


def test_discovery_labels_dir(tmp_path):
    audio = tmp_path / "audio"
    _write_case(audio / "sub", "x", [(0.1, 0.5)], 1.0)
    _write_case(audio, "y", [(0.1, 0.5)], 1.0)
    labels = tmp_path / "labels"
    (labels / "sub").mkdir(parents=True)
    (audio / "sub" / "x.rttm").rename(labels / "sub" / "x.rttm")  # mirrored tree
    (audio / "y.rttm").rename(labels / "y.txt.bak")
    write_labels(labels / "y.csv", [Segment(0.1, 0.5)])  # flat
    items = discover([audio], labels_dir=labels)
    assert {i.audio_path.name: i.label_path for i in items} == {
        "x.wav": labels / "sub" / "x.rttm",
        "y.wav": labels / "y.csv",
    }
    with pytest.raises(LabelFormatError, match="labels folder not found"):
        discover([audio], labels_dir=tmp_path / "nope")


def test_missing_labels_name_the_file(corpus):
    (corpus / "talk.rttm").unlink()
    with pytest.raises(LabelFormatError, match="talk.wav"):
        discover([corpus])


def test_empty_label_file_means_no_speech(tmp_path):
    path = _write_case(tmp_path, "e", [(0.5, 1.0)], 2.0)
    (tmp_path / "e.rttm").write_text("")
    report = evaluate(discover([path]), [Perfect()])
    assert report["systems"]["perfect"]["pooled"]["speech_frames"] == 0
    assert report["systems"]["perfect"]["pooled"]["false_alarms_per_minute"] == pytest.approx(1 / (2 / 60))


def test_path_errors(tmp_path):
    with pytest.raises(AudioFileError, match="no such file"):
        discover([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(AudioFileError, match="no audio"):
        discover([tmp_path / "empty"])
    with pytest.raises(InvalidInputError, match="no PATH"):
        discover([])


def test_bad_label_and_bad_audio_do_not_stop_the_others(corpus):
    (corpus / "talk.rttm").write_text("SPEAKER talk 1 zero 1.0\n")
    (corpus / "broken.wav").write_bytes(b"RIFF not really a wav")
    (corpus / "broken.rttm").write_text("")
    report = evaluate(discover([corpus]), [Perfect()])
    failed = {f["path"]: f["error"] for f in report["failed"]}
    assert set(failed) == {str(corpus / "talk.wav"), str(corpus / "broken.wav")}
    assert "talk.rttm:1" in failed[str(corpus / "talk.wav")]
    assert "broken.wav" in failed[str(corpus / "broken.wav")]
    assert report["systems"]["perfect"]["pooled"]["files"] == 2


# --- baselines ------------------------------------------------------------------------------


def test_map_scores_to_frames():
    # chunks of 512 samples; 10 ms frames take the chunk holding their centre
    out = map_scores_to_frames(np.array([0.1, 0.2, 0.3]), 512, 10, 160)
    centres = np.arange(10) * 160 + 80
    np.testing.assert_allclose(out, np.array([0.1, 0.2, 0.3])[np.minimum(centres // 512, 2)])
    assert map_scores_to_frames(np.zeros(0), 512, 3, 160).tolist() == [0, 0, 0]


def test_missing_baseline_modules_name_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "webrtcvad", None)
    with pytest.raises(MissingDependencyError, match=r"baselines"):
        WebRTCBaseline()
    monkeypatch.setitem(sys.modules, "silero_vad", None)
    with pytest.raises(MissingDependencyError, match=r"baselines"):
        SileroBaseline()
    monkeypatch.setitem(sys.modules, "ten_vad", None)
    with pytest.raises(MissingDependencyError, match=r"baselines"):
        TenBaseline()
    with pytest.raises(InvalidInputError, match="unknown baseline"):
        make_baselines("webrtc,vosk")


def test_silero_does_not_import_torch_or_silero_package():
    import importlib.util
    import subprocess

    if importlib.util.find_spec("silero_vad") is None:
        pytest.skip("silero-vad not installed")
    code = (
        "import sys; sys.modules['torch'] = None\n"  # any torch import would fail
        "import numpy as np\n"
        "from vad.apps.baselines import SileroBaseline\n"
        "p = SileroBaseline().frame_scores(np.zeros(16000, np.float32))\n"
        "assert p.shape == (100,), p.shape\n"
        "assert 'silero_vad' not in sys.modules\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_ten_without_its_native_library_names_libcxx(monkeypatch):
    ten_vad = pytest.importorskip("ten_vad")

    def no_library(*args):
        raise OSError("libc++.so.1: cannot open shared object file: No such file or directory")

    monkeypatch.setattr(ten_vad, "TenVad", no_library)
    with pytest.raises(MissingDependencyError, match=r"apt-get install -y libc\+\+1"):
        TenBaseline()


def test_ten_scores_one_per_10ms_frame_from_its_16ms_hops():
    pytest.importorskip("ten_vad")
    rng = np.random.default_rng(3)
    audio = np.zeros(16000 + 100, dtype=np.float32)  # not a whole number of hops or frames
    audio[4000:12000] = 0.3 * rng.standard_normal(8000).astype(np.float32)
    ten = TenBaseline()
    hops = ten.chunk_probabilities(audio)
    assert hops.shape == (-(-audio.size // TEN_HOP_SAMPLES),) and np.all((hops >= 0) & (hops <= 1))
    scores = ten.frame_scores(audio)
    assert scores.shape == (audio.size // 160,) and scores.dtype == np.float64
    centres = np.arange(scores.size) * 160 + 80
    np.testing.assert_array_equal(scores, hops[centres // TEN_HOP_SAMPLES])
    np.testing.assert_array_equal(ten.frame_scores(audio), scores)  # fresh state per signal
    assert make_baselines("TEN")[0].name == "ten"


def test_baselines_on_a_dev_file(shared_data):
    pytest.importorskip("webrtcvad")
    pytest.importorskip("ten_vad")
    path = shared_data / "dev" / "pyannote_sample.flac"
    systems = make_baselines("webrtc,silero,ten")
    report = evaluate(discover([path]), systems)
    for name in ("webrtc", "silero", "ten"):
        fig = report["systems"][name]["pooled"]
        assert fig["frames"] == 3000
        # measured: webrtc 0.994, silero 0.997, ten 0.998 on this two-speaker recording
        assert fig["roc_auc"] > 0.95, (name, fig["roc_auc"])
        assert 0 < fig["real_time_factor"] < 1
    scores = WebRTCBaseline().frame_scores(np.zeros(1600, np.float32))
    assert scores.shape == (10,) and set(np.unique(scores)) <= {0, 0.25, 0.5, 0.75, 1.0}


# --- command line, plots, pareto ------------------------------------------------------------


def test_cli_eval_baseline_json(corpus, tmp_path, capsys):
    pytest.importorskip("webrtcvad")
    out = tmp_path / "r.json"
    rc = cli_main(["eval", str(corpus), "--baselines", "webrtc", "--json", str(out), "-q"])
    assert rc == 0
    data = json.loads(out.read_text())
    assert "webrtc" in data["systems"] and data["systems"]["webrtc"]["pooled"]["files"] == 3
    assert "webrtc" in capsys.readouterr().out


def test_cli_eval_ten_baseline(corpus, tmp_path):
    pytest.importorskip("ten_vad")
    out = tmp_path / "r.json"
    assert cli_main(["eval", str(corpus), "--baselines", "ten", "--json", str(out), "-q"]) == 0
    assert json.loads(out.read_text())["systems"]["ten"]["pooled"]["files"] == 3


def test_cli_missing_labels_is_an_error(corpus, capsys):
    (corpus / "talk.rttm").unlink()
    assert cli_main(["eval", str(corpus), "--baselines", "webrtc", "-q"]) == 2
    assert "talk.wav" in capsys.readouterr().err


def test_plot_report(corpus, tmp_path):
    pytest.importorskip("matplotlib")
    report = evaluate(discover([corpus]), [Perfect(), Inverted()])
    out = tmp_path / "eval.png"
    plot_report(report, out)
    assert out.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_plot_without_matplotlib_names_the_extra(corpus, tmp_path, monkeypatch):
    report = evaluate(discover([corpus]), [Perfect()])
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    with pytest.raises(MissingDependencyError, match="plot"):
        plot_report(report, tmp_path / "x.png")


def test_pareto(corpus, tmp_path):
    runs = []
    for i, (mflops, auc) in enumerate([(0.5, 0.90), (1.0, 0.93), (2.0, 0.92)]):
        p = tmp_path / f"run{i}" / "report.json"
        p.parent.mkdir()
        p.write_text(
            json.dumps(
                {
                    "name": f"run{i}",
                    "model": {"total_flops_per_second": mflops * 1e6},
                    "metrics": {"dev_auc": auc},
                }
            )
        )
        runs.append(p)
    eval_report = tmp_path / "eval.json"
    eval_report.write_text(report_json(evaluate(discover([corpus]), [Perfect(), Late()])))
    collected = collect_pareto([*runs, eval_report])
    assert [(q["name"], q["mflops_per_second"], q["auc"]) for q in collected["points"]][:3] == [
        ("run0", 0.5, 0.90),
        ("run1", 1.0, 0.93),
        ("run2", 2.0, 0.92),
    ]
    assert [q["name"] for q in collected["points"]][3:] == ["late"]  # has a FLOP count
    assert [b["name"] for b in collected["baselines"]] == ["perfect"]
    # other report shapes: network + front end summed, MFLOP/s keys, dev AUC before val AUC,
    # a training history (a list) is not searched
    other = tmp_path / "other.json"
    other.write_text(
        json.dumps(
            {
                "run_name": "b",
                "history": [{"val_auc": 0.1, "total_flops_per_second": 9e9}],
                "metadata": {"network_flops_per_second": 2e5, "frontend_flops_per_second": 3e5},
                "metrics": {"val_auc": 0.8, "dev_auc": 0.85},
            }
        )
    )
    mflops = tmp_path / "mflops.json"
    mflops.write_text(json.dumps({"name": "c", "network_mflops": 0.25, "val_auc": 0.7}))
    got = [(q["name"], q["mflops_per_second"], q["auc"]) for q in collect_pareto([other, mflops])["points"]]
    assert got == [("b", pytest.approx(0.5), 0.85), ("c", pytest.approx(0.25), 0.7)]
    # --scope: an eval report's AUC over one group/family/SNR bucket instead of the pooled one
    scoped = tmp_path / "scoped.json"
    scoped.write_text(json.dumps({"report_version": 1, "systems": {
        "m": {"flops_per_second": 3e6, "pooled": {"roc_auc": 0.9}, "groups": {"dev/mix": {"roc_auc": 0.8}},
              "families": {"dev/ami": {"roc_auc": 0.7}}, "snr": {"snr0": {"roc_auc": 0.6}}},
        "base": {"pooled": {"roc_auc": 0.95}, "groups": {"dev/mix": {"roc_auc": 0.85}},
                 "families": {"dev/ami": {"roc_auc": 0.9}}, "snr": {"snr0": {"roc_auc": 0.7}}}}}))
    assert collect_pareto([scoped])["points"][0]["auc"] == 0.9
    for scope, auc in (("dev/mix", 0.8), ("dev/ami", 0.7), ("snr0", 0.6)):
        got = collect_pareto([scoped], scope=scope)
        assert got["points"][0]["auc"] == auc and got["scope"] == scope
    assert collect_pareto([scoped], scope="dev/mix")["baselines"] == [{"name": "base", "auc": 0.85, "source": str(scoped)}]
    with pytest.raises(InvalidInputError, match="no scope 'dev/xx'.*dev/ami, dev/mix, snr0"):
        collect_pareto([scoped], scope="dev/xx")
    bad = tmp_path / "bad.json"
    bad.write_text("{}")
    with pytest.raises(InvalidInputError, match="bad.json"):
        collect_pareto([bad])
    if pytest.importorskip("matplotlib"):
        out = tmp_path / "pareto.png"
        plot_pareto(collected, out)
        assert out.read_bytes()[:4] == b"\x89PNG"
        assert cli_main(["eval", "--pareto", *map(str, runs), "--plot", str(tmp_path / "p2.png")]) == 0
        assert (tmp_path / "p2.png").is_file()


# --- our models through the streaming runtime ---------------------------------------------


def test_model_system_runs_the_streaming_runtime(tmp_path, energy_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD

    from vad.apps.evaluation import ModelSystem
    from vad.core.modelmeta import read_model_metadata

    rng = np.random.default_rng(3)
    x = (rng.standard_normal(4 * RATE) * 0.001).astype(np.float32)
    x[RATE : 2 * RATE] += (0.3 * np.sin(2 * np.pi * 440 * np.arange(RATE) / RATE)).astype(np.float32)
    sf.write(tmp_path / "tone.wav", x, RATE, subtype="FLOAT")
    write_labels(tmp_path / "tone.rttm", [Segment(1.0, 2.0)])

    system = ModelSystem(energy_model_path)
    meta = read_model_metadata(energy_model_path)
    assert system.name == meta.name and system.default_threshold == meta.postprocess.onset_threshold
    assert system.flops_per_second == pytest.approx(meta.total_flops_per_second)
    out = system.score(x)
    stream = StreamingVAD(model=energy_model_path, sample_rate=RATE)
    first, last = stream.process(x), stream.flush()
    np.testing.assert_allclose(out.scores, np.concatenate([first.probabilities, last.probabilities]))
    ends = [e for e in first.events + last.events if e.kind == "end"]
    assert [(s.start_s, s.end_s) for s in out.segments] == [(e.start_s, e.end_s) for e in ends]
    assert out.segments, "the energy model should detect the tone"

    report = evaluate(discover([tmp_path]), [system])
    fig = report["systems"][system.name]["pooled"]
    assert fig["roc_auc"] > 0.9 and fig["recall"] > 0.8
    rc = cli_main(
        ["eval", str(tmp_path), "--model", str(energy_model_path), "--json", str(tmp_path / "r.json"), "-q"]
    )
    assert rc == 0
    data = json.loads((tmp_path / "r.json").read_text())
    assert data["systems"][system.name]["flops_per_second"] == pytest.approx(meta.total_flops_per_second)


def test_pareto_reads_training_report_lists_and_method_tables(tmp_path):
    """`python -m vad.training.report` writes a list of runs (evaluate) and {"results": [...]}
    with one object per method and budget (baselines); both give one point per run."""
    import json

    from vad.apps.evaluation import collect_pareto

    runs = tmp_path / "eval-all.json"
    runs.write_text(json.dumps([
        {"name": "a", "network_mflops": 1.0, "frontend_mflops": 1.5, "dev_auc": 0.9},
        {"name": "b", "network_mflops": 2.0, "frontend_mflops": 1.5, "dev_auc": 0.95},
    ]))
    table = tmp_path / "baselines.json"
    entry = {"network_mflops": 0.5, "frontend_mflops": 1.5, "val_auc": 0.8, "dev_auc": 0.85}
    table.write_text(json.dumps({"results": [{"budget_mflops": 0.5, "dynamic": entry, "fixed": dict(entry, dev_auc=0.8)}]}))
    points = {p["name"]: p for p in collect_pareto([runs, table])["points"]}
    assert set(points) == {"a", "b", "dynamic@0.5", "fixed@0.5"}
    assert points["b"]["mflops_per_second"] == pytest.approx(3.5)
    assert points["dynamic@0.5"]["auc"] == pytest.approx(0.85)
    assert points["fixed@0.5"]["mflops_per_second"] == pytest.approx(2.0)


def test_speech_free_files_never_enter_an_auc(corpus):
    """Pooled and group AUCs use the files with speech only; speech-free files are judged by
    their false-alarm frame rate."""
    from vad.core.metrics import roc_auc

    report = evaluate(discover([corpus]), [Perfect(), Inverted()])
    curves = report["_curves"]["inverted"]["files"]
    speech = [(s, lab) for s, lab in curves.values() if lab.any()]
    expected = roc_auc(np.concatenate([lab for _, lab in speech]), np.concatenate([s for s, _ in speech]))
    inv = report["systems"]["inverted"]
    assert inv["pooled"]["roc_auc"] == pytest.approx(expected)
    assert inv["pooled"]["auc_frames"] == sum(lab.size for _, lab in speech) < inv["pooled"]["frames"]
    assert inv["pooled"]["nonspeech_false_alarm_rate"] == 1.0
    assert report["systems"]["perfect"]["pooled"]["nonspeech_false_alarm_rate"] == 0.0
    assert math.isnan(inv["groups"]["set/quiet"]["roc_auc"])  # a speech-free folder has no AUC


def test_families_split_a_mixed_folder(tmp_path):
    from vad.apps.evaluation import EvalItem, family_of

    items = [EvalItem(tmp_path / f"{n}.flac", tmp_path / f"{n}.rttm", "dev")
             for n in ("ami_a", "ami_b", "pyannote_sample", "0ad_1", "0ad_2")]
    fam = family_of(items)
    assert fam == {tmp_path / "ami_a.flac": "dev/ami", tmp_path / "ami_b.flac": "dev/ami",
                   tmp_path / "0ad_1.flac": "dev/0ad", tmp_path / "0ad_2.flac": "dev/0ad"}
    assert family_of(items[:2]) == {}  # one family: the folder group says it all


def test_markdown_table_has_auc_for_speech_scopes_and_false_alarms_for_speech_free_ones(corpus):
    from vad.apps.evaluation import format_markdown

    report = evaluate(discover([corpus]), [Perfect(), Inverted()])
    text = format_markdown(report)
    rows = {line.split("|")[1].strip(): line for line in text.splitlines() if line.startswith("| ")}
    assert "| perfect | inverted |" in text.splitlines()[0]
    assert rows["pooled (AUC over the files with speech)"].endswith("| 1.000 | 0.000 |")
    assert rows["set/quiet"].endswith("| FA 0.000% | FA 100.000% |")


def test_cli_eval_no_prime_runs_our_models_from_the_zero_state(corpus, tmp_path, energy_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD

    from vad.apps.eval_systems import ModelSystem

    reports = {}
    for flag in ([], ["--no-prime"]):
        out = tmp_path / f"r{len(flag)}.json"
        assert cli_main(["eval", str(corpus), "--model", str(energy_model_path), "--json", str(out), "-q", *flag]) == 0
        reports[bool(flag)] = json.loads(out.read_text())
    audio = sf.read(corpus / "talk.wav", dtype="float32")[0]
    for prime in (True, False):
        system = ModelSystem(energy_model_path, prime=prime)
        want = StreamingVAD(system.model, 16000, prime=prime).process_signal(audio).probabilities
        np.testing.assert_allclose(system.score(audio).scores, want, atol=1e-7)
    (name,) = reports[True]["systems"]
    primed, cold = (reports[k]["systems"][name]["pooled"]["roc_auc"] for k in (False, True))
    assert primed != cold  # the flag reaches the runs: the two differ at the files' starts
