"""`vad info` (placeholder until its issue's work lands)."""

NAME = "info"
HELP = "info (not implemented yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("vad info is not implemented yet")
