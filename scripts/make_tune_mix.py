"""Build a dev/mix-like *tuning* group from validation-split training material, outside the project.

The tuning part of dev (models/README.md, "What was tuned on what") holds meetings and read
speech but no speech in music, ambience or effects, so a choice made on it cannot see what
happens on dev/mix (input leveling was the case: better on the tuning part, worse on dev/mix).
This writes 15 streams shaped like dev/mix (5 SNRs x music / ambience / effects, six utterances
each with 0.5-2 s pauses in a continuous noise bed, tight labels) from material no shipped model
trained on:

* speech: the utterances of speechocean762 (a local copy at the commit of SOURCES.md) that fall
  in the training *validation* split (``vad.training.corpus.split_files`` keys, as the extra corpus
  of ``python -m vad.training.sources`` names them), one speaker per utterance;
* noise: the validation split of ``../shared/data/train/noise`` (``--noise`` files), by kind.

Labels follow the training rule (``vad.training.augment``: a pause of 100 ms or more is non-speech).
SNR = speech power over its labelled frames against the noise bed's mean power; each stream's
speech level is drawn from -34..-18 dBFS. Needs the ``train`` extra. Seeded: the same inputs give
the same files.

    python scripts/make_tune_mix.py --speechocean speechocean762 \\
        --music M1.opus M2.opus --ambience A1.opus --effects E1.opus -o TUNE_MIX
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import soundfile as sf
from vad.training.augment import active_frames, smooth_labels
from vad.training.corpus import in_validation_split

from vad.core.audio import load_audio
from vad.core.labelfiles import Segment, write_labels

RATE_HZ = 16000
HOP = 160
FRAME_MS = 10.0
SNRS = ((20, "snr20"), (10, "snr10"), (5, "snr05"), (0, "snr00"), (-5, "snrm05"))  # dev/mix's names
UTTERANCES_PER_STREAM = 6
LEAD_S = 0.5
PAUSE_S = (0.5, 2.0)
SPEECH_LEVEL_DBFS = (-34.0, -18.0)
VAL_FRACTION = 0.1  # vad.training.synthesis.StreamOptions.val_fraction
SEED = 2026


def validation_utterances(root: Path) -> dict[str, list[Path]]:
    """speechocean762 WAVs in the training validation split, by speaker folder."""
    by_speaker: dict[str, list[Path]] = {}
    for path in sorted(root.rglob("*")):
        if path.suffix.lower() != ".wav":
            continue
        rel = path.relative_to(root).as_posix().rsplit(".", 1)[0].replace("/", "__")
        if in_validation_split(f"speech/speechocean762/{rel}.flac", VAL_FRACTION):  # the corpus's key
            by_speaker.setdefault(path.parent.name, []).append(path)
    return by_speaker


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--speechocean", required=True, type=Path, help="local copy of speechocean762")
    for kind in ("music", "ambience", "effects"):
        parser.add_argument(f"--{kind}", nargs="+", required=True, help=f"validation-split {kind} noise files")
    parser.add_argument("-o", "--output", required=True, type=Path, help="output folder (must not exist)")
    args = parser.parse_args(argv)
    args.output.mkdir(parents=True)
    speakers = validation_utterances(args.speechocean)
    rng = np.random.default_rng(SEED)
    order = iter(rng.permutation(sorted(speakers)))
    noises = {k: [load_audio(Path(p), RATE_HZ)[0].astype(np.float64) for p in getattr(args, k)]
              for k in ("music", "ambience", "effects")}
    k = 0
    for snr, tag in SNRS:
        for kind, beds in noises.items():
            k += 1
            utts = []
            for _ in range(UTTERANCES_PER_STREAM):
                files = speakers[next(order)]
                utts.append(load_audio(files[int(rng.integers(len(files)))], RATE_HZ)[0].astype(np.float64))
            pos, placed = int(LEAD_S * RATE_HZ), []
            for x in utts:
                placed.append((pos, x))
                pos += x.size + int(rng.uniform(*PAUSE_S) * RATE_HZ)
            speech, mask = np.zeros(pos), np.zeros(pos // HOP, dtype=bool)
            for start, x in placed:
                speech[start : start + x.size] += x
                m = smooth_labels(active_frames(x, HOP), FRAME_MS)
                f0 = start // HOP
                mask[f0 : f0 + m.size] |= m[: max(0, mask.size - f0)]
            active = np.repeat(mask, HOP)[: pos]
            p_speech = float(np.mean(speech[: active.size][active] ** 2))
            src = beds[int(rng.integers(len(beds)))]
            bed = np.resize(np.roll(src, -int(rng.integers(src.size))), pos)
            bed *= np.sqrt(p_speech / max(float(np.mean(bed**2)), 1e-20) / 10 ** (snr / 10))
            mix = (speech + bed) * 10 ** (rng.uniform(*SPEECH_LEVEL_DBFS) / 20) / np.sqrt(p_speech)
            stem = f"tunemix_{k:02d}_{kind}_{tag}"
            sf.write(args.output / f"{stem}.flac", np.clip(mix, -1, 1).astype(np.float32), RATE_HZ, subtype="PCM_16")
            edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
            segments = [Segment(s * FRAME_MS / 1000, e * FRAME_MS / 1000)
                        for s, e in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True)]
            write_labels(args.output / f"{stem}.rttm", segments)
    print(f"wrote {k} streams to {args.output} ({sum(len(v) for v in speakers.values())} validation utterances "
          f"of {len(speakers)} speakers to draw from)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
