"""`vad label --engine ray`: the same bytes as the local process pool, failures reported per
file, and an interrupted run that a rerun completes with nothing lost.

A local Ray instance with 2 CPUs (started once for the module) labels a copy of the data
bundle's dev set (in tmp_path) plus one truncated file, with the shipped default model.
Skipped where the ``cluster`` extra (ray) is not installed; CI installs it.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import signal
from pathlib import Path

import pytest

from vad.apps import labeling
from vad.apps.cli import main as vad_main
from vad.core.errors import InvalidInputError, MissingDependencyError

RAY_CPUS = 2
INTERRUPT_AFTER_FILES = 6


def cli(*argv) -> int:
    return vad_main([str(a) for a in argv])


@pytest.fixture(scope="module")
def ray():
    ray = pytest.importorskip("ray")
    ray.init(num_cpus=RAY_CPUS, include_dashboard=False, log_to_driver=False, logging_level=logging.ERROR)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="module")
def corpus(shared_data, tmp_path_factory) -> Path:
    """The dev set (audio and its reference RTTMs) plus one truncated file, copied to tmp_path."""
    dev = tmp_path_factory.mktemp("corpus") / "dev"
    shutil.copytree(shared_data / "dev", dev)
    data = (dev / "ami_dev01.flac").read_bytes()
    (dev / "truncated.flac").write_bytes(data[: len(data) // 3])
    return dev


@pytest.fixture(scope="module")
def local_outputs(corpus, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("local") / "out"
    assert cli("label", corpus, "-o", out, "--format", "json", "--jobs", RAY_CPUS) == 1
    return out


def _tree(root: Path) -> dict[str, bytes]:
    """Every label file below root by relative path (the ledgers apart: their line order is completion order)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != labeling.LEDGER_NAME
    }


def _ledger_names(root: Path) -> set[str]:
    names = set()
    for ledger in root.rglob(labeling.LEDGER_NAME):
        for line in ledger.read_text().splitlines():
            names.add((ledger.parent / json.loads(line)["name"]).relative_to(root).as_posix())
    return names


@pytest.mark.slow
def test_ray_outputs_equal_the_local_run_byte_for_byte(ray, corpus, local_outputs, tmp_path, capsys):
    n_audio = len(labeling.find_audio_files([corpus])[0])
    capsys.readouterr()
    assert cli("label", corpus, "-o", tmp_path / "out", "--format", "json", "--engine", "ray") == 1
    err = capsys.readouterr().err
    assert f"{corpus / 'truncated.flac'}: truncated" in err
    assert f"{n_audio - 1} labeled, 0 skipped, 1 failed" in err and f"{RAY_CPUS} jobs on Ray" in err
    expected = _tree(local_outputs)
    assert len(expected) == n_audio - 1 and "truncated.vad.json" not in expected
    assert _tree(tmp_path / "out") == expected
    assert _ledger_names(tmp_path / "out") == set(expected) == _ledger_names(local_outputs)
    # the reference RTTMs next to the audio are inputs' neighbours, never outputs
    assert not any(name.endswith(".rttm") for name in expected)


@pytest.mark.slow
def test_interrupted_ray_run_loses_nothing_and_a_rerun_completes_it(ray, corpus, local_outputs, tmp_path):
    expected = _tree(local_outputs)
    out = tmp_path / "out"
    seen = []

    def ctrl_c_after_a_few(outcome) -> None:
        seen.append(outcome)
        if len(seen) == INTERRUPT_AFTER_FILES:
            os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C does to the driver

    with pytest.raises(KeyboardInterrupt):
        labeling.label_corpus([corpus], out, "json", engine="ray", on_progress=ctrl_c_after_a_few)
    partial = _tree(out)
    # the files finished before and during the interruption are complete and listed; nothing else is there
    assert INTERRUPT_AFTER_FILES - 1 <= len(partial) < len(expected)
    assert all(partial[name] == expected[name] for name in partial)
    assert _ledger_names(out) == set(partial)
    assert not [p for p in out.rglob("*") if p.name.endswith(".tmp")]

    rerun = labeling.label_corpus([corpus], out, "json", engine="ray")
    assert (rerun.skipped, rerun.written, rerun.failed) == (len(partial), len(expected) - len(partial), 1)
    assert rerun.engine == "ray" and rerun.workers == RAY_CPUS
    assert _tree(out) == expected
    assert _ledger_names(out) == set(expected)


def test_ray_engine_without_ray_names_the_extra(tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if ray were not installed
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(MissingDependencyError, match=r"pip install 'learned-width-vad\[cluster\]'"):
        labeling.label_corpus([tmp_path], engine="ray")
    assert not list(tmp_path.glob("*.vad.*"))


def test_engine_and_address_are_checked(tmp_path, capsys):
    (tmp_path / "a.wav").write_bytes(b"x")
    with pytest.raises(InvalidInputError, match="engine='spark'"):
        labeling.label_corpus([tmp_path], engine="spark")
    assert cli("label", tmp_path, "--address", "auto") == 2
    assert "needs the ray engine (--engine ray)" in capsys.readouterr().err


def test_an_unreachable_cluster_is_one_quick_error(tmp_path, capsys):
    pytest.importorskip("ray")
    (tmp_path / "a.wav").write_bytes(b"x")
    assert cli("label", tmp_path, "--engine", "ray", "--address", "127.0.0.1:1") == 2
    assert "cannot reach the Ray cluster at 127.0.0.1:1: Connection refused" in capsys.readouterr().err
    assert not list(tmp_path.glob("*.vad.*"))
