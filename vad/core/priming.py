"""Start-of-stream priming: the network's state before a stream's first frame.

A network whose state starts at zero is in a state it never saw in training (its training
windows start inside running streams), and it climbs out of it for about a second: on quiet
or steady non-speech its scores rise to 0.4-0.6 within 0.1-0.2 s of a stream's start and fall
back later, which shows as a false speech segment at the start of many files.

So every stream is *primed*. Its opening (the first ``PRIME_OPENING_HOPS`` hops) is held back;
the front end and the network run on a pre-roll of ``PRIME_HOPS`` hops made of it (the opening
mirrored backwards from the stream's start: reversed, then forward, ..., so the pre-roll is
continuous with the stream), their outputs are dropped, and then the stream itself runs from
the state its own opening sound leads to, with that sound, not zero padding, as its first
frames' left context. An opening of several hops rather than one: many files open with a fade
(a codec's first milliseconds, an edit), and a pre-roll of the fade alone primes the network
to silence. The cost: a stream's first probability comes when its opening is complete (once, at
the start: with the numba backend ``PRIME_OPENING_HOPS - 1`` hops later than it would; onnxruntime
waits for its first block anyway, so there the first probability comes after
``max(PRIME_OPENING_HOPS, block_frames)`` hops); later frames keep the engine's latency. A stream
shorter than the opening is primed on its whole hops at flush. Frame numbers, times and events
are the stream's own; the pre-roll's probabilities never reach the post-processing.

The one definition is ``prime_samples``; the numba kernel (``vad.runtime.network._prime``)
builds the same samples in place, the onnxruntime path of ``vad.runtime.engine`` and the
JavaScript runtime (``runtime/js/vad_stream.mjs``) run their graph on them; the tests check them
against each other. ``StreamingVAD(prime=False)`` runs a stream from the zero state instead.

    >>> import numpy as np
    >>> prime_samples(np.array([1.0, 2.0, 3.0], dtype=np.float32), hop=3, n_hops=3)
    array([3., 2., 1., 1., 2., 3., 3., 2., 1.], dtype=float32)
"""

from __future__ import annotations

import numpy as np

from vad.core.errors import InvalidInputError

PRIME_HOPS = 200  # hops of pre-roll (2 s at a 10 ms hop)
PRIME_OPENING_HOPS = 40  # hops of the stream's opening the pre-roll is made of (400 ms at a 10 ms hop)
MAX_OPENING_HOPS = 64  # the most a stream state can hold back (vad.runtime.network sizes its calls by it)


def prime_samples(opening: np.ndarray, hop: int, n_hops: int = PRIME_HOPS) -> np.ndarray:
    """The pre-roll a stream is primed with: ``n_hops`` hops made of the whole hops of ``opening``
    (the stream's first samples at the model's rate, as the network receives them), mirrored
    backwards from the stream's start: the sample ``r`` samples before the start (``r = 0`` the
    last of the pre-roll) is ``opening[q]`` for ``q = r mod 2L < L``, else ``opening[2L - 1 - q]``,
    ``L`` the opening's whole hops in samples. Same dtype as ``opening``."""
    x = np.asarray(opening)
    length = (x.shape[0] // hop) * hop if x.ndim == 1 and hop > 0 else 0
    if length == 0:
        raise InvalidInputError(f"opening must be a 1-D array of at least one hop ({hop} samples), has shape {x.shape}")
    if isinstance(n_hops, bool) or not isinstance(n_hops, int) or n_hops < 0:
        raise InvalidInputError(f"n_hops={n_hops!r}: must be an integer >= 0")
    q = np.arange(n_hops * hop - 1, -1, -1) % (2 * length)
    return x[np.where(q < length, q, 2 * length - 1 - q)]
