"""`vad label` (placeholder until its issue's work lands)."""

NAME = "label"
HELP = "label (not implemented yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("vad label is not implemented yet")
