"""Torch batch log-mel front end (the training-side copy of ``vad.core.features.logmel``).

Same framing and numbers as the numpy reference (see ``vad.core.features``): left pad of
``win - hop`` zeros, frame ``i`` covers samples ``[(i + 1) * hop - win, (i + 1) * hop)``,
``n // hop`` frames, periodic Hann window zero-padded to ``n_fft``, power spectrum,
Slaney mel filters from ``vad.core.features.mel_filterbank``, natural log of
``max(mel, log_floor)``; float64 inside, float32 out. Built on ``torch.stft``
(``center=False``); no torchaudio. Not meant to be differentiated.
"""

from __future__ import annotations

import functools

import numpy as np
import torch

from vad.core.errors import InvalidInputError
from vad.core.features import (
    MAX_FLOAT_SAMPLE_MAGNITUDE,
    PCM_FULL_SCALE,
    FeatureSpec,
    bad_sample_reason,
    hann_window,
    mel_filterbank,
    pcm_scale,
)


@functools.lru_cache(maxsize=16)
def _spec_tables(spec: FeatureSpec) -> tuple[np.ndarray, np.ndarray]:
    """(periodic Hann window of win_length_samples, mel filterbank), float64 numpy."""
    return hann_window(spec), mel_filterbank(spec)


def _as_float64(signal: torch.Tensor) -> torch.Tensor:
    """float64 samples at full scale +-1.0 under the sample contract of ``vad.core.features``."""
    if signal.dtype.is_floating_point:
        x = signal.to(torch.float64)
        bad = ~(x.abs() <= MAX_FLOAT_SAMPLE_MAGNITUDE)  # NaN/inf or too loud
        if bool(bad.any()):
            flat = torch.nonzero(bad.reshape(-1))[0, 0].item()
            index = tuple(int(i) for i in np.unravel_index(flat, tuple(x.shape)))
            raise InvalidInputError(f"signal has {bad_sample_reason(x.reshape(-1)[flat].item(), index)}")
        return x
    try:
        np_dtype = torch.empty(0, dtype=signal.dtype).numpy().dtype
    except (TypeError, RuntimeError):  # no numpy twin (e.g. complex32, quantised): not samples
        raise InvalidInputError(f"signal must be float, int16 or int32 PCM, got dtype {signal.dtype}") from None
    if np_dtype not in PCM_FULL_SCALE:  # rejected: the message looks at the values to say how to convert
        pcm_scale(signal.cpu().numpy(), "signal")
    return signal.to(torch.float64) * pcm_scale(np_dtype, "signal")


def logmel_torch(signal: torch.Tensor, spec: FeatureSpec | None = None) -> torch.Tensor:
    """Log-mel features of a batch of mono signals at spec.sample_rate_hz.

    Args:
        signal: [B, N] or [N] tensor, float in [-1, 1] or int16/int32 PCM (scaled by 1/2**15,
            1/2**31, like the reference; other dtypes are rejected), on any device.
        spec: the feature spec (default FeatureSpec()).

    Returns:
        float32 tensor [B, N // hop, n_mels] on the signal's device (B = 1 for a 1-D input).
    """
    spec = FeatureSpec() if spec is None else spec
    if not isinstance(spec, FeatureSpec):
        raise InvalidInputError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
    if not isinstance(signal, torch.Tensor):
        raise InvalidInputError(f"signal must be a torch.Tensor, got {type(signal).__name__}")
    if signal.dim() not in (1, 2):
        raise InvalidInputError(f"signal must be [N] or [B, N], got shape {tuple(signal.shape)}")
    x = _as_float64(signal.detach())
    if x.dim() == 1:
        x = x.unsqueeze(0)
    batch, n_samples = x.shape
    hop, win, n_fft = spec.hop_length_samples, spec.win_length_samples, spec.n_fft
    n_frames = spec.n_frames(n_samples)
    if n_frames == 0:
        return torch.zeros((batch, 0, spec.n_mels), dtype=torch.float32, device=x.device)

    window_np, fb_np = _spec_tables(spec)
    window = torch.from_numpy(window_np).to(x.device)
    fb = torch.from_numpy(fb_np).to(x.device)
    # torch.stft centres a win-length window inside each n_fft frame (offset lpad); prepend lpad
    # extra zeros so the windowed part of frame i is exactly the reference's frame i, and append
    # rpad so the last n_fft frame fits. The offset only rotates the FFT phase: |X|^2 is unchanged.
    lpad = (n_fft - win) // 2
    rpad = n_fft - win - lpad
    used = x[:, : n_frames * hop]
    padded = torch.nn.functional.pad(used, (spec.left_pad_samples + lpad, rpad))
    stft = torch.stft(padded, n_fft=n_fft, hop_length=hop, win_length=win, window=window, center=False,
                      onesided=True, return_complex=True)  # [B, n_bins, n_frames]
    power = stft.real.square() + stft.imag.square()
    mel = torch.matmul(fb, power)  # [B, n_mels, n_frames]
    return torch.log(torch.clamp(mel, min=spec.log_floor)).transpose(1, 2).to(torch.float32).contiguous()
