"""`vad eval` (placeholder until its issue's work lands)."""

NAME = "eval"
HELP = "eval (not implemented yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("vad eval is not implemented yet")
