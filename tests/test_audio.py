"""Audio loading, resampling (whole and streaming) and the errors for bad files."""

from __future__ import annotations

import os
from fractions import Fraction

import numpy as np
import pytest
import soundfile

from vad.core.audio import StreamResampler, load_audio, resample
from vad.core.errors import AudioFileError, InvalidInputError, StreamStateError

RATE_HZ = 16000


def _tone(rate_hz: int, seconds: float, freq_hz: float = 440.0, amplitude: float = 0.5) -> np.ndarray:
    t = np.arange(int(rate_hz * seconds)) / rate_hz
    return amplitude * np.sin(2 * np.pi * freq_hz * t)


def _dominant_hz(signal: np.ndarray, rate_hz: int) -> float:
    spectrum = np.abs(np.fft.rfft(signal * np.hanning(signal.size)))
    return float(np.argmax(spectrum) * rate_hz / signal.size)


# --- formats, sample formats, rates, channels --------------------------------------------------


@pytest.mark.parametrize(
    "suffix, fmt, subtype, lossless",
    [
        (".wav", "WAV", "PCM_16", True),
        (".wav", "WAV", "PCM_32", True),
        (".wav", "WAV", "FLOAT", True),
        (".flac", "FLAC", "PCM_16", True),
        (".ogg", "OGG", "VORBIS", False),
        (".opus", "OGG", "OPUS", False),
        (".mp3", "MP3", "MPEG_LAYER_III", False),
    ],
)
@pytest.mark.parametrize("rate_hz", [8000, 16000, 22050, 44100, 48000])
def test_load_any_format_and_rate_resampled_to_16k(tmp_path, suffix, fmt, subtype, lossless, rate_hz):
    if subtype == "OPUS" and rate_hz in (22050, 44100):
        pytest.skip("Opus only encodes 8/12/16/24/48 kHz")
    if fmt == "MP3" and rate_hz == 8000 and "MP3" not in soundfile.available_formats():
        pytest.skip("this libsndfile has no MP3 support")
    path = tmp_path / f"tone{suffix}"
    signal = _tone(rate_hz, 1.0, freq_hz=440.0)
    try:
        soundfile.write(path, signal, rate_hz, format=fmt, subtype=subtype)
    except (soundfile.LibsndfileError, ValueError, TypeError) as exc:
        pytest.skip(f"this libsndfile cannot write {fmt}/{subtype} at {rate_hz} Hz: {exc}")

    native, native_rate = load_audio(path)
    assert native_rate == rate_hz and native.dtype == np.float32 and native.ndim == 1
    out, out_rate = load_audio(path, RATE_HZ)
    assert out_rate == RATE_HZ and out.dtype == np.float32 and out.ndim == 1
    assert abs(out.size - native.size * RATE_HZ / rate_hz) <= 1
    assert _dominant_hz(out, RATE_HZ) == pytest.approx(440.0, abs=2.0)
    if lossless:
        tolerance = 1e-4 if subtype == "PCM_16" else 1e-6
        np.testing.assert_allclose(native, signal, atol=tolerance)
        np.testing.assert_allclose(out, resample(signal, rate_hz, RATE_HZ), atol=tolerance)


def test_int16_and_int32_are_scaled_exactly(tmp_path):
    pcm16 = np.array([-32768, -1, 0, 1, 16384, 32767], dtype=np.int16)
    soundfile.write(tmp_path / "a.wav", pcm16, RATE_HZ, subtype="PCM_16")
    samples, _ = load_audio(tmp_path / "a.wav")
    np.testing.assert_array_equal(samples, (pcm16 / 32768.0).astype(np.float32))
    pcm32 = np.array([-(2**31), -(2**16), 0, 2**20, 2**31 - 1], dtype=np.int32)
    soundfile.write(tmp_path / "b.wav", pcm32, RATE_HZ, subtype="PCM_32")
    samples, _ = load_audio(tmp_path / "b.wav")
    np.testing.assert_array_equal(samples, (pcm32 / 2.0**31).astype(np.float32))


@pytest.mark.parametrize("channels", [2, 3, 6])
def test_multichannel_is_mixed_down_by_averaging(tmp_path, channels):
    rng = np.random.default_rng(channels)
    data = rng.uniform(-0.3, 0.3, size=(4000, channels))
    soundfile.write(tmp_path / "multi.flac", data, RATE_HZ, subtype="PCM_24")
    mono, rate = load_audio(tmp_path / "multi.flac")
    assert rate == RATE_HZ
    stored = soundfile.read(tmp_path / "multi.flac", always_2d=True)[0]
    np.testing.assert_allclose(mono, stored.mean(axis=1), atol=1e-7)
    np.testing.assert_allclose(mono, data.mean(axis=1), atol=1e-6)


def test_stereo_with_opposite_channels_cancels(tmp_path):
    left = _tone(RATE_HZ, 0.5)
    soundfile.write(tmp_path / "s.wav", np.stack([left, -left], axis=1), RATE_HZ, subtype="FLOAT")
    mono, _ = load_audio(tmp_path / "s.wav")
    np.testing.assert_array_equal(mono, np.zeros_like(mono))


def test_real_8k_opus_from_the_data_bundle(shared_data):
    path = sorted((shared_data / "train" / "speech" / "fsdd").glob("*.opus"))[0]
    native, rate = load_audio(path)
    assert rate == 8000
    upsampled, rate16 = load_audio(path, RATE_HZ)
    assert rate16 == RATE_HZ and abs(upsampled.size - 2 * native.size) <= 1
    assert np.abs(upsampled).max() > 0.01


# --- whole-signal and streaming resampling -----------------------------------------------------


def test_resample_keeps_a_tone_and_the_length():
    signal = _tone(48000, 1.0, freq_hz=1000.0)
    out = resample(signal, 48000, RATE_HZ)
    assert out.dtype == np.float32 and out.size == RATE_HZ
    expected = _tone(RATE_HZ, 1.0, freq_hz=1000.0)
    np.testing.assert_allclose(out[500:-500], expected[500:-500], atol=1e-3)  # no delay, no gain change
    same = resample(signal.astype(np.float32), 48000, 48000)
    np.testing.assert_array_equal(same, signal.astype(np.float32))
    assert resample(np.zeros(0), 44100, RATE_HZ).size == 0


@pytest.mark.parametrize("in_rate_hz", [8000, 22050, 44100, 48000])
def test_stream_resampler_equals_whole_signal_resampling(in_rate_hz):
    rng = np.random.default_rng(in_rate_hz)
    signal = (0.2 * rng.standard_normal(in_rate_hz)).astype(np.float32)
    whole = resample(signal, in_rate_hz, RATE_HZ)
    stream = StreamResampler(in_rate_hz, RATE_HZ)
    pieces, start = [], 0
    while start < signal.size:
        size = int(rng.choice([0, 1, 7, 160, 441, 1024, 4096]))
        pieces.append(stream.process(signal[start:start + size]))
        start += size
    held_back = stream.latency_samples
    assert held_back > 0
    pieces.append(stream.flush())
    streamed = np.concatenate(pieces)
    assert streamed.size == whole.size == stream.samples_out
    assert stream.samples_in == signal.size
    np.testing.assert_allclose(streamed, whole, atol=1e-6)


def test_stream_output_positions_map_back_to_input_exactly():
    in_rate_hz = 44100
    click_at = 12345
    signal = np.zeros(in_rate_hz, dtype=np.float32)
    signal[click_at] = 1.0
    stream = StreamResampler(in_rate_hz, RATE_HZ)
    out = np.concatenate([stream.process(signal[i:i + 441]) for i in range(0, signal.size, 441)] + [stream.flush()])
    peak = int(np.argmax(out))
    assert stream.input_position(peak) == Fraction(peak * in_rate_hz, RATE_HZ)
    assert abs(float(stream.input_position(peak)) - click_at) <= in_rate_hz / RATE_HZ / 2 + 1e-9
    positions = stream.input_position(np.array([0, 160, 16000]))
    np.testing.assert_array_equal(positions, [0.0, 160 * 44100 / 16000, 44100.0])


def test_stream_resampler_same_rate_is_a_pass_through():
    stream = StreamResampler(RATE_HZ, RATE_HZ)
    chunk = np.random.default_rng(0).standard_normal(100).astype(np.float32)
    np.testing.assert_array_equal(stream.process(chunk), chunk)
    assert stream.latency_samples == 0 and stream.flush().size == 0
    pcm = np.array([-32768, 16384], dtype=np.int16)
    stream.reset()
    np.testing.assert_array_equal(stream.process(pcm), [-1.0, 0.5])


def test_stream_resampler_state_errors_and_reset():
    stream = StreamResampler(48000, RATE_HZ)
    first = np.concatenate([stream.process(np.ones(4800, np.float32)), stream.flush()])
    with pytest.raises(StreamStateError, match="after flush"):
        stream.process(np.zeros(10, np.float32))
    with pytest.raises(StreamStateError, match="twice"):
        stream.flush()
    stream.reset()
    assert stream.samples_in == stream.samples_out == 0
    again = np.concatenate([stream.process(np.ones(4800, np.float32)), stream.flush()])
    np.testing.assert_array_equal(first, again)


@pytest.mark.parametrize(
    "call, fragment",
    [
        (lambda: StreamResampler(0, RATE_HZ), "in_rate_hz"),
        (lambda: StreamResampler(44100, 16000.0), "out_rate_hz"),
        (lambda: StreamResampler(True, RATE_HZ), "in_rate_hz"),
        (lambda: resample(np.zeros(10), -1, RATE_HZ), "in_rate_hz"),
        (lambda: resample([0.0, 1.0], 8000, RATE_HZ), "numpy array"),
        (lambda: resample(np.zeros((10, 2)), 8000, RATE_HZ), "1-D"),
        (lambda: StreamResampler(8000, RATE_HZ).process(np.array([0.0, np.nan])), r"non-finite .* index 1"),
        (lambda: StreamResampler(8000, RATE_HZ).process(np.zeros(4, np.complex64)), "complex64"),
        (lambda: StreamResampler(8000, RATE_HZ).input_position(1.5), "output_index"),
        (lambda: load_audio(123), "path"),
    ],
)
def test_bad_arguments_raise_invalid_input_naming_them(call, fragment):
    with pytest.raises(InvalidInputError, match=fragment):
        call()


# --- bad files -------------------------------------------------------------------------------------


def _good_file(tmp_path, name: str, fmt: str, subtype: str) -> bytes:
    path = tmp_path / name
    soundfile.write(path, _tone(RATE_HZ, 1.0), RATE_HZ, format=fmt, subtype=subtype)
    return path.read_bytes()


def _assert_audio_error(path, fragment: str) -> None:
    with pytest.raises(AudioFileError, match=fragment) as info:
        load_audio(path, RATE_HZ)
    assert os.fspath(path) in str(info.value)  # the message names the file


def test_missing_file(tmp_path):
    _assert_audio_error(tmp_path / "nope.wav", "no such file")


def test_empty_file(tmp_path):
    (tmp_path / "empty.wav").write_bytes(b"")
    _assert_audio_error(tmp_path / "empty.wav", r"empty file \(0 bytes\)")


def test_file_with_zero_samples(tmp_path):
    soundfile.write(tmp_path / "zero.wav", np.zeros(0), RATE_HZ)
    _assert_audio_error(tmp_path / "zero.wav", "no audio samples")


def test_text_file_renamed_wav(tmp_path):
    (tmp_path / "notes.wav").write_text("this is not audio\n" * 20)
    _assert_audio_error(tmp_path / "notes.wav", "not a readable audio file")


def test_directory(tmp_path):
    (tmp_path / "folder.wav").mkdir()
    _assert_audio_error(tmp_path / "folder.wav", "is a directory")


@pytest.mark.parametrize(
    "name, fmt, subtype, fragment",
    [
        ("cut.wav", "WAV", "PCM_16", "truncated: the header declares"),
        ("cut.flac", "FLAC", "PCM_16", "truncated or corrupt"),
        ("cut.ogg", "OGG", "VORBIS", "truncated"),
    ],
)
def test_truncated_files(tmp_path, name, fmt, subtype, fragment):
    data = _good_file(tmp_path, "full" + os.path.splitext(name)[1], fmt, subtype)
    (tmp_path / name).write_bytes(data[: len(data) // 2])
    _assert_audio_error(tmp_path / name, fragment)


def test_wav_header_only(tmp_path):
    data = _good_file(tmp_path, "full.wav", "WAV", "PCM_16")
    (tmp_path / "header.wav").write_bytes(data[:44])
    _assert_audio_error(tmp_path / "header.wav", "truncated")


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0,
                    reason="root can read any file: a real permission error cannot be produced")
def test_permission_denied_for_real(tmp_path):
    _good_file(tmp_path, "secret.wav", "WAV", "PCM_16")
    (tmp_path / "secret.wav").chmod(0)
    _assert_audio_error(tmp_path / "secret.wav", "permission denied")


def test_permission_denied_reported_as_such(tmp_path, monkeypatch):
    """As root the OS never refuses; simulate the PermissionError that open() raises for others."""
    path = tmp_path / "secret.wav"
    _good_file(tmp_path, "secret.wav", "WAV", "PCM_16")

    def refuse(file, *args, **kwargs):
        raise PermissionError(13, "Permission denied", os.fspath(file))

    monkeypatch.setattr("vad.core.audio.open", refuse, raising=False)
    _assert_audio_error(path, "permission denied")


def test_allow_empty_reads_a_well_formed_zero_sample_file(tmp_path):
    """A header-only file is an error by default and an empty signal with allow_empty=True;
    a 0-byte file stays an error either way."""
    import soundfile as sf

    from vad.core.audio import load_audio
    from vad.core.errors import AudioFileError

    path = tmp_path / "empty.wav"
    sf.write(path, np.zeros(0, dtype=np.float32), 22050)
    with pytest.raises(AudioFileError, match="no audio samples"):
        load_audio(path)
    x, rate = load_audio(path, allow_empty=True)
    assert x.shape == (0,) and x.dtype == np.float32 and rate == 22050
    x, rate = load_audio(path, 16000, allow_empty=True)
    assert x.shape == (0,) and rate == 16000
    zero_bytes = tmp_path / "zero.wav"
    zero_bytes.write_bytes(b"")
    with pytest.raises(AudioFileError, match="0 bytes"):
        load_audio(zero_bytes, allow_empty=True)


def test_reader_blocks_equal_the_whole_file_and_name_where_a_sample_is_not_finite(tmp_path):
    from vad.core.audio import AudioReader

    rng = np.random.default_rng(5)
    stereo = 0.3 * rng.standard_normal((10_007, 2))
    soundfile.write(tmp_path / "s.flac", stereo, RATE_HZ, subtype="PCM_24")
    whole, _ = load_audio(tmp_path / "s.flac")
    with AudioReader(tmp_path / "s.flac") as reader:
        assert (reader.rate_hz, reader.channels, reader.frames_declared) == (RATE_HZ, 2, 10_007)
        blocks = list(reader.blocks(999))
    assert [b.size for b in blocks] == [999] * 10 + [17]
    np.testing.assert_array_equal(np.concatenate(blocks).astype(np.float32), whole)
    bad = stereo.copy()
    bad[4321, 1] = np.nan
    soundfile.write(tmp_path / "nan.wav", bad, RATE_HZ, subtype="FLOAT")
    _assert_audio_error(tmp_path / "nan.wav", r"non-finite value \(nan\) at sample 4321 \(0\.270 s\)")


@pytest.mark.parametrize(
    ("subtype", "channels", "exact"),
    [("PCM_16", 1, "int16"), ("PCM_U8", 1, "int16"), ("ULAW", 1, "int16"), ("PCM_24", 1, "float32"),
     ("FLOAT", 1, "float32"), ("DOUBLE", 1, "float64"), ("PCM_16", 2, "float64")],
)
def test_reader_exact_dtype_blocks_hold_the_same_samples(tmp_path, subtype, channels, exact):
    from vad.core.audio import AudioReader

    rng = np.random.default_rng(11)
    signal = np.clip(0.3 * rng.standard_normal((4_321, channels)), -1.0, 1.0)
    path = tmp_path / "x.wav"
    soundfile.write(path, signal, RATE_HZ, subtype=subtype)
    with AudioReader(path) as reader:
        assert (reader.subtype, reader.exact_dtype) == (subtype, exact)
        reference = np.concatenate(list(reader.blocks(1_000)))
    with AudioReader(path) as reader:
        blocks = list(reader.blocks(1_000, exact))
        assert reader.frames_read == 4_321
    assert [b.dtype for b in blocks] == [np.dtype(exact)] * 5 and [b.ndim for b in blocks] == [1] * 5
    got = np.concatenate(blocks)
    if exact == "int16":
        np.testing.assert_array_equal(got * 2.0**-15, reference)  # the PCM values, exactly
    else:
        np.testing.assert_array_equal(got.astype(np.float32), reference.astype(np.float32))
    if exact != "int16":
        with AudioReader(path) as reader, pytest.raises(InvalidInputError, match=f"{subtype} with {channels}"):
            next(reader.blocks(1_000, "int16"))
    with AudioReader(path) as reader, pytest.raises(InvalidInputError, match="dtype='int8'"):
        next(reader.blocks(1_000, "int8"))


def test_fifo_and_device_are_rejected_without_blocking(tmp_path):
    fifo = tmp_path / "x.wav"
    os.mkfifo(fifo)  # opening it for reading the usual way would wait for a writer forever
    _assert_audio_error(fifo, r"is a FIFO \(named pipe\), not an audio file")
    if os.path.exists("/dev/zero"):
        with pytest.raises(AudioFileError, match="is a device, not an audio file"):
            load_audio("/dev/zero")
