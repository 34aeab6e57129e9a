"""Applications on top of the engine and training: file labeling, evaluation, baselines,
benchmarks and the ``vad`` command line (``vad.apps.cli``)."""
