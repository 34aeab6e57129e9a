"""FeatureSpec, the mel filterbank, and parity of the three log-mel front ends.

numpy reference (vad.core.features.logmel), torch batch (training.features.logmel_torch) and numba
streaming (runtime.frontend.StreamingLogMel) must agree to <= 1e-4 on log-mel for synthetic and
real audio, whatever the streaming chunk size.
"""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest
from vad.runtime.frontend import StreamingLogMel

from tests.conftest import REPO_ROOT
from vad.core.errors import InvalidFeatureSpecError, InvalidInputError
from vad.core.features import FeatureSpec, logmel, mel_filterbank

TOLERANCE = 1e-4
CHUNK_SIZES = (1, 7, 160, 512, 4096, None)  # None = the whole signal in one call
RATE_HZ = 16000


# --- FeatureSpec --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(),
        FeatureSpec(sample_rate_hz=8000, win_length_samples=200, hop_length_samples=80, n_fft=256,
                    n_mels=24, fmin_hz=0.0, fmax_hz=4000.0, log_floor=1e-8),
    ],
)
def test_feature_spec_json_round_trip(spec):
    text = spec.to_json()
    assert FeatureSpec.from_json(text) == spec
    assert FeatureSpec.from_dict(json.loads(text)) == spec
    assert json.loads(text)["version"] == 1


def test_feature_spec_defaults_are_25ms_window_10ms_hop_at_16k():
    spec = FeatureSpec()
    assert spec.sample_rate_hz == 16000
    assert spec.win_length_samples / spec.sample_rate_hz == pytest.approx(0.025)
    assert spec.hop_s == pytest.approx(0.010)
    assert spec.n_frames(16000) == 100 and spec.n_frames(159) == 0


@pytest.mark.parametrize(
    "field, value, fragment",
    [
        ("sample_rate_hz", 0, "sample_rate_hz"),
        ("sample_rate_hz", 16000.5, "sample_rate_hz"),
        ("win_length_samples", True, "win_length_samples"),
        ("hop_length_samples", 401, "hop_length_samples"),
        ("n_fft", 256, "n_fft"),
        ("n_mels", 0, "n_mels"),
        ("n_mels", 300, "n_mels"),
        ("fmin_hz", -1.0, "fmin_hz"),
        ("fmax_hz", 9000.0, "fmax_hz"),
        ("fmax_hz", float("nan"), "fmax_hz"),
        ("log_floor", 0.0, "log_floor"),
        ("log_floor", "1e-10", "log_floor"),
    ],
)
def test_feature_spec_rejects_bad_values_naming_the_field(field, value, fragment):
    with pytest.raises(InvalidFeatureSpecError, match=fragment):
        FeatureSpec(**{field: value})


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("{not json", "not valid JSON"),
        ("[1, 2]", "JSON object"),
        (json.dumps({**FeatureSpec().to_dict(), "version": 99}), "version"),
        (json.dumps({**FeatureSpec().to_dict(), "mystery": 1}), "mystery"),
        (json.dumps({k: v for k, v in FeatureSpec().to_dict().items() if k != "n_mels"}), "n_mels"),
    ],
)
def test_feature_spec_from_json_rejects_malformed_text(text, fragment):
    with pytest.raises(InvalidFeatureSpecError, match=fragment):
        FeatureSpec.from_json(text)


# --- mel filterbank against librosa -------------------------------------------------------------


@pytest.mark.parametrize(
    "spec",
    [
        FeatureSpec(),
        FeatureSpec(n_mels=64, fmin_hz=0.0),
        FeatureSpec(n_mels=80, n_fft=1024, fmin_hz=20.0, fmax_hz=7600.0),
        FeatureSpec(sample_rate_hz=8000, win_length_samples=200, hop_length_samples=80, n_fft=256,
                    n_mels=32, fmin_hz=50.0, fmax_hz=4000.0),
        FeatureSpec(sample_rate_hz=22050, win_length_samples=551, hop_length_samples=220, n_fft=1024,
                    n_mels=128, fmin_hz=0.0, fmax_hz=11025.0),
    ],
)
def test_mel_filterbank_equals_librosa(spec):
    librosa = pytest.importorskip("librosa")
    expected = librosa.filters.mel(sr=spec.sample_rate_hz, n_fft=spec.n_fft, n_mels=spec.n_mels,
                                   fmin=spec.fmin_hz, fmax=spec.fmax_hz, htk=False, norm="slaney",
                                   dtype=np.float64)
    ours = mel_filterbank(spec)
    assert ours.shape == expected.shape == (spec.n_mels, spec.n_bins)
    np.testing.assert_allclose(ours, expected, rtol=1e-9, atol=1e-12)


# --- parity of the three implementations ------------------------------------------------------


@pytest.fixture(scope="module")
def frontend() -> StreamingLogMel:
    return StreamingLogMel(FeatureSpec())


def _stream(frontend: StreamingLogMel, signal: np.ndarray, chunk: int | None) -> np.ndarray:
    frontend.reset()
    if chunk is None:
        out = frontend.process(signal)
    else:
        out = np.concatenate(
            [frontend.process(signal[i:i + chunk]) for i in range(0, signal.size, chunk)]
            or [np.zeros((0, frontend.spec.n_mels), np.float32)]
        )
    assert out.dtype == np.float32
    assert frontend.frames_emitted == out.shape[0] == frontend.spec.n_frames(signal.size)
    assert frontend.pending_samples == signal.size % frontend.spec.hop_length_samples
    return out


def _torch(signal: np.ndarray, spec: FeatureSpec) -> np.ndarray:
    torch = pytest.importorskip("torch")
    from vad.training.features import logmel_torch

    out = logmel_torch(torch.from_numpy(signal), spec)
    assert out.dtype == torch.float32
    return out[0].numpy()


def _check_parity(frontend: StreamingLogMel, signal: np.ndarray, chunks=CHUNK_SIZES) -> np.ndarray:
    spec = frontend.spec
    reference = logmel(signal, spec)
    assert reference.shape == (spec.n_frames(signal.size), spec.n_mels)
    torch_out = _torch(signal, spec)
    assert torch_out.shape == reference.shape
    assert np.max(np.abs(torch_out - reference), initial=0.0) <= TOLERANCE
    for chunk in chunks:
        streamed = _stream(frontend, signal, chunk)
        diff = np.max(np.abs(streamed - reference), initial=0.0)
        assert diff <= TOLERANCE, f"chunk size {chunk}: max abs diff {diff}"
    return reference


def _time_s(seconds: float) -> np.ndarray:
    return np.arange(int(seconds * RATE_HZ)) / RATE_HZ


SYNTHETIC = {
    "white_noise": lambda: np.random.default_rng(1).standard_normal(2 * RATE_HZ + 77) * 0.3,
    "quiet_noise": lambda: np.random.default_rng(2).standard_normal(RATE_HZ) * 1e-4,
    "tones": lambda: sum(0.2 * np.sin(2 * np.pi * f * _time_s(2.0)) for f in (100.0, 440.0, 1000.0, 3125.0, 7900.0)),
    "chirp": lambda: 0.5 * np.sin(2 * np.pi * (50.0 + 1900.0 * _time_s(2.0)) * _time_s(2.0)),
    "full_scale_clipped": lambda: np.clip(4.0 * np.sin(2 * np.pi * 220.0 * _time_s(2.0)), -1.0, 1.0),
    "full_scale_square": lambda: np.where(np.sin(2 * np.pi * 50.0 * _time_s(1.0)) >= 0, 1.0, -1.0),
}


@pytest.mark.parametrize("name", sorted(SYNTHETIC))
def test_three_front_ends_agree_on_synthetic_audio(frontend, name):
    signal = SYNTHETIC[name]()
    _check_parity(frontend, signal)
    _check_parity(frontend, signal.astype(np.float32))


def test_silence_gives_the_log_floor_everywhere(frontend):
    silence = np.zeros(RATE_HZ + 5)
    reference = _check_parity(frontend, silence)
    np.testing.assert_array_equal(reference, np.float32(np.log(frontend.spec.log_floor)))


def test_short_signals_yield_n_over_hop_frames(frontend):
    for n in (0, 1, 159, 160, 161, 399, 400, 401):
        signal = np.random.default_rng(n).standard_normal(n)
        reference = _check_parity(frontend, signal, chunks=(1, 7, None))
        assert reference.shape[0] == n // 160


def test_random_chunking_including_empty_chunks(frontend):
    rng = np.random.default_rng(3)
    signal = rng.standard_normal(RATE_HZ) * 0.1
    reference = logmel(signal)
    frontend.reset()
    pieces, start = [], 0
    while start < signal.size:
        size = int(rng.choice([0, 1, 2, 159, 160, 161, 333, 1000]))
        pieces.append(frontend.process(signal[start:start + size]))
        start += size
    np.testing.assert_array_equal(np.concatenate(pieces), reference)


def test_int16_and_int32_input_is_scaled_like_the_reference(frontend):
    rng = np.random.default_rng(4)
    pcm16 = (rng.standard_normal(RATE_HZ) * 8000).clip(-32768, 32767).astype(np.int16)
    pcm16[:200] = -32768  # full scale
    pcm16[200:400] = 32767
    reference = _check_parity(frontend, pcm16)  # torch + numba on int16 directly
    np.testing.assert_array_equal(reference, logmel(pcm16.astype(np.float64) / 32768.0))
    pcm32 = pcm16.astype(np.int32) << 16
    for chunk in (7, None):
        np.testing.assert_array_equal(_stream(frontend, pcm32, chunk), reference)


def test_other_spec_streams_like_its_reference():
    spec = FeatureSpec(sample_rate_hz=8000, win_length_samples=201, hop_length_samples=80, n_fft=256,
                       n_mels=23, fmin_hz=0.0, fmax_hz=4000.0)
    frontend = StreamingLogMel(spec)
    signal = np.random.default_rng(5).standard_normal(8000 + 13) * 0.2
    _check_parity(frontend, signal, chunks=(1, 7, 80, 512, None))
    equal_hop_spec = FeatureSpec(win_length_samples=400, hop_length_samples=400, n_fft=512)
    _check_parity(StreamingLogMel(equal_hop_spec), signal, chunks=(1, 399, 400, None))


def test_torch_batches_match_row_by_row():
    torch = pytest.importorskip("torch")
    from vad.training.features import logmel_torch

    batch = np.random.default_rng(6).standard_normal((4, 4000)) * 0.2
    out = logmel_torch(torch.from_numpy(batch))
    assert tuple(out.shape) == (4, 25, 40)
    for row, features in zip(batch, out.numpy(), strict=True):
        assert np.max(np.abs(features - logmel(row))) <= TOLERANCE
    assert tuple(logmel_torch(torch.zeros(2, 100)).shape) == (2, 0, 40)


def test_reset_restarts_the_stream(frontend):
    signal = np.random.default_rng(7).standard_normal(5000) * 0.1
    frontend.reset()
    first = frontend.process(signal)
    frontend.process(signal[:123])
    frontend.reset()
    assert frontend.frames_emitted == 0 and frontend.pending_samples == 0 and frontend.samples_consumed == 0
    np.testing.assert_array_equal(frontend.process(signal), first)


def test_process_into_writes_the_preallocated_output(frontend):
    signal = np.random.default_rng(8).standard_normal(1000).astype(np.float32)
    expected = logmel(signal)
    frontend.reset()
    out = np.full((8, 40), np.nan, dtype=np.float32)
    assert frontend.frames_for(500) == 3
    assert frontend.process_into(signal[:500], out) == 3
    assert frontend.process_into(signal[500:], out[3:]) == 3
    np.testing.assert_array_equal(out[:6], expected)
    assert np.isnan(out[6:]).all()
    with pytest.raises(InvalidInputError, match="rows"):
        frontend.process_into(np.zeros(480, np.float32), np.zeros((2, 40), np.float32))
    with pytest.raises(InvalidInputError, match="float32"):
        frontend.process_into(np.zeros(10, np.float32), np.zeros((2, 40), np.float64))


def test_strided_and_read_only_chunks_are_accepted(frontend):
    signal = np.random.default_rng(9).standard_normal(3200)
    reference = logmel(signal[::2])
    frontend.reset()
    np.testing.assert_array_equal(frontend.process(signal[::2]), reference)
    read_only = signal.copy()
    read_only.flags.writeable = False
    frontend.reset()
    np.testing.assert_array_equal(frontend.process(read_only), logmel(signal))


@pytest.mark.parametrize(
    "bad, fragment",
    [
        ([0.0, 0.1], "numpy array"),
        (np.zeros((2, 160)), r"1-D .*\(2, 160\)"),
        (np.array([0.0, np.nan, 0.2]), r"non-finite value \(nan\) at index 1"),
        (np.array([0.0, 0.1, -np.inf], dtype=np.float32), r"non-finite value \(-inf\) at index 2"),
        (np.zeros(10, dtype=np.complex64), "complex64"),
        (np.zeros(10, dtype=np.uint8), "uint8"),
        (np.zeros(10, dtype=bool), "bool"),
    ],
)
def test_streaming_rejects_bad_input_naming_it(frontend, bad, fragment):
    frontend.reset()
    with pytest.raises(InvalidInputError, match=fragment):
        frontend.process(bad)
    assert frontend.frames_emitted == 0 and frontend.pending_samples == 0  # nothing consumed


def test_streaming_rejects_a_non_spec():
    with pytest.raises(InvalidInputError, match="FeatureSpec"):
        StreamingLogMel({"sample_rate_hz": 16000})


def test_reference_and_torch_reject_bad_input_naming_it():
    torch = pytest.importorskip("torch")
    from vad.training.features import logmel_torch

    with pytest.raises(InvalidInputError, match="non-finite"):
        logmel(np.array([0.0, np.inf]))
    with pytest.raises(InvalidInputError, match="1-D"):
        logmel(np.zeros((2, 2)))
    with pytest.raises(InvalidInputError, match=r"non-finite value \(nan\) at index \(1, 2\)"):
        bad = torch.zeros(2, 400)
        bad[1, 2] = float("nan")
        logmel_torch(bad)
    with pytest.raises(InvalidInputError, match=r"\[N\] or \[B, N\]"):
        logmel_torch(torch.zeros(1, 2, 400))
    with pytest.raises(InvalidInputError, match="torch.Tensor"):
        logmel_torch(np.zeros(400))
    with pytest.raises(InvalidInputError, match="bool"):
        logmel_torch(torch.zeros(400, dtype=torch.bool))


# --- real speech from the shared data bundle ---------------------------------------------------


def _real_clips(shared_data) -> dict[str, np.ndarray]:
    from vad.core.audio import load_audio

    clips = {}
    for path in sorted((shared_data / "train" / "speech" / "librispeech-resemblyzer").glob("*.opus"))[:2]:
        clips[path.name] = load_audio(path, RATE_HZ)[0]
    narrowband = sorted((shared_data / "train" / "speech" / "fsdd").rglob("*.opus"))[:1]
    for path in narrowband:  # an 8 kHz recording upsampled to 16 kHz
        clips[path.name] = load_audio(path, RATE_HZ)[0]
    dev, _ = load_audio(shared_data / "dev" / "pyannote_sample.flac", RATE_HZ)
    clips["pyannote_sample.flac[3s:6s]"] = dev[3 * RATE_HZ:6 * RATE_HZ]
    return clips


def test_three_front_ends_agree_on_real_speech(frontend, shared_data):
    clips = _real_clips(shared_data)
    assert len(clips) >= 3
    for name, signal in clips.items():
        signal = signal[: 3 * RATE_HZ]  # keep chunk size 1 fast
        assert signal.size >= RATE_HZ // 4, name
        reference = _check_parity(frontend, signal)
        assert np.ptp(reference) > 10.0, f"{name}: features look flat, not speech"


# --- torch-free import ---------------------------------------------------------------------------


def test_runtime_frontend_imports_without_torch():
    code = "import sys; sys.modules['torch'] = None; import vad, runtime; import vad.runtime.frontend, vad.core.audio"
    result = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True,
                            timeout=300)
    assert result.returncode == 0, result.stderr
