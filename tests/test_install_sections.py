"""README section 1 (`pip install .` + `vad label`) then section 2 (`pip install -e`) in one
clone, then the README's Python example run from folders that hold a user's own `models/`,
`models.py`, `runtime.py` and `training.py`.

Section 1 leaves numba's cache (`__pycache__/*.nbc`) inside the installed package, which pip's
uninstall does not remove; with generic top-level names that leftover shadowed the editable
install (`import runtime` found an empty namespace package). The test venv reuses this
environment's dependencies through a path file so that it installs only our own package."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT

README_EXAMPLE = """
import numpy as np
import soundfile as sf
import vad.runtime

audio, rate = sf.read(DEMO, dtype="int16")
stream = vad.runtime.StreamingVAD(sample_rate=rate)
events = []
for start in range(0, len(audio), 480):
    events += stream.process(audio[start:start + 480]).events
events += stream.flush().events
assert [e.kind for e in events].count("start") >= 1, events
print(vad.runtime.__file__)
"""


def _run(cmd, cwd, env, timeout=600):
    done = subprocess.run(cmd, cwd=cwd, env=env, capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, f"{cmd} failed:\n{done.stdout}\n{done.stderr}"
    return done.stdout


@pytest.mark.slow
def test_section_1_then_section_2_in_one_clone(tmp_path):
    clone = tmp_path / "clone"
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=REPO_ROOT,
                           capture_output=True, text=True, check=True).stdout.split()
    for rel in files:
        if (REPO_ROOT / rel).is_file():
            (clone / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(REPO_ROOT / rel, clone / rel)
    venv = clone / ".venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True, timeout=120)
    site = Path(subprocess.run([str(venv / "bin" / "python"), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
                               capture_output=True, text=True, check=True).stdout.strip())
    # dependencies come from this environment; our own package is installed for real below
    deps = [p for p in sys.path if p.rstrip("/").endswith("site-packages") and Path(p).is_dir()]
    (site / "_deps_from_test_env.pth").write_text("\n".join([sysconfig.get_paths()["purelib"], *deps]) + "\n")
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{venv / 'bin'}:{env['PATH']}"
    py = str(venv / "bin" / "python")
    pip = [py, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]

    # section 1: install and label the demo (this writes numba's cache inside site-packages)
    _run([*pip, "."], clone, env)
    _run([str(venv / "bin" / "vad"), "label", "tests/data/demo.opus", "--format", "csv", "-o", "labels"], clone, env)
    assert (clone / "labels" / "demo.vad.csv").read_text().strip()
    leftovers = list((site / "vad").rglob("*.nbi"))
    assert leftovers, "section 1 should have cached numba kernels inside the installed package"

    # section 2: the editable install over the same venv
    _run([*pip, "-e", ".", "--config-settings", "editable_mode=strict"], clone, env)
    assert not (site / "runtime").exists() and not (site / "training").exists() and not (site / "models").exists()

    # the README example from a folder full of generic names
    user = tmp_path / "user project"
    (user / "models").mkdir(parents=True)
    (user / "models" / "default.onnx").write_bytes(b"not a model")
    for name in ("models.py", "runtime.py", "training.py"):
        (user / name).write_text("raise ImportError('the user module was imported')\n")
    shutil.copy(REPO_ROOT / "tests" / "data" / "demo.opus", user / "demo.opus")
    code = README_EXAMPLE.replace("DEMO", repr(str(user / "demo.opus")))
    where = _run([py, "-c", code], user, env).strip().splitlines()[-1]
    assert Path(where).resolve().is_relative_to(clone.resolve()), where  # the editable source, not a leftover
    out = _run([str(venv / "bin" / "vad"), "label", "demo.opus", "--format", "json", "-o", "out"], user, env)
    assert (user / "out" / "demo.vad.json").is_file(), out
