"""Export: parity torch vs onnxruntime, streaming form, metadata round trip, bad files."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from vad.training.export import OPSET, build_metadata, export_checkpoint, export_onnx  # noqa: E402

from tests.runtime_models import build_random_vad, export_random_model, random_model_path  # noqa: E402, F401
from vad.core.errors import ModelFileError  # noqa: E402
from vad.core.features import FeatureSpec, logmel  # noqa: E402
from vad.core.modelmeta import METADATA_KEY, SCHEMA_KEY, SCHEMA_VERSION, read_model_metadata  # noqa: E402
from vad.core.postprocess import PostprocessConfig  # noqa: E402

PARITY = 1e-5
REPO = Path(__file__).resolve().parents[1]


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _ort_run(sess, feats, state_conv, state_gru):
    return sess.run(None, {"features": feats, "state_conv": state_conv, "state_gru": state_gru})


def _torch_run(model, feats):
    with torch.no_grad():
        p, sc, sg = model(torch.from_numpy(feats), *model.initial_state(feats.shape[0]))
    return p.numpy(), sc.numpy(), sg.numpy()


def _real_features(seconds: float = 6.0) -> np.ndarray:
    """Log-mel of a speech-like signal (voiced harmonics with pauses, plus noise)."""
    sr = 16000
    t = np.arange(int(seconds * sr)) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 12))
    gate = (np.sin(2 * np.pi * 0.4 * t) > 0).astype(float)
    x = 0.2 * voiced * gate + 0.003 * np.random.default_rng(1).standard_normal(t.size)
    return logmel(x.astype(np.float32), FeatureSpec())


@pytest.fixture(scope="module")
def model():
    return build_random_vad()


@pytest.fixture(scope="module")
def exported(model, tmp_path_factory):
    path = tmp_path_factory.mktemp("export") / "m.onnx"
    meta = build_metadata(model, FeatureSpec(), postprocess=PostprocessConfig(onset_threshold=0.6),
                          metrics={"val_auc": 0.9}, training={"config": {"steps": 3}}, name="unit")
    start = time.perf_counter()
    export_onnx(model, meta, path)
    return path, meta, time.perf_counter() - start


def test_export_is_fast_single_file_and_loads_alone(exported, tmp_path):
    path, _meta, seconds = exported
    assert seconds < 10.0, f"export took {seconds:.1f} s"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no external data, no temp file left
    assert path.stat().st_mode & 0o777 == 0o644  # readable by everyone, like any shipped file
    moved = tmp_path / "alone.onnx"
    shutil.copy(path, moved)
    assert read_model_metadata(moved).name == "unit"


def test_onnx_checker_and_opset(exported):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(exported[0]))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert {i.name for i in model.graph.input} == {"features", "state_conv", "state_gru"}


@pytest.mark.parametrize("kind", ["random", "real"])
def test_parity_torch_vs_onnxruntime(model, exported, kind):
    rng = np.random.default_rng(3)
    if kind == "random":
        feats = (rng.standard_normal((3, 250, 40)) * 4 - 10).astype(np.float32)
    else:
        feats = _real_features()[None]
    want = _torch_run(model, feats)
    sc, sg = (s.numpy() for s in model.initial_state(feats.shape[0]))
    got = _ort_run(_session(exported[0]), feats, sc, sg)
    for w, g in zip(want, got, strict=True):
        assert np.max(np.abs(w - g)) <= PARITY
    assert want[0].std() > 0.01  # the probabilities do move


def test_frame_by_frame_equals_whole_sequence(exported):
    sess = _session(exported[0])
    feats = _real_features(3.0)[None]
    sc = np.zeros((1, 3, 32), np.float32)
    sg = np.zeros((1, 32), np.float32)
    whole = _ort_run(sess, feats, sc, sg)[0][0]
    step = []
    for i in range(feats.shape[1]):
        p, sc, sg = _ort_run(sess, feats[:, i : i + 1], sc, sg)
        step.append(p[0, 0])
    assert np.max(np.abs(whole - np.array(step))) <= PARITY


def test_metadata_round_trip(exported, model):
    path, meta, _ = exported
    got = read_model_metadata(path)
    assert got == meta
    assert got.architecture["widths"] == {"input": 32, "conv": 32, "gru": 32}
    assert got.parameters == model.parameter_count()
    assert got.network_flops_per_second == pytest.approx(model.flops_per_second(100.0))
    assert got.postprocess.onset_threshold == 0.6


def test_initializers_keep_state_dict_names_even_when_equal(tmp_path):
    from vad.runtime.onnxproto import read_initializers

    model = build_random_vad()
    with torch.no_grad():
        model.inp.bias.zero_()
        model.dw.bias.zero_()
        model.pw.bias.zero_()  # three equal tensors: the exporter must not merge them
    path = export_onnx(model, build_metadata(model, FeatureSpec()), tmp_path / "eq.onnx")
    init = read_initializers(path)
    state = model.state_dict()
    assert set(init) == set(state)
    for name, value in state.items():
        np.testing.assert_array_equal(init[name], value.numpy())
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    for t in onnx.load(str(path)).graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(t), init[t.name])


def test_numba_backend_matches_onnxruntime(exported):
    from vad.runtime.model import VADModel

    ref = VADModel(exported[0], backend="onnxruntime")
    fast = VADModel(exported[0], backend="numba")
    feats = _real_features(4.0)
    p_ref, s_ref = ref.run(feats, ref.initial_state())
    p_fast, s_fast = fast.run(feats, fast.initial_state())
    assert np.max(np.abs(p_ref - p_fast)) <= PARITY
    for name in s_ref:
        assert np.max(np.abs(s_ref[name] - s_fast[name])) <= PARITY


# --- bad files ------------------------------------------------------------------------------


def _edit_props(src: Path, dst: Path, props: dict[str, str] | None):
    from vad.runtime.onnxproto import append_metadata_props, fields

    data = memoryview(src.read_bytes())
    kept = bytearray()
    for field, _w, _v, start, end in fields(data):
        if field != 14:  # drop metadata_props
            kept += data[start:end]
    out = bytes(kept)
    if props is not None:
        out = append_metadata_props(out, props)
    dst.write_bytes(out)
    return dst


def _expect_model_error(path, match):
    from vad.runtime.model import VADModel

    with pytest.raises(ModelFileError, match=match):
        read_model_metadata(path)
    with pytest.raises(ModelFileError, match=match):
        VADModel(path)


def test_corrupted_file(exported, tmp_path):
    data = exported[0].read_bytes()
    bad = tmp_path / "corrupt.onnx"
    bad.write_bytes(data[: len(data) // 2])
    _expect_model_error(bad, "not a readable ONNX model")
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"this is not a model")
    _expect_model_error(junk, "not a readable ONNX model")
    _expect_model_error(tmp_path / "missing.onnx", "not found")


def test_file_without_metadata(exported, tmp_path):
    _expect_model_error(_edit_props(exported[0], tmp_path / "bare.onnx", None), "lacks")


def test_newer_schema_and_malformed_metadata(exported, tmp_path):
    meta = exported[1]
    newer = {SCHEMA_KEY: str(SCHEMA_VERSION + 1), METADATA_KEY: meta.to_json()}
    _expect_model_error(_edit_props(exported[0], tmp_path / "newer.onnx", newer), "newer")
    broken = {SCHEMA_KEY: str(SCHEMA_VERSION), METADATA_KEY: "{not json"}
    _expect_model_error(_edit_props(exported[0], tmp_path / "broken.onnx", broken), "not valid JSON")
    d = json.loads(meta.to_json())
    del d["feature_spec"]
    missing = {SCHEMA_KEY: str(SCHEMA_VERSION), METADATA_KEY: json.dumps(d)}
    _expect_model_error(_edit_props(exported[0], tmp_path / "nospec.onnx", missing), "feature_spec")


# --- from a consolidated checkpoint and the CLI ---------------------------------------------


@pytest.fixture(scope="module")
def trained():
    """A small FrozenVAD briefly trained (training.consolidate.finetune) to tell loud from quiet frames."""
    from vad.training.consolidate import finetune

    model = build_random_vad(seed=11, gain=1.0, input_width=8, conv_width=8, gru_width=8)
    gen = torch.Generator().manual_seed(0)

    def batch(_step):
        labels = (torch.rand(8, 1, generator=gen) > 0.5).float().expand(8, 50).clone()
        feats = torch.randn(8, 50, 40, generator=gen) + torch.where(labels[..., None] > 0, -8.0, -16.0)
        return feats, labels

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny batches: one thread is ~30x faster than two on a busy machine
    try:
        assert finetune(model, batch, seconds=60.0, lr=0.02, max_steps=30) > 0
    finally:
        torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def checkpoint(trained, tmp_path_factory):
    from vad.training.consolidate import atomic_torch_save, frozen_checkpoint

    path = tmp_path_factory.mktemp("ckpt") / "frozen.pt"
    ckpt = frozen_checkpoint(trained, FeatureSpec(), {"val_auc": 0.91}, {"config": {"budget": 1e6}, "data": "unit"})
    atomic_torch_save(ckpt, path)
    return path


def test_export_checkpoint(checkpoint, trained, tmp_path):
    model = trained
    path = export_checkpoint(checkpoint, tmp_path / "ck.onnx", name="ck")
    meta = read_model_metadata(path)
    assert meta.name == "ck" and meta.metrics == {"val_auc": 0.91}
    assert meta.training["data"] == "unit"
    assert meta.architecture["widths"] == {"input": 8, "conv": 8, "gru": 8}
    feats = np.concatenate([_real_features(2.0), np.full((100, 40), -16.0, np.float32)])[None]
    want = _torch_run(model, feats)[0]
    sc, sg = (s.numpy() for s in model.initial_state(1))
    assert np.max(np.abs(_ort_run(_session(path), feats, sc, sg)[0] - want)) <= PARITY
    assert want[0, -50:].max() < 0.5  # it did learn: quiet frames are non-speech


def test_cli_export_and_info(checkpoint, tmp_path):
    out = tmp_path / "cli.onnx"
    run = subprocess.run(
        [sys.executable, "-m", "vad", "export", str(checkpoint), "-o", str(out), "--onset", "0.7"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    assert read_model_metadata(out).postprocess.onset_threshold == 0.7
    info = subprocess.run([sys.executable, "-m", "vad", "info", str(out), "--json"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["architecture"]["widths"] == {"input": 8, "conv": 8, "gru": 8}
    assert data["file_bytes"] == out.stat().st_size
    text = subprocess.run([sys.executable, "-m", "vad", "info", str(out)], capture_output=True, text=True)
    assert "MFLOP/s" in text.stdout and "onset 0.7" in text.stdout
    bad = subprocess.run([sys.executable, "-m", "vad", "info", str(tmp_path / "nope.onnx")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_export_random_model_helper(tmp_path):
    assert read_model_metadata(export_random_model(tmp_path / "r.onnx", gru_width=8)).architecture["widths"]["gru"] == 8


def test_parity_on_real_recording(model, exported, shared_data):
    from vad.core.audio import load_audio

    path = sorted((shared_data / "dev").glob("*.flac"))[0]
    audio, _rate = load_audio(path, 16000)
    feats = logmel(audio[: 20 * 16000], FeatureSpec())[None]
    want = _torch_run(model, feats)[0]
    sc, sg = (s.numpy() for s in model.initial_state(1))
    got = _ort_run(_session(exported[0]), feats, sc, sg)[0]
    assert np.max(np.abs(want - got)) <= PARITY
