"""Torch-free streaming runtime: numba log-mel front end + onnxruntime/numba inference."""

from runtime.engine import SpeechEvent, StreamingVAD, StreamResult
from runtime.model import VADModel

__all__ = ["SpeechEvent", "StreamResult", "StreamingVAD", "VADModel"]
