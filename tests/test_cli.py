"""Command-line behaviour shared by every ``vad`` command (issue 13, bugs 7, 8 and 9): a reader
that goes away, output folders that cannot be used, and optional extras that are missing."""

from __future__ import annotations

import io
import json
import re
import shutil
import subprocess
import sys

import pytest

from tests.conftest import REPO_ROOT
from tests.fixtures_models import energy_model_path  # noqa: F401 - pytest fixture
from vad.apps import cli
from vad.core.errors import EXTRA_MODULES

DEMO = REPO_ROOT / "tests" / "data"


def _vad(args: list[str], blocked: tuple[str, ...] = (), close_stdout: bool = False, cwd=REPO_ROOT):
    """Run ``vad ARGS`` in a fresh interpreter where the ``blocked`` modules cannot be imported;
    with ``close_stdout`` its stdout reader is gone before the first line (like ``| head -0``)."""
    code = (
        "import sys\n"
        f"for name in {list(blocked)!r}: sys.modules[name] = None\n"
        "from vad.apps.cli import main\n"
        f"sys.exit(main({args!r}))\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    if close_stdout:
        proc.stdout.close()
        err = proc.stderr.read()
        out = ""
    else:
        out, err = proc.communicate(timeout=300)
    proc.wait(timeout=300)
    return proc.returncode, out, err


@pytest.fixture()
def demo_dir(tmp_path):
    folder = tmp_path / "set"
    folder.mkdir()
    for name in ("demo.opus", "demo.rttm"):
        shutil.copy(DEMO / name, folder / name)
    return folder


# --- bug 7: `vad ... | head` ends quietly, and the command still finishes its files ---------------


def test_eval_json_into_a_closed_pipe_finishes_without_a_traceback(demo_dir, tmp_path):
    report = tmp_path / "r.json"
    rc, _, err = _vad(["eval", str(demo_dir), "--json", str(report), "-q"], close_stdout=True)
    assert "Traceback" not in err and "BrokenPipe" not in err, err
    assert rc == 0, err
    assert json.loads(report.read_text())["systems"]  # the --json report was still written


def test_info_into_a_closed_pipe_is_quiet_too():
    rc, _, err = _vad(["info"], close_stdout=True)
    assert rc == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


class _GoneReader(io.StringIO):
    def write(self, text):
        raise BrokenPipeError(32, "Broken pipe")

    def flush(self):
        raise BrokenPipeError(32, "Broken pipe")


def test_the_stdout_guard_drops_the_rest_once_the_reader_is_gone(monkeypatch):
    gone = _GoneReader()
    monkeypatch.setattr(sys, "stdout", gone)
    assert cli.main(["info"]) == 0  # prints a lot; the first write finds the reader gone
    assert sys.stdout is gone  # main() hands the original stdout back
    guard = cli.StdoutGuard(gone)
    assert guard.write("x\n") == 2 and guard.reader_gone
    guard.write("more\n")
    guard.flush()
    monkeypatch.setattr(sys, "stdout", guard)
    assert cli.stdout_reader_gone()


# --- bug 8: --record-speech onto something that is not a usable folder -----------------------------


def test_listen_record_speech_onto_a_file_is_a_clear_error_before_any_work(tmp_path, capsys):
    taken = tmp_path / "notes.txt"
    taken.write_text("mine\n")
    assert cli.main(["listen", "--record-speech", str(taken), "--device", "no-such-device"]) == 2
    err = capsys.readouterr().err
    assert f"--record-speech {taken}: exists and is not a folder" in err
    assert taken.read_text() == "mine\n"
    assert cli.main(["listen", "--record-speech", str(taken / "clips"), "--device", "no-such-device"]) == 2
    assert f"--record-speech {taken / 'clips'}: cannot create the folder" in capsys.readouterr().err


def test_speech_clips_never_replace_a_file(tmp_path):
    from vad.apps.commands.listen import unused_clip_path

    (tmp_path / "speech-1.wav").write_bytes(b"someone's")
    (tmp_path / "speech-1-2.wav").write_bytes(b"someone else's")
    assert unused_clip_path(tmp_path, "speech-1") == tmp_path / "speech-1-3.wav"
    assert unused_clip_path(tmp_path, "speech-2") == tmp_path / "speech-2.wav"


# --- bug 9: a missing optional extra is named, before any work -------------------------------------


def _train_args(tmp_path) -> list[str]:
    for name in ("speech", "noise"):
        (tmp_path / name).mkdir()
    return ["train", "--speech", str(tmp_path / "speech"), "--noise", str(tmp_path / "noise"),
            "--budget-mflops", "1", "-o", str(tmp_path / "m.onnx")]


def test_train_and_export_without_torch_name_the_extra(tmp_path):
    for args, command in ((_train_args(tmp_path), "vad train"), (["export", "x.pt", "-o", "y.onnx"], "vad export")):
        rc, _, err = _vad(args, blocked=("torch",), cwd=tmp_path)
        assert rc == 2 and "Traceback" not in err, err
        assert f"{command} needs the optional dependency 'torch'" in err
        assert "pip install 'learned-width-vad[train]'" in err


@pytest.mark.parametrize("missing", [m for m in EXTRA_MODULES["train"] if m != "torch"])
def test_train_and_export_check_the_whole_extra_first(tmp_path, monkeypatch, capsys, missing):
    """scipy (augmentation), pyroomacoustics (rooms) and onnx (export) are needed late in a run:
    their absence is reported before any work."""
    pytest.importorskip("torch")
    monkeypatch.setitem(sys.modules, missing, None)
    for args, command in ((_train_args(tmp_path), "vad train"), (["export", "x.pt", "-o", "y.onnx"], "vad export")):
        assert cli.main(args) == 2
        err = capsys.readouterr().err
        assert f"{command} needs the optional dependency '{missing}'" in err
        assert "pip install 'learned-width-vad[train]'" in err
    assert not (tmp_path / "m.work").exists()  # no data preparation was started


def test_eval_plot_without_matplotlib_fails_before_evaluating(demo_dir, tmp_path):
    for args in (["eval", str(demo_dir), "--plot", str(tmp_path / "p.png"), "-q"],
                 ["eval", "--pareto", str(tmp_path / "run.json")]):
        rc, out, err = _vad(args, blocked=("matplotlib",))
        assert rc == 2 and "Traceback" not in err, err
        assert "pip install 'learned-width-vad[plot]'" in err
        assert out == ""  # nothing evaluated or collected first


def test_extra_modules_are_what_pyproject_installs():
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for extra, modules in EXTRA_MODULES.items():
        distributions = {re.split(r"[<>=!~\[; ]", req, maxsplit=1)[0].lower() for req in extras[extra]}
        assert distributions == set(modules), extra


class _ArraySource:
    """Stands in for microphone.MicrophoneSource: blocks of an int16 array, then the end."""

    def __init__(self, samples, sample_rate: int, block: int = 320):
        self.blocks = [samples[i : i + block] for i in range(0, samples.size, block)]
        self.sample_rate = sample_rate
        self.dropped_samples = 0
        self.overflows = 0

    def start(self) -> None:
        pass

    def read(self, timeout_s: float = 0.1):
        return self.blocks.pop(0) if self.blocks else None

    def stop(self) -> None:
        pass


def test_listen_clip_that_cannot_be_written_is_a_clear_error(tmp_path, monkeypatch, capsys, energy_model_path):  # noqa: F811
    import numpy as np
    from vad.runtime import microphone

    from tests.test_label_cli import RATE, speechlike
    from vad.apps.commands import listen

    device = microphone.InputDevice(0, "fake mic", "ALSA", 1, float(RATE))
    monkeypatch.setattr(microphone, "find_input_device", lambda wanted: device)
    monkeypatch.setattr(microphone, "choose_sample_rate", lambda dev, rate, required=False: RATE)
    speech = (speechlike() * 32767).astype(np.int16)
    monkeypatch.setattr(microphone, "MicrophoneSource", lambda dev, rate, max_samples=None: _ArraySource(speech, rate))

    def disk_full(path, samples, rate):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(listen, "write_wav_atomic", disk_full)
    clips = tmp_path / "clips"
    assert cli.main(["listen", "--model", str(energy_model_path), "--record-speech", str(clips)]) == 2
    err = capsys.readouterr().err
    assert f"--record-speech: cannot write {clips}/speech-" in err and "(No space left on device)" in err


def test_a_folder_given_as_model_or_output_file_is_named_as_a_folder(tmp_path, capsys):
    assert cli.main(["info", str(tmp_path)]) == 2
    assert f"{tmp_path}: is a folder, not a model file" in capsys.readouterr().err
    # eval checks its outputs before evaluating anything (no audio is needed to get this error)
    assert cli.main(["eval", str(tmp_path / "none.flac"), "--json", str(tmp_path)]) == 2
    assert f"--json {tmp_path}: is a folder; give a file name" in capsys.readouterr().err
