"""Where label files go, and which existing files ``vad label`` may replace.

Output names: ``<stem>.vad.<ext>`` (``.vad.rttm``, ``.vad.txt`` for Audacity, ``.vad.csv``,
``.vad.json``), so an output never takes the name of a reference label file (``X.rttm`` next
to ``X.flac``). With ``outdir`` the input tree is mirrored below ``outdir`` relative to the
common folder of all inputs, so ``a/x.wav`` and ``b/x.wav`` give ``outdir/a/x.vad.rttm`` and
``outdir/b/x.vad.rttm``. Without ``outdir`` each output goes next to its input. Inputs that
still collide (``x.wav`` and ``x.flac`` in one folder) keep their audio suffix:
``x.wav.vad.rttm`` and ``x.flac.vad.rttm``.

Ownership: every folder that receives outputs gets a ledger, ``.vad-label.jsonl``, one line
per file written (its name and the SHA-256 of its bytes). ``--overwrite`` replaces a file only
when the ledger lists it with the hash of its current content: a file somebody else wrote, or
one of ours edited by hand since, is never replaced. The ledger is written only by the process
that runs the batch (workers return the hash), so each folder has one writer; a torn last line
(a crash mid-append) is ignored. A file written but not yet listed when the batch was killed is
skipped on reruns like any finished output; ``--overwrite`` refuses it with a message that says
to move it away.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Sequence
from pathlib import Path

from vad.apps.label_formats import FORMAT_SUFFIXES, check_format
from vad.core.errors import InvalidInputError

OUTPUT_TAG = ".vad"  # between the stem and the format's suffix: x.vad.rttm
LEDGER_NAME = ".vad-label.jsonl"
_HASH_BLOCK_BYTES = 1 << 20


def output_suffix(fmt: str) -> str:
    """``.vad.rttm`` for rttm, and so on."""
    return OUTPUT_TAG + FORMAT_SUFFIXES[check_format(fmt)]


def plan_outputs(inputs: Sequence[Path], fmt: str, outdir: str | os.PathLike | None = None) -> list[Path]:
    """The output path of each input (see the module docstring for the naming rules)."""
    suffix = output_suffix(fmt)
    if not inputs:
        return []
    parents = [Path(os.path.abspath(p)).parent for p in inputs]
    if outdir is None:
        folders = parents
    else:
        root = Path(os.path.commonpath([str(p) for p in parents]))
        folders = [Path(outdir) / p.relative_to(root) for p in parents]
    outputs = [folder / (Path(p).stem + suffix) for folder, p in zip(folders, inputs, strict=True)]
    # inputs that map to the same output (x.wav, x.flac in one folder), or an output that
    # would overwrite an input, keep their own suffix: x.wav.vad.rttm
    input_keys = {Path(os.path.abspath(p)) for p in inputs}
    counts: dict[Path, int] = {}
    for o in outputs:
        key = Path(os.path.abspath(o))
        counts[key] = counts.get(key, 0) + 1
    for i, o in enumerate(outputs):
        key = Path(os.path.abspath(o))
        if counts[key] > 1 or key in input_keys:
            outputs[i] = folders[i] / (Path(inputs[i]).name + suffix)
    return outputs


def check_outdir(outdir: str | os.PathLike | None) -> None:
    """Raise InvalidInputError (naming the path) when outputs cannot go below ``outdir``.

    Checked before any work and without creating anything: ``outdir`` (or, while it does not
    exist yet, its nearest existing parent) must be a folder this process can create files in.
    """
    if outdir is None:
        return
    if not isinstance(outdir, (str, os.PathLike)):
        raise InvalidInputError(f"outdir={outdir!r}: must be a folder path or None")
    path = Path(outdir)
    existing = path
    while not existing.exists() and not existing.is_symlink() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        where = "is" if existing == path else f"cannot be created: {existing} is"
        raise InvalidInputError(f"output folder {path} {where} not a folder")
    try:
        fd, probe = tempfile.mkstemp(dir=existing, prefix=".vad-label-probe-")
    except OSError as exc:
        what = f"output folder {path}" if existing == path else f"output folder {path} cannot be created: {existing}"
        raise InvalidInputError(f"{what} is not writable ({exc.strerror or exc})") from None
    os.close(fd)
    os.unlink(probe)


def write_output(path: Path, text: str) -> str:
    """Write a label file atomically (vad.core.atomicfile); returns the SHA-256 of its bytes."""
    from vad.core.atomicfile import atomic_write_bytes

    data = text.encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(_HASH_BLOCK_BYTES), b""):
            h.update(block)
    return h.hexdigest()


class OutputLedger:
    """The per-folder ledgers of files ``vad label`` wrote (module docstring)."""

    def __init__(self) -> None:
        self._folders: dict[Path, dict[str, str]] = {}

    def _entries(self, folder: Path) -> dict[str, str]:
        key = Path(os.path.abspath(folder))
        if key not in self._folders:
            entries: dict[str, str] = {}
            try:
                lines = (key / LEDGER_NAME).read_text(encoding="utf-8").splitlines()
            except (OSError, UnicodeDecodeError):
                lines = []
            for line in lines:
                try:
                    rec = json.loads(line)
                    entries[str(rec["name"])] = str(rec["sha256"])
                except (ValueError, KeyError, TypeError):
                    continue  # a torn line from a crash mid-append
            self._folders[key] = entries
        return self._folders[key]

    def wrote(self, path: Path) -> bool:
        """True when ``path`` holds exactly what vad label last wrote there."""
        want = self._entries(path.parent).get(path.name)
        if want is None:
            return False
        try:
            return path.is_file() and sha256_file(path) == want
        except OSError:
            return False

    def record(self, path: Path, sha256: str) -> None:
        """List a file just written (its SHA-256) in its folder's ledger."""
        line = json.dumps({"name": path.name, "sha256": sha256}) + "\n"
        try:
            with open(path.parent / LEDGER_NAME, "a", encoding="utf-8") as fh:
                fh.write(line)
        except OSError:
            # the output itself is written; unlisted, it is only never overwritten later
            return
        self._entries(path.parent)[path.name] = sha256
