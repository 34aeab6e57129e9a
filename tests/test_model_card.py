"""models/README.md: the interface section's Python example runs as written, with onnxruntime,
numpy and soundfile only, and prints the Python runtime's probabilities."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT

CARD = REPO_ROOT / "models" / "README.md"
MODEL = REPO_ROOT / "models" / "default.onnx"
DEMO = REPO_ROOT / "tests" / "data" / "demo.opus"


def card_example(language: str, after: str) -> str:
    """The first ```language block after the line that starts with ``after``."""
    text = CARD.read_text()
    start = text.index("\n" + after)
    match = re.compile(rf"```{language}\n(.*?)```", re.S).search(text, start)
    assert match, f"no {language} block after {after!r}"
    return match.group(1)


def test_python_example_runs_with_onnxruntime_only(tmp_path):
    sf = pytest.importorskip("soundfile")
    from vad.apps.labeling import label_file

    code = card_example("python", "Python with onnxruntime only")
    assert len(code.strip().splitlines()) <= 23
    samples, rate = sf.read(DEMO, dtype="float32")
    sf.write(tmp_path / "speech.wav", samples, rate, subtype="FLOAT")
    shutil.copy(MODEL, tmp_path / "default.onnx")
    blocked = "import sys\nfor m in ('vad', 'numba', 'torch'): sys.modules[m] = None\n"
    run = subprocess.run([sys.executable, "-c", blocked + code], cwd=tmp_path, capture_output=True, text=True,
                         timeout=120)
    assert run.returncode == 0, run.stderr
    printed = np.array([float(line.rsplit("=", 1)[1]) for line in run.stdout.splitlines()])
    want = label_file(tmp_path / "speech.wav", model=MODEL).probabilities
    assert printed.shape == want.shape
    assert np.max(np.abs(printed - want)) <= 5e-4 + 1e-4  # printed to 3 decimals
