"""`vad train` (placeholder until its issue's work lands)."""

NAME = "train"
HELP = "train (not implemented yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("vad train is not implemented yet")
