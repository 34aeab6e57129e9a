"""Atomic file output: the one implementation every writer of the project uses.

A file is written to a temporary name in the target's folder and renamed over the target
with ``os.replace`` only once it is complete, so an interrupted run never leaves a
half-written output. The result gets the usual permissions (0666 minus the umask), not
the private 0600 that ``tempfile.mkstemp`` creates; on any error the temporary file is
removed and the target is left as it was.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO

from vad.core.errors import InvalidInputError


def _usual_mode() -> int:
    mask = os.umask(0o022)
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_output(path: str | os.PathLike, mode: str = "wb", encoding: str | None = None,
                  newline: str | None = None) -> Iterator[IO]:
    """Open a temporary file for writing; on normal exit it replaces ``path`` atomically.

    >>> with atomic_output("out.json", "w", encoding="utf-8") as fh:
    ...     fh.write("{}")
    """
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_output mode must be 'w' or 'wb', got {mode!r}")
    path = Path(path)
    folder = path.parent if str(path.parent) else Path(".")
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, mode, encoding=encoding, newline=newline) as fh:
            yield fh
        os.chmod(tmp, _usual_mode())
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_output(path, "w", encoding="utf-8", newline="") as fh:
        fh.write(text)


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_output(path, "wb") as fh:
        fh.write(data)


def prepare_output_file(path: str | os.PathLike, option: str) -> Path:
    """Check an output file named on the command line before any work is done: InvalidInputError
    (naming ``option``) when it is a folder or its folder cannot be made or written; creates a
    missing folder. So a long run never fails at its very end for want of a place to write.

    >>> prepare_output_file("reports/eval.json", "--json")
    PosixPath('reports/eval.json')
    """
    out = Path(path)
    if out.is_dir():
        raise InvalidInputError(f"{option} {os.fspath(path)}: is a folder; give a file name")
    folder = out.parent if str(out.parent) else Path(".")
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InvalidInputError(f"{option} {os.fspath(path)}: cannot create its folder {folder} "
                                f"({exc.strerror or exc})") from None
    if not os.access(folder, os.W_OK | os.X_OK):
        raise InvalidInputError(f"{option} {os.fspath(path)}: its folder {folder} is not writable")
    return out
