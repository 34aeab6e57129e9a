"""One module per ``vad`` subcommand. Each exposes ``NAME``, ``HELP``,
``add_arguments(parser)`` and ``run(args) -> int`` (the exit code). Modules import heavy
or optional dependencies (torch, training, sounddevice, matplotlib) inside ``run`` only."""

COMMANDS = ("label", "listen", "eval", "tune", "train", "export", "info", "bench", "calibrate")
