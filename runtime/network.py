"""Numba inference backend for the frozen network (``causal-dwconv-gru``), weights from the ONNX file.

The weights are read from the model file's initializers, which export names after
``FrozenVAD.state_dict()`` in torch layout (``inp.weight``, ``gru.weight_ih_l0``, ...; see
``training.export``), so the file stays the one place they live. The initializers are read
with the minimal protobuf reader ``runtime.onnxproto.read_initializers``: ``onnx`` is a
development dependency only and onnxruntime does not expose initializer values.

onnxruntime stays the reference: ``VADModel(backend="numba")`` checks on load that this
backend matches onnxruntime to ``PARITY_TOLERANCE`` on a probe sequence and raises
ModelFileError otherwise. The kernel computes in float64, returns float32 probabilities and
keeps its recurrent state in float64 between calls, so the probabilities do not depend on
how frames are grouped into calls (one call of T frames == T calls of one frame, bit for
bit). A call costs the Python dispatch (~1-2 us) plus ~2 us per frame (default widths), so
a frame can be run as soon as it is complete. The kernel releases the GIL (``nogil=True``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numba import njit
from vad.runtime.onnxproto import read_initializers

from vad.core.errors import ModelFileError
from vad.core.modelmeta import ARCHITECTURE_NAME

PARITY_TOLERANCE = 1e-5
_WEIGHTS = (
    "feat_mean", "feat_std", "inp.weight", "inp.bias", "dw.weight", "dw.bias", "pw.weight", "pw.bias",
    "gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0", "out.weight", "out.bias",
)

# --- the kernel ---------------------------------------------------------------------------
@njit(cache=True, nogil=True, fastmath=False)
def _sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


@njit(cache=True, nogil=True, fastmath=True)
def _run_frames(feats, flat, c2, ctx, h, probs):
    """Run feats [T, F]; ``ctx`` [k-1, c1] and ``h`` [hid] (float64) are the state, updated in
    place; probabilities go to ``probs`` [T] (float32).

    ``flat`` holds every weight as float64, in the order of ``_WEIGHTS`` (dw as [c1, kernel]).
    """
    n_feat = feats.shape[1]
    km1, c1 = ctx.shape
    kernel = km1 + 1
    hid = h.shape[0]
    o = 0
    mean = flat[o : o + n_feat]
    o += n_feat
    inv_std = flat[o : o + n_feat]
    o += n_feat
    w_inp = flat[o : o + c1 * n_feat].reshape((c1, n_feat))
    o += c1 * n_feat
    b_inp = flat[o : o + c1]
    o += c1
    w_dw = flat[o : o + c1 * kernel].reshape((c1, kernel))
    o += c1 * kernel
    b_dw = flat[o : o + c1]
    o += c1
    w_pw = flat[o : o + c2 * c1].reshape((c2, c1))
    o += c2 * c1
    b_pw = flat[o : o + c2]
    o += c2
    w_ih = flat[o : o + 3 * hid * c2].reshape((3 * hid, c2))
    o += 3 * hid * c2
    w_hh = flat[o : o + 3 * hid * hid].reshape((3 * hid, hid))
    o += 3 * hid * hid
    b_ih = flat[o : o + 3 * hid]
    o += 3 * hid
    b_hh = flat[o : o + 3 * hid]
    o += 3 * hid
    w_out = flat[o : o + hid]
    o += hid
    b_out = flat[o]
    x = np.empty(n_feat)
    a = np.empty(c1)
    y = np.empty(c1)
    z = np.empty(c2)
    gi = np.empty(3 * hid)
    gh = np.empty(3 * hid)
    n_frames = feats.shape[0]
    for t in range(n_frames):
        for f in range(n_feat):
            x[f] = (feats[t, f] - mean[f]) * inv_std[f]
        for c in range(c1):
            acc = b_inp[c]
            for f in range(n_feat):
                acc += w_inp[c, f] * x[f]
            a[c] = acc if acc > 0.0 else 0.0
        for c in range(c1):
            acc = b_dw[c] + w_dw[c, km1] * a[c]
            for j in range(km1):
                acc += w_dw[c, j] * ctx[j, c]
            y[c] = acc
        for j in range(km1 - 1):
            for c in range(c1):
                ctx[j, c] = ctx[j + 1, c]
        if km1 > 0:
            for c in range(c1):
                ctx[km1 - 1, c] = a[c]
        for c in range(c2):
            acc = b_pw[c]
            for i in range(c1):
                acc += w_pw[c, i] * y[i]
            z[c] = acc if acc > 0.0 else 0.0
        for r in range(3 * hid):
            acc = b_ih[r]
            for i in range(c2):
                acc += w_ih[r, i] * z[i]
            gi[r] = acc
            acc = b_hh[r]
            for i in range(hid):
                acc += w_hh[r, i] * h[i]
            gh[r] = acc
        for i in range(hid):
            rg = _sigmoid(gi[i] + gh[i])
            ug = _sigmoid(gi[hid + i] + gh[hid + i])
            ng = np.tanh(gi[2 * hid + i] + rg * gh[2 * hid + i])
            h[i] = (1.0 - ug) * ng + ug * h[i]
        acc = b_out
        for i in range(hid):
            acc += w_out[i] * h[i]
        probs[t] = _sigmoid(acc)


class NumbaNetwork:
    """The frozen network's forward pass in numba, same I/O as the ONNX graph (batch 1)."""

    def __init__(self, path: str | Path, architecture: dict):
        if architecture.get("name") != ARCHITECTURE_NAME:
            raise ModelFileError(
                f"{path}: the numba backend runs {ARCHITECTURE_NAME!r} networks, this model is "
                f"{architecture.get('name')!r}; use backend='onnxruntime'"
            )
        w = read_initializers(path)
        missing = [n for n in _WEIGHTS if n not in w]
        if missing:
            raise ModelFileError(f"{path}: numba backend: initializer(s) missing: {', '.join(missing)}")
        f64 = {n: np.asarray(w[n], dtype=np.float64) for n in _WEIGHTS}
        f64["feat_std"] = 1.0 / f64["feat_std"]
        f64["dw.weight"] = f64["dw.weight"][:, 0, :]
        self._flat = np.ascontiguousarray(np.concatenate([f64[n].ravel() for n in _WEIGHTS]))
        self.n_features = int(f64["inp.weight"].shape[1])
        self.c1 = int(f64["inp.weight"].shape[0])
        self.c2 = int(f64["pw.weight"].shape[0])
        self.hid = int(f64["gru.weight_hh_l0"].shape[1])
        self.kernel = int(f64["dw.weight"].shape[1])

    def initial_state(self) -> dict[str, np.ndarray]:
        """Zero state: float64 ``state_conv`` [k-1, c1] and ``state_gru`` [hid] (kept exact between calls)."""
        return {"state_conv": np.zeros((self.kernel - 1, self.c1)), "state_gru": np.zeros(self.hid)}

    def run(self, features: np.ndarray, state: dict[str, np.ndarray]) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        """Same contract as ``VADModel.run``; the state arrays are updated in place and returned."""
        probs = np.empty(features.shape[0], dtype=np.float32)
        _run_frames(features, self._flat, self.c2, state["state_conv"], state["state_gru"], probs)
        return probs, state
