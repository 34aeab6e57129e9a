"""The sample contract of ``vad.core.features``, on every path that takes samples.

int16 is 16-bit PCM, int32 is 32-bit PCM, float is full scale +-1.0 up to
``MAX_FLOAT_SAMPLE_MAGNITUDE``; every other dtype, and every non-finite or louder float, is
rejected with a message that says what to do, before any stream state changes. Issue 13,
bugs 3 and 4.
"""

from __future__ import annotations

import numpy as np
import pytest
import soundfile

from vad.core.audio import StreamResampler, load_audio, resample
from vad.core.errors import AudioFileError, InvalidInputError
from vad.core.features import MAX_FLOAT_SAMPLE_MAGNITUDE, logmel

RATE_HZ = 16000
HIGH_RATE_HZ = 48000
LIMIT = MAX_FLOAT_SAMPLE_MAGNITUDE


def _speechy(n: int, seed: int = 0) -> np.ndarray:
    """int16 noise bursts: loud enough that a wrong scale changes every feature."""
    rng = np.random.default_rng(seed)
    gains = np.repeat(rng.choice([0.01, 0.3], size=n // 1600 + 1), 1600)[:n]
    return (np.clip(rng.standard_normal(n) * gains, -1, 1) * 32767).astype(np.int16)


@pytest.fixture(scope="module")
def frontend():
    from vad.runtime.frontend import StreamingLogMel

    return StreamingLogMel()


@pytest.fixture(scope="module")
def model():
    from vad.runtime.model import VADModel

    return VADModel(None)  # the shipped default model (torch-free)


def _stream_probs(model, samples: np.ndarray, rate_hz: int, chunk: int = 4800, **options) -> np.ndarray:
    from vad.runtime.engine import StreamingVAD

    vad = StreamingVAD(model, rate_hz, **options)
    out = [vad.process(samples[i : i + chunk]).probabilities for i in range(0, samples.size, chunk)]
    out.append(vad.flush().probabilities)
    return np.concatenate(out)


# --- accepted dtypes: int16, int32 and floats all mean the same signal ---------------------------


def _same_signal_in(dtype: str, pcm16: np.ndarray) -> np.ndarray:
    if dtype == "int16":
        return pcm16
    if dtype == "int32":
        return pcm16.astype(np.int32) << 16  # 32-bit PCM of the same waveform
    return (pcm16 / 32768.0).astype(dtype)


@pytest.mark.parametrize("dtype", ["int16", "int32", "float32", "float64"])
def test_accepted_dtypes_mean_one_waveform_on_every_path(dtype, frontend, model):
    pcm16 = _speechy(RATE_HZ)
    x = _same_signal_in(dtype, pcm16)
    unit = pcm16 / 32768.0
    tol = 1e-6 if dtype == "float32" else 0.0  # float32 rounds the samples themselves
    reference = logmel(unit)
    np.testing.assert_allclose(logmel(x), reference, atol=1e-3 if tol else 0.0)
    frontend.reset()
    np.testing.assert_allclose(frontend.process(x), reference, atol=1e-3 if tol else 0.0)
    np.testing.assert_allclose(resample(x, RATE_HZ, 8000), resample(unit, RATE_HZ, 8000), atol=tol or 1e-7)
    stream = StreamResampler(RATE_HZ, HIGH_RATE_HZ)
    out = np.concatenate([stream.process(x), stream.flush()])
    np.testing.assert_allclose(out, resample(unit, RATE_HZ, HIGH_RATE_HZ), atol=tol or 1e-7)
    probs = _stream_probs(model, x, RATE_HZ)
    np.testing.assert_allclose(probs, _stream_probs(model, unit, RATE_HZ), atol=1e-4)
    # the network hears the level (without the input leveling, whose job is to even it out): the same
    # bursts 48 dB quieter score differently
    loud, quiet = (_stream_probs(model, v, RATE_HZ, leveling=False) for v in (unit, unit / 256.0))
    assert np.max(np.abs(loud - quiet)) > 0.01


def test_torch_front_end_follows_the_same_dtypes():
    torch = pytest.importorskip("torch")
    from vad.training.features import logmel_torch

    pcm16 = _speechy(4000)
    reference = logmel(pcm16)
    for dtype in ("int16", "int32", "float64"):
        out = logmel_torch(torch.from_numpy(_same_signal_in(dtype, pcm16)))[0].numpy()
        assert np.max(np.abs(out - reference)) <= 1e-4, dtype
    for bad in (torch.from_numpy(pcm16.astype(np.int64)), torch.from_numpy(pcm16.astype(np.int8))):
        with pytest.raises(InvalidInputError, match=r"int16 \(16-bit PCM\)"):
            logmel_torch(bad)
    loud = torch.zeros(2, 400, dtype=torch.float64)
    loud[1, 7] = 1e36
    with pytest.raises(InvalidInputError, match=r"1e\+36 at index \(1, 7\)"):
        logmel_torch(loud)


# --- rejected dtypes: a message that says how to convert -----------------------------------------

_LIST_OF_INTS = [0, 1200, -3000, 32767, -32768] * 400  # what a user holds after json / csv / tolist


@pytest.mark.parametrize(
    "samples, hint",
    [
        (np.array(_LIST_OF_INTS), r"fit 16-bit PCM: pass x\.astype\(np\.int16\)"),  # int64
        (np.array(_LIST_OF_INTS, dtype=np.int64) * 256, r"x / 2\*\*23 for 24-bit"),  # 24-bit values
        (np.full(2000, -100, dtype=np.int8), r"8-bit PCM, pass x\.astype\(np\.float32\) / 128"),
        (np.full(2000, 128, dtype=np.uint8), r"8-bit PCM, pass \(x\.astype\(np\.float32\) - 128\) / 128"),
        (np.full(2000, 40000, dtype=np.uint16), r"float samples in \[-1, 1\]"),
        (np.zeros(2000, dtype=np.uint32), "uint32"),
        (np.zeros(2000, dtype=np.uint64), "uint64"),
        (np.zeros(2000, dtype=bool), "bool"),
        (np.zeros(2000, dtype=np.complex64), "complex64"),
    ],
    ids=["int64", "int64-24bit", "int8", "uint8", "uint16", "uint32", "uint64", "bool", "complex64"],
)
def test_other_dtypes_are_rejected_everywhere_saying_how_to_convert(samples, hint, frontend, model):
    from vad.runtime.engine import StreamingVAD

    contract = r"must be float \(full scale \+-1\.0\), int16 \(16-bit PCM\) or int32 \(32-bit PCM\)"
    calls = {
        "logmel": lambda: logmel(samples),
        "StreamingLogMel": lambda: frontend.process(samples),
        "resample": lambda: resample(samples, HIGH_RATE_HZ, RATE_HZ),
        "StreamResampler": lambda: StreamResampler(HIGH_RATE_HZ, RATE_HZ).process(samples),
    }
    for rate_hz in (RATE_HZ, HIGH_RATE_HZ):
        vad = StreamingVAD(model, rate_hz)
        calls[f"StreamingVAD@{rate_hz}"] = lambda vad=vad: vad.process(samples)
        calls[f"StreamingVAD@{rate_hz}.process_signal"] = lambda vad=vad: vad.process_signal(samples)
    frontend.reset()
    for where, call in calls.items():
        with pytest.raises(InvalidInputError, match=contract) as info:
            call()
        assert str(samples.dtype) in str(info.value), where
        assert __import__("re").search(hint, str(info.value)), f"{where}: {info.value}"
    assert frontend.samples_consumed == 0


# --- the float range: rejected before any state changes, with a position -------------------------


def test_huge_float_at_48k_is_rejected_and_the_stream_goes_on_unharmed(model):
    """1e36 used to pass validation and turn soxr's single-precision state into NaN."""
    from vad.runtime.engine import StreamingVAD

    audio = (_speechy(HIGH_RATE_HZ * 2, seed=3) / 32768.0).astype(np.float32)
    clean = _stream_probs(model, audio, HIGH_RATE_HZ)
    vad = StreamingVAD(model, HIGH_RATE_HZ)
    loud = np.full(4800, 1e36, dtype=np.float32)
    loud[:10] = 0.0
    parts = []
    for i in range(0, audio.size, 4800):
        with pytest.raises(InvalidInputError, match=r"chunk has a value of 1e\+36 at index 10, beyond the accepted"):
            vad.process(loud)
        parts.append(vad.process(audio[i : i + 4800]).probabilities)
    parts.append(vad.flush().probabilities)
    np.testing.assert_array_equal(np.concatenate(parts), clean)  # not one sample lost, no NaN


@pytest.mark.parametrize("rate_hz", [RATE_HZ, 8000, HIGH_RATE_HZ])
def test_the_float_bound_is_inclusive_and_one_place(rate_hz, model, frontend):
    from vad.runtime.engine import StreamingVAD

    vad = StreamingVAD(model, rate_hz)
    # a step from -LIMIT to +LIMIT: the resampler's filter overshoots it (Gibbs, ~17 %), and
    # what the resampler hands on must still be accepted by the front end after it
    at_limit = np.repeat([-LIMIT, LIMIT], rate_hz // 10)
    assert np.isfinite(vad.process(at_limit).probabilities).all()
    assert np.isfinite(vad.flush().probabilities).all()
    vad.reset()
    just_over = np.zeros(480)
    just_over[5] = np.nextafter(LIMIT, np.inf)
    for call in (lambda: vad.process(just_over), lambda: frontend.process(just_over), lambda: logmel(just_over),
                 lambda: StreamResampler(rate_hz, 8000).process(just_over)):
        with pytest.raises(InvalidInputError, match=r"at index 5, beyond the accepted \+-1000 for float samples"):
            call()


def test_process_signal_names_the_position_in_the_signal_and_consumes_nothing(model):
    from vad.runtime.engine import StreamingVAD

    vad = StreamingVAD(model, HIGH_RATE_HZ)
    signal = np.zeros(HIGH_RATE_HZ * 40, dtype=np.float32)  # longer than one 30 s internal chunk
    bad = HIGH_RATE_HZ * 35 + 12
    signal[bad] = np.nan
    with pytest.raises(InvalidInputError, match=rf"non-finite value \(nan\) at sample {bad} \(35\.000 s\)"):
        vad.process_signal(signal)
    assert vad.frames_processed == 0 and vad.samples_received == 0


@pytest.mark.parametrize("value, fragment", [(1e36, r"a value of 1e\+36"), (np.inf, r"a non-finite value \(inf\)")])
@pytest.mark.parametrize("channels", [1, 2])
def test_a_float_file_with_a_bad_sample_names_sample_and_second(tmp_path, value, fragment, channels):
    data = np.zeros((HIGH_RATE_HZ * 2, channels), dtype=np.float32)
    bad = HIGH_RATE_HZ + HIGH_RATE_HZ // 4  # 1.25 s
    data[bad:, channels - 1] = value  # the last channel goes bad
    path = tmp_path / "loud.wav"
    soundfile.write(path, data, HIGH_RATE_HZ, subtype="FLOAT")
    for target in (None, RATE_HZ):
        with pytest.raises(AudioFileError, match=rf"loud\.wav: contains {fragment} at sample {bad} \(1\.250 s\)"):
            load_audio(path, target)
