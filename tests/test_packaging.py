"""The torch-free promise and the command-line entry point."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    prelude = "import sys; sys.modules['torch'] = None; sys.modules['vad.training'] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_vad_and_runtime_import_without_torch():
    result = _run_without_torch("import vad, vad.runtime, vad.core.features, vad.core.modelmeta, vad.core.postprocess")
    assert result.returncode == 0, result.stderr


def test_cli_parser_builds_without_torch():
    result = _run_without_torch("from vad.apps.cli import build_parser; build_parser().format_help()")
    assert result.returncode == 0, result.stderr


def test_cli_help_lists_every_command():
    from vad.apps.cli import build_parser
    from vad.apps.commands import COMMANDS

    text = build_parser().format_help()
    for name in COMMANDS:
        assert name in text


def test_installed_wheel_ships_and_finds_the_default_model(tmp_path):
    """`pip install .` puts models/*.onnx in the wheel; `vad label` run from another directory
    finds the default model inside the installed package, not in the source checkout."""
    import shutil
    import zipfile

    if not (REPO_ROOT / "models" / "default.onnx").is_file():
        raise AssertionError("models/default.onnx is not shipped")
    wheel_dir = tmp_path / "wheel"
    build = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheel_dir),
         str(REPO_ROOT)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert build.returncode == 0, build.stderr
    (wheel,) = wheel_dir.glob("*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    assert "vad/models/default.onnx" in names and "vad/models/README.md" in names
    # one import root: nothing generic (runtime/, training/, models/) at the top of site-packages
    assert {n.split("/")[0] for n in names if not n.split("/")[0].endswith(".dist-info")} == {"vad"}
    # Every module of the source packages is in the wheel (an editable install in the test
    # environment could otherwise supply a module the wheel lacks).
    for folder, installed in (("vad", "vad"), ("runtime", "vad/runtime"), ("training", "vad/training"),
                              ("models", "vad/models")):
        for source in (REPO_ROOT / folder).rglob("*.py"):
            inside = f"{installed}/{source.relative_to(REPO_ROOT / folder).as_posix()}"
            assert inside in names, f"{source} missing from the wheel (as {inside})"
    site = tmp_path / "site"
    install = subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(site), str(wheel)],
        capture_output=True, text=True, timeout=600, cwd=tmp_path,
    )
    assert install.returncode == 0, install.stderr
    work = tmp_path / "elsewhere"
    work.mkdir()
    shutil.copy(REPO_ROOT / "tests" / "data" / "demo.opus", work / "demo.opus")
    env = {**__import__("os").environ, "PYTHONPATH": str(site)}
    where = subprocess.run(
        [sys.executable, "-c", "import vad.runtime.model as m; print(m.default_model_path())"],
        capture_output=True, text=True, timeout=300, cwd=work, env=env,
    )
    assert where.returncode == 0, where.stderr
    assert where.stdout.strip().startswith(str(site)), where.stdout
    label = subprocess.run(
        [sys.executable, "-m", "vad", "label", "demo.opus", "--format", "json", "--jobs", "1"],
        capture_output=True, text=True, timeout=300, cwd=work, env=env,
    )
    assert label.returncode == 0, label.stderr
    import json

    result = json.loads((work / "demo.vad.json").read_text())
    assert result["model"]["name"] and len(result["segments"]) >= 1
