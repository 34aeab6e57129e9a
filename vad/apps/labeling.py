"""Label audio files with speech segments: the Python API behind ``vad label``.

>>> from vad.apps.labeling import label_file, label_corpus
>>> result = label_file("meeting.flac")            # the shipped default model
>>> [(s.start_s, s.end_s, s.score) for s in result.segments]
>>> result.probabilities                           # float32, one per 10 ms frame
>>> summary = label_corpus(["corpus/"], "labels/", engine="ray", address="auto")

The work is split along its seams, one module each (all re-exported here):

* ``label_audio``: one file (model loading, block-by-block reading, the streaming engine);
* ``label_formats``: ``LabelResult`` and the text of each format (rttm, audacity, csv, json);
* ``label_inputs``: finding audio files in PATH arguments (files, folders, globs);
* ``label_outputs``: output names (``X.vad.rttm``), the output-folder check, atomic writes and
  the ledger of files vad label wrote (the only files ``--overwrite`` replaces);
* ``label_jobs``: one file of a batch as a worker does it (the same code in every engine);
* ``label_batch``: ``label_corpus`` (skip, refuse, run an engine, collect the outcomes);
* ``label_pool``: the local engine (this process or a pool of worker processes);
* ``label_ray``: the Ray engine (``engine="ray"``, the ``cluster`` extra);
* ``label_progress``: the progress line of ``vad label``.
"""

from __future__ import annotations

from vad.apps.label_audio import LoadedModel, events_to_segments, label_file
from vad.apps.label_batch import ENGINES, BatchSummary, check_setup, label_corpus, label_files
from vad.apps.label_formats import FORMAT_SUFFIXES, FORMATS, LabelResult, format_result
from vad.apps.label_inputs import AUDIO_SUFFIXES, audio_duration_s, find_audio_files
from vad.apps.label_jobs import FAILED, SKIPPED, WRITTEN, FileOutcome
from vad.apps.label_outputs import LEDGER_NAME, OUTPUT_TAG, check_outdir, plan_outputs
from vad.apps.label_pool import default_jobs
from vad.apps.label_progress import ProgressBar

__all__ = [
    "AUDIO_SUFFIXES", "ENGINES", "FAILED", "FORMATS", "FORMAT_SUFFIXES", "LEDGER_NAME", "OUTPUT_TAG",
    "SKIPPED", "WRITTEN", "BatchSummary", "FileOutcome", "LabelResult", "LoadedModel", "ProgressBar",
    "audio_duration_s", "check_outdir", "check_setup", "default_jobs", "events_to_segments", "find_audio_files",
    "format_result", "label_corpus", "label_file", "label_files", "plan_outputs",
]  # fmt: skip
