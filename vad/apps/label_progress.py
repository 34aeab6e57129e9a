"""Progress of a batch on a terminal: files, audio hours, real-time factor and ETA."""

from __future__ import annotations

import math
import sys
import time

from vad.apps.label_jobs import WRITTEN, FileOutcome


class ProgressBar:
    """One-line progress on a terminal: files done, audio hours, real-time factor, ETA.

    Writes nothing when ``stream`` is not a terminal. Call ``update(outcome)`` per file and
    ``close()`` at the end.
    """

    _WIDTH = 24
    _MIN_REDRAW_S = 0.1

    def __init__(self, total_files: int, total_audio_s: float, stream=None, enabled: bool | None = None):
        self.stream = stream if stream is not None else sys.stderr
        self.enabled = _isatty(self.stream) if enabled is None else enabled
        self.total_files = total_files
        self.total_audio_s = max(total_audio_s, 0.0)
        self.done_files = 0
        self.done_audio_s = 0.0
        self.t0 = time.perf_counter()
        self._last_draw = 0.0

    def update(self, outcome: FileOutcome, expected_audio_s: float = 0.0) -> None:
        self.done_files += 1
        self.done_audio_s += outcome.duration_s
        if outcome.status != WRITTEN:  # skipped or failed: its audio no longer counts as to do
            self.total_audio_s = max(self.total_audio_s - expected_audio_s, self.done_audio_s)
        now = time.perf_counter()
        if self.enabled and (now - self._last_draw >= self._MIN_REDRAW_S or self.done_files == self.total_files):
            self._last_draw = now
            self.stream.write("\r" + self.render(now - self.t0) + "\x1b[K")
            self.stream.flush()

    def message(self, text: str) -> None:
        """Print a line above the bar (e.g. an error) without breaking it."""
        if self.enabled:
            self.stream.write("\r\x1b[K")
        self.stream.write(text + "\n")
        if self.enabled:
            self.stream.write(self.render(time.perf_counter() - self.t0) + "\x1b[K")
        self.stream.flush()

    def render(self, elapsed_s: float) -> str:
        frac = self.done_audio_s / self.total_audio_s if self.total_audio_s > 0 else 0.0
        if self.total_audio_s <= 0 and self.total_files:
            frac = self.done_files / self.total_files
        frac = min(max(frac, 0.0), 1.0)
        filled = int(round(frac * self._WIDTH))
        bar = "#" * filled + "-" * (self._WIDTH - filled)
        rtf = self.done_audio_s / elapsed_s if elapsed_s > 0 else 0.0
        remaining_s = max(self.total_audio_s - self.done_audio_s, 0.0)
        eta = _clock(remaining_s / rtf) if rtf > 0 and self.done_files < self.total_files else "--:--"
        if self.done_files >= self.total_files:
            eta = "0:00"
        return (
            f"[{bar}] {self.done_files}/{self.total_files} files  "
            f"{self.done_audio_s / 3600:.2f}/{self.total_audio_s / 3600:.2f} h audio  "
            f"{rtf:,.0f}x real time  ETA {eta}"
        )

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\n")
            self.stream.flush()


def _clock(seconds: float) -> str:
    if not math.isfinite(seconds):
        return "--:--"
    s = int(round(seconds))
    h, rem = divmod(s, 3600)
    m, sec = divmod(rem, 60)
    return f"{h}:{m:02d}:{sec:02d}" if h else f"{m}:{sec:02d}"


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
