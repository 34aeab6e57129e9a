"""The JavaScript client (runtime/js, onnxruntime-node) on the shipped default model.

It streams tests/data/demo.opus (decoded to WAV here) in 10 ms chunks: its probabilities must
match the Python runtime's within 1e-4 and its segments must equal `vad label`'s. Its port of
the post-processing is also checked event for event against vad.core.postprocess on random
probabilities under several configurations (max-speech splits, padding collisions).

onnxruntime-node is installed by the test itself (`npm install --ignore-scripts`, into the
pytest cache folder, reused by later runs) unless runtime/js/node_modules already has it.
Skipped where node or npm is not installed.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

import numpy as np
import pytest

from tests.conftest import REPO_ROOT
from vad.core.postprocess import PostprocessConfig, SegmentTracker

JS_DIR = REPO_ROOT / "runtime" / "js"
DEMO = REPO_ROOT / "tests" / "data" / "demo.opus"
MODEL = REPO_ROOT / "models" / "default.onnx"
PROBABILITY_TOLERANCE = 1e-4
NPM_TIMEOUT_S = 600


@pytest.fixture(scope="module")
def js_client(request, tmp_path_factory):
    """A folder with the client's files and a node_modules that holds onnxruntime-node."""
    if shutil.which("node") is None or shutil.which("npm") is None:
        pytest.skip("node/npm not installed")
    version = json.loads((JS_DIR / "package.json").read_text())["dependencies"]["onnxruntime-node"]
    modules = JS_DIR / "node_modules"
    if not (modules / "onnxruntime-node" / "package.json").is_file():
        cache = request.config.cache.mkdir(f"js-onnxruntime-node-{version}")
        modules = cache / "node_modules"
        if not (modules / "onnxruntime-node" / "package.json").is_file():
            # the package's install script downloads from a host that may be unreachable; the CPU
            # binaries are inside the npm package itself
            run = subprocess.run(
                ["npm", "install", "--ignore-scripts", "--no-audit", "--no-fund", "--no-save", "--prefix", str(cache),
                 f"onnxruntime-node@{version}"],
                capture_output=True, text=True, timeout=NPM_TIMEOUT_S,
            )
            assert run.returncode == 0, f"npm install onnxruntime-node@{version} failed:\n{run.stderr[-2000:]}"
    folder = tmp_path_factory.mktemp("js")
    for path in JS_DIR.iterdir():
        if path.suffix in (".mjs", ".json"):
            shutil.copy(path, folder / path.name)
    (folder / "node_modules").symlink_to(modules, target_is_directory=True)
    return folder


@pytest.fixture(scope="module")
def demo_wav(tmp_path_factory):
    sf = pytest.importorskip("soundfile")
    samples, rate = sf.read(DEMO, dtype="float32")
    path = tmp_path_factory.mktemp("wav") / "demo.wav"
    sf.write(path, samples, rate, subtype="FLOAT")
    return path


def _node(js_client, *args, timeout=120):
    run = subprocess.run(["node", str(js_client / "vad_stream.mjs"), *map(str, args)], capture_output=True,
                         text=True, timeout=timeout)
    assert run.returncode == 0, run.stderr
    return run


def test_js_client_matches_the_python_runtime_and_vad_label(js_client, demo_wav, tmp_path):
    from vad.apps.labeling import label_file

    run = _node(js_client, "--model", MODEL, "--json", "--probabilities", demo_wav)
    got = json.loads(run.stdout)
    assert "us per 10 ms call" in run.stderr
    python = label_file(demo_wav, model=MODEL)  # the Python runtime, the model's own defaults
    js_probs = np.array(got["probabilities"], dtype=np.float32)
    assert js_probs.shape == python.probabilities.shape == (DEMO_FRAMES,)
    assert np.max(np.abs(js_probs - python.probabilities)) <= PROBABILITY_TOLERANCE
    assert js_probs.max() > 0.9 and js_probs.min() < 0.1  # speech and non-speech in the demo

    out = tmp_path / "labels"
    label = subprocess.run([sys.executable, "-m", "vad", "label", str(demo_wav), "--model", str(MODEL),
                            "--format", "json", "-o", str(out)], capture_output=True, text=True, cwd=REPO_ROOT)
    assert label.returncode == 0, label.stderr
    (label_json,) = out.glob("*.json")
    want = json.loads(label_json.read_text())["segments"]
    assert len(want) >= 2
    assert [(round(s["start_s"], 6), round(s["end_s"], 6)) for s in got["segments"]] == [
        (round(s["start_s"], 6), round(s["end_s"], 6)) for s in want]
    for g, w in zip(got["segments"], want, strict=True):
        assert abs(g["probability"] - w["probability"]) <= 1e-3  # vad label rounds to 4 decimals
    assert got["postprocess"] == json.loads(label_json.read_text())["postprocess"]

    text = _node(js_client, "--model", MODEL, demo_wav).stdout.splitlines()
    assert len(text) == len(want) and all(line.startswith("speech ") for line in text)


DEMO_FRAMES = 1690  # 16.9 s at 10 ms


def test_js_client_reports_bad_input_clearly(js_client, tmp_path):
    sf = pytest.importorskip("soundfile")
    wav8k = tmp_path / "8k.wav"
    sf.write(wav8k, np.zeros(800, np.int16), 8000, subtype="PCM_16")
    run = subprocess.run(["node", str(js_client / "vad_stream.mjs"), "--model", str(MODEL), str(wav8k)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "8000 Hz" in run.stderr and "resample" in run.stderr
    not_wav = tmp_path / "x.wav"
    not_wav.write_bytes(b"not a wav file at all")
    run = subprocess.run(["node", str(js_client / "vad_stream.mjs"), "--model", str(MODEL), str(not_wav)],
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "not a WAV file" in run.stderr
    run = subprocess.run(["node", str(js_client / "vad_stream.mjs"), "--model", str(REPO_ROOT / "README.md"),
                          str(not_wav)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 1 and "README.md" in run.stderr


_DRIVER = """
import { readFileSync } from "node:fs";
import { SegmentTracker } from "./postprocess.mjs";
const cases = JSON.parse(readFileSync(process.argv[2], "utf8"));
const out = cases.map(({ config, hop_s, chunks }) => {
  const tracker = new SegmentTracker(config, hop_s);
  const events = [];
  for (const chunk of chunks) events.push(...tracker.push(chunk));
  events.push(...tracker.flush());
  return events.map((e) => [e.kind, e.startFrame, e.endFrame, e.meanProbability]);
});
console.log(JSON.stringify(out));
"""


def test_js_postprocess_port_emits_the_same_events_as_python(js_client, tmp_path):
    rng = np.random.default_rng(7)
    configs = [
        PostprocessConfig(),
        PostprocessConfig(max_speech_s=0.25, speech_pad_ms=30.0),
        PostprocessConfig(min_speech_ms=0.0, min_silence_ms=0.0, speech_pad_ms=120.0),
        PostprocessConfig(onset_threshold=0.7, offset_threshold=0.2, min_speech_ms=50, min_silence_ms=40,
                          speech_pad_ms=25.0, max_speech_s=0.12),  # 2.5 frames of padding: rounds half to even
    ]
    cases, want = [], []
    for k, config in enumerate(configs):
        # runs of speech-like and silence-like values, with ties (repeated values) for the split's argmin
        runs = [np.full(int(rng.integers(1, 40)), float(rng.choice([0.05, 0.3, 0.5, 0.8, 0.95]))) for _ in range(60)]
        probs = np.clip(np.concatenate(runs) + rng.choice([0.0, 0.1], size=sum(map(len, runs))) * rng.random(),
                        0.0, 1.0).astype(np.float32)
        cuts = np.sort(rng.integers(0, probs.size, size=25))
        chunks = [c.tolist() for c in np.split(probs, cuts)]
        tracker = SegmentTracker(config, 0.01)
        events = [e for chunk in chunks for e in tracker.push(np.array(chunk, dtype=np.float32))] + tracker.flush()
        want.append([[e.kind, e.start_frame, e.end_frame, e.mean_probability] for e in events])
        assert sum(e.kind == "end" for e in events) >= 3, k
        cases.append({"config": config.to_dict(), "hop_s": 0.01, "chunks": chunks})
    (tmp_path / "cases.json").write_text(json.dumps(cases))
    driver = js_client / "driver.mjs"
    driver.write_text(_DRIVER)
    run = subprocess.run(["node", str(driver), str(tmp_path / "cases.json")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == want


def test_model_card_javascript_example_runs(js_client):
    from vad.runtime.model import VADModel

    from tests.test_model_card import card_example

    code = card_example("js", "JavaScript with onnxruntime-node")
    assert len(code.strip().splitlines()) <= 14
    (js_client / "example.mjs").write_text(code)
    shutil.copy(MODEL, js_client / "default.onnx")
    run = subprocess.run(["node", "example.mjs"], cwd=js_client, capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    printed = np.array([float(line.split()[1]) for line in run.stdout.splitlines()])
    model = VADModel(MODEL, backend="onnxruntime")
    want, _ = model.run(np.zeros(16000, np.float32), model.initial_state())
    assert printed.shape == (100,) and np.max(np.abs(printed - want)) <= 5e-4 + 1e-4


def test_js_priming_port_builds_the_python_pre_roll(js_client):
    from vad.core import priming

    driver = js_client / "priming_driver.mjs"
    driver.write_text(
        'import { PRIME_HOPS, PRIME_OPENING_HOPS, primeSamples } from "./priming.mjs";\n'
        "const opening = Float32Array.from({ length: 3 * 160 + 7 }, (_, i) => Math.sin(i * 0.37) * (1 + i / 100));\n"
        "console.log(JSON.stringify({ PRIME_HOPS, PRIME_OPENING_HOPS, opening: Array.from(opening),\n"
        "  pre: Array.from(primeSamples(opening, 160)) }));\n")
    run = subprocess.run(["node", str(driver)], capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    got = json.loads(run.stdout)
    assert (got["PRIME_HOPS"], got["PRIME_OPENING_HOPS"]) == (priming.PRIME_HOPS, priming.PRIME_OPENING_HOPS)
    want = priming.prime_samples(np.array(got["opening"], dtype=np.float32), 160)
    np.testing.assert_array_equal(np.array(got["pre"], dtype=np.float32), want)


def test_js_leveling_port_scales_as_python_does(js_client):
    from vad.core.leveling import LevelingConfig, LevelState, level_hops

    cfg = LevelingConfig(target_dbfs=-23.0, max_gain_db=15.0, attack_ms=40.0, release_ms=900.0)
    rng = np.random.default_rng(3)
    x = (rng.standard_normal(60 * 160) * np.repeat(10 ** (rng.uniform(-70, -5, 60) / 20), 160)).astype(np.float32)
    driver = js_client / "leveling_driver.mjs"
    driver.write_text(
        'import { readFileSync } from "node:fs";\nimport { makeLeveler } from "./leveling.mjs";\n'
        "const { config, samples } = JSON.parse(readFileSync(process.argv[2], 'utf8'));\n"
        "const leveler = makeLeveler(config, 0.01);\nconst x = Float32Array.from(samples);\n"
        "const a = leveler.apply(x.subarray(0, 1600), 160), b = leveler.apply(x.subarray(1600), 160);\n"
        "console.log(JSON.stringify([...a, ...b]));\n")
    (js_client / "leveling_case.json").write_text(json.dumps({"config": cfg.to_dict(), "samples": x.tolist()}))
    run = subprocess.run(["node", str(driver), str(js_client / "leveling_case.json")], capture_output=True, text=True,
                         timeout=60)
    assert run.returncode == 0, run.stderr
    want, _ = level_hops(x, 160, cfg.coefficients(0.01), LevelState())
    np.testing.assert_allclose(np.array(json.loads(run.stdout), dtype=np.float32), want, rtol=1e-6)
