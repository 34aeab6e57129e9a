"""Prepare the extra training corpus from the vetted public sources of
``../shared/data/SOURCES.md``, reproducibly, outside the repository.

Each source is read from a local copy (a clone at the named commit, or an extracted Debian
package) and written as 16-bit FLAC, mono, at 16 kHz (telephone sources at 8 kHz, their own
band), under ``OUT/speech/<source>/[<language>/]<name>.flac``, plus ``OUT/MANIFEST.tsv``
(path, source, version, licence, sample rate, duration) and ``OUT/SOURCES.json`` (what was
asked, what was found, what was left out and why). Reserved material is never written:
Italian, Russian and Greek speech from any source (``RESERVED_LANGUAGES``), and the Debian
packages that ``dev/mix`` is built from (``RESERVED_DEBIAN``: refused if given).

Getting the local copies (any Debian/Ubuntu machine; GitHub clones at the named commits)::

    git clone https://github.com/gcompris/GCompris-voices && git -C GCompris-voices checkout c0e8a74
    git clone https://github.com/jimbozhang/speechocean762 && git -C speechocean762 checkout 613968e
    git clone https://github.com/wake-up-word/wuw-corpus-ii && git -C wuw-corpus-ii checkout edd16fe
    git clone https://github.com/Picovoice/wake-word-benchmark && git -C wake-word-benchmark checkout 84919190
    apt-get download fillets-ng-data-cs asterisk-prompt-es-co asterisk-prompt-fr-armelle
    for d in *.deb; do dpkg-deb -x "$d" "deb/${d%%_*}"; done

then::

    python -m vad.training.sources --out CORPUS --gcompris GCompris-voices \\
        --speechocean speechocean762 --wuw wuw-corpus-ii --picovoice wake-word-benchmark \\
        --debian deb/fillets-ng-data-cs deb/asterisk-prompt-es-co deb/asterisk-prompt-fr-armelle

and train with ``vad train --speech ../shared/data/train/speech CORPUS/speech ...``.
A rerun skips files already written (outputs are written atomically), so an interrupted run
resumes. Not prepared: ``codec2-examples`` (a few minutes of raw codec test vectors without
per-file provenance) and the infant-cry corpus (non-speech; not needed for the recipe).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import re
import subprocess
import sys
from collections.abc import Callable, Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from vad.core.atomicfile import atomic_output, atomic_write_text
from vad.core.errors import AudioFileError, InvalidInputError

WIDEBAND_RATE_HZ = 16000
TELEPHONE_RATE_HZ = 8000
RESERVED_LANGUAGES = ("it", "ru", "el")
RESERVED_DEBIAN = ("fillets-ng-data-nl", "0ad-data", "fretsonfire-songs-sectoid", "fretsonfire-songs-muldjord")
MULAW_BIAS = 0x84
MIN_DURATION_S = 0.2
MIN_PEAK_DBFS = -40.0
EXPECTED_COMMITS = {  # SOURCES.md
    "gcompris": "c0e8a74",
    "speechocean": "613968e",
    "wuw": "edd16fe",
    "picovoice": "84919190",
}
DEBIAN_LICENCES = {
    "fillets-ng-data-cs": "GPL-2+",
    "asterisk-prompt-es-co": "GPL-2",
    "asterisk-prompt-fr-armelle": "GPL-2+",
}


@dataclasses.dataclass(frozen=True)
class Item:
    """One source file to convert."""

    src: str
    out_rel: str  # relative to OUT, without suffix
    source: str
    version: str
    licence: str
    rate_hz: int
    reader: str  # "sndfile", "gsm" or "mulaw"


# --- reading --------------------------------------------------------------------------------

def mulaw_decode(codes: np.ndarray) -> np.ndarray:
    """ITU-T G.711 mu-law bytes -> float32 in [-1, 1]."""
    u = ~codes.astype(np.uint8)
    sign = (u & 0x80) != 0
    exponent = (u >> 4) & 0x07
    mantissa = u & 0x0F
    magnitude = ((mantissa.astype(np.int32) << 3) + MULAW_BIAS) << exponent
    linear = np.where(sign, MULAW_BIAS - magnitude, magnitude - MULAW_BIAS)
    return (linear / 32768.0).astype(np.float32)


def _read(item: Item) -> tuple[np.ndarray, int]:
    import soundfile as sf

    try:
        if item.reader == "mulaw":
            return mulaw_decode(np.fromfile(item.src, dtype=np.uint8)), TELEPHONE_RATE_HZ
        if item.reader == "gsm":
            x, sr = sf.read(item.src, format="RAW", subtype="GSM610", samplerate=TELEPHONE_RATE_HZ, channels=1,
                            dtype="float32")
            return x, sr
        x, sr = sf.read(item.src, dtype="float32", always_2d=True)
    except (RuntimeError, sf.LibsndfileError, OSError, ValueError) as exc:
        raise AudioFileError(f"cannot read {item.src!r}: {exc}") from exc
    return x.mean(axis=1), sr


def convert(item: Item, out_root: Path) -> dict | str:
    """Write one item; returns its manifest row, or a reason string when it is left out."""
    import soundfile as sf
    import soxr

    out = out_root / (item.out_rel + ".flac")
    if out.is_file():  # written by an earlier run (atomically, so complete)
        try:
            info = sf.info(str(out))
            return _row(item, out, out_root, info.samplerate, info.frames / info.samplerate)
        except (RuntimeError, sf.LibsndfileError) as exc:
            return f"an earlier output {str(out)!r} is unreadable ({exc}); delete it and rerun"
    try:
        x, sr = _read(item)
    except AudioFileError as exc:
        return f"unreadable: {exc}"
    if x.size == 0 or not np.all(np.isfinite(x)):
        return "empty or non-finite"
    if sr != item.rate_hz:
        x = soxr.resample(x, sr, item.rate_hz, quality="VHQ").astype(np.float32)
    peak = float(np.max(np.abs(x)))
    if x.size < MIN_DURATION_S * item.rate_hz or peak <= 10 ** (MIN_PEAK_DBFS / 20):
        return f"shorter than {MIN_DURATION_S} s or quieter than {MIN_PEAK_DBFS} dBFS peak"
    out.parent.mkdir(parents=True, exist_ok=True)
    with atomic_output(out) as tmp:
        sf.write(tmp, np.clip(x, -1.0, 1.0), item.rate_hz, format="FLAC", subtype="PCM_16")
    return _row(item, out, out_root, item.rate_hz, x.size / item.rate_hz)


def _row(item: Item, out: Path, out_root: Path, rate: int, duration_s: float) -> dict:
    return {"path": out.relative_to(out_root).as_posix(), "source": item.source, "version": item.version,
            "license": item.licence, "sample_rate": rate, "duration_s": round(duration_s, 3),
            "original": item.src}


# --- listing each source --------------------------------------------------------------------

def _git_commit(root: Path) -> str:
    try:
        return subprocess.run(["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _check_commit(name: str, root: Path) -> str:
    commit = _git_commit(root)
    if commit != "unknown" and not commit.startswith(EXPECTED_COMMITS[name]):
        raise InvalidInputError(f"--{name} {str(root)!r} is at commit {commit[:10]}, the recipe names "
                                f"{EXPECTED_COMMITS[name]} (git -C {root} checkout {EXPECTED_COMMITS[name]})")
    return commit


def _safe(rel: str) -> str:
    """A flat file stem from a relative path: folders joined by '__', the extension dropped."""
    stem = rel.rsplit(".", 1)[0] if "." in rel.rsplit("/", 1)[-1] else rel
    return re.sub(r"[^\w.\-]+", "_", stem.replace("/", "__"))


def _gcompris_licences(root: Path) -> dict[str, str]:
    """LICENSE lists './<lang>/<folder>:' headers, then '<file>  <author> / <licence>' (or
    '<file>  <licence>') lines; the statement is kept as written."""
    out: dict[str, str] = {}
    folder = ""
    text = (root / "LICENSE").read_text(errors="replace") if (root / "LICENSE").is_file() else ""
    for line in text.splitlines():
        head = re.match(r"^\./(.+):\s*$", line)
        if head:
            folder = head.group(1)
            continue
        entry = re.match(r"^(\S+\.ogg)\s+(.+?)\s*$", line)  # '<file>  [<author> / ]<licence>'
        if entry and folder:
            out[f"{folder}/{entry.group(1)}"] = entry.group(2)
    return out


def gcompris_items(root: Path) -> Iterator[Item | tuple[str, str]]:
    commit = _check_commit("gcompris", root)
    licences = _gcompris_licences(root)
    for path in sorted(root.rglob("*.ogg")):
        rel = path.relative_to(root).as_posix()
        lang = rel.split("/")[0]
        if lang in RESERVED_LANGUAGES:
            yield rel, f"reserved language {lang!r}"
            continue
        lic = licences.get(rel)
        if lic is None:
            yield rel, "no licence entry in LICENSE"
            continue
        yield Item(str(path), f"speech/gcompris/{lang}/{_safe(rel.split('/', 1)[1])}",
                   "github:gcompris/GCompris-voices", commit, lic, WIDEBAND_RATE_HZ, "sndfile")


def speechocean_items(root: Path) -> Iterator[Item | tuple[str, str]]:
    commit = _check_commit("speechocean", root)
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() == ".wav"):
        rel = path.relative_to(root).as_posix()
        yield Item(str(path), f"speech/speechocean762/{_safe(rel)}", "github:jimbozhang/speechocean762", commit,
                   "free for commercial and non-commercial use (README)", WIDEBAND_RATE_HZ, "sndfile")


def wuw_items(root: Path) -> Iterator[Item | tuple[str, str]]:
    commit = _check_commit("wuw", root)
    for path in sorted(root.rglob("*.ulaw")):
        rel = path.relative_to(root).as_posix()
        yield Item(str(path), f"speech/wuw-corpus-ii/{_safe(rel)}", "github:wake-up-word/wuw-corpus-ii", commit,
                   "CC-BY-SA-4.0", TELEPHONE_RATE_HZ, "mulaw")


def picovoice_items(root: Path) -> Iterator[Item | tuple[str, str]]:
    commit = _check_commit("picovoice", root)
    for path in sorted(p for p in (root / "audio").rglob("*") if p.suffix.lower() in (".wav", ".flac")):
        rel = path.relative_to(root / "audio").as_posix()
        yield Item(str(path), f"speech/picovoice/{_safe(rel)}", "github:Picovoice/wake-word-benchmark", commit,
                   "Apache-2.0", WIDEBAND_RATE_HZ, "sndfile")


def _deb_version(root: Path, package: str) -> str:
    changelog = root / "usr" / "share" / "doc" / package / "changelog.Debian.gz"
    if changelog.is_file():
        import gzip

        first = gzip.open(changelog, "rt", errors="replace").readline()
        m = re.search(r"\(([^)]+)\)", first)
        if m:
            return m.group(1)
    return "unknown"


def debian_items(root: Path) -> Iterator[Item | tuple[str, str]]:
    package = root.name
    if package in RESERVED_DEBIAN:
        raise InvalidInputError(f"--debian {str(root)!r}: {package} is reserved for evaluation, never train on it")
    if package not in DEBIAN_LICENCES:
        raise InvalidInputError(f"--debian {str(root)!r}: folder name must be one of {sorted(DEBIAN_LICENCES)} "
                                f"(dpkg-deb -x PACKAGE_*.deb deb/PACKAGE)")
    version = _deb_version(root, package)
    for path in sorted(p for p in root.rglob("*") if p.suffix.lower() in (".ogg", ".gsm", ".wav") and p.is_file()):
        rel = path.relative_to(root).as_posix()
        if any(f"/{lang}/" in f"/{rel}" for lang in RESERVED_LANGUAGES):
            yield rel, "reserved language"
            continue
        telephone = path.suffix.lower() == ".gsm" or package.startswith("asterisk")
        yield Item(str(path), f"speech/{package}/{_safe(rel.split('/sounds/', 1)[-1].split('/sound/', 1)[-1])}",
                   f"debian:{package}", version, DEBIAN_LICENCES[package],
                   TELEPHONE_RATE_HZ if telephone else WIDEBAND_RATE_HZ, "gsm" if path.suffix.lower() == ".gsm" else "sndfile")


LISTERS: dict[str, Callable[[Path], Iterator[Item | tuple[str, str]]]] = {
    "gcompris": gcompris_items, "speechocean": speechocean_items, "wuw": wuw_items, "picovoice": picovoice_items,
}


# --- driver ---------------------------------------------------------------------------------

def prepare(out_root: Path, roots: dict[str, Path], debian: list[Path], jobs: int = 2,
            progress: Callable[[str], None] = print) -> dict:
    out_root.mkdir(parents=True, exist_ok=True)
    items: list[Item] = []
    left_out: list[dict] = []
    for name, root in roots.items():
        if not root.is_dir():
            raise InvalidInputError(f"--{name} {str(root)!r} is not a directory")
        for it in LISTERS[name](root):
            if isinstance(it, Item):
                items.append(it)
            else:
                left_out.append({"source": name, "file": it[0], "why": it[1]})
    for root in debian:
        if not root.is_dir():
            raise InvalidInputError(f"--debian {str(root)!r} is not a directory")
        for it in debian_items(root):
            if isinstance(it, Item):
                items.append(it)
            else:
                left_out.append({"source": root.name, "file": it[0], "why": it[1]})
    progress(f"{len(items)} files to convert ({len(left_out)} left out by rule)")
    rows: list[dict] = []
    with ProcessPoolExecutor(max_workers=max(1, jobs)) as pool:
        for k, (item, result) in enumerate(zip(items, pool.map(convert, items, [out_root] * len(items),
                                                              chunksize=16), strict=True), 1):
            if isinstance(result, dict):
                rows.append(result)
            else:
                left_out.append({"source": item.source, "file": item.src, "why": result})
            if k % 1000 == 0:
                progress(f"{k}/{len(items)}")
    rows.sort(key=lambda r: r["path"])
    header = ["path", "source", "version", "license", "sample_rate", "duration_s"]
    atomic_write_text(out_root / "MANIFEST.tsv", "\t".join(header) + "\n"
                      + "".join("\t".join(str(r[h]) for h in header) + "\n" for r in rows))
    hours: dict[str, float] = {}
    for r in rows:
        hours[r["source"]] = hours.get(r["source"], 0.0) + r["duration_s"] / 3600.0
    summary = {"files": len(rows), "hours": round(sum(hours.values()), 3),
               "hours_by_source": {k: round(v, 3) for k, v in sorted(hours.items())},
               "versions": sorted({(r["source"], r["version"]) for r in rows}),
               "left_out": left_out}
    atomic_write_text(out_root / "SOURCES.json", json.dumps(summary, indent=1))
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m vad.training.sources", description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", required=True, type=Path, help="corpus folder to write (outside the repository)")
    for name in LISTERS:
        parser.add_argument(f"--{name}", type=Path, help=f"local copy of the {name} source")
    parser.add_argument("--debian", type=Path, nargs="*", default=[], help="extracted Debian packages (deb/NAME)")
    parser.add_argument("--jobs", type=int, default=min(2, os.cpu_count() or 1))
    args = parser.parse_args(argv)
    roots = {name: getattr(args, name) for name in LISTERS if getattr(args, name) is not None}
    if not roots and not args.debian:
        parser.error("name at least one source")
    try:
        summary = prepare(args.out, roots, list(args.debian), args.jobs, progress=lambda m: print(m, flush=True))
    except InvalidInputError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(json.dumps({k: v for k, v in summary.items() if k != "left_out"}, indent=1))
    print(f"{len(summary['left_out'])} files left out (reasons in {args.out / 'SOURCES.json'})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
