"""Torch-free core of the learned-width VAD: feature spec, reference front end, audio and
label I/O, metrics, post-processing, and the ``vad`` command line.

Nothing here imports torch at module level; ``training`` is imported only inside the
command-line subcommands that need it.
"""

from vad.errors import VADError
from vad.features import FeatureSpec, logmel
from vad.postprocess import PostprocessConfig

__all__ = ["FeatureSpec", "PostprocessConfig", "VADError", "logmel"]
__version__ = "0.1.0"
