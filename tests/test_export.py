"""Export: the raw-audio graph (front end inside), parity torch vs onnxruntime vs numba, streaming
form, metadata and digest round trip, conversion of old files, bad files."""

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

from vad.training.export import (  # noqa: E402
    OPSET,
    GraphFrontEnd,
    build_metadata,
    convert_onnx,
    export_checkpoint,
    export_onnx,
    probe_signal,
)

from tests.runtime_models import build_random_vad, export_random_model, random_model_path  # noqa: E402, F401
from vad.core.errors import InvalidInputError, ModelFileError  # noqa: E402
from vad.core.features import FeatureSpec, logmel  # noqa: E402
from vad.core.modelmeta import (  # noqa: E402
    METADATA_KEY,
    SCHEMA_KEY,
    SCHEMA_VERSION,
    read_model_metadata,
    weights_digest,
)
from vad.core.postprocess import PostprocessConfig  # noqa: E402

PARITY = 1e-5  # same float32 network in torch and onnxruntime, same float64 front end
REPO = Path(__file__).resolve().parents[1]
LEGACY = REPO / "tests" / "data" / "legacy-schema1.onnx"
HOP = 160
# only these ops: every ONNX runtime has them (no DFT/STFT, which several providers lack)
PORTABLE_OPS = {
    "Add", "Cast", "Clip", "Concat", "Constant", "ConstantOfShape", "Conv", "Div", "GRU", "Gather", "Log", "MatMul", "Mul", "Pad",
    "Relu", "Reshape", "Shape", "Sigmoid", "Slice", "Squeeze", "Sub", "Transpose", "Unsqueeze",
}


def _session(path):
    import onnxruntime as ort

    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def _zero_state(sess, batch=1):
    return {i.name: np.zeros([batch, *i.shape[1:]], np.float32) for i in sess.get_inputs() if i.name != "audio"}


def _ort_run(sess, audio, state=None):
    """(probability [B, F], new state) of one call; audio float32 [B, N]."""
    state = _zero_state(sess, audio.shape[0]) if state is None else state
    names = ["probability"] + [n + "_out" for n in state]
    outs = sess.run(names, {"audio": audio, **state})
    return outs[0], dict(zip(state, outs[1:], strict=True))


def _torch_run(model, audio, spec=None):
    """Probabilities [B, F] of the torch network on the numpy reference front end."""
    spec = spec or FeatureSpec()
    feats = np.stack([logmel(a, spec) for a in audio])
    with torch.no_grad():
        return model(torch.from_numpy(feats), *model.initial_state(feats.shape[0]))[0].numpy()


def _speech_like(seconds: float = 6.0, seed: int = 1) -> np.ndarray:
    """Voiced harmonics with pauses, plus noise (float32, 16 kHz, whole hops)."""
    sr = 16000
    t = np.arange(int(seconds * sr) // HOP * HOP) / sr
    f0 = 120 + 30 * np.sin(2 * np.pi * 0.7 * t)
    voiced = sum(np.sin(2 * np.pi * k * np.cumsum(f0) / sr) / k for k in range(1, 12))
    gate = (np.sin(2 * np.pi * 0.4 * t) > 0).astype(float)
    return (0.2 * voiced * gate + 0.003 * np.random.default_rng(seed).standard_normal(t.size)).astype(np.float32)


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
    assert seconds < 15.0, f"export took {seconds:.1f} s"
    assert [p.name for p in path.parent.iterdir()] == [path.name]  # no external data, no temp file left
    assert path.stat().st_mode & 0o777 == 0o644  # readable by everyone, like any shipped file
    moved = tmp_path / "alone.onnx"
    shutil.copy(path, moved)
    assert read_model_metadata(moved).name == "unit"


def test_onnx_checker_opset_and_portable_ops(exported):
    onnx = pytest.importorskip("onnx")
    model = onnx.load(str(exported[0]))
    onnx.checker.check_model(model, full_check=True)
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [OPSET]
    assert [i.name for i in model.graph.input] == ["audio", "state_frames", "state_conv", "state_gru"]
    assert [o.name for o in model.graph.output] == [
        "probability", "state_frames_out", "state_conv_out", "state_gru_out"]
    assert {n.op_type for n in model.graph.node} <= PORTABLE_OPS


@pytest.mark.parametrize("kind", ["random", "speech"])
def test_parity_torch_vs_onnxruntime(model, exported, kind):
    rng = np.random.default_rng(3)
    if kind == "random":
        audio = (rng.standard_normal((3, 250 * HOP)) * np.array([[0.3], [0.01], [1e-4]])).astype(np.float32)
    else:
        audio = _speech_like()[None]
    want = _torch_run(model, audio)
    got, state = _ort_run(_session(exported[0]), audio)
    assert got.shape == want.shape == (audio.shape[0], audio.shape[1] // HOP)
    assert np.max(np.abs(want - got)) <= PARITY
    assert want.std() > 0.01  # the probabilities do move
    np.testing.assert_array_equal(state["state_frames"], audio[:, -240:])  # the last win - hop samples


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(),
        FeatureSpec(n_fft=400),  # not a power of two: 400 = 16 x 25
        FeatureSpec(win_length_samples=401, n_fft=401),  # prime: one dense stage
        FeatureSpec(sample_rate_hz=8000, win_length_samples=200, hop_length_samples=80, n_fft=256, n_mels=24,
                    fmin_hz=0.0, fmax_hz=4000.0, log_floor=1e-8),
    ],
    ids=["default", "nfft400", "prime", "8k"],
)
def test_graph_front_end_equals_the_reference(spec):
    """The graph's front end (in torch) equals vad.core.features.logmel for any spec, from any state."""
    front = GraphFrontEnd(spec)
    audio = probe_signal(spec, seconds=1.0)
    with torch.no_grad():
        feats, state = front(torch.from_numpy(audio)[None], torch.zeros(1, spec.left_pad_samples))
        want = logmel(audio, spec)
        assert np.max(np.abs(feats[0].numpy() - want)) <= 1e-5
        split = 7 * spec.hop_length_samples  # continuing from the state equals one call
        first, mid = front(torch.from_numpy(audio[:split])[None], torch.zeros(1, spec.left_pad_samples))
        second, _ = front(torch.from_numpy(audio[split:])[None], mid)
    np.testing.assert_allclose(torch.cat([first, second], 1)[0].numpy(), want, atol=1e-5, rtol=0)
    np.testing.assert_array_equal(state[0].numpy(), audio[-spec.left_pad_samples :])


def test_other_spec_exports_and_runs_in_both_backends(tmp_path):
    from vad.runtime.model import VADModel

    spec = FeatureSpec(sample_rate_hz=8000, win_length_samples=200, hop_length_samples=80, n_fft=256, n_mels=24,
                       fmin_hz=0.0, fmax_hz=4000.0)
    net = build_random_vad(n_features=24, input_width=8, conv_width=8, gru_width=8)
    path = export_onnx(net, build_metadata(net, spec), tmp_path / "8k.onnx")
    audio = probe_signal(spec, seconds=1.0)
    want = _torch_run(net, audio[None], spec)[0]
    ref = VADModel(path, backend="onnxruntime")
    fast = VADModel(path, backend="numba")
    assert ref.state_shapes["state_frames"] == (120,)
    assert np.max(np.abs(ref.run(audio, ref.initial_state())[0] - want)) <= PARITY
    assert np.max(np.abs(fast.run(audio, fast.initial_state())[0] - want)) <= PARITY
    from vad.runtime.engine import StreamingVAD  # the fused streaming kernel with the generic FFT

    pcm = (audio * 32767).astype(np.int16)
    stream = StreamingVAD(fast, spec.sample_rate_hz, prime=False)  # the raw network, as fast.run
    probs = np.concatenate([stream.process(pcm[i : i + 200]).probabilities for i in range(0, pcm.size, 200)])
    np.testing.assert_array_equal(probs, fast.run(pcm / np.float32(32768), fast.initial_state())[0])


def test_export_refuses_a_spec_without_window_overlap_and_nan_weights(tmp_path):
    net = build_random_vad()
    with pytest.raises(InvalidInputError, match="win_length_samples > hop_length_samples"):
        export_onnx(net, build_metadata(net, FeatureSpec(hop_length_samples=400)), tmp_path / "a.onnx")
    with torch.no_grad():
        net.pw.weight[0, 0] = float("nan")
    with pytest.raises(InvalidInputError, match="pw.weight.*non-finite"):
        export_onnx(net, build_metadata(net, FeatureSpec()), tmp_path / "b.onnx")
    assert not list(tmp_path.iterdir())


def test_hop_by_hop_equals_whole_signal(exported):
    sess = _session(exported[0])
    audio = _speech_like(3.0)[None]
    whole = _ort_run(sess, audio)[0][0]
    state, step = None, []
    for i in range(0, audio.shape[1], HOP):
        p, state = _ort_run(sess, audio[:, i : i + HOP], state)
        step.append(p[0, 0])
    assert np.max(np.abs(whole - np.array(step))) <= PARITY
    state, blocks = None, []  # blocks of 7 hops: the same again
    for i in range(0, audio.shape[1], 7 * HOP):
        p, state = _ort_run(sess, audio[:, i : i + 7 * HOP], state)
        blocks.append(p[0])
    assert np.max(np.abs(whole - np.concatenate(blocks))) <= PARITY


def test_metadata_round_trip_with_digest_and_interface(exported, model):
    from vad.runtime.onnxproto import read_initializers

    path, meta, _ = exported
    got = read_model_metadata(path)
    assert got == meta.replace(weights_sha256=got.weights_sha256, interface=got.interface)
    assert got.weights_sha256 == weights_digest(read_initializers(path))
    assert got.interface["inputs"] == {"audio": ["batch", "samples"], "state_frames": ["batch", 240],
                                       "state_conv": ["batch", 3, 32], "state_gru": ["batch", 32]}
    assert got.interface["state_outputs"]["state_gru"] == "state_gru_out"
    assert got.interface["sample_rate_hz"] == 16000 and got.interface["hop_length_samples"] == HOP
    assert got.architecture["widths"] == {"input": 32, "conv": 32, "gru": 32}
    assert got.parameters == model.parameter_count()
    assert got.network_flops_per_second == pytest.approx(model.flops_per_second(100.0))
    assert got.postprocess.onset_threshold == 0.6


def test_network_initializers_keep_state_dict_names_even_when_equal(tmp_path):
    from vad.runtime.onnxproto import read_initializers

    model = build_random_vad()
    with torch.no_grad():
        model.inp.bias.zero_()
        model.dw.bias.zero_()
        model.pw.bias.zero_()  # three equal tensors: the exporter must not merge them
    path = export_onnx(model, build_metadata(model, FeatureSpec()), tmp_path / "eq.onnx")
    init = read_initializers(path)
    state = model.state_dict()
    assert {n for n in init if not n.startswith("frontend.")} == set(state)
    for name, value in state.items():
        np.testing.assert_array_equal(init[name], value.numpy())
    assert init["frontend.mel"].dtype == np.float64 and init["frontend.mel_rows"].dtype == np.int64
    onnx = pytest.importorskip("onnx")
    from onnx import numpy_helper

    for t in onnx.load(str(path)).graph.initializer:
        np.testing.assert_array_equal(numpy_helper.to_array(t), init[t.name])


def test_numba_backend_matches_onnxruntime(exported):
    from vad.runtime.model import VADModel

    ref = VADModel(exported[0], backend="onnxruntime")
    fast = VADModel(exported[0], backend="numba")
    assert (ref.backend, fast.backend) == ("onnxruntime", "numba")
    audio = _speech_like(4.0)
    p_ref, _ = ref.run(audio, ref.initial_state())
    p_fast, _ = fast.run(audio, fast.initial_state())
    assert np.max(np.abs(p_ref - p_fast)) <= PARITY


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


def _expect_model_error(path, match, metadata_too=True):
    from vad.runtime.model import VADModel

    if metadata_too:
        with pytest.raises(ModelFileError, match=match):
            read_model_metadata(path)
    for backend in ("onnxruntime", "auto"):
        with pytest.raises(ModelFileError, match=match) as info:
            VADModel(path, backend=backend)
        assert str(path) in str(info.value) or "not found" in str(info.value)


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
    meta = read_model_metadata(exported[0])
    newer = {SCHEMA_KEY: str(SCHEMA_VERSION + 1), METADATA_KEY: meta.to_json()}
    _expect_model_error(_edit_props(exported[0], tmp_path / "newer.onnx", newer), "newer")
    broken = {SCHEMA_KEY: str(SCHEMA_VERSION), METADATA_KEY: "{not json"}
    _expect_model_error(_edit_props(exported[0], tmp_path / "broken.onnx", broken), "not valid JSON")
    for field in ("feature_spec", "weights_sha256", "interface"):
        d = json.loads(meta.to_json())
        del d[field]
        missing = {SCHEMA_KEY: str(SCHEMA_VERSION), METADATA_KEY: json.dumps(d)}
        _expect_model_error(_edit_props(exported[0], tmp_path / f"no-{field}.onnx", missing), field)


def _weight_offset(data: bytes, name: str) -> tuple[int, int]:
    """(start, length) of initializer ``name``'s raw bytes in the serialized model."""
    from vad.runtime.onnxproto import GRAPH_INITIALIZER, MODEL_GRAPH, TENSOR_NAME, TENSOR_RAW_DATA, fields

    def inner(message, number):  # (offset in message, sub-message) of each field ``number``
        for field, _wire, value, _start, end in fields(message):
            if field == number:
                yield end - len(value), value

    for graph_at, graph in inner(memoryview(data), MODEL_GRAPH):
        for tensor_at, tensor in inner(graph, GRAPH_INITIALIZER):
            if any(bytes(v).decode() == name for _o, v in inner(tensor, TENSOR_NAME)):
                (raw_at, raw), = inner(tensor, TENSOR_RAW_DATA)
                return graph_at + tensor_at + raw_at, len(raw)
    raise AssertionError(f"no initializer {name}")


def test_flipped_weight_bytes_are_refused_naming_the_file(exported, tmp_path):
    """Issue 13 bug 5: 64 flipped bytes inside a weight used to load and label everything as speech."""
    data = bytearray(exported[0].read_bytes())
    start, length = _weight_offset(bytes(data), "gru.weight_hh_l0")
    assert length >= 64 + 200
    for i in range(start + 200, start + 264):
        data[i] ^= 0xFF
    bad = tmp_path / "flipped.onnx"
    bad.write_bytes(bytes(data))
    _expect_model_error(bad, "do not match the digest", metadata_too=False)


def test_nan_weights_are_refused_even_with_a_matching_digest(exported, tmp_path):
    from vad.runtime.onnxproto import read_tensors

    data = bytearray(exported[0].read_bytes())
    start, _length = _weight_offset(bytes(data), "out.weight")
    data[start : start + 4] = np.array([np.nan], "<f4").tobytes()
    meta = read_model_metadata(exported[0])
    props = {SCHEMA_KEY: str(SCHEMA_VERSION),
             METADATA_KEY: meta.replace(weights_sha256=weights_digest(read_tensors(bytes(data)))).to_json()}
    tmp = tmp_path / "tmp.onnx"
    tmp.write_bytes(bytes(data))
    bad = _edit_props(tmp, tmp_path / "nan.onnx", props)
    _expect_model_error(bad, "'out.weight' has 1 non-finite", metadata_too=False)


def test_schema1_file_is_refused_with_the_conversion_command_and_converts(tmp_path):
    from vad.runtime.model import VADModel

    _expect_model_error(LEGACY, r"schema 1 .*vad export .*legacy-schema1.onnx -o NEW.onnx")
    out = convert_onnx(LEGACY, tmp_path / "new.onnx")
    old_meta = json.loads(_session(LEGACY).get_modelmeta().custom_metadata_map[METADATA_KEY])
    new_meta = read_model_metadata(out)
    assert new_meta.name == old_meta["name"] == "legacy-test"
    assert new_meta.training == old_meta["training"] and new_meta.metrics == old_meta["metrics"]
    assert new_meta.postprocess.onset_threshold == 0.55
    # same weights, same probabilities: old graph on the reference features vs new graph on audio
    audio = _speech_like(2.0)
    feats = logmel(audio)[None]
    old_sess = _session(LEGACY)
    state = {i.name: np.zeros([1, *i.shape[1:]], np.float32) for i in old_sess.get_inputs() if i.name != "features"}
    want = old_sess.run(["probability"], {"features": feats, **state})[0][0]
    model = VADModel(out, backend="onnxruntime")
    got, _ = model.run(audio, model.initial_state())
    assert np.max(np.abs(got - want)) <= PARITY
    again = convert_onnx(out, tmp_path / "again.onnx")  # converting a current file changes nothing
    assert again.read_bytes() == out.read_bytes()


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
    path = export_checkpoint(checkpoint, tmp_path / "ck.onnx", name="ck")
    meta = read_model_metadata(path)
    assert meta.name == "ck" and meta.metrics == {"val_auc": 0.91}
    assert meta.training["data"] == "unit"
    assert meta.architecture["widths"] == {"input": 8, "conv": 8, "gru": 8}
    audio = np.concatenate([_speech_like(2.0), np.zeros(100 * HOP, np.float32)])[None]
    want = _torch_run(trained, audio)
    assert np.max(np.abs(_ort_run(_session(path), audio)[0] - want)) <= PARITY


def test_export_checkpoint_carries_the_leveling_the_net_was_trained_on(trained, tmp_path):
    """A net trained on leveled input (StreamOptions.input_leveling in its training record) is
    exported with that leveling, so the runtime feeds it what it learnt on; leveling=None drops it."""
    from vad.training.consolidate import atomic_torch_save, frozen_checkpoint

    from vad.core.leveling import LevelingConfig

    cfg = {"target_dbfs": -26.0, "max_gain_db": 20.0, "attack_ms": 3000.0, "release_ms": 30000.0}
    path = tmp_path / "lev.pt"
    atomic_torch_save(frozen_checkpoint(trained, FeatureSpec(), {"val_auc": 0.9}, {
        "config": {}, "data": {"stream_options": {"input_leveling": cfg}}}), path)
    assert read_model_metadata(export_checkpoint(path, tmp_path / "a.onnx")).leveling == LevelingConfig(**cfg)
    assert read_model_metadata(export_checkpoint(path, tmp_path / "b.onnx", leveling=None)).leveling is None


@pytest.mark.slow
def test_cli_export_convert_and_info(checkpoint, tmp_path):
    out = tmp_path / "cli.onnx"
    run = subprocess.run(
        [sys.executable, "-m", "vad", "export", str(checkpoint), "-o", str(out), "--onset", "0.7"],
        capture_output=True, text=True, cwd=REPO,
    )
    assert run.returncode == 0, run.stderr
    assert read_model_metadata(out).postprocess.onset_threshold == 0.7
    converted = tmp_path / "conv.onnx"
    run = subprocess.run([sys.executable, "-m", "vad", "export", str(LEGACY), "-o", str(converted),
                          "--min-silence-ms", "200"], capture_output=True, text=True, cwd=REPO)
    assert run.returncode == 0, run.stderr
    pp = read_model_metadata(converted).postprocess
    assert (pp.onset_threshold, pp.min_silence_ms) == (0.55, 200.0)  # the file's, with one override
    info = subprocess.run([sys.executable, "-m", "vad", "info", str(out), "--json"], capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    data = json.loads(info.stdout)
    assert data["architecture"]["widths"] == {"input": 8, "conv": 8, "gru": 8}
    assert data["file_bytes"] == out.stat().st_size
    assert data["backend"] in ("numba", "onnxruntime") and data["weights_verified"] is True
    text = subprocess.run([sys.executable, "-m", "vad", "info", str(out), "--backend", "onnxruntime"],
                          capture_output=True, text=True)
    assert "MFLOP/s" in text.stdout and "onset 0.7" in text.stdout
    assert "verified" in text.stdout and "backend" in text.stdout
    bad = subprocess.run([sys.executable, "-m", "vad", "info", str(tmp_path / "nope.onnx")], capture_output=True,
                         text=True)
    assert bad.returncode == 2 and "not found" in bad.stderr


def test_cli_export_turns_input_leveling_on_and_off_and_conversion_keeps_it(tmp_path):
    from vad.core.leveling import LevelingConfig

    source = export_random_model(tmp_path / "r.onnx")
    on, kept, off = tmp_path / "on.onnx", tmp_path / "kept.onnx", tmp_path / "off.onnx"
    for args in ([str(source), "-o", str(on), "--leveling", "on"], [str(on), "-o", str(kept), "--onset", "0.6"],
                 [str(kept), "-o", str(off), "--leveling", "off"]):
        run = subprocess.run([sys.executable, "-m", "vad", "export", *args], capture_output=True, text=True, cwd=REPO)
        assert run.returncode == 0, run.stderr
    assert read_model_metadata(source).leveling is None
    assert read_model_metadata(on).leveling == LevelingConfig() == read_model_metadata(kept).leveling
    assert read_model_metadata(kept).postprocess.onset_threshold == 0.6
    assert read_model_metadata(off).leveling is None
    info = subprocess.run([sys.executable, "-m", "vad", "info", str(on)], capture_output=True, text=True)
    assert "leveling     input to -20 dBFS" in info.stdout


def test_export_random_model_helper(tmp_path):
    assert read_model_metadata(export_random_model(tmp_path / "r.onnx", gru_width=8)).architecture["widths"]["gru"] == 8


def test_parity_on_real_recording(model, exported, shared_data):
    from vad.core.audio import load_audio

    path = sorted((shared_data / "dev").glob("*.flac"))[0]
    audio, _rate = load_audio(path, 16000)
    audio = audio[: 20 * 16000].astype(np.float32)[None]
    assert np.max(np.abs(_torch_run(model, audio) - _ort_run(_session(exported[0]), audio)[0])) <= PARITY


def test_info_escapes_control_characters_from_the_file(tmp_path):
    """Issue 13 bug 6: a model name with ANSI escapes used to clear the terminal in `vad info`."""
    from vad.training.export import build_metadata, export_onnx

    hostile = "\x1b[2J\x1b[3J\x1b[Hpwned\x07\u202e"
    net = build_random_vad(input_width=4, conv_width=4, gru_width=4)
    meta = build_metadata(net, FeatureSpec(), metrics={"auc\x1b]0;title\x07": 0.5}, name=hostile,
                          training={"cfg\x9b31m": 1})
    path = export_onnx(net, meta, tmp_path / "hostile\x1b[31m.onnx")
    run = subprocess.run([sys.executable, "-m", "vad", "info", str(path), "--backend", "onnxruntime"],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert not any(ch in run.stdout for ch in "\x1b\x07\x9b\u202e")
    assert "\\x1b[2J\\x1b[3J\\x1b[Hpwned\\x07\\u202e" in run.stdout and "hostile\\x1b[31m.onnx" in run.stdout
    assert "auc\\x1b]0;title\\x07=0.5" in run.stdout and "cfg\\x9b31m" in run.stdout
    as_json = subprocess.run([sys.executable, "-m", "vad", "info", str(path), "--json", "--backend", "onnxruntime"],
                             capture_output=True, text=True)
    assert "\x1b" not in as_json.stdout and json.loads(as_json.stdout)["name"] == hostile
