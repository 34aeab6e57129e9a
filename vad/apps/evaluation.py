"""Evaluate VAD systems against labeled audio: the Python API behind ``vad eval``.

>>> from vad.apps.evaluation import discover, evaluate, format_table
>>> items = discover(["../shared/data/dev"])
>>> report = evaluate(items, [ModelSystem("model.onnx"), *make_baselines("webrtc,silero")])
>>> print(format_table(report))

**Systems.** A system is any object with ``name`` (str), ``default_threshold`` (float) and
``frame_scores(audio) -> array``: ``audio`` is float32 mono at 16 kHz, the result has one
speech score per 10 ms reference frame (``n_samples // 160``; frame ``i`` is
``[i * 10 ms, (i + 1) * 10 ms)``). A system may instead offer
``score(audio) -> SystemOutput`` to also return its own detected segments (our models
return the segments of their own default post-processing, from the streaming runtime).
Without it, a system's detected segments come from the shared post-processing
(``vad.core.postprocess``) at its default options, with the onset threshold set to the
system's ``default_threshold`` (``default_segments``), so the segment figures of all
systems follow the same rules. Optional attribute
``flops_per_second`` (None when unknown) is copied into the report.

**Labels.** Every audio file needs a label file of the same stem (``.rttm``, ``.txt``
Audacity, ``.csv``, ``.json``; first found in that order), looked up in ``labels_dir``
(mirroring the audio's path below its PATH argument, then flat) and next to the audio.
A file without labels is an error naming it; an empty label file means no speech.
Reference frame labels use ``vad.core.labelfiles.segments_to_frames`` (at least half covered).

**Figures** (per system; per file, per group, per SNR and pooled over all files):

* frame ``roc_auc`` and ``eer`` over all scored frames (pooled = frames of all files
  together), ``precision``/``recall``/``f1``/``miss_rate``/``false_alarm_rate`` at the
  system's default threshold (score >= threshold is speech);
* ``false_alarms_per_minute``: detected segments per minute of the files without any
  reference speech (nan when there are none);
* onset/offset delay median and 90th percentile in ms (``vad.core.metrics.boundary_delays``:
  first/last detected segment overlapping each reference segment; signed, late > 0),
  and the share of reference segments no detection overlaps;
* ``real_time_factor``: seconds the system spent / seconds of audio (audio decoding and
  resampling excluded).

A collar of C ms excludes from the frame figures every frame whose interval comes closer
than C ms to a reference segment boundary (segment figures are not affected).
Groups are the folders of the files relative to the PATH argument they were found under
(``dev``, ``dev/nonspeech``). Where a folder holds several file families (the file name up
to its first ``_``), each family of two or more files is also summarised (``families``:
``dev/ami``, ``dev/nonspeech/0ad``, ...).
The SNR of a file is read from its path (``snr10``, ``snr_-5``, ``SNR5.5`` ...); files with an
SNR are also summarised per SNR.

**Speech-free files never enter an AUC.** ``roc_auc`` and ``eer`` of a pooled or group summary
use only the files with reference speech (frames of speech-free music or noise are easy
negatives that would lift any AUC); files without speech are judged by
``nonspeech_false_alarm_rate`` (share of their frames scored >= the default threshold) and
``false_alarms_per_minute``. ``speech_pooled`` is the summary of all files with speech.

Modules, one job each: ``eval_inputs`` (discovery, groups, decoding), ``eval_systems`` (our
models as systems), ``eval_scoring`` (``evaluate``), ``eval_report`` (JSON, tables, plots),
``pareto`` (accuracy against compute). This module gathers their public API.
"""

from vad.apps.eval_inputs import (
    EVAL_SAMPLE_RATE_HZ,
    FRAME_HOP_S,
    FRAME_HOP_SAMPLES,
    EvalItem,
    discover,
    family_of,
    find_label_file,
    load_eval_audio,
    snr_from_name,
)
from vad.apps.eval_report import format_markdown, format_table, plot_report, report_json, write_report
from vad.apps.eval_scoring import REPORT_VERSION, collar_mask, evaluate
from vad.apps.eval_systems import ModelSystem, SystemOutput, default_segments, run_system
from vad.apps.pareto import collect_pareto, plot_pareto

__all__ = [
    "EVAL_SAMPLE_RATE_HZ", "FRAME_HOP_S", "FRAME_HOP_SAMPLES", "REPORT_VERSION", "EvalItem", "ModelSystem",
    "SystemOutput", "collar_mask", "collect_pareto", "default_segments", "discover", "evaluate", "family_of",
    "find_label_file", "format_markdown", "format_table", "load_eval_audio", "plot_pareto", "plot_report",
    "report_json", "run_system", "snr_from_name", "write_report",
]
