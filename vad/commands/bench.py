"""`vad bench` (placeholder until its issue's work lands)."""

NAME = "bench"
HELP = "bench (not implemented yet)"


def add_arguments(parser):
    pass


def run(args) -> int:
    raise NotImplementedError("vad bench is not implemented yet")
