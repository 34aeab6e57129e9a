"""Reference VADs scored on the same 10 ms frames as our models: WebRTC, Silero and TEN VAD.

Both are optional (the ``baselines`` extra). Each baseline is a *system* for
``vad.apps.evaluation``: an object with ``name``, ``default_threshold`` and
``frame_scores(audio) -> float64 [n_samples // 160]``, where ``audio`` is float32 mono at
16 kHz and score ``i`` belongs to the reference frame ``[i * 10 ms, (i + 1) * 10 ms)``.

* **WebRTC VAD** (``webrtcvad`` module of ``webrtcvad-wheels``): every 10 ms frame is
  given to the four aggressiveness modes 0-3; the score is the share of modes that say
  speech (0, 0.25, 0.5, 0.75 or 1). Default threshold 0.5 (= at least two modes agree).
* **Silero VAD v6** (its bundled ``silero_vad.onnx`` run with onnxruntime, never through
  the ``silero_vad`` package, whose import loads torch): the audio is cut into 512-sample
  chunks (32 ms; the last one zero-padded), each fed with the previous chunk's last 64
  samples prepended as context and the recurrent state carried over, exactly as Silero's
  own ``OnnxWrapper`` does for v5/v6. Chunk ``j`` describes samples ``[512 j, 512 (j+1))``;
  each 10 ms frame takes the probability of the chunk that holds the frame's centre.
  Default threshold 0.5 (Silero's own).
* **TEN VAD** (``ten_vad`` module of the ``ten-vad`` package, its native library; on Linux it
  needs the system's ``libc++1``): int16 audio in hops of 256 samples (16 ms, TEN's default;
  the last one zero-padded) through one fresh TEN VAD instance per signal. Hop ``j`` describes
  samples ``[256 j, 256 (j+1))``; each 10 ms frame takes the probability of the hop that holds
  the frame's centre, as for Silero. Default threshold 0.5 (TEN's own).
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

from vad.core.errors import InvalidInputError, MissingDependencyError, ModelFileError, require

BASELINES_EXTRA = "baselines"
SAMPLE_RATE_HZ = 16000
FRAME_SAMPLES = 160  # 10 ms at 16 kHz: the reference frame
WEBRTC_MODES = (0, 1, 2, 3)
SILERO_CHUNK_SAMPLES = 512
SILERO_CONTEXT_SAMPLES = 64
SILERO_STATE_SHAPE = (2, 1, 128)
SILERO_ONNX_NAME = "silero_vad.onnx"
TEN_HOP_SAMPLES = 256
TEN_SYSTEM_LIBRARY = "libc++1"  # Debian/Ubuntu package of the C++ runtime libten_vad.so links
_INT16_SCALE = 32767.0


def _check_audio(audio: np.ndarray) -> np.ndarray:
    if not isinstance(audio, np.ndarray) or audio.ndim != 1 or audio.dtype.kind != "f":
        raise InvalidInputError(
            f"audio must be a 1-D float numpy array at {SAMPLE_RATE_HZ} Hz, got "
            f"{type(audio).__name__} {getattr(audio, 'shape', '')} {getattr(audio, 'dtype', '')}"
        )
    if not np.all(np.isfinite(audio)):
        raise InvalidInputError("audio has non-finite samples")
    return audio


def _int16_pcm(audio: np.ndarray) -> np.ndarray:
    """Float samples in [-1, 1] as little-endian int16 PCM (clipped), for the C baselines."""
    return (np.clip(audio, -1.0, 1.0) * _INT16_SCALE).astype("<i2")


class WebRTCBaseline:
    """WebRTC VAD: score per 10 ms frame = share of modes 0-3 that say speech."""

    name = "webrtc"
    default_threshold = 0.5
    flops_per_second = None  # not a neural network; no comparable FLOP count

    def __init__(self) -> None:
        webrtcvad = require("webrtcvad", BASELINES_EXTRA, "the WebRTC VAD baseline")
        self._vads = [webrtcvad.Vad(mode) for mode in WEBRTC_MODES]

    def frame_scores(self, audio: np.ndarray) -> np.ndarray:
        audio = _check_audio(audio)
        n_frames = audio.size // FRAME_SAMPLES
        pcm = _int16_pcm(audio[: n_frames * FRAME_SAMPLES])
        raw = pcm.tobytes()
        step = FRAME_SAMPLES * pcm.itemsize
        votes = np.zeros(n_frames, dtype=np.int64)
        for vad in self._vads:
            is_speech = vad.is_speech
            votes += np.fromiter(
                (is_speech(raw[i * step : (i + 1) * step], SAMPLE_RATE_HZ) for i in range(n_frames)),
                dtype=bool,
                count=n_frames,
            )
        return votes / len(self._vads)


def silero_onnx_path() -> Path:
    """The bundled Silero ONNX model, found without importing silero_vad (which imports torch)."""
    try:
        spec = importlib.util.find_spec("silero_vad")
    except (ImportError, ValueError):  # blocked (sys.modules entry None) or broken install
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError(
            "the Silero VAD baseline needs the optional dependency 'silero-vad', which is not installed: "
            f"pip install 'learned-width-vad[{BASELINES_EXTRA}]'"
        )
    for location in spec.submodule_search_locations:
        path = Path(location) / "data" / SILERO_ONNX_NAME
        if path.is_file():
            return path
    raise ModelFileError(
        f"silero-vad is installed but its {SILERO_ONNX_NAME} was not found under {spec.origin}"
    )


class SileroBaseline:
    """Silero VAD v6 ONNX on 512-sample chunks with Silero's state and 64-sample context."""

    name = "silero"
    default_threshold = 0.5
    flops_per_second = None  # not counted here

    def __init__(self, model_path: str | Path | None = None) -> None:
        ort = require("onnxruntime", BASELINES_EXTRA, "the Silero VAD baseline")
        self.model_path = Path(model_path) if model_path is not None else silero_onnx_path()
        opts = ort.SessionOptions()
        opts.inter_op_num_threads = 1
        opts.intra_op_num_threads = 1
        try:
            self._session = ort.InferenceSession(
                str(self.model_path), sess_options=opts, providers=["CPUExecutionProvider"]
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise ModelFileError(f"{self.model_path}: cannot load the Silero ONNX model: {exc}") from exc
        self._sr = np.array(SAMPLE_RATE_HZ, dtype=np.int64)

    def chunk_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """Silero's probability per 512-sample chunk (last chunk zero-padded), fresh state."""
        audio = _check_audio(audio).astype(np.float32)
        n_chunks = -(-audio.size // SILERO_CHUNK_SAMPLES)
        padded = np.zeros(n_chunks * SILERO_CHUNK_SAMPLES, dtype=np.float32)
        padded[: audio.size] = audio
        state = np.zeros(SILERO_STATE_SHAPE, dtype=np.float32)
        context = np.zeros(SILERO_CONTEXT_SAMPLES, dtype=np.float32)
        probs = np.empty(n_chunks, dtype=np.float64)
        run = self._session.run
        for j in range(n_chunks):
            chunk = padded[j * SILERO_CHUNK_SAMPLES : (j + 1) * SILERO_CHUNK_SAMPLES]
            x = np.concatenate([context, chunk])[None, :]
            out, state = run(None, {"input": x, "state": state, "sr": self._sr})
            probs[j] = float(out.reshape(-1)[0])
            context = x[0, -SILERO_CONTEXT_SAMPLES:]
        return probs

    def frame_scores(self, audio: np.ndarray) -> np.ndarray:
        probs = self.chunk_probabilities(audio)
        n_frames = audio.size // FRAME_SAMPLES
        return map_scores_to_frames(probs, SILERO_CHUNK_SAMPLES, n_frames, FRAME_SAMPLES)


class TenBaseline:
    """TEN VAD on 256-sample int16 hops, one fresh instance (state) per signal."""

    name = "ten"
    default_threshold = 0.5
    flops_per_second = None  # not counted here

    def __init__(self) -> None:
        ten_vad = require("ten_vad", BASELINES_EXTRA, "the TEN VAD baseline")
        self._factory = ten_vad.TenVad
        self.new_instance()  # loads the native library now, so a missing one fails here

    def new_instance(self):
        """A fresh ``ten_vad.TenVad`` (hop 256, TEN's default threshold)."""
        try:
            return self._factory(TEN_HOP_SAMPLES, self.default_threshold)
        except (OSError, NotImplementedError) as exc:  # CDLL load failure / no library for this platform
            raise MissingDependencyError(
                f"the TEN VAD baseline cannot load its native library ({exc}); on Debian/Ubuntu install "
                f"the C++ runtime it needs: sudo apt-get install -y {TEN_SYSTEM_LIBRARY}"
            ) from exc

    def chunk_probabilities(self, audio: np.ndarray) -> np.ndarray:
        """TEN's probability per 256-sample hop (last hop zero-padded), fresh state."""
        audio = _check_audio(audio)
        n_hops = -(-audio.size // TEN_HOP_SAMPLES)
        pcm = np.zeros(n_hops * TEN_HOP_SAMPLES, dtype=np.int16)
        pcm[: audio.size] = _int16_pcm(audio)
        vad = self.new_instance()
        process = vad.process
        probs = np.empty(n_hops, dtype=np.float64)
        for j in range(n_hops):
            probs[j] = process(pcm[j * TEN_HOP_SAMPLES : (j + 1) * TEN_HOP_SAMPLES])[0]
        return probs

    def frame_scores(self, audio: np.ndarray) -> np.ndarray:
        probs = self.chunk_probabilities(audio)
        return map_scores_to_frames(probs, TEN_HOP_SAMPLES, audio.size // FRAME_SAMPLES, FRAME_SAMPLES)


def map_scores_to_frames(
    scores: np.ndarray, src_hop_samples: int, n_frames: int, dst_hop_samples: int
) -> np.ndarray:
    """Scores on a src grid (score j = samples [j*src, (j+1)*src)) onto n_frames dst frames.

    Each dst frame takes the score of the src step holding its centre (clipped to the last).
    """
    if len(scores) == 0:
        return np.zeros(n_frames, dtype=np.float64)
    centres = np.arange(n_frames) * dst_hop_samples + dst_hop_samples / 2.0
    idx = np.minimum((centres // src_hop_samples).astype(np.int64), len(scores) - 1)
    return np.asarray(scores, dtype=np.float64)[idx]


BASELINES = {"webrtc": WebRTCBaseline, "silero": SileroBaseline, "ten": TenBaseline}


def make_baselines(names: str | list[str]) -> list:
    """Baseline systems from a comma-separated string or list of names (webrtc, silero, ten)."""
    if isinstance(names, str):
        names = [n.strip() for n in names.split(",") if n.strip()]
    unknown = [name for name in names if name.lower() not in BASELINES]
    if unknown:
        raise InvalidInputError(
            f"unknown baseline(s) {', '.join(unknown)} (choose from {', '.join(BASELINES)})"
        )
    return [BASELINES[name.lower()]() for name in names]
