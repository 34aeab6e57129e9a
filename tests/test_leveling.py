"""Input leveling (vad.core.leveling): the definition, the metadata field, and the engine's numba
and onnxruntime paths against the definition (a leveled stream is the raw network run on the
leveled pre-roll and stream), whatever the chunking."""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.runtime_models import random_model_path  # noqa: F401
from tests.test_runtime import FAST_PP, HOP, RATE, bursts, run_stream
from vad.core.errors import InvalidInputError, ModelFileError
from vad.core.leveling import LevelingConfig, LevelState, level_hops, level_stream
from vad.core.priming import PRIME_HOPS, PRIME_OPENING_HOPS, prime_samples


def with_leveling(source, target, leveling: dict | None) -> str:
    """A copy of the model file ``source`` whose metadata has ``leveling`` (any JSON value)."""
    from vad.runtime.onnxproto import append_metadata_props, read_metadata_props

    from vad.core.modelmeta import METADATA_KEY, SCHEMA_KEY

    data = source.read_bytes()
    props = read_metadata_props(data)
    meta = json.loads(props[METADATA_KEY])
    meta["leveling"] = leveling
    target.write_bytes(append_metadata_props(data, {SCHEMA_KEY: props[SCHEMA_KEY], METADATA_KEY: json.dumps(meta)}))
    return str(target)


@pytest.fixture(scope="module")
def leveled_path(random_model_path, tmp_path_factory):  # noqa: F811
    return with_leveling(random_model_path, tmp_path_factory.mktemp("lev") / "leveled.onnx", LevelingConfig().to_dict())


def test_level_hops_brings_a_steady_level_to_the_target_within_the_gain_limit():
    cfg = LevelingConfig(target_dbfs=-20.0, max_gain_db=30.0, attack_ms=50.0, release_ms=1000.0)
    coeffs = cfg.coefficients(HOP / RATE)
    rng = np.random.default_rng(0)
    quiet = (rng.standard_normal(100 * HOP) * 10 ** (-45 / 20)).astype(np.float32)  # -45 dBFS noise
    y, state = level_hops(quiet, HOP, coeffs, LevelState())
    assert y.dtype == np.float32 and state.started
    out_db = 10 * np.log10(np.mean(y[-20 * HOP :].astype(np.float64) ** 2))
    assert abs(out_db - -20.0) < 0.5
    very_quiet = quiet * np.float32(1e-3)  # -105 dBFS: the gain stops at +30 dB
    y, _ = level_hops(very_quiet, HOP, coeffs, LevelState())
    np.testing.assert_allclose(y[-HOP:], very_quiet[-HOP:] * 10 ** (30 / 20), rtol=1e-5)
    # a loud burst is followed fast (attack), a quiet stretch after it slowly (release)
    burst = np.concatenate([quiet, quiet * np.float32(100.0), quiet])
    y, _ = level_hops(burst, HOP, coeffs, LevelState())
    gains = np.sqrt(np.mean(y.reshape(-1, HOP).astype(np.float64) ** 2, 1) / np.mean(
        burst.reshape(-1, HOP).astype(np.float64) ** 2, 1))
    assert gains[110] < gains[99] / 20  # within 100 ms of the burst: most of its 40 dB taken off
    assert gains[210] < gains[99] / 5  # 100 ms after it: still low (release 1 s)
    # split anywhere on a hop boundary, the tracker carries over
    state = LevelState()
    parts = [level_hops(burst[a:b], HOP, coeffs, state)[0] for a, b in ((0, 50 * HOP), (50 * HOP, burst.size))]
    np.testing.assert_array_equal(np.concatenate(parts), level_hops(burst, HOP, coeffs, LevelState())[0])
    with pytest.raises(InvalidInputError, match="whole number"):
        level_hops(quiet[:-1], HOP, coeffs, LevelState())


def test_level_stream_is_the_leveling_a_primed_runtime_stream_gets():
    """level_stream (what training mixtures and dev features go through): the tracker run over the
    stream's pre-roll, then the stream, whole hops only; unprimed, the stream alone."""
    coeffs = LevelingConfig(target_dbfs=-26.0, attack_ms=3000.0, release_ms=30000.0).coefficients(HOP / RATE)
    x = (bursts(3.0, seed=4) / 32768.0 * 0.05).astype(np.float32)
    x = np.concatenate([x, x[:77]])  # a partial hop at the end: dropped
    whole = x[: x.size // HOP * HOP]
    primed = np.concatenate([prime_samples(whole[: PRIME_OPENING_HOPS * HOP], HOP), whole])
    want = level_hops(primed, HOP, coeffs, LevelState())[0][PRIME_HOPS * HOP :]
    got = level_stream(x, HOP, coeffs)
    assert got.dtype == np.float32
    np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(level_stream(x, HOP, coeffs, primed=False), level_hops(whole, HOP, coeffs, LevelState())[0])
    assert level_stream(x[:0], HOP, coeffs).size == 0


def test_leveling_config_validates_and_lives_in_the_metadata(random_model_path, tmp_path):  # noqa: F811
    from vad.runtime.model import VADModel

    assert LevelingConfig.from_dict(LevelingConfig().to_dict()) == LevelingConfig()
    for bad in ({"target_dbfs": "loud"}, {"attack_ms": 0.0}, {"max_gain_db": -1.0}, {"gain": 3.0}):
        with pytest.raises(InvalidInputError):
            LevelingConfig.from_dict(bad)
    plain = VADModel(random_model_path)
    assert plain.metadata.leveling is None and "leveling" not in plain.metadata.to_dict()
    cfg = {"target_dbfs": -24.0, "max_gain_db": 12.0, "attack_ms": 40.0, "release_ms": 2000.0}
    model = VADModel(with_leveling(random_model_path, tmp_path / "a.onnx", cfg))
    assert model.metadata.leveling == LevelingConfig(**cfg) and model.metadata.to_dict()["leveling"] == cfg
    assert VADModel(with_leveling(random_model_path, tmp_path / "b.onnx", None)).metadata.leveling is None
    with pytest.raises(ModelFileError, match="leveling"):
        VADModel(with_leveling(random_model_path, tmp_path / "c.onnx", {"attack_ms": -5.0}))


@pytest.mark.parametrize("backend", ["numba", "onnxruntime"])
def test_a_leveled_stream_is_the_network_on_the_leveled_pre_roll_and_stream(backend, leveled_path, random_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import VADModel

    model = VADModel(leveled_path, backend=backend)
    raw = VADModel(leveled_path, backend="onnxruntime")
    audio = (bursts(3.0, seed=12) * 0.02).astype(np.int16)  # quiet: the leveling raises it
    x = (audio / 32768.0).astype(np.float32)
    x = x[: x.size // HOP * HOP]
    coeffs = model.metadata.leveling.coefficients(HOP / RATE)
    leveled, _ = level_hops(np.concatenate([prime_samples(x[: PRIME_OPENING_HOPS * HOP], HOP), x]), HOP, coeffs,
                            LevelState())
    want = raw.run(leveled, raw.initial_state())[0][PRIME_HOPS:]
    vad = StreamingVAD(model, RATE, postprocess=FAST_PP)
    whole = run_stream(vad, audio, None)
    assert np.max(np.abs(whole[0] - want)) <= 1e-5
    for chunk in (1, 160, 333, 16000):
        got = run_stream(vad, audio, chunk)
        if backend == "numba":
            np.testing.assert_array_equal(got[0], whole[0], err_msg=f"chunk {chunk}")
        else:
            assert np.max(np.abs(got[0] - whole[0])) <= 1e-6
        assert got[3] == whole[3]
    # leveling=False, and a model without leveling, run the stream as it is
    off = run_stream(StreamingVAD(model, RATE, postprocess=FAST_PP, leveling=False), audio, 480)[0]
    plain = run_stream(StreamingVAD(VADModel(random_model_path, backend=backend), RATE, postprocess=FAST_PP), audio,
                       480)[0]
    assert np.max(np.abs(off - plain)) <= 1e-6 and np.max(np.abs(off - whole[0])) > 1e-3
    with pytest.raises(InvalidInputError, match="leveling"):
        StreamingVAD(model, RATE, leveling=1)
