"""Data pipeline: label rule, split by file, tiny cache build (determinism, errors)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from vad.training import augment, cachebuild, clipio, data, rooms, synthesis
from vad.training.augment import LabelRule
from vad.training.data import CachedStreams, StreamOptions, build_cache, list_audio_files, split_files
from vad.training.rooms import RoomSimOptions

from vad.core.errors import AudioFileError, InvalidInputError
from vad.core.features import FeatureSpec

SR = 16000
HOP = 160
FRAME_MS = 10.0


def _bursts(segments_s, total_s, rng, kind="noise", level=0.5, floor=0.0):
    """Signal with speech-like bursts at known [start, end) seconds (frame aligned)."""
    x = floor * rng.standard_normal(int(total_s * SR))
    for a, b in segments_s:
        i, j = int(round(a * SR)), int(round(b * SR))
        t = np.arange(j - i) / SR
        if kind == "tone":
            x[i:j] += level * np.sin(2 * np.pi * 220 * t)
        else:
            x[i:j] += level * rng.standard_normal(j - i) / 3
    return x.astype(np.float32)


def _frames(segments_s, total_s):
    y = np.zeros(int(total_s * SR) // HOP, dtype=bool)
    for a, b in segments_s:
        y[int(round(a * 100)):int(round(b * 100))] = True
    return y


# --- label rule -------------------------------------------------------------------------------

def test_label_rule_known_bursts_holes_and_blips():
    rng = np.random.default_rng(1)
    segs = [(0.50, 1.00), (1.08, 1.60),  # 80 ms hole: bridged
            (1.70, 2.00),                 # 100 ms hole before it: a pause, kept (tight targets)
            (2.20, 2.60),                 # 200 ms hole before it: kept
            (3.00, 3.02)]                 # 20 ms blip: removed
    x = _bursts(segs, 4.0, rng)
    labels = augment.speech_frame_labels(x, HOP, FRAME_MS)
    expected = _frames([(0.50, 1.60), (1.70, 2.00), (2.20, 2.60)], 4.0)
    np.testing.assert_array_equal(labels, expected)


def test_label_rule_hole_limit_is_90_ms():
    rng = np.random.default_rng(2)
    x = _bursts([(0.2, 0.6), (0.69, 1.2), (1.30, 1.8)], 2.0, rng, kind="tone")  # holes 90 ms, 100 ms
    labels = augment.speech_frame_labels(x, HOP, FRAME_MS)
    np.testing.assert_array_equal(labels, _frames([(0.2, 1.2), (1.30, 1.8)], 2.0))


def test_label_rule_ignores_noise_floor_30_db_below_peak():
    rng = np.random.default_rng(3)
    # bursts at ~-13 dB mean square, floor at ~-43 dB: 30 dB below -> not speech
    x = _bursts([(0.3, 0.8), (1.5, 1.9)], 2.5, rng, level=0.6, floor=0.6 / 3 / 10 ** (30 / 20))
    labels = augment.speech_frame_labels(x, HOP, FRAME_MS)
    np.testing.assert_array_equal(labels, _frames([(0.3, 0.8), (1.5, 1.9)], 2.5))


def test_label_rule_keeps_quiet_syllable_within_40_db_of_clean_peak():
    rng = np.random.default_rng(4)
    x = _bursts([(0.3, 0.6)], 1.5, rng, level=0.5) + _bursts([(1.0, 1.2)], 1.5, rng, level=0.5 * 10 ** (-30 / 20))
    labels = augment.speech_frame_labels(x, HOP, FRAME_MS)
    np.testing.assert_array_equal(labels, _frames([(0.3, 0.6), (1.0, 1.2)], 1.5))


def test_extend_runs_and_threshold_override():
    m = np.zeros(20, bool)
    m[3:6] = True
    m[15:19] = True
    out = augment.extend_runs(m, 3)
    np.testing.assert_array_equal(np.flatnonzero(out), [3, 4, 5, 6, 7, 8, 15, 16, 17, 18, 19])
    x = np.full(1600, 0.01, dtype=np.float32)
    assert not augment.active_frames(x, HOP, threshold_db=-30.0).any()
    assert augment.active_frames(x, HOP, threshold_db=-50.0).all()


def test_label_rule_rejects_bad_parameters():
    with pytest.raises(InvalidInputError, match="max_hole_ms"):
        LabelRule(max_hole_ms=-1)
    with pytest.raises(InvalidInputError, match="1-D"):
        augment.active_frames(np.zeros((2, 160)), HOP)


def test_label_rule_on_real_clip(shared_data: Path):
    path = sorted((shared_data / "train" / "speech" / "librivox").glob("*.opus"))[0]
    x = clipio.read_clip(str(path), SR)
    labels = augment.speech_frame_labels(x, HOP, FRAME_MS)
    # read speech: mostly speech, but the leading/trailing silence and long pauses are not
    assert 0.5 < labels.mean() < 0.99
    energy = augment.frame_energy_db(x, HOP)
    assert energy[labels].mean() > energy[~labels].mean() + 20


def test_band_limit_removes_high_band():
    rng = np.random.default_rng(5)
    x = rng.standard_normal(SR).astype(np.float32)
    y = augment.band_limit(x, SR, 3800.0)
    assert y.shape == x.shape
    spec = np.abs(np.fft.rfft(y)) ** 2
    f = np.fft.rfftfreq(y.size, 1 / SR)
    assert spec[f > 4200].sum() < 1e-4 * spec[f < 3400].sum()


def test_colored_noise_slope():
    rng = np.random.default_rng(6)
    for exponent in (0.0, 1.0, 2.0):
        x = augment.colored_noise(rng, 1 << 16, exponent)
        assert np.sqrt(np.mean(x.astype(np.float64) ** 2)) == pytest.approx(1.0, rel=1e-3)
        p = np.abs(np.fft.rfft(x)) ** 2
        f = np.fft.rfftfreq(x.size, 1 / SR)
        ratio_db = 10 * np.log10(p[(f > 200) & (f < 400)].mean() / p[(f > 3200) & (f < 6400)].mean())
        assert ratio_db == pytest.approx(exponent * 10 * np.log10(16), abs=1.5)  # 4 octaves


def test_random_eq_is_stable_and_highpassed():
    rng = np.random.default_rng(7)
    x = rng.standard_normal(SR).astype(np.float32)
    for _ in range(20):
        y = augment.random_eq(rng, x, SR)
        assert y.shape == x.shape and np.all(np.isfinite(y))
        p = np.abs(np.fft.rfft(y)) ** 2
        f = np.fft.rfftfreq(y.size, 1 / SR)
        assert p[f < 20].mean() < 0.1 * p[(f > 500) & (f < 8000)].mean()


def test_rooms_normalize_and_simulate():
    rir = np.zeros(800)
    rir[100] = 0.5
    rir[300] = 0.1
    out, direct = rooms.normalize_rir(rir, SR)
    assert direct == 32 and out[direct] == pytest.approx(1.0)
    bank = rooms.simulate_rooms(RoomSimOptions(n_rooms=2, max_order=5), SR, seed=3)
    again = rooms.simulate_rooms(RoomSimOptions(n_rooms=2, max_order=5), SR, seed=3)
    assert len(bank) == 2
    for a, b, d in zip(bank.rirs, again.rirs, bank.direct_index, strict=True):
        np.testing.assert_array_equal(a, b)
        assert a[d] == pytest.approx(1.0)


# --- split ------------------------------------------------------------------------------------

def test_pick_weights_balance_sources():
    keys = [f"speech/big/{i}.wav" for i in range(100)] + [f"speech/small/{i}.wav" for i in range(4)]
    cdf = data.pick_weights(keys)
    p = np.diff(np.concatenate([[0.0], cdf]))
    assert p[:100].sum() == pytest.approx(10 / 12)  # sqrt(100) : sqrt(4)
    assert cdf[-1] == 1.0 and np.all(np.diff(cdf) > 0)
    p2 = np.diff(np.concatenate([[0.0], data.pick_weights(["n/a/x.wav", "n/a/y.wav"], [1.0, 4.0])]))
    np.testing.assert_allclose(p2, [1 / 3, 2 / 3])


def test_split_by_file_is_stable_disjoint_and_complete(tmp_path):
    files = [data.AudioFile(str(tmp_path / f"s{i}.wav"), f"speech/s{i}.wav") for i in range(200)]
    train, val = split_files(files, 0.1)
    assert {f.path for f in train}.isdisjoint({f.path for f in val})
    assert len(train) + len(val) == 200
    assert 5 <= len(val) <= 40
    train2, val2 = split_files(list(reversed(files)), 0.1)
    assert [f.path for f in val2] == [f.path for f in val]
    tiny_train, tiny_val = split_files(files[:2], 0.1)
    assert len(tiny_train) == 1 and len(tiny_val) == 1


# --- tiny corpus ------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    root = tmp_path_factory.mktemp("corpus")
    rng = np.random.default_rng(0)
    speech = root / "speech"
    (speech / "a").mkdir(parents=True)
    (speech / "b").mkdir(parents=True)
    for i in range(8):
        rate = 8000 if i % 3 == 0 else SR
        x = _bursts([(0.1, 0.5), (0.7, 1.1)], 1.3, rng, kind="tone" if i % 2 else "noise")
        if rate != SR:
            x = x[::2]
        sf.write(speech / ("a" if i < 4 else "b") / f"utt{i}.wav", x, rate)
    (speech / "b" / "broken.wav").write_bytes(b"RIFF not really a wav file")
    (speech / "b" / "notes.txt").write_text("ignored: not audio")
    noise = root / "noise"
    noise.mkdir()
    for i in range(3):
        sf.write(noise / f"n{i}.flac", (0.1 * rng.standard_normal(SR * (2 + i))).astype(np.float32), SR)
    rir_dir = root / "rir"
    rir_dir.mkdir()
    rir = np.exp(-np.arange(2000) / 300.0) * rng.standard_normal(2000)
    rir[:40] = 0
    rir[40] = 3.0
    sf.write(rir_dir / "room.wav", (0.3 * rir / np.abs(rir).max()).astype(np.float32), SR)
    return root


_OPTS = StreamOptions(stream_s=5.0, speech_reverb_prob=0.7)
_ROOMS = RoomSimOptions(n_rooms=3, max_order=4, val_every=3)


def _build(corpus, out, **kw):
    args = dict(minutes_train=0.5, minutes_val=0.25, seed=7, options=_OPTS, room_options=_ROOMS, workers=1)
    args.update(kw)
    return build_cache([corpus / "speech"], [corpus / "noise"], [corpus / "rir"], out, **args)


def test_build_cache_tiny_deterministic_and_readable(corpus, tmp_path):
    out = _build(corpus, tmp_path / "c1")
    index = json.loads((out / "index.json").read_text())
    spec = FeatureSpec()
    tr = index["splits"]["train"]
    assert tr["n_streams"] == 6 and tr["frames_per_stream"] == 500
    assert index["splits"]["val"]["n_streams"] == 3
    assert 0.05 < tr["speech_fraction"] < 0.95
    # the broken file was skipped, not fatal, and is named in the index (when it was drawn)
    assert all(p.endswith("broken.wav") for p in index["skipped_files"])
    feats = np.load(out / "train_features.npy")
    labels = np.load(out / "train_labels.npy")
    assert feats.shape == (3000, spec.n_mels) and feats.dtype == np.float32
    assert labels.dtype == np.uint8 and set(np.unique(labels)) <= {0, 1}
    assert np.all(np.isfinite(feats))
    # same seed -> identical cache, also with two worker processes
    out2 = _build(corpus, tmp_path / "c2", workers=2)
    np.testing.assert_array_equal(np.load(out2 / "train_features.npy"), feats)
    np.testing.assert_array_equal(np.load(out2 / "val_labels.npy"), np.load(out / "val_labels.npy"))
    # another seed -> different streams
    out3 = _build(corpus, tmp_path / "c3", seed=8)
    assert not np.array_equal(np.load(out3 / "train_features.npy"), feats)
    # a second call with the same configuration reuses the cache
    mtime = (out / "index.json").stat().st_mtime_ns
    _build(corpus, out)
    assert (out / "index.json").stat().st_mtime_ns == mtime

    ds = CachedStreams(out, "train", window_frames=200, seed=1)
    assert len(ds) == 6 * 2 and ds.feature_mean.shape == (40,) and np.all(ds.feature_std > 0)
    x, y = ds.sample_batch(3, np.random.default_rng(0))
    x2, y2 = ds.sample_batch(3, np.random.default_rng(0))
    assert tuple(x.shape) == (3, 200, 40) and tuple(y.shape) == (3, 200)
    assert np.array_equal(x.numpy(), x2.numpy()) and np.array_equal(y.numpy(), y2.numpy())
    fx, fy = ds[5]
    assert tuple(fx.shape) == (200, 40) and tuple(fy.shape) == (200,)
    streams = list(CachedStreams(out, "val", window_frames=1).iter_streams())
    assert len(streams) == 3 and streams[0][0].shape == (500, 40)
    with pytest.raises(InvalidInputError, match="window_frames"):
        CachedStreams(out, "train", window_frames=501)
    with pytest.raises(InvalidInputError, match="split"):
        CachedStreams(out, "test")


def test_streams_use_only_their_split_files(corpus, tmp_path, monkeypatch):
    read: dict[str, set[str]] = {"": set(), "train": set(), "val": set()}  # "": RIRs, read before
    current = {"split": ""}
    real_read, real_synth = synthesis.read_clip, data.synthesize_stream

    def spy_read(path, *a, **k):
        read[current["split"]].add(Path(path).name)
        return real_read(path, *a, **k)

    def spy_synth(ctx, index):
        current["split"] = ctx.split
        return real_synth(ctx, index)

    monkeypatch.setattr(synthesis, "read_clip", spy_read)
    monkeypatch.setattr(cachebuild, "synthesize_stream", spy_synth)
    _build(corpus, tmp_path / "c", minutes_train=1.0, minutes_val=0.5)
    speech = list_audio_files([corpus / "speech"], "speech")
    noise = list_audio_files([corpus / "noise"], "noise")
    for files in (speech, noise):
        train, val = split_files(files, _OPTS.val_fraction)
        names_train = {Path(f.path).name for f in train}
        names_val = {Path(f.path).name for f in val}
        assert not (read["train"] & names_val)
        assert not (read["val"] & names_train)
    assert read["train"] and read["val"]


def test_synthetic_stream_labels_follow_dry_speech(corpus):
    spec = FeatureSpec()
    no_noise = StreamOptions(stream_s=5.0, nonspeech_stream_prob=0.0, noise_prob=0.0, speech_reverb_prob=0.0,
                             speech_band_limit_prob=0.0, stream_band_limit_prob=0.0, overlap_prob=0.0,
                             mic_noise_dbfs_range=(-120.0, -120.0))
    speech = [f.path for f in list_audio_files([corpus / "speech"], "speech") if "broken" not in f.path]
    noise = [f.path for f in list_audio_files([corpus / "noise"], "noise")]
    ctx = data.StreamContext(speech, noise, [2.0] * len(noise), data.pick_weights(speech), data.pick_weights(noise),
                             rooms.RirBank([], [], []), rooms.RirBank([], [], []),
                             spec, no_noise, LabelRule(), seed=1, split="train")
    s = data.synthesize_stream(ctx, 0)
    assert s.n_utterances >= 2 and s.labels.shape == (500,)
    # without noise or reverb: every loud frame is labelled, and labelled frames are mostly loud
    # (the rest are the bridged 200 ms pauses inside the test utterances)
    energy = augment.frame_energy_db(s.audio, HOP)
    peak = energy.max()
    assert np.all(s.labels[energy > peak - 20] == 1)
    assert np.mean(energy[s.labels == 1] > peak - 20) > 0.6
    assert np.all(energy[s.labels == 0] < peak - 20)


def test_build_cache_errors_name_the_problem(corpus, tmp_path):
    with pytest.raises(InvalidInputError, match="missing_dir"):
        build_cache([tmp_path / "missing_dir"], [corpus / "noise"], None, tmp_path / "o")
    empty = tmp_path / "empty_speech"
    empty.mkdir()
    with pytest.raises(InvalidInputError, match="empty_speech.*no audio files"):
        build_cache([empty], [corpus / "noise"], None, tmp_path / "o")
    with pytest.raises(InvalidInputError, match="no speech directory"):
        build_cache([], [corpus / "noise"], None, tmp_path / "o")
    with pytest.raises(InvalidInputError, match="minutes_train"):
        _build(corpus, tmp_path / "o", minutes_train=0)
    bad_noise = tmp_path / "bad_noise"
    bad_noise.mkdir()
    (bad_noise / "x.wav").write_bytes(b"garbage")
    with pytest.raises(AudioFileError, match="no readable noise file"):
        build_cache([corpus / "speech"], [bad_noise], None, tmp_path / "o3", minutes_train=0.1, minutes_val=0.1,
                    options=_OPTS, room_options=_ROOMS, workers=1)
    with pytest.raises(AudioFileError, match="x.wav"):
        clipio.read_clip(str(bad_noise / "x.wav"), SR)
    with pytest.raises(InvalidInputError, match="not a data cache"):
        CachedStreams(tmp_path / "nowhere")
    with pytest.raises(InvalidInputError, match="val_fraction"):
        StreamOptions(val_fraction=1.5)


def test_reverberated_labels_follow_the_direct_sound(corpus):
    """A pure-delay RIR (direct sound at 50 ms): labels are the dry labels shifted by the delay,
    each run extended by the reverb tail (50 ms)."""
    spec = FeatureSpec()
    delay = 800
    rir = np.zeros(1200, dtype=np.float32)
    rir[delay] = 1.0
    bank = rooms.RirBank([rir], [delay], ["delay"])
    opts = StreamOptions(stream_s=5.0, nonspeech_stream_prob=0.0, noise_prob=0.0, speech_reverb_prob=1.0,
                         real_rir_prob=1.0, speech_band_limit_prob=0.0, stream_band_limit_prob=0.0,
                         overlap_prob=0.0, mic_noise_dbfs_range=(-120.0, -120.0), gap_probs=(0.0, 1.0, 0.0))
    speech = [f.path for f in list_audio_files([corpus / "speech"], "speech") if "broken" not in f.path]
    ctx = data.StreamContext(speech, [speech[0]], [1.0], data.pick_weights(speech), np.ones(1), bank,
                             rooms.RirBank([], [], []), spec, opts, LabelRule(), seed=3, split="train")
    s = data.synthesize_stream(ctx, 0)
    energy = augment.frame_energy_db(s.audio, HOP)
    loud = energy > energy.max() - 20
    onsets = np.flatnonzero(np.diff(s.labels.astype(int)) == 1) + 1
    loud_onsets = np.flatnonzero(np.diff(loud.astype(int)) == 1) + 1
    assert len(onsets) >= 2
    for o in onsets:  # every label onset sits on an onset of the delayed audio (within a frame)
        assert np.min(np.abs(loud_onsets - o)) <= 1
    offsets = np.flatnonzero(np.diff(s.labels.astype(int)) == -1) + 1
    loud_offsets = np.flatnonzero(np.diff(loud.astype(int)) == -1) + 1
    for o in offsets:  # ... and every offset 5 frames (reverb_tail_ms) after the audio's offset
        assert np.min(np.abs(loud_offsets + 5 - o)) <= 1


def test_teacher_scores_are_cached_and_mixed(corpus, tmp_path):
    from vad.apps.baselines import SileroBaseline, silero_onnx_path

    try:
        silero_onnx_path()
    except ImportError:
        pytest.skip("silero-vad (baselines extra) not installed")
    out = _build(corpus, tmp_path / "t", minutes_train=0.25, minutes_val=0.1, teacher=SileroBaseline)
    teacher = np.load(out / "train_teacher.npy")
    labels = np.load(out / "train_labels.npy")
    assert teacher.shape == labels.shape and teacher.dtype == np.float16
    assert np.all((teacher >= 0) & (teacher <= 1))
    ds = CachedStreams(out, "train", window_frames=500, teacher_weight=0.25)
    _, y = ds.sample_batch(2, np.random.default_rng(0))
    s = ds._window_start(np.random.default_rng(0))
    expected = 0.75 * labels[s:s + 500] + 0.25 * teacher[s:s + 500].astype(np.float32)
    np.testing.assert_allclose(y[0].numpy(), expected, atol=1e-6)
    with pytest.raises(InvalidInputError, match="no teacher"):
        CachedStreams(_build(corpus, tmp_path / "nt", minutes_train=0.25, minutes_val=0.1), teacher_weight=0.5)


# --- recipe v3 augmentations ----------------------------------------------------------------

def test_slow_gain_stays_within_its_depth_and_is_smooth():
    rng = np.random.default_rng(0)
    g = augment.slow_gain(rng, 5 * SR, SR, (6.0, 6.0), (1.0, 1.0))
    db = 20 * np.log10(g)
    assert g.dtype == np.float32 and g.size == 5 * SR
    assert np.ptp(db) == pytest.approx(6.0, abs=0.05)
    assert np.max(np.abs(np.diff(db))) < 6.0 / (0.5 * SR) * 4  # no jumps: changes over ~a second


def test_feature_augment_shifts_levels_masks_and_keeps_the_floor():
    from vad.training.cacheread import FeatureAugment

    spec = FeatureSpec()
    floor = float(np.log(spec.log_floor))
    x = np.full((100, spec.n_mels), floor + 1.0, dtype=np.float32)
    mean = np.full(spec.n_mels, 7.0, dtype=np.float32)
    aug = FeatureAugment(prob=1.0, gain_db_range=(-30.0, -30.0), tilt_db_range=(0.0, 0.0), freq_masks=0,
                         time_masks=1, time_mask_frames=10)
    out = aug.apply(np.random.default_rng(3), x, mean, spec.log_floor)
    assert out.shape == x.shape and x[0, 0] == floor + 1.0  # the input is not modified
    unmasked = out[np.all(out != 7.0, axis=1)]
    assert np.all(unmasked == np.float32(floor))  # -30 dB from 1 above the floor clips at the floor
    same = aug.apply(np.random.default_rng(3), x, mean, spec.log_floor)
    np.testing.assert_array_equal(out, same)
    assert FeatureAugment(prob=0.0).apply(np.random.default_rng(0), x, mean, spec.log_floor) is x


def test_babble_is_several_talkers_filling_the_segment(corpus):
    speech = [f.path for f in list_audio_files([corpus / "speech"], "speech") if "broken" not in f.path]
    ctx = data.StreamContext(speech, speech[:1], [1.0], data.pick_weights(speech), np.ones(1),
                             rooms.RirBank([], [], []), rooms.RirBank([], [], []), FeatureSpec(),
                             StreamOptions(babble_talkers=(3, 3)), LabelRule(), seed=0, split="train")
    b = synthesis._babble(np.random.default_rng(0), ctx, 3 * SR, [])
    assert b.size == 3 * SR and np.mean(np.abs(b[SR:2 * SR]) > 1e-3) > 0.5


@pytest.mark.parametrize("kind", augment.TRANSIENT_KINDS)
def test_transients_are_short_unit_peak_non_speech_events(kind):
    rng = np.random.default_rng(0)
    for _ in range(20):
        x = augment.transient(rng, SR, kind)
        assert x.dtype == np.float32 and np.all(np.isfinite(x))
        assert np.isclose(np.max(np.abs(x)), 1.0)
        assert 0.004 * SR < x.size <= (4.5 if kind == "typing" else 0.8) * SR
    with pytest.raises(InvalidInputError, match="'cough'"):
        augment.transient(rng, SR, "cough")


def test_events_are_added_as_non_speech_at_their_level(corpus):
    spec = FeatureSpec()
    speech = [f.path for f in list_audio_files([corpus / "speech"], "speech") if "broken" not in f.path]
    noise = [f.path for f in list_audio_files([corpus / "noise"], "noise")]
    base = dict(stream_s=5.0, noise_prob=0.0, speech_reverb_prob=0.0, noise_reverb_prob=0.0,
                speech_band_limit_prob=0.0, stream_band_limit_prob=0.0, stream_eq_prob=0.0, agc_prob=0.0,
                clip_prob=0.0, overlap_prob=0.0, mic_noise_dbfs_range=(-120.0, -120.0))

    def stream(**over):
        ctx = data.StreamContext(speech, noise, [2.0] * len(noise), data.pick_weights(speech),
                                 data.pick_weights(noise), rooms.RirBank([], [], []), rooms.RirBank([], [], []),
                                 spec, StreamOptions(**base, **over), LabelRule(), seed=3, split="train")
        return data.synthesize_stream(ctx, 0)

    quiet = stream(nonspeech_stream_prob=0.0)
    loud = stream(nonspeech_stream_prob=0.0, event_prob=1.0, event_rate_hz_range=(3.0, 3.0),
                  event_level_db_range=(0.0, 0.0))
    np.testing.assert_array_equal(quiet.labels, loud.labels)  # events never change the labels
    energy_q = augment.frame_energy_db(quiet.audio, HOP)
    energy_l = augment.frame_energy_db(loud.audio, HOP)
    assert np.sum((energy_l > energy_q + 10) & (quiet.labels == 0)) > 10  # they sound in the pauses
    # a speech-free stream: events stand out of the background by the asked amount
    bg = stream(nonspeech_stream_prob=1.0, event_prob=1.0, event_rate_hz_range=(2.0, 2.0),
                event_background_db_range=(20.0, 20.0))
    assert not bg.labels.any()
    e = augment.frame_energy_db(bg.audio, HOP)
    assert np.percentile(e, 99) - np.median(e) > 10


def test_options_fingerprint_leaves_out_events_when_they_are_off():
    # a cache of a recipe from before the event options existed keeps its fingerprint
    off, on = StreamOptions().to_dict(), StreamOptions(event_prob=0.5).to_dict()
    assert not any(k.startswith("event_") for k in off)
    assert on["event_prob"] == 0.5 and "event_rate_hz_range" in on
    assert {k: v for k, v in on.items() if not k.startswith("event_")} == off
    with pytest.raises(InvalidInputError, match="event_rate_hz_range"):
        StreamOptions(event_rate_hz_range=(-1.0, 1.0))


def test_input_leveling_levels_the_features_of_the_same_mixtures(corpus, tmp_path):
    """StreamOptions.input_leveling: the same mixtures and labels (no extra random draw), the
    features those of the mixture leveled as a primed runtime stream; the cache records it
    (CachedStreams.input_leveling) and a cache without it keeps its fingerprint."""
    from vad.core.features import logmel
    from vad.core.leveling import LevelingConfig, level_stream

    cfg = {"target_dbfs": -26.0, "max_gain_db": 20.0, "attack_ms": 3000.0, "release_ms": 30000.0}
    assert "input_leveling" not in StreamOptions().to_dict()
    assert StreamOptions(input_leveling=cfg).to_dict()["input_leveling"] == cfg
    with pytest.raises(InvalidInputError, match="input_leveling"):
        StreamOptions(input_leveling={"attack_ms": -1.0})
    spec = FeatureSpec()
    speech = [f.path for f in list_audio_files([corpus / "speech"], "speech") if "broken" not in f.path]
    noise = [f.path for f in list_audio_files([corpus / "noise"], "noise")]

    def stream(options):
        ctx = data.StreamContext(speech, noise, [2.0] * len(noise), data.pick_weights(speech),
                                 data.pick_weights(noise), rooms.RirBank([], [], []), rooms.RirBank([], [], []),
                                 spec, options, LabelRule(), seed=5, split="train")
        return data.synthesize_stream(ctx, 1)

    plain = stream(StreamOptions(stream_s=5.0))
    leveled = stream(StreamOptions(stream_s=5.0, input_leveling=cfg))
    np.testing.assert_array_equal(plain.audio, leveled.audio)
    np.testing.assert_array_equal(plain.labels, leveled.labels)
    want = logmel(level_stream(plain.audio, HOP, LevelingConfig(**cfg).coefficients(spec.hop_s)), spec)
    np.testing.assert_array_equal(leveled.features, want)
    assert np.max(np.abs(leveled.features - plain.features)) > 0.1
    out = _build(corpus, tmp_path / "lev", options=dataclasses.replace(_OPTS, input_leveling=cfg))
    assert CachedStreams(out, "train", window_frames=100).input_leveling == LevelingConfig(**cfg)
    assert CachedStreams(_build(corpus, tmp_path / "plain"), "train", window_frames=100).input_leveling is None
