"""`vad export` (placeholder until its issue's work lands)."""

NAME = "export"
HELP = "export (not implemented yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("vad export is not implemented yet")
