"""learned-width-vad: one import root, four layers that only point down.

- ``vad.core``: torch-free facts: feature spec and reference front end, audio I/O, label files,
  metrics, post-processing, model metadata, errors, atomic writes.
- ``vad.runtime`` (folder ``runtime/``): the torch-free streaming engine, on ``vad.core``.
- ``vad.training`` (folder ``training/``): all torch code, on the two above. Needs the
  ``train`` extra.
- ``vad.apps``: labeling, evaluation, baselines, benchmarks and the ``vad`` command line, on
  everything below.
- ``vad.models`` (folder ``models/``): the shipped model files.

``tests/test_layers.py`` fails on an import that points up.
"""

from vad.core.errors import VADError
from vad.core.features import FeatureSpec, logmel
from vad.core.postprocess import PostprocessConfig

__all__ = ["FeatureSpec", "PostprocessConfig", "VADError", "logmel"]
__version__ = "0.1.0"
