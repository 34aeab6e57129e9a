"""The torch-free promise and the command-line entry point."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import REPO_ROOT


def _run_without_torch(code: str) -> subprocess.CompletedProcess:
    prelude = "import sys; sys.modules['torch'] = None; sys.modules['training'] = None\n"
    return subprocess.run(
        [sys.executable, "-c", prelude + code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=300
    )


def test_vad_and_runtime_import_without_torch():
    result = _run_without_torch("import vad, runtime, vad.features, vad.modelmeta, vad.postprocess")
    assert result.returncode == 0, result.stderr


def test_cli_parser_builds_without_torch():
    result = _run_without_torch("from vad.cli import build_parser; build_parser().format_help()")
    assert result.returncode == 0, result.stderr


def test_cli_help_lists_every_command():
    from vad.cli import build_parser
    from vad.commands import COMMANDS

    text = build_parser().format_help()
    for name in COMMANDS:
        assert name in text
