"""Torch-free streaming engine (``vad.runtime``): numba log-mel front end + numba/onnxruntime
inference + the shared post-processing. Builds on ``vad.core`` only."""

from vad.runtime.engine import SpeechEvent, StreamingVAD, StreamResult
from vad.runtime.model import VADModel

__all__ = ["SpeechEvent", "StreamResult", "StreamingVAD", "VADModel"]
