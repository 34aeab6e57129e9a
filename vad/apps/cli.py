"""The ``vad`` command line: a thin dispatcher over ``vad.apps.commands.<name>`` modules.

Every command's stdout goes through one ``StdoutGuard``: when its reader goes away
(``vad eval ... | head -1``), the rest of stdout is dropped quietly (no ``BrokenPipeError``
traceback) and the command still finishes its other work (``--json`` files, clips);
``stdout_reader_gone()`` lets a long-running command (``vad listen``) stop early.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from typing import Any, TextIO

from vad.apps.commands import COMMANDS
from vad.core.errors import VADError


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="vad",
        description="Voice activity detection with learned-width networks: label files, listen live, "
        "evaluate, train for your compute budget, export and benchmark.",
    )
    from vad import __version__

    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in COMMANDS:
        module = importlib.import_module(f"vad.apps.commands.{name}")
        p = sub.add_parser(name, help=module.HELP, description=module.HELP)
        module.add_arguments(p)
        p.set_defaults(_run=module.run)
    return parser


class StdoutGuard:
    """Wraps stdout: a write or flush that finds the reader gone (``BrokenPipeError``) sends
    this and every later write to the null device instead of raising."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self.reader_gone = False

    def write(self, text: str) -> int:
        if not self.reader_gone:
            try:
                return self._stream.write(text)
            except BrokenPipeError:
                self._drop_the_rest()
        return len(text)

    def flush(self) -> None:
        if not self.reader_gone:
            try:
                self._stream.flush()
            except BrokenPipeError:
                self._drop_the_rest()

    def _drop_the_rest(self) -> None:
        self.reader_gone = True
        try:  # what is still buffered (and the interpreter's final flush) goes nowhere, quietly
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, self._stream.fileno())
            os.close(devnull)
        except (OSError, ValueError):  # no file descriptor (an in-memory stream): writes are dropped above
            pass

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)


def stdout_reader_gone() -> bool:
    """True once the reader of ``vad``'s stdout went away (e.g. ``| head``)."""
    return isinstance(sys.stdout, StdoutGuard) and sys.stdout.reader_gone


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    saved = sys.stdout
    sys.stdout = guard = saved if isinstance(saved, StdoutGuard) else StdoutGuard(saved)
    try:
        return int(args._run(args) or 0)
    except VADError as exc:
        print(f"vad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vad {args.command}: interrupted", file=sys.stderr)
        return 130
    finally:
        guard.flush()  # a reader that left after the last write is noticed here, not at exit
        sys.stdout = saved


if __name__ == "__main__":
    sys.exit(main())
