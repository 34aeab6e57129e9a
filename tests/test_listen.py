"""`vad listen` on a real (virtual) microphone, and its processing thread fed directly.

The virtual capture device ``vmic`` is an ALSA ``file`` plugin that plays a raw 16-bit
16 kHz file (../shared/audio/vmic.asound.conf.in); PortAudio (libportaudio2) opens it like
a microphone. It delivers samples as fast as they are read, so ``--duration`` (audio time)
ends the run exactly at the end of the file's audio. These tests run whenever the shared
folder and libportaudio2 are present (CI installs libportaudio2).
"""

from __future__ import annotations

import ctypes.util
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import soundfile as sf

from tests.conftest import REPO_ROOT
from tests.fixtures_models import energy_model_path  # noqa: F401 - pytest fixture
from vad.apps import labeling

SHARED = REPO_ROOT.parent / "shared"
VMIC_TEMPLATE = SHARED / "audio" / "vmic.asound.conf.in"
SPEECH_FILE = "dev/pyannote_sample.flac"  # 30 s of conversational speech with pauses, 16 kHz
CLIP_SECONDS = 45.0  # longer than the capture queue (30 s): vmic outruns processing and is paced
RATE = 16000
FRAME_S = 0.01


def _portaudio_missing() -> bool:
    return ctypes.util.find_library("portaudio") is None


needs_vmic = pytest.mark.skipif(
    not VMIC_TEMPLATE.is_file() or _portaudio_missing(),
    reason="needs ../shared/audio/vmic.asound.conf.in and libportaudio2 (apt-get install libportaudio2)",
)


@pytest.fixture()
def speech_int16(shared_data) -> np.ndarray:
    x, rate = sf.read(shared_data / SPEECH_FILE, dtype="int16")
    assert rate == RATE
    return np.concatenate([x, x[::-1]])[: int(CLIP_SECONDS * RATE)]  # reversed: same loudness, new timing


@pytest.fixture()
def vmic(tmp_path, speech_int16):
    """(environment with ALSA_CONFIG_PATH -> vmic playing the speech, wav of the same samples)."""
    raw = tmp_path / "speech.raw"
    speech_int16.astype("<i2").tofile(raw)
    wav = tmp_path / "speech.wav"
    sf.write(wav, speech_int16, RATE, subtype="PCM_16")
    conf = tmp_path / "asound.conf"
    conf.write_text(VMIC_TEMPLATE.read_text().replace("@INFILE@", str(raw)))
    env = dict(os.environ, ALSA_CONFIG_PATH=str(conf))
    return env, wav


def vad_cmd(*args) -> list[str]:
    return [sys.executable, "-m", "vad", *map(str, args)]


def run_vad(env, *args, timeout=180) -> subprocess.CompletedProcess:
    return subprocess.run(vad_cmd(*args), env=env, cwd=REPO_ROOT, capture_output=True, text=True, timeout=timeout)


@needs_vmic
def test_listen_json_events_match_label(vmic, energy_model_path, tmp_path):  # noqa: F811
    env, wav = vmic
    clips = tmp_path / "clips"
    res = run_vad(env, "listen", "--device", "vmic", "--json", "--duration", CLIP_SECONDS,
                  "--model", energy_model_path, "--record-speech", clips)  # fmt: skip
    assert res.returncode == 0, res.stderr
    events = [json.loads(line) for line in res.stdout.splitlines()]  # stdout: JSON lines only
    assert events, f"no events; stderr: {res.stderr}"
    starts = [e for e in events if e["event"] == "start"]
    ends = [e for e in events if e["event"] == "end"]
    assert [e["event"] for e in events] == ["start", "end"] * len(ends)
    # the same audio through `vad label` gives the same segments (within one frame)
    labeled = labeling.label_file(wav, model=energy_model_path)
    assert len(labeled.segments) == len(ends) >= 3
    for seg, start, end in zip(labeled.segments, starts, ends, strict=True):
        assert abs(start["t_s"] - seg.start_s) <= FRAME_S
        assert abs(end["start_s"] - seg.start_s) <= FRAME_S
        assert abs(end["end_s"] - seg.end_s) <= FRAME_S
        assert end["t_s"] == end["end_s"]
        assert end["duration_s"] == pytest.approx(end["end_s"] - end["start_s"], abs=1e-3)
        assert 0.5 <= end["probability"] <= 1.0
    # summary on stderr: all the audio, the segments, no overflows
    assert f"{CLIP_SECONDS:.2f} s of audio, {len(ends)} speech segments" in res.stderr
    assert "0 input overflows" in res.stderr
    # --record-speech: one wav per segment holding exactly the segment's samples
    written = sorted(clips.glob("*.wav"))
    assert len(written) == len(ends)
    assert not list(clips.glob(".*"))  # no temporary files left behind
    source, _ = sf.read(wav, dtype="int16")
    for path, end in zip(written, ends, strict=True):
        assert end["file"] == str(path)
        clip, rate = sf.read(path, dtype="int16")
        a, b = round(end["start_s"] * RATE), round(end["end_s"] * RATE)
        assert rate == RATE and np.array_equal(clip, source[a:b])
        assert path.stat().st_mode & 0o044  # readable by others as usual (not a 0600 temp file)


@needs_vmic
def test_listen_duration_counts_audio_time(vmic, energy_model_path):  # noqa: F811
    env, _ = vmic
    res = run_vad(env, "listen", "--device", "vmic", "--duration", "2.5", "--model", energy_model_path)
    assert res.returncode == 0, res.stderr
    assert "2.50 s of audio" in res.stderr


@needs_vmic
def test_listen_ctrl_c_ends_cleanly_with_a_summary(vmic, energy_model_path):  # noqa: F811
    env, _ = vmic
    proc = subprocess.Popen(
        vad_cmd("listen", "--device", "vmic", "--json", "--model", energy_model_path),
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 120
        # wait until it is listening (the start message), then interrupt
        while "vad listen: device" not in proc.stderr.readline():
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read()
        time.sleep(1.0)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert "interrupted;" in err and "speech segment" in err
    events = [json.loads(line)["event"] for line in out.splitlines()]
    # the stream was flushed: every start has its end (an open segment is closed)
    assert events and events == ["start", "end"] * (len(events) // 2)


@needs_vmic
def test_list_devices_shows_the_virtual_microphone(vmic):
    env, _ = vmic
    res = run_vad(env, "listen", "--list-devices")
    assert res.returncode == 0, res.stderr
    assert "vmic" in res.stdout and "16000 Hz" in res.stdout


@needs_vmic
def test_bad_device_lists_the_devices(vmic, energy_model_path):  # noqa: F811
    env, _ = vmic
    res = run_vad(env, "listen", "--device", "no-such-mic", "--model", energy_model_path)
    assert res.returncode == 2
    assert "no input device named 'no-such-mic'" in res.stderr
    assert "vmic" in res.stderr  # the message lists what exists
    res = run_vad(env, "listen", "--device", "97", "--model", energy_model_path)
    assert res.returncode == 2 and "no input device with id 97" in res.stderr
    assert res.stdout == ""


@needs_vmic
def test_no_input_device_is_a_clear_error(tmp_path, energy_model_path):  # noqa: F811
    conf = tmp_path / "base-only.conf"  # ALSA's own definitions, no virtual devices
    conf.write_text(VMIC_TEMPLATE.read_text().split("pcm.vnull")[0])
    env = dict(os.environ, ALSA_CONFIG_PATH=str(conf))
    if "no audio input devices found" not in run_vad(env, "listen", "--list-devices").stdout:
        pytest.skip("this machine has a real sound card")
    res = run_vad(env, "listen", "--model", energy_model_path)
    assert res.returncode == 2
    assert "no audio input device found" in res.stderr


# --- the processing thread, fed directly (no PortAudio needed) -------------------------------


class _FakeSource:
    """Blocks from an array, as MicrophoneSource.read returns them."""

    def __init__(self, samples: np.ndarray, block: int, sample_rate: int = RATE):
        self.blocks = [samples[i : i + block] for i in range(0, samples.size, block)]
        self.sample_rate = sample_rate
        self.stopped = False

    def read(self, timeout_s: float = 0.1):
        return self.blocks.pop(0) if self.blocks else None

    def stop(self) -> None:
        self.stopped = True


def test_speech_listener_matches_label_file(tmp_path, energy_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.microphone import SpeechListener

    from tests.test_label_cli import speechlike

    x = (speechlike() * 32767).astype(np.int16)
    wav = tmp_path / "s.wav"
    sf.write(wav, x, RATE, subtype="PCM_16")
    events, statuses = [], []
    source = _FakeSource(x, block=317)
    listener = SpeechListener(
        source, StreamingVAD(model=energy_model_path, sample_rate=RATE),
        on_event=lambda ev, clip: events.append((ev, clip)), on_status=statuses.append, keep_clips=True,
    )  # fmt: skip
    listener.start()
    listener.join(60)
    listener.raise_error()
    assert source.stopped and listener.samples_processed == x.size
    ends = [(ev, clip) for ev, clip in events if ev.kind == "end"]
    expected = labeling.label_file(wav, model=energy_model_path).segments
    assert [(ev.start_s, ev.end_s) for ev, _ in ends] == [(s.start_s, s.end_s) for s in expected]
    for ev, clip in ends:
        assert np.array_equal(clip, x[ev.start_sample : ev.end_sample])
    assert listener.segments == len(expected)
    assert listener.speech_samples == sum(ev.end_sample - ev.start_sample for ev, _ in ends)
    # live status: levels in dBFS, the speech state follows the events
    assert any(st.speaking for st in statuses) and any(not st.speaking for st in statuses)
    assert statuses[-1].t_s == pytest.approx(x.size / RATE)
    assert max(st.level_dbfs for st in statuses) > -20 and min(st.level_dbfs for st in statuses) < -60


def test_speech_clip_buffer_keeps_open_segments():
    from vad.runtime.microphone import SpeechClipBuffer

    buf = SpeechClipBuffer(lookback_samples=10)
    data = np.arange(100, dtype=np.int16)
    buf.append(data[:30])
    buf.hold(25)
    for i in range(30, 100, 7):
        buf.append(data[i : i + 7])
    assert np.array_equal(buf.clip(25, 90), data[25:90])
    buf.hold(None)
    buf.append(np.zeros(0, np.int16))
    left = buf.clip(0, 100)  # only the lookback is left (whole blocks of at least 10 samples)
    assert 10 <= left.size < 17 and np.array_equal(left, data[100 - left.size :])


def test_level_dbfs():
    from vad.runtime.microphone import level_dbfs

    assert level_dbfs(np.zeros(160, np.int16)) == -120.0
    full = np.full(160, 32767, np.int16)
    assert level_dbfs(full) == pytest.approx(0.0, abs=0.01)
    assert level_dbfs((full // 10).astype(np.int16)) == pytest.approx(-20.0, abs=0.01)


def test_live_line_and_event_json():
    from vad.runtime.engine import SpeechEvent
    from vad.runtime.microphone import LiveStatus

    from vad.apps.commands.listen import event_json, live_line

    line = live_line(LiveStatus(t_s=65.5, level_dbfs=-30.0, probability=0.87, speaking=True))
    assert "1:05.500" in line and "-30.0 dBFS" in line and "p=0.87" in line and "SPEECH" in line
    start = SpeechEvent("start", 16000, None, None, RATE)
    end = SpeechEvent("end", 16000, 40000, 0.912345, RATE)
    assert event_json(start) == {"event": "start", "t_s": 1.0, "start_s": 1.0}
    assert event_json(end, "x.wav") == {
        "event": "end", "t_s": 2.5, "start_s": 1.0, "end_s": 2.5, "duration_s": 1.5, "probability": 0.9123,
        "file": "x.wav",
    }  # fmt: skip


@needs_vmic
def test_listen_at_another_rate_resamples(vmic, energy_model_path):  # noqa: F811
    env, _ = vmic
    res = run_vad(env, "listen", "--device", "vmic", "--sample-rate", "44100", "--json", "--duration", "5",
                  "--model", energy_model_path)  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "at 44100 Hz (resampled to 16000 Hz)" in res.stderr and "5.00 s of audio" in res.stderr
    for line in res.stdout.splitlines():
        assert json.loads(line)["event"] in ("start", "end")


@needs_vmic
def test_listen_stops_cleanly_when_its_reader_goes_away(vmic, energy_model_path):  # noqa: F811
    env, _ = vmic
    proc = subprocess.Popen(
        vad_cmd("listen", "--device", "vmic", "--json", "--duration", CLIP_SECONDS, "--model", energy_model_path),
        env=env, cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    proc.stdout.close()  # the reader is gone before the first event (like `| head -0`)
    err = proc.stderr.read()
    proc.wait(timeout=120)
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err
    assert "stdout closed;" in err


# --- device lookup and rate choice, against a fake PortAudio ---------------------------------


class _FakeSD:
    """Just enough of sounddevice for device lookup: two mics, one of them 48 kHz only."""

    class PortAudioError(Exception):
        pass

    class default:
        device = (1, 3)

    def query_devices(self):
        return [
            {"index": 0, "name": "HDA Intel: ALC (hw:0,0)", "hostapi": 0, "max_input_channels": 2,
             "max_output_channels": 2, "default_samplerate": 44100.0},
            {"index": 1, "name": "USB mic 48k", "hostapi": 0, "max_input_channels": 1,
             "max_output_channels": 0, "default_samplerate": 48000.0},
            {"index": 3, "name": "speakers", "hostapi": 0, "max_input_channels": 0,
             "max_output_channels": 2, "default_samplerate": 48000.0},
        ]  # fmt: skip

    def query_hostapis(self):
        return [{"name": "ALSA"}]

    def check_input_settings(self, device, samplerate, channels, dtype):
        if device == 1 and samplerate != 48000:
            raise self.PortAudioError("Invalid sample rate")


@pytest.fixture()
def fake_sd(monkeypatch):
    from vad.runtime import microphone

    sd = _FakeSD()
    monkeypatch.setattr(microphone, "sounddevice", lambda: sd)
    return sd


def test_find_input_device_by_id_name_and_default(fake_sd):
    from vad.runtime.microphone import find_input_device, format_device_list, list_input_devices

    devices = list_input_devices()
    assert [d.index for d in devices] == [0, 1]  # output-only devices are not listed
    assert find_input_device(None).index == 1  # the system default input
    assert find_input_device(0).index == 0 and find_input_device("1").index == 1
    assert find_input_device("usb").name == "USB mic 48k"  # unique part of a name, any case
    table = format_device_list(devices)
    assert "*  1  USB mic 48k (ALSA, 1 in, 48000 Hz)" in table
    from vad.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match=r"no input device with id 3(.|\n)*USB mic 48k"):
        find_input_device(3)
    with pytest.raises(InvalidInputError, match="ambiguous"):
        find_input_device("C")  # in both "ALC" and "mic"


def test_choose_sample_rate_falls_back_to_the_native_rate(fake_sd):
    from vad.runtime.microphone import choose_sample_rate, find_input_device

    from vad.core.errors import InvalidInputError

    usb = find_input_device("USB")
    assert choose_sample_rate(usb, 16000) == 48000  # the runtime resamples 48 -> 16 kHz
    assert choose_sample_rate(find_input_device(0), 16000) == 16000
    with pytest.raises(InvalidInputError, match="does not support 16000 Hz"):
        choose_sample_rate(usb, 16000, required=True)  # --sample-rate asked for it


def test_no_devices_at_all(fake_sd, monkeypatch):
    from vad.runtime.microphone import find_input_device

    from vad.core.errors import InvalidInputError

    monkeypatch.setattr(fake_sd, "query_devices", lambda: [])
    with pytest.raises(InvalidInputError, match="no audio input device found"):
        find_input_device(None)


def test_speech_listener_refuses_a_rate_mismatch(energy_model_path):  # noqa: F811
    from vad.runtime.engine import StreamingVAD
    from vad.runtime.microphone import SpeechListener

    from vad.core.errors import InvalidInputError

    with pytest.raises(InvalidInputError, match="48000 Hz but the source delivers 16000 Hz"):
        SpeechListener(_FakeSource(np.zeros(10, np.int16), 5), StreamingVAD(model=energy_model_path, sample_rate=48000))
