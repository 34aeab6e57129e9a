"""The torch-free facts every other layer builds on: feature spec and reference front end
(``features``), audio I/O (``audio``), label file formats (``labelfiles``), metrics, the one
post-processing (``postprocess``), model metadata (``modelmeta``), errors and atomic writes.
Imports nothing from ``vad.runtime``, ``vad.training`` or ``vad.apps``."""
