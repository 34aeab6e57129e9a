"""Training data: LibriParty-style streams synthesised from clean speech, noise/music and
room impulse responses, with log-mel features and frame labels cached on disk as memmaps.

Pipeline (``build_cache``):

1. List audio files (any libsndfile format and rate) under the speech, noise and RIR
   directories; a missing or empty directory raises ``InvalidInputError`` naming it.
2. Split speech and noise by SOURCE FILE, never by frame: a file is a validation file when
   the SHA-1 of its path relative to its directory falls in the first ``val_fraction`` of the
   hash range. The split does not depend on the seed, so a file is on the same side in every
   run. Simulated rooms are split by index (``training.rooms``); the few real RIRs are shared.
3. Synthesise fixed-length streams (``StreamOptions.stream_s``), each from its own RNG seeded
   by ``(seed, split, stream index)`` -- deterministic for a seed whatever the worker count:
   * speech streams: utterances (8 kHz sources upsampled; some wideband ones band-limited to
     3.4-4 kHz so narrowband is not a speech cue) at random levels, joined with random
     silences (short pauses, longer gaps and long non-speech stretches of 3-8 s, occasional
     overlaps), many convolved with a real or simulated RIR (far-field), on a background of
     music/noise segments (some band-limited, some reverberated) at a random SNR;
   * non-speech streams: music/noise only (label 0), so music is learnt as non-speech;
   * files are drawn with ``pick_weights``: 1 / sqrt(files of the same source folder), noise
     also times sqrt(duration), so thousands of one-word clips do not drown the few long
     many-speaker recordings, nor short sound effects the music tracks;
   * the whole mixture gets a random peak level (-35..0 dBFS), a low white "microphone" noise
     floor (never digital silence), sometimes a telephone band limit or a random channel EQ.
   Labels follow ``training.augment`` (energy rule on the DRY utterance, shifted by the RIR's
   direct-path delay, smoothed over the stream).
4. Features ``vad.core.features.logmel`` of each stream (float32 [n_frames, n_mels]) and labels
   (uint8) go into ``<split>_features.npy`` / ``<split>_labels.npy`` (numpy .npy, opened with
   ``mmap_mode='r'``), plus ``index.json`` (stream boundaries, spec, options, per-band mean/std
   of the training features, speech fraction, skipped files, build time). Written to temp
   names and renamed; a second call with the same configuration reuses the cache.

Unreadable files in a big corpus are skipped (counted, named in ``index.json`` and logged);
only if nothing is readable does the build fail.

Modules, one job each: ``corpus`` (listing, split, pick weights), ``clipio`` (reading clips and
excerpts), ``synthesis`` (streams and their labels), ``cachebuild`` (the parallel cache build),
``cacheread`` (training windows and validation streams). This module gathers their public API.
"""

from vad.training.cachebuild import CACHE_VERSION, build_cache
from vad.training.cacheread import CachedStreams, FeatureAugment
from vad.training.corpus import AUDIO_EXTENSIONS, AudioFile, list_audio_files, pick_weights, split_files
from vad.training.synthesis import SPLITS, Stream, StreamContext, StreamOptions, synthesize_stream

__all__ = [
    "AUDIO_EXTENSIONS", "CACHE_VERSION", "SPLITS", "AudioFile", "CachedStreams", "FeatureAugment", "Stream",
    "StreamContext", "StreamOptions", "build_cache", "list_audio_files", "pick_weights", "split_files",
    "synthesize_stream",
]
