"""The one error hierarchy of the project.

Every public entry point validates what it is given and raises one of these with a
message that names the bad value (or file). They subclass the matching built-in
(``ValueError``, ``OSError``, ...) so callers that already catch those keep working.
"""

from __future__ import annotations


class VADError(Exception):
    """Base class of every error this project raises on purpose."""


class InvalidInputError(VADError, ValueError):
    """An argument has the wrong type, dtype, shape, range or non-finite values."""


class InvalidFeatureSpecError(InvalidInputError):
    """A FeatureSpec (or its JSON) is inconsistent or malformed."""


class AudioFileError(VADError, OSError):
    """An audio file is missing, empty, truncated, unreadable or not audio."""


class LabelFormatError(VADError, ValueError):
    """A label file (RTTM, Audacity, CSV, JSON) is malformed."""


class ModelFileError(VADError, ValueError):
    """A model file is missing, corrupt, lacks metadata, or has a newer schema."""


class StreamStateError(VADError, RuntimeError):
    """A streaming call is not valid in the stream's current state (e.g. after flush)."""


class MissingDependencyError(VADError, ImportError):
    """An optional dependency is not installed; the message names the extra to install."""


def require(module: str, extra: str, purpose: str):
    """Import an optional dependency or raise MissingDependencyError naming the extra.

    >>> np = require("numpy", "dev", "tests")
    """
    import importlib

    try:
        return importlib.import_module(module)
    except ImportError as exc:  # pragma: no cover - exercised by tests with a blocked module
        raise MissingDependencyError(
            f"{purpose} needs the optional dependency '{module}', which is not installed: "
            f"pip install 'learned-width-vad[{extra}]'"
        ) from exc


# Import names of what each optional extra of pyproject.toml installs (tests/test_cli.py checks
# that they agree), for commands that need the whole extra before they start any work.
EXTRA_MODULES = {
    "train": ("torch", "scipy", "pyroomacoustics", "onnx"),
    "plot": ("matplotlib",),
}


def require_extra(extra: str, purpose: str) -> None:
    """Raise MissingDependencyError naming ``extra`` unless every module it installs imports."""
    for module in EXTRA_MODULES[extra]:
        require(module, extra, purpose)
