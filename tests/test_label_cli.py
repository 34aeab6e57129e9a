"""`vad label` and vad.apps.labeling: discovery, naming, formats, skip/overwrite, errors, jobs.

Audio is synthesised in tmp_path (loud noise bursts in near-silence) and labelled with the
energy-tracking test model, so these tests need neither the data bundle nor a trained model.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from tests.fixtures_models import energy_model_path  # noqa: F401 - pytest fixture
from vad.apps import label_formats, labeling
from vad.apps.cli import main as vad_main
from vad.core.errors import AudioFileError, InvalidInputError
from vad.core.labelfiles import read_labels
from vad.core.postprocess import PostprocessConfig

RATE = 16000
HOP_S = 0.01
BURSTS_S = ((1.0, 2.0), (3.0, 3.5))  # loud parts of the synthetic recording
LENGTH_S = 4.5


def speechlike(rate: int = RATE, bursts=BURSTS_S, length_s: float = LENGTH_S, seed: int = 0) -> np.ndarray:
    """Near-silence (-80 dBFS noise) with loud noise bursts (-12 dBFS) at ``bursts``."""
    rng = np.random.default_rng(seed)
    x = 1e-4 * rng.standard_normal(int(length_s * rate))
    for a, b in bursts:
        x[int(a * rate) : int(b * rate)] += 0.25 * rng.standard_normal(int(b * rate) - int(a * rate))
    return x.astype(np.float32)


def write_audio(path: Path, x: np.ndarray | None = None, rate: int = RATE, **kw) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(path, speechlike(rate) if x is None else x, rate, **kw)
    return path


def cli(*argv) -> int:
    return vad_main([str(a) for a in argv])


def assert_bursts_found(segments, tol_s: float = 0.1) -> None:
    assert len(segments) == len(BURSTS_S), segments
    for seg, (a, b) in zip(segments, BURSTS_S, strict=True):
        assert abs(seg.start_s - a) < tol_s and abs(seg.end_s - b) < tol_s, (seg, a, b)


# --- discovery and naming -----------------------------------------------------------------


def test_find_audio_files_recurses_sorted_audio_only(tmp_path):
    for rel in ("b/z.wav", "b/a.flac", "a/y.ogg", "a/deep/x.WAV", "a/notes.txt", "a/.hidden.wav", "c.rttm"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    explicit = tmp_path / "c.rttm"
    files, unmatched = labeling.find_audio_files([tmp_path, explicit, tmp_path / "b" / "z.wav", tmp_path / "nope.wav"])
    rel = [f.relative_to(tmp_path).as_posix() for f in files]
    # folder: sorted walk, audio suffixes only (case-insensitive), hidden skipped;
    # explicit file kept whatever its suffix; duplicates dropped; missing path reported
    assert rel == ["a/deep/x.WAV", "a/y.ogg", "b/a.flac", "b/z.wav", "c.rttm"]
    assert unmatched == [str(tmp_path / "nope.wav")]


def test_find_audio_files_expands_globs(tmp_path):
    for rel in ("d1/a.wav", "d1/a.txt", "d2/sub/b.flac"):
        (tmp_path / rel).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / rel).write_bytes(b"x")
    files, unmatched = labeling.find_audio_files([str(tmp_path / "**" / "*.*"), str(tmp_path / "zz*")])
    assert [f.name for f in files] == ["a.wav", "b.flac"]
    assert unmatched == [str(tmp_path / "zz*")]
    # a pattern that matches only files already given matched: no failure, no duplicate
    again, unmatched = labeling.find_audio_files(
        [tmp_path / "d1", str(tmp_path / "d1" / "*.wav"), str(tmp_path / "d1" / "*.wav")])
    assert [f.name for f in again] == ["a.wav"] and unmatched == []
    _, unmatched = labeling.find_audio_files([str(tmp_path / "d1" / "*.txt")])  # matched, but no audio
    assert unmatched == [str(tmp_path / "d1" / "*.txt")]


def test_plan_outputs_mirrors_tree_and_resolves_collisions(tmp_path):
    inputs = [tmp_path / "in/a/x.wav", tmp_path / "in/b/x.wav", tmp_path / "in/b/c/y.flac", tmp_path / "in/b/x.flac"]
    out = labeling.plan_outputs(inputs, "rttm", tmp_path / "out")
    assert [o.relative_to(tmp_path / "out").as_posix() for o in out] == [
        "a/x.vad.rttm", "b/x.wav.vad.rttm", "b/c/y.vad.rttm", "b/x.flac.vad.rttm",
    ]  # fmt: skip
    beside = labeling.plan_outputs(inputs[:3], "audacity")
    assert beside == [tmp_path / "in/a/x.vad.txt", tmp_path / "in/b/x.vad.txt", tmp_path / "in/b/c/y.vad.txt"]
    single = labeling.plan_outputs([tmp_path / "in/a/x.wav"], "json", tmp_path / "o")
    assert single == [tmp_path / "o/x.vad.json"]
    with pytest.raises(InvalidInputError, match="format"):
        labeling.plan_outputs(inputs, "textgrid")


# --- the Python API -------------------------------------------------------------------------


def test_label_file_api(tmp_path, energy_model_path):  # noqa: F811
    path = write_audio(tmp_path / "s.wav")
    result = labeling.label_file(path, model=energy_model_path)
    assert_bursts_found(result.segments)
    assert all(0.5 < s.score <= 1.0 for s in result.segments)
    assert result.probabilities.dtype == np.float32
    assert result.probabilities.shape == (int(LENGTH_S * RATE) // 160,)
    assert result.frame_hop_s == pytest.approx(HOP_S)
    assert result.duration_s == pytest.approx(LENGTH_S)
    assert result.sample_rate == RATE
    assert result.model_name == "energy-test"
    assert result.model_sha256 == hashlib.sha256(Path(energy_model_path).read_bytes()).hexdigest()
    assert result.postprocess == PostprocessConfig()
    # the frames inside a burst are speech, the frames in the silence are not
    assert result.probabilities[150] > 0.9 and result.probabilities[50] < 0.1


def test_label_file_any_rate_and_channels(tmp_path, energy_model_path):  # noqa: F811
    mono = speechlike(48000)
    path = write_audio(tmp_path / "st.flac", np.stack([mono, mono], axis=1), 48000)
    result = labeling.label_file(path, model=energy_model_path)
    assert result.sample_rate == 48000
    assert_bursts_found(result.segments)


def test_label_file_postprocess_override(tmp_path, energy_model_path):  # noqa: F811
    path = write_audio(tmp_path / "s.wav")
    wide = labeling.label_file(path, model=energy_model_path, postprocess=PostprocessConfig(speech_pad_ms=200.0))
    base = labeling.label_file(path, model=energy_model_path)
    assert wide.segments[0].start_s == pytest.approx(base.segments[0].start_s - 0.17, abs=1e-6)
    with pytest.raises(InvalidInputError):
        labeling.label_file(path, model=energy_model_path, postprocess={"speech_pad_ms": 1})


def test_label_file_errors_name_the_reason(tmp_path, energy_model_path):  # noqa: F811
    bad = tmp_path / "bad.wav"
    bad.write_bytes(os.urandom(3000))
    with pytest.raises(AudioFileError, match="not a readable audio file"):
        labeling.label_file(bad, model=energy_model_path)
    with pytest.raises(AudioFileError, match="no such file"):
        labeling.label_file(tmp_path / "missing.wav", model=energy_model_path)


def test_empty_and_silent_audio_give_no_segments(tmp_path, energy_model_path):  # noqa: F811
    empty = write_audio(tmp_path / "empty.wav", np.zeros(0, np.float32))
    silent = write_audio(tmp_path / "silent.flac", np.zeros(RATE, np.float32))
    for path in (empty, silent):
        result = labeling.label_file(path, model=energy_model_path)
        assert result.segments == ()
    assert labeling.label_file(empty, model=energy_model_path).probabilities.shape == (0,)
    assert cli("label", empty, silent, "--model", energy_model_path, "--format", "json") == 0
    data = json.loads((tmp_path / "empty.vad.json").read_text())
    assert data["segments"] == [] and data["duration_s"] == 0.0


# --- the command -----------------------------------------------------------------------------


@pytest.mark.parametrize("fmt,suffix", [("rttm", ".rttm"), ("audacity", ".txt"), ("csv", ".csv"), ("json", ".json")])
def test_formats_round_trip_through_label_readers(tmp_path, energy_model_path, fmt, suffix):  # noqa: F811
    path = write_audio(tmp_path / "in" / "my file.wav")
    assert cli("label", tmp_path / "in", "-o", tmp_path / "out", "--format", fmt, "--model", energy_model_path) == 0
    out = tmp_path / "out" / ("my file.vad" + suffix)
    segments = read_labels(out)
    expected = labeling.label_file(path, model=energy_model_path).segments
    assert len(segments) == len(expected) == len(BURSTS_S)
    for got, want in zip(segments, expected, strict=True):
        assert (got.start_s, got.end_s) == pytest.approx((want.start_s, want.end_s), abs=1e-3)
    if fmt == "rttm":
        assert out.read_text().split()[1] == "my_file"  # RTTM file id without whitespace


def test_json_fields_and_probabilities(tmp_path, energy_model_path):  # noqa: F811
    path = write_audio(tmp_path / "a.wav")
    assert cli("label", path, "--format", "json", "--probabilities", "--model", energy_model_path) == 0
    data = json.loads((tmp_path / "a.vad.json").read_text())
    assert data["file"] == str(path)
    assert data["duration_s"] == pytest.approx(LENGTH_S)
    assert data["sample_rate"] == RATE
    assert data["model"] == {
        "name": "energy-test",
        "sha256": hashlib.sha256(Path(energy_model_path).read_bytes()).hexdigest(),
    }
    assert data["frame_hop_s"] == pytest.approx(HOP_S)
    assert [set(s) for s in data["segments"]] == [{"start_s", "end_s", "probability"}] * len(BURSTS_S)
    assert len(data["probabilities"]) == int(LENGTH_S * RATE) // 160
    assert all(0.0 <= p <= 1.0 for p in data["probabilities"])
    # without --probabilities there is no probability list
    assert cli("label", path, "--format", "json", "--overwrite", "--model", energy_model_path) == 0
    assert "probabilities" not in json.loads((tmp_path / "a.vad.json").read_text())


def test_probabilities_needs_json(tmp_path, energy_model_path, capsys):  # noqa: F811
    path = write_audio(tmp_path / "a.wav")
    assert cli("label", path, "--probabilities", "--model", energy_model_path) == 2
    assert "--probabilities needs --format json" in capsys.readouterr().err


def test_same_stem_in_two_folders_does_not_collide(tmp_path, energy_model_path):  # noqa: F811
    write_audio(tmp_path / "in/a/x.wav", speechlike(seed=1))
    write_audio(tmp_path / "in/b/x.wav", speechlike(seed=2, bursts=((0.5, 1.5),)))
    assert cli("label", tmp_path / "in", "-o", tmp_path / "out", "--model", energy_model_path) == 0
    a = read_labels(tmp_path / "out/a/x.vad.rttm")
    b = read_labels(tmp_path / "out/b/x.vad.rttm")
    assert len(a) == 2 and len(b) == 1


def test_rerun_skips_existing_outputs_unless_overwrite(tmp_path, energy_model_path, capsys):  # noqa: F811
    path = write_audio(tmp_path / "a.wav")
    out = tmp_path / "a.vad.rttm"
    assert cli("label", path, "--model", energy_model_path) == 0
    first = out.read_text()
    assert first.startswith("SPEAKER a 1 ")
    out.touch()
    assert cli("label", path, "--model", energy_model_path) == 0
    assert "1 skipped (output exists; --overwrite relabels)" in capsys.readouterr().err
    # --overwrite relabels an output vad label wrote (listed in the ledger with this content)
    os.utime(out, (0, 0))
    assert cli("label", path, "--model", energy_model_path, "--overwrite") == 0
    assert out.read_text() == first and out.stat().st_mtime > 0
    mask = os.umask(0o022)
    os.umask(mask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~mask  # an ordinary file, not a private temp file
    # ... but an output edited by hand since is not ours any more: skipped, and refused by --overwrite
    out.write_text("sentinel\n")
    capsys.readouterr()
    assert cli("label", path, "--model", energy_model_path) == 0
    assert ("1 skipped (output exists; --overwrite relabels all but 1 that vad label did not write, which are kept)"
            in capsys.readouterr().err)
    assert cli("label", path, "--model", energy_model_path, "--overwrite") == 1
    assert out.read_text() == "sentinel\n"
    assert f"{path}: output {out} exists and vad label did not write it" in capsys.readouterr().err


def test_failed_write_leaves_no_partial_output(tmp_path, energy_model_path, monkeypatch):  # noqa: F811
    path = write_audio(tmp_path / "a.wav")
    out = tmp_path / "a.vad.json"
    assert labeling.label_files([path], fmt="json", model=energy_model_path, jobs=1).written == 1
    old = out.read_text()

    def broken_dumps(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(label_formats.json, "dumps", broken_dumps)
    summary = labeling.label_files([path], fmt="json", model=energy_model_path, overwrite=True, jobs=1)
    assert summary.failed == 1 and "disk full" in summary.outcomes[0].error
    assert out.read_text() == old
    # no temp file left (the ledger lists what vad label wrote)
    assert sorted(p.name for p in tmp_path.iterdir()) == [labeling.LEDGER_NAME, "a.vad.json", "a.wav"]


def test_corrupt_files_are_reported_and_the_rest_finish(tmp_path, energy_model_path, capsys):  # noqa: F811
    good1 = write_audio(tmp_path / "in/a.wav")
    good2 = write_audio(tmp_path / "in/sub/c.flac")
    (tmp_path / "in/b.wav").write_bytes(b"RIFF" + os.urandom(2000))  # corrupt
    (tmp_path / "in/empty.flac").write_bytes(b"")  # 0 bytes
    (tmp_path / "in/text.mp3").write_text("not audio at all\n")
    rc = cli("label", tmp_path / "in", "-o", tmp_path / "out", "--model", energy_model_path, "--jobs", "1")
    err = capsys.readouterr().err
    assert rc == 1
    assert (tmp_path / "out/a.vad.rttm").is_file() and (tmp_path / "out/sub/c.vad.rttm").is_file()
    assert not (tmp_path / "out/b.vad.rttm").exists()
    assert f"{tmp_path / 'in/b.wav'}: " in err
    assert "empty file (0 bytes)" in err
    assert f"{tmp_path / 'in/text.mp3'}: " in err
    assert "2 labeled, 0 skipped, 3 failed" in err
    assert read_labels(tmp_path / "out/a.vad.rttm") and good1 and good2


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root reads every file")
def test_permission_denied_is_reported(tmp_path, energy_model_path, capsys):  # noqa: F811
    locked = write_audio(tmp_path / "locked.wav")
    locked.chmod(0)
    try:
        assert cli("label", locked, "--model", energy_model_path) == 1
    finally:
        locked.chmod(0o644)
    assert "permission denied" in capsys.readouterr().err


def test_permission_denied_is_reported_when_running_as_root_too(tmp_path, energy_model_path, monkeypatch, capsys):  # noqa: F811
    import builtins

    import vad.core.audio

    locked = write_audio(tmp_path / "locked.wav")
    other = write_audio(tmp_path / "other.wav")

    def fake_open(file, *args, **kwargs):
        if Path(file) == locked:
            raise PermissionError(13, "Permission denied", str(file))
        return builtins.open(file, *args, **kwargs)

    monkeypatch.setattr(vad.core.audio, "open", fake_open, raising=False)
    assert cli("label", locked, other, "--model", energy_model_path, "--jobs", "1") == 1
    assert f"{locked}: permission denied" in capsys.readouterr().err
    assert (tmp_path / "other.vad.rttm").is_file()


def test_missing_path_is_reported(tmp_path, energy_model_path, capsys):  # noqa: F811
    write_audio(tmp_path / "a.wav")
    assert cli("label", tmp_path / "a.wav", tmp_path / "nope.wav", "--model", energy_model_path) == 1
    assert "nope.wav: no such file" in capsys.readouterr().err
    assert (tmp_path / "a.vad.rttm").is_file()


def test_no_audio_found_is_an_error(tmp_path, energy_model_path, capsys):  # noqa: F811
    (tmp_path / "notes.txt").write_text("x")
    assert cli("label", tmp_path, "--model", energy_model_path) == 2
    assert "no audio files found" in capsys.readouterr().err


def test_jobs_2_gives_the_same_outputs_as_jobs_1(tmp_path, energy_model_path):  # noqa: F811
    for i in range(4):
        write_audio(tmp_path / f"in/f{i}.wav", speechlike(seed=i))
    (tmp_path / "in/bad.wav").write_bytes(b"nope")
    assert cli("label", tmp_path / "in", "-o", tmp_path / "j1", "--format", "json", "--model", energy_model_path,
               "--jobs", "1") == 1  # fmt: skip
    assert cli("label", tmp_path / "in", "-o", tmp_path / "j2", "--format", "json", "--model", energy_model_path,
               "--jobs", "2") == 1  # fmt: skip
    names = sorted(p.name for p in (tmp_path / "j1").iterdir())
    assert names == [labeling.LEDGER_NAME] + [f"f{i}.vad.json" for i in range(4)]
    assert names == sorted(p.name for p in (tmp_path / "j2").iterdir())
    for n in names[1:]:
        assert (tmp_path / "j1" / n).read_bytes() == (tmp_path / "j2" / n).read_bytes()
    # the two ledgers list the same files (in completion order)
    ledgers = [sorted((tmp_path / j / labeling.LEDGER_NAME).read_text().splitlines()) for j in ("j1", "j2")]
    assert ledgers[0] == ledgers[1] and len(ledgers[0]) == 4


def test_threshold_and_postprocess_options(tmp_path, energy_model_path):  # noqa: F811
    from vad.apps.cli import build_parser
    from vad.apps.commands.label import postprocess_from_args

    defaults = PostprocessConfig()
    args = build_parser().parse_args(["label", "x.wav", "--threshold", "0.8"])
    assert postprocess_from_args(args, defaults) == defaults.replace(onset_threshold=0.8, offset_threshold=0.65)
    args = build_parser().parse_args(
        ["label", "x.wav", "--threshold", "0.6", "0.2", "--min-speech-ms", "50", "--speech-pad-ms", "0",
         "--min-silence-ms", "300", "--max-speech-s", "10"]
    )  # fmt: skip
    assert postprocess_from_args(args, defaults) == PostprocessConfig(0.6, 0.2, 50.0, 300.0, 0.0, 10.0)
    args = build_parser().parse_args(["label", "x.wav", "--threshold", "0.3", "0.4"])
    with pytest.raises(InvalidInputError, match="offset_threshold"):
        postprocess_from_args(args, defaults)
    # the options reach the output: no padding -> segments exactly on the detected frames
    path = write_audio(tmp_path / "a.wav")
    assert cli("label", path, "--format", "json", "--speech-pad-ms", "0", "--model", energy_model_path) == 0
    data = json.loads((tmp_path / "a.vad.json").read_text())
    assert data["postprocess"]["speech_pad_ms"] == 0.0


def test_progress_bar_renders_on_terminals_only():
    out = labeling.FileOutcome(Path("a.wav"), Path("a.rttm"), labeling.WRITTEN, duration_s=1800.0)
    stream = io.StringIO()
    bar = labeling.ProgressBar(2, 3600.0, stream=stream, enabled=True)
    bar.update(out)
    text = stream.getvalue()
    assert text.startswith("\r[") and "1/2 files" in text and "0.50/1.00 h audio" in text
    assert "x real time" in text and "ETA" in text
    quiet = io.StringIO()
    bar = labeling.ProgressBar(2, 3600.0, stream=quiet)  # StringIO is not a terminal
    bar.update(out)
    bar.close()
    assert quiet.getvalue() == ""


def test_label_is_quiet_without_a_terminal(tmp_path, energy_model_path, capfd):  # noqa: F811
    write_audio(tmp_path / "a.wav")
    assert cli("label", tmp_path, "--model", energy_model_path) == 0
    captured = capfd.readouterr()
    assert captured.out == ""
    assert "\r" not in captured.err and captured.err.count("\n") == 1  # only the summary line


def test_dev_folder_with_a_corrupt_file_round_trips_rttm(shared_data, tmp_path, energy_model_path):  # noqa: F811
    import shutil

    dev = tmp_path / "dev"
    (dev / "nonspeech").mkdir(parents=True)
    for name in ("pyannote_sample.flac", "ami_dev00.flac", "nonspeech/speechbrain_noise1.flac"):
        shutil.copy(shared_data / "dev" / name, dev / name)
    data = (shared_data / "dev" / "ami_dev01.flac").read_bytes()
    (dev / "truncated.flac").write_bytes(data[: len(data) // 3])
    rc = cli("label", dev, "-o", tmp_path / "out", "--format", "rttm", "--model", energy_model_path, "--jobs", "2")
    assert rc == 1
    outputs = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.rttm"))
    assert outputs == ["ami_dev00.vad.rttm", "nonspeech/speechbrain_noise1.vad.rttm", "pyannote_sample.vad.rttm"]
    for rel in outputs:
        audio = dev / rel.replace(".vad.rttm", ".flac")
        expected = labeling.label_file(audio, model=energy_model_path).segments
        got = read_labels(tmp_path / "out" / rel)
        assert len(got) == len(expected)
        for g, e in zip(got, expected, strict=True):
            assert abs(g.start_s - e.start_s) <= 5e-4 and abs(g.end_s - e.end_s) <= 1e-3


def test_label_with_the_shipped_default_model(shared_data, tmp_path, capsys):
    from vad.runtime.model import default_model_path

    from vad.core.errors import ModelFileError
    from vad.core.modelmeta import read_model_metadata

    try:
        model = default_model_path()
    except ModelFileError:
        pytest.skip("no default model shipped yet (models/default.onnx)")
    audio = shared_data / "dev" / "pyannote_sample.flac"
    assert cli("label", audio, "-o", tmp_path, "--format", "json", "--jobs", "1") == 0
    data = json.loads((tmp_path / "pyannote_sample.vad.json").read_text())
    assert data["model"]["name"] == read_model_metadata(model).name
    assert data["model"]["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert data["segments"], "the default model finds no speech in a conversation"


# --- issue 13: bad input never hurts ----------------------------------------------------------


def test_reference_labels_next_to_the_audio_are_never_touched(tmp_path, energy_model_path, capsys):  # noqa: F811
    """Bug 1: `vad label DIR` beside human RTTMs labels every file and never replaces them."""
    corpus = tmp_path / "corpus"
    write_audio(corpus / "x.flac")
    write_audio(corpus / "y.wav", speechlike(seed=3))
    human = "SPEAKER x 1 0.500 2.000 <NA> <NA> annotator <NA> <NA>\n"
    for stem in ("x", "y"):
        (corpus / f"{stem}.rttm").write_text(human)
    assert cli("label", corpus, "--model", energy_model_path) == 0
    assert "2 labeled, 0 skipped, 0 failed" in capsys.readouterr().err
    assert cli("label", corpus, "--model", energy_model_path, "--overwrite") == 0
    assert (corpus / "x.rttm").read_text() == human and (corpus / "y.rttm").read_text() == human
    assert_bursts_found(read_labels(corpus / "x.vad.rttm"))
    # a file with our output's name that vad label did not write is refused too, not replaced
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "x.vad.rttm").write_text(human)
    assert cli("label", corpus, "-o", tmp_path / "out", "--model", energy_model_path, "--overwrite") == 1
    err = capsys.readouterr().err
    assert f"output {tmp_path / 'out' / 'x.vad.rttm'} exists and vad label did not write it" in err
    assert "1 labeled, 0 skipped, 1 failed" in err
    assert (tmp_path / "out" / "x.vad.rttm").read_text() == human


def test_ledger_ignores_a_torn_line_and_hand_edits(tmp_path):
    from vad.apps.label_outputs import OutputLedger

    out = tmp_path / "a.vad.rttm"
    out.write_text("ours\n")
    ledger = OutputLedger()
    assert not ledger.wrote(out)
    ledger.record(out, hashlib.sha256(b"ours\n").hexdigest())
    with open(tmp_path / labeling.LEDGER_NAME, "a") as fh:
        fh.write('{"name": "b.vad.rttm", "sha')  # a crash mid-append
    fresh = OutputLedger()
    assert fresh.wrote(out) and not fresh.wrote(tmp_path / "b.vad.rttm")
    out.write_text("edited by hand\n")
    assert not OutputLedger().wrote(out)


def test_symlink_loop_and_fifo_are_reported_per_file(tmp_path, energy_model_path, capsys):  # noqa: F811
    """Bug 2: a symlink loop used to abort the batch, a FIFO named x.wav to hang it forever."""
    import threading

    folder = tmp_path / "in"
    write_audio(folder / "a.wav")
    (folder / "loop.wav").symlink_to("loop.wav")
    (folder / "dirloop").symlink_to(".", target_is_directory=True)
    fifo = folder / "x.wav"
    os.mkfifo(fifo)

    def unblock() -> None:  # a reader stuck in open() would wait forever: give it EOF instead
        try:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        except OSError:
            pass

    guard = threading.Timer(20.0, unblock)
    guard.daemon = True
    guard.start()
    try:
        assert labeling.audio_duration_s(fifo) == 0.0  # the progress estimate does not block either
        rc = cli("label", folder, "-o", tmp_path / "out", "--model", energy_model_path, "--jobs", "1")
    finally:
        guard.cancel()
    err = capsys.readouterr().err
    assert rc == 1
    assert f"{folder / 'loop.wav'}: cannot be opened (Too many levels of symbolic links)" in err
    assert f"{fifo}: is a FIFO (named pipe), not an audio file" in err
    assert "1 labeled, 0 skipped, 2 failed" in err
    assert_bursts_found(read_labels(tmp_path / "out" / "a.vad.rttm"))


def test_outdir_that_is_a_file_is_one_error_before_any_work(tmp_path, energy_model_path, capsys):  # noqa: F811
    """Bug 8: -o naming a file used to fail every input, one 'File exists' each."""
    write_audio(tmp_path / "in/a.wav")
    write_audio(tmp_path / "in/b.wav")
    target = tmp_path / "labels.txt"
    target.write_text("not a folder\n")
    nope = tmp_path / "nope.onnx"  # the model is never read: the output folder is checked first
    assert cli("label", tmp_path / "in", "-o", target, "--model", nope) == 2
    assert capsys.readouterr().err == f"vad label: error: output folder {target} is not a folder\n"
    assert cli("label", tmp_path / "in", "-o", target / "sub", "--model", nope) == 2
    err = capsys.readouterr().err
    assert err == f"vad label: error: output folder {target / 'sub'} cannot be created: {target} is not a folder\n"
    assert target.read_text() == "not a folder\n"
    with pytest.raises(InvalidInputError, match="is not a folder"):
        labeling.label_corpus([tmp_path / "in"], target, model=energy_model_path)
    assert sorted(p.name for p in (tmp_path / "in").iterdir()) == ["a.wav", "b.wav"]


def test_outdir_not_writable_is_one_error_before_any_work(tmp_path, energy_model_path, capsys, monkeypatch):  # noqa: F811
    from vad.apps import label_outputs

    write_audio(tmp_path / "in/a.wav")
    locked = tmp_path / "locked"
    locked.mkdir()

    def refuse(*args, dir=None, **kwargs):
        if Path(dir) == locked:
            raise PermissionError(13, "Permission denied")
        return real_mkstemp(*args, dir=dir, **kwargs)

    real_mkstemp = label_outputs.tempfile.mkstemp
    monkeypatch.setattr(label_outputs.tempfile, "mkstemp", refuse)  # root ignores chmod
    assert cli("label", tmp_path / "in", "-o", locked, "--model", tmp_path / "nope.onnx") == 2
    assert capsys.readouterr().err == f"vad label: error: output folder {locked} is not writable (Permission denied)\n"
    assert cli("label", tmp_path / "in", "-o", locked / "new" / "deeper", "--model", tmp_path / "nope.onnx") == 2
    assert f"output folder {locked / 'new' / 'deeper'} cannot be created: {locked} is not writable" in (
        capsys.readouterr().err
    )
    assert list(locked.iterdir()) == []


@pytest.mark.parametrize("bad", [123, None, b"a.wav", ["a.wav"]])
def test_label_file_rejects_a_non_path_with_the_projects_error(bad, energy_model_path):  # noqa: F811
    """Bug 8: label_file(123) raised a bare TypeError."""
    from vad.core.errors import VADError

    with pytest.raises(InvalidInputError, match="path must be a str or os.PathLike") as info:
        labeling.label_file(bad, model=energy_model_path)
    assert isinstance(info.value, VADError)


# --- long files are read in blocks --------------------------------------------------------------


@pytest.mark.parametrize("backend", ["auto", "onnxruntime"])
@pytest.mark.parametrize("rate,channels", [(16000, 1), (48000, 1), (48000, 2)])  # int16 as read, resampled, mixed
def test_block_reading_equals_whole_file_labeling(tmp_path, energy_model_path, backend, rate, channels):  # noqa: F811
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import VADModel

    from vad.apps.label_audio import LoadedModel, label_with
    from vad.core.audio import load_audio

    mono = speechlike(rate, bursts=((0.3, 1.7), (2.2, 2.25), (3.0, 4.4)), seed=7)
    path = write_audio(tmp_path / "a.flac", np.stack([mono] * channels, axis=1) if channels > 1 else mono, rate)
    loaded = LoadedModel(VADModel(energy_model_path, backend=backend))
    samples, file_rate = load_audio(path)
    whole = StreamingVAD(loaded.model, sample_rate=file_rate).process_signal(samples)
    expected = labeling.events_to_segments(whole.events)
    assert len(expected) == 3
    for block_s in (0.0123, 0.5, 1.0, None):
        got = label_with(loaded, path, None, block_s=block_s)
        np.testing.assert_array_equal(got.probabilities, whole.probabilities)
        assert list(got.segments) == expected, block_s
        assert got.duration_s == samples.size / rate


def test_labeling_memory_stays_flat_for_a_long_file(tmp_path, energy_model_path):  # noqa: F811
    """Peak Python memory does not grow with the file: doubling the length adds far less than the
    doubled audio would take (blocks of 30 s are read, never the whole file)."""
    import tracemalloc

    from vad.apps.label_audio import LoadedModel, label_with

    loaded = LoadedModel(energy_model_path)
    peaks = {}
    for minutes in (6, 12):
        path = tmp_path / f"long{minutes}.wav"
        with sf.SoundFile(path, "w", RATE, 1, subtype="PCM_16") as fh:
            for i in range(minutes):
                fh.write(speechlike(length_s=60.0, seed=i))
        tracemalloc.start()
        try:
            result = label_with(loaded, path, None, keep_probabilities=False)
            _, peaks[minutes] = tracemalloc.get_traced_memory()
        finally:
            tracemalloc.stop()
        assert result.duration_s == pytest.approx(minutes * 60.0)
        assert len(result.segments) == 2 * minutes
    extra_audio_f32_bytes = 6 * 60 * RATE * 4
    assert peaks[12] - peaks[6] < extra_audio_f32_bytes / 4, peaks
    assert peaks[12] < 2 * extra_audio_f32_bytes / 2, peaks


def test_a_worker_elsewhere_writes_the_same_bytes_for_relative_paths(tmp_path, energy_model_path, monkeypatch):  # noqa: F811
    """What a Ray worker does: relative paths resolved against the driver's folder, shown as given."""
    from vad.apps.label_jobs import BatchOptions, Job, run_job

    write_audio(tmp_path / "in/a.wav")
    (tmp_path / "in/bad.wav").write_bytes(b"nope")
    monkeypatch.chdir(tmp_path)
    summary = labeling.label_corpus(["in"], "here", "json", model=energy_model_path, jobs=1)
    assert summary.written == 1 and summary.failed == 1
    elsewhere = tmp_path / "worker_cwd"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    loaded = labeling.LoadedModel(energy_model_path)
    opts = BatchOptions("json", False, None)
    ok = run_job(loaded, Job(0, Path("in/a.wav"), Path("there/a.vad.json")), opts, root=tmp_path)
    bad = run_job(loaded, Job(1, Path("in/bad.wav"), Path("there/bad.vad.json")), opts, root=tmp_path)
    assert ok.status == labeling.WRITTEN and ok.output == Path("there/a.vad.json")
    assert (tmp_path / "there/a.vad.json").read_bytes() == (tmp_path / "here/a.vad.json").read_bytes()
    assert bad.error == summary.outcomes[1].error == "not a readable audio file (Format not recognised)"
    assert not (elsewhere / "there").exists()
