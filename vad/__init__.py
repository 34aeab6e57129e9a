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

from pathlib import Path as _Path

# In a source checkout the folders runtime/, training/ and models/ sit beside vad/ (installed,
# they are vad/runtime, vad/training, vad/models): let them resolve as vad.runtime, ... when this
# package is imported from the checkout itself (its folder first on sys.path: pytest, `python -m vad`).
_checkout = _Path(__file__).resolve().parent.parent
if not (_Path(__file__).parent / "runtime").exists() and (_checkout / "runtime" / "__init__.py").is_file():
    __path__.append(str(_checkout))  # noqa: F821 (a package's own __path__)

from vad.core.errors import VADError  # noqa: E402
from vad.core.features import FeatureSpec, logmel  # noqa: E402
from vad.core.postprocess import PostprocessConfig  # noqa: E402

__all__ = ["FeatureSpec", "PostprocessConfig", "VADError", "logmel"]
__version__ = "0.1.0"
