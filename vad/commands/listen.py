"""`vad listen` (placeholder until its issue's work lands)."""

NAME = "listen"
HELP = "listen (not implemented yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("vad listen is not implemented yet")
