"""The ``vad`` command line: a thin dispatcher over ``vad.apps.commands.<name>`` modules."""

from __future__ import annotations

import argparse
import importlib
import sys

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


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return int(args._run(args) or 0)
    except VADError as exc:
        print(f"vad {args.command}: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"vad {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
