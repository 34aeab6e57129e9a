"""Start-of-stream priming (vad.core.priming): the definition, and the engine's numba and
onnxruntime paths against it (a primed stream is the raw network run on the pre-roll and then
the stream, the pre-roll's probabilities dropped), whatever the chunking, at any length and rate,
again after reset."""

from __future__ import annotations

import numpy as np
import pytest

from tests.fixtures_models import energy_model_path  # noqa: F401
from tests.runtime_models import random_model_path  # noqa: F401
from tests.test_runtime import FAST_PP, HOP, RATE, bursts, run_stream
from vad.core.errors import InvalidInputError
from vad.core.priming import MAX_OPENING_HOPS, PRIME_HOPS, PRIME_OPENING_HOPS, prime_samples

OPENING = PRIME_OPENING_HOPS * HOP


def primed_reference(model, audio: np.ndarray) -> np.ndarray:
    """The definition: the model's raw run (its backend contract, from the zero state) over the
    pre-roll of the stream's opening followed by the stream, minus the pre-roll's frames."""
    x = (audio / 32768.0).astype(np.float32) if audio.dtype == np.int16 else audio.astype(np.float32)
    x = x[: x.size // HOP * HOP]
    if x.size < HOP:
        return np.zeros(0, np.float32)
    probs, _ = model.run(np.concatenate([prime_samples(x[:OPENING], HOP), x]), model.initial_state())
    return probs[PRIME_HOPS:]


def test_prime_samples_mirror_the_opening_backwards_from_the_start():
    rng = np.random.default_rng(0)
    opening = rng.standard_normal(3 * HOP + 17).astype(np.float32)  # a partial hop is not used
    pre = prime_samples(opening, HOP)
    assert pre.shape == (PRIME_HOPS * HOP,) and pre.dtype == np.float32
    whole = opening[: 3 * HOP]
    np.testing.assert_array_equal(pre[-3 * HOP :], whole[::-1])  # just before the start: the opening reversed
    np.testing.assert_array_equal(pre[-6 * HOP : -3 * HOP], whole)  # before that: forward again
    assert pre[-1] == opening[0]  # continuous with the stream's first sample
    np.testing.assert_array_equal(prime_samples(whole, HOP, n_hops=0), np.zeros(0, np.float32))
    for bad in (np.zeros(HOP - 1), np.zeros((2, HOP)), np.zeros(0)):
        with pytest.raises(InvalidInputError, match="at least one hop"):
            prime_samples(bad, HOP)
    with pytest.raises(InvalidInputError, match="n_hops"):
        prime_samples(whole, HOP, n_hops=-2)
    assert 1 <= PRIME_OPENING_HOPS <= MAX_OPENING_HOPS


@pytest.mark.parametrize("backend", ["numba", "onnxruntime"])
def test_a_primed_stream_is_the_network_after_the_pre_roll(backend, random_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import VADModel

    model = VADModel(random_model_path, backend=backend)
    raw = VADModel(random_model_path, backend="onnxruntime")
    audio = bursts(3.0, seed=11)
    want = primed_reference(raw, audio)
    vad = StreamingVAD(model, RATE, postprocess=FAST_PP)
    whole = run_stream(vad, audio, None)
    assert np.max(np.abs(whole[0] - want)) <= 1e-5
    np.testing.assert_array_equal(whole[1], np.arange(audio.size // HOP))  # the stream's own frame numbers
    for chunk in (1, 77, HOP, OPENING - 1, OPENING, OPENING + 1, 16000):
        got = run_stream(vad, audio, chunk)  # (run_stream resets: priming is armed again)
        if backend == "numba":
            np.testing.assert_array_equal(got[0], whole[0], err_msg=f"chunk {chunk}")
        else:
            assert np.max(np.abs(got[0] - whole[0])) <= 1e-6, f"chunk {chunk}"
        np.testing.assert_array_equal(got[1], whole[1])
        assert got[3] == whole[3], f"chunk {chunk}"
    # the opening is held back: nothing before it is complete, then its frames all at once
    vad.reset()
    assert vad.process(audio[: OPENING - 1]).probabilities.size == 0
    first = vad.process(audio[OPENING - 1 : OPENING + 10 * HOP])
    if backend == "numba":  # (onnxruntime also waits for its blocks of block_frames hops)
        assert first.first_frame == 0 and first.probabilities.size == PRIME_OPENING_HOPS + 10
    # prime=False: the raw network from the zero state
    cold = StreamingVAD(model, RATE, postprocess=FAST_PP, prime=False)
    plain, _ = raw.run((audio / 32768.0).astype(np.float32), raw.initial_state())
    assert np.max(np.abs(run_stream(cold, audio, 480)[0] - plain)) <= 1e-5
    with pytest.raises(InvalidInputError, match="prime"):
        StreamingVAD(model, RATE, prime="yes")


@pytest.mark.parametrize("backend", ["numba", "onnxruntime"])
@pytest.mark.parametrize("n", [0, HOP - 1, HOP, 3 * HOP + 5, OPENING - 1, OPENING, OPENING + HOP])
def test_streams_shorter_than_the_opening_are_primed_at_flush(backend, n, random_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import VADModel

    raw = VADModel(random_model_path, backend="onnxruntime")
    audio = bursts(1.0, seed=4)[:n]
    vad = StreamingVAD(VADModel(random_model_path, backend=backend), RATE)
    got = vad.process_signal(audio)
    want = primed_reference(raw, audio)
    assert got.probabilities.shape == want.shape == (n // HOP,)
    assert np.max(np.abs(got.probabilities - want), initial=0.0) <= 1e-5


@pytest.mark.parametrize("rate", [8000, 44100, 48000])
def test_backends_agree_on_primed_streams_at_other_rates(rate, random_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import VADModel

    audio = bursts(2.0, rate=rate, seed=6)
    fast = run_stream(StreamingVAD(VADModel(random_model_path, backend="numba"), rate), audio, 441)
    ref = run_stream(StreamingVAD(VADModel(random_model_path, backend="onnxruntime"), rate), audio, 441)
    assert fast[0].shape == ref[0].shape and np.max(np.abs(fast[0] - ref[0])) <= 1e-5
    assert [e.kind for e in fast[3]] == [e.kind for e in ref[3]]


@pytest.mark.parametrize("backend", ["numba", "onnxruntime"])
def test_the_held_opening_is_a_copy_of_a_reused_caller_buffer(backend, random_model_path):  # noqa: F811
    """An audio callback usually fills one buffer again for every chunk: the held-back opening
    must not be the caller's memory."""
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.model import VADModel

    audio = (bursts(2.0, seed=8) / 32768.0).astype(np.float32)
    vad = StreamingVAD(VADModel(random_model_path, backend=backend), RATE)
    buffer, probs = np.empty(HOP, np.float32), []
    for start in range(0, audio.size - HOP + 1, HOP):
        buffer[:] = audio[start : start + HOP]
        probs.append(vad.process(buffer).probabilities)
    probs.append(vad.flush().probabilities)
    want = primed_reference(VADModel(random_model_path, backend="onnxruntime"), audio)
    assert np.max(np.abs(np.concatenate(probs) - want)) <= 1e-5
