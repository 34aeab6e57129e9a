"""Numba inference backend for ``causal-dwconv-gru`` networks, and the fused per-chunk step.

One entry point, ``stream_chunk(raw, code, model, state)`` (``stream_chunk_rfft`` for models
without the fixed-size FFT), with one signature for every input dtype (the samples' memory as
an int16 view) and stage (kept in the state), so
that the one large kernel (``_stage_step``) is compiled, linked and optimised once per install
(numba's cache; each further entry point linking it would cost LLVM seconds again):

* the streaming engine calls it ONCE per audio chunk. It checks the samples, then runs framing, the log-mel front end
  (``vad.runtime.frontend.logmel_frame``), the network and the post-processing state machine
  (``vad.core.postprocess.tracker_push``) for every frame the chunk completes, with all state
  and scratch in the stream's packed buffer (``vad.runtime.packed``): nothing is allocated.
  Complete frames are run in blocks of up to ``NET_BLOCK_FRAMES``: the non-recurrent layers
  as matrix products over the block, then the GRU frame by frame. Each frame's arithmetic is
  the same whatever the block, so the results do not depend on how audio is chunked (bit for
  bit), and a whole file fed in large chunks is the batch path.
* ``NumbaBackend.run(samples, state)`` (``upto=STAGE_NETWORK``): the backend contract of ``vad.runtime.model`` (float32
  samples, a whole number of hops, in; one probability per hop out), the same kernel without
  the post-processing; what the load-time parity probe against onnxruntime runs.

Weights come from the model file's initializers (names after ``FrozenVAD.state_dict()``,
verified by ``vad.runtime.modelfile.load_model_file``; the graph's own front-end tables are not
used: the numba front end builds from the metadata's feature spec). On load they are laid out
for the kernel:
the per-band normalisation folded into the first layer (when the file still carries
``feat_mean``/``feat_std``), matrices transposed to [inputs, outputs] with the outputs padded
to a multiple of ``LANES`` (zero weights and biases: padded units stay exactly 0), stored as
float32. The layers' arithmetic is float32, as in the model file's graph (8 lanes per AVX vector,
no conversions in the matrix products; ``tests/test_runtime.py`` checks the whole dev set
against that graph: probabilities to 1e-5, identical segments); each output sums its inputs in a fixed order, so a
frame's result is the same in every code path. The gates' sigmoid and tanh run in float64 on
the float32 sums (``exp_bounded``): branch-free, so the gate loops vectorize, with an absolute
error below ``ACTIVATION_MAX_ABS_ERROR`` (tested); the output layer sums in float64.

Kernels use ``error_model="numpy"`` (no zero-division branch, so the loops vectorize) and
``fastmath={"contract"}`` in the network (multiply-adds fuse; the same instructions run in
every code path, so results stay independent of chunking).

onnxruntime stays the reference: ``VADModel(backend="numba")`` checks on load that this
backend matches onnxruntime to ``vad.runtime.model.PARITY_TOLERANCE`` on a probe signal and
raises ModelFileError otherwise. The kernels release the GIL (``nogil=True``).
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from numba import njit, types
from numba.extending import intrinsic, overload
from vad.runtime import frontend as _frontend
from vad.runtime import packed as _packed
from vad.runtime.frontend import FrontendTables, copy_scaled, first_bad, frame_samples, spectrum_array
from vad.runtime.packed import (
    PackedArrays,
    region_f32,
    region_f32_2d,
    region_f64,
    region_f64_2d,
    region_i64,
    region_i64_2d,
)

from vad.core import features as _features
from vad.core import leveling as _leveling
from vad.core import postprocess as _postprocess
from vad.core import priming as _priming
from vad.core.errors import ModelFileError
from vad.core.features import MAX_FLOAT_SAMPLE_MAGNITUDE, FeatureSpec, pcm_scale
from vad.core.leveling import LEVEL_COEFFICIENTS
from vad.core.modelmeta import ARCHITECTURE_NAME
from vad.core.postprocess import (
    EVENTS_PER_FRAME,
    EVENTS_SLACK,
    TRACKER_FLOATS,
    TRACKER_INTS,
    TrackerState,
    tracker_flush,
    tracker_push,
    tracker_reset,
)
from vad.core.priming import MAX_OPENING_HOPS, PRIME_HOPS

LANES = 8  # layer widths are padded to a multiple of this (one 256-bit vector of float32)
NET_BLOCK_FRAMES = 32  # frames whose non-recurrent layers run as one matrix product
MAX_CHUNK_HOPS = 1023  # hops one stream_chunk call takes (the engine splits longer chunks)
# frames one call may complete: its hops, the partial hop before them and the opening a stream
# holds back until it is primed (vad.core.priming)
MAX_CALL_FRAMES = MAX_CHUNK_HOPS + 1 + MAX_OPENING_HOPS
STAGE_SAMPLES = 4096  # input samples converted to float64 at a time inside stream_chunk
_WEIGHTS = (
    "inp.weight", "inp.bias", "dw.weight", "dw.bias", "pw.weight", "pw.bias",
    "gru.weight_ih_l0", "gru.weight_hh_l0", "gru.bias_ih_l0", "gru.bias_hh_l0", "out.weight", "out.bias",
)
_NORMALISATION = ("feat_mean", "feat_std")

# --- fast activations --------------------------------------------------------------------------------
# exp(x) = 2**k exp(r), x = k ln2 + r, |r| <= ln2 / 2 (ln2 in two parts, so r is exact), exp(r) by its
# degree-9 Taylor polynomial; k comes from rounding by adding 1.5 * 2**52 (its integer is then the
# low bits of the sum) and 2**k from the exponent bits. No branch, no call, no float->int64
# conversion (AVX has none): the gate loops vectorize. float64 inside, from float32 gate sums:
# float32 activations would take the dev set past 1e-5 from the float64 reference.
EXP_CLAMP = 40.0  # |x| beyond this: sigmoid is 0 or 1 to within 5e-18
ACTIVATION_MAX_ABS_ERROR = 1e-11  # sigmoid and tanh against exact ones (tested)
_LOG2E = 1.4426950408889634
_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # fdlibm's split of ln 2
_ROUNDING_SHIFT = 6755399441055744.0  # 1.5 * 2**52: x + this rounds x to an integer held in the low bits
_ROUNDING_SHIFT_BITS = np.int64(np.array([_ROUNDING_SHIFT]).view(np.int64)[0])
_EXP_TAYLOR = tuple(1.0 / float(np.prod(np.arange(1, k + 1))) for k in range(10))  # 1/k!, k = 0..9
_F64_EXPONENT_BIAS, _F64_MANTISSA_BITS = 1023, 52


@intrinsic
def _f64_bits(typingctx, x):
    """The IEEE-754 bits of the float64 ``x`` as an int64."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.int64))

    return types.int64(types.float64), codegen


@intrinsic
def _f64_from_bits(typingctx, bits):
    """The float64 whose IEEE-754 bits are the int64 ``bits``."""

    def codegen(context, builder, signature, args):
        return builder.bitcast(args[0], context.get_value_type(types.float64))

    return types.float64(types.int64), codegen


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def exp_bounded(x):
    """exp(x) for float64 |x| <= EXP_CLAMP (relative error about 1e-12)."""
    shifted = x * _LOG2E + _ROUNDING_SHIFT
    k = shifted - _ROUNDING_SHIFT
    r = (x - k * _LN2_HI) - k * _LN2_LO
    c = _EXP_TAYLOR
    p = c[9]
    p = p * r + c[8]
    p = p * r + c[7]
    p = p * r + c[6]
    p = p * r + c[5]
    p = p * r + c[4]
    p = p * r + c[3]
    p = p * r + c[2]
    p = p * r + c[1]
    p = p * r + c[0]
    k_bits = _f64_bits(shifted) - _ROUNDING_SHIFT_BITS
    return p * _f64_from_bits((k_bits + _F64_EXPONENT_BIAS) << _F64_MANTISSA_BITS)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def sigmoid(x):
    """1 / (1 + exp(-x)) in float64 (exactly 0.5 at 0)."""
    x = float(x)
    x = x if x > -EXP_CLAMP else -EXP_CLAMP  # selects, not min/max: numba's min/max branch and stop vectorization
    x = x if x < EXP_CLAMP else EXP_CLAMP
    return 1.0 / (1.0 + exp_bounded(-x))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def tanh(x):
    """2 sigmoid(2x) - 1 in float64 (exactly 0 at 0)."""
    return 2.0 * sigmoid(2.0 * float(x)) - 1.0


# --- the network kernel ----------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"})
def _dense(x, nb, n_in, w, b, y, relu):
    """y[t] = b + x[t, :n_in] @ w[:n_in] for t < nb, all float32 (w [rows, n_out]: rows from n_in on, the
    padding of the layer before, are zero and skipped). Each output adds 8 inputs at a time (a
    fixed tree of products), then 4, then one by one: fewer passes over y than one input at a
    time, and the same order in every code path."""
    n_out = w.shape[1]
    zero = np.float32(0.0)
    for t in range(nb):
        for o in range(n_out):
            y[t, o] = b[o]
    i = 0
    while i + 8 <= n_in:
        for t in range(nb):
            x0 = x[t, i]
            x1 = x[t, i + 1]
            x2 = x[t, i + 2]
            x3 = x[t, i + 3]
            x4 = x[t, i + 4]
            x5 = x[t, i + 5]
            x6 = x[t, i + 6]
            x7 = x[t, i + 7]
            for o in range(n_out):
                y[t, o] += ((w[i, o] * x0 + w[i + 1, o] * x1) + (w[i + 2, o] * x2 + w[i + 3, o] * x3)) + (
                    (w[i + 4, o] * x4 + w[i + 5, o] * x5) + (w[i + 6, o] * x6 + w[i + 7, o] * x7))
        i += 8
    if i + 4 <= n_in:
        for t in range(nb):
            x0 = x[t, i]
            x1 = x[t, i + 1]
            x2 = x[t, i + 2]
            x3 = x[t, i + 3]
            for o in range(n_out):
                y[t, o] += (w[i, o] * x0 + w[i + 1, o] * x1) + (w[i + 2, o] * x2 + w[i + 3, o] * x3)
        i += 4
    while i < n_in:
        for t in range(nb):
            xi = x[t, i]
            for o in range(n_out):
                y[t, o] += w[i, o] * xi
        i += 1
    if relu:
        for t in range(nb):
            for o in range(n_out):
                v = y[t, o]
                y[t, o] = v if v > zero else zero


@njit(cache=True, nogil=True, error_model="numpy", fastmath={"contract"}, inline="always")
def _network_frames(feats, nb, dims, w_in, b_in, w_dw, b_dw, w_pw, b_pw, w_ih, b_ih, w_hh, b_hh, w_out, b_out,
                    ring, head_state, h, a, y, z, gi, gh, probs, first):
    """Run the network on feats[:nb] (float32 [B, n_features]); probabilities -> probs[first:first + nb].

    State (updated in place): ring [k-1, c1p] (the last k-1 input-layer outputs, oldest at
    head_state[0]) and h [hidp]. Scratch: a, y [B, c1p], z [B, c2p], gi [B, 3 hidp], gh [1, 3 hidp].
    """
    hid = dims[D_HID]
    hidp = dims[D_HIDP]
    km1 = dims[D_KERNEL] - 1
    c1p = dims[D_C1P]
    _dense(feats, nb, w_in.shape[0], w_in, b_in, a, True)
    head = head_state[0]
    for t in range(nb):  # causal depthwise conv over time, the last k-1 frames in the ring
        for c in range(c1p):
            y[t, c] = b_dw[c] + w_dw[km1, c] * a[t, c]
        for j in range(km1):
            row = ring[(head + j) % km1]
            for c in range(c1p):
                y[t, c] += w_dw[j, c] * row[c]
        if km1 > 0:
            oldest = ring[head]
            for c in range(c1p):
                oldest[c] = a[t, c]
            head = (head + 1) % km1
    head_state[0] = head
    _dense(y, nb, dims[D_C1], w_pw, b_pw, z, True)
    _dense(z, nb, dims[D_C2], w_ih, b_ih, gi, False)
    hrow = h.reshape((1, hidp))
    for t in range(nb):  # the recurrence, frame by frame
        _dense(hrow, 1, hid, w_hh, b_hh, gh, False)
        for i in range(hidp):
            r = sigmoid(gi[t, i] + gh[0, i])
            u = sigmoid(gi[t, hidp + i] + gh[0, hidp + i])
            n = tanh(gi[t, 2 * hidp + i] + r * gh[0, 2 * hidp + i])
            h[i] = (1.0 - u) * n + u * h[i]
        acc = b_out
        for i in range(hid):
            acc += w_out[i] * h[i]
        probs[first + t] = sigmoid(acc)


# --- packed layout ----------------------------------------------------------------------------------
# dims (int64) entries
(D_NFEAT, D_C1, D_C1P, D_C2, D_C2P, D_HID, D_HIDP, D_KERNEL, D_WIN, D_HOP, D_NFFT, D_NMELS, D_NBINS,
 D_FAST_FFT, D_NMELW) = range(15)
_N_DIMS = 15
# model constants: regions
(M_DIMS, M_FLOATS, M_WINDOW, M_TWR, M_TWI, M_SPLIT, M_MEL_RANGE, M_MEL_W, M_W_IN, M_B_IN, M_W_DW, M_B_DW,
 M_W_PW, M_B_PW, M_W_IH, M_B_IH, M_W_HH, M_B_HH, M_W_OUT) = range(19)
F_LOG_FLOOR, F_B_OUT, F_PCM_SCALE = range(3)  # F_PCM_SCALE + INPUT_*: the scale of that sample dtype
_N_FLOATS = F_PCM_SCALE + 4
# stream state: regions
(S_INTS, S_BUF, S_STAGE, S_FFT_A, S_FFT_B, S_SPECTRUM, S_AXES, S_POWER, S_MEL, S_FEATS, S_A, S_Y, S_Z, S_GI, S_GH, S_H,
 S_RING, S_PROBS, S_TI, S_TF, S_TBUF, S_EV_I, S_EV_F, S_OPENING, S_LEVEL) = range(25)
_N_STATE_REGIONS = 25
# S_LEVEL: the leveling coefficients (vad.core.leveling, LEVEL_COEFFICIENTS of them; all 0: off) and
# the tracker (level dB, started)
_LEVEL_TRACKER = LEVEL_COEFFICIENTS
# stream state: S_INTS entries. Priming (vad.core.priming): I_PRIME_LEN samples of the stream's
# opening to prime on (0: streams are not primed); I_PRIME the samples of it held back so far in
# S_OPENING (-1 once the stream is primed, or when it is not to be); I_RELEASE: end of stream, prime
# on the whole hops held even if fewer than I_PRIME_LEN (set by the engine's flush)
I_POS, I_HEAD, I_NFEAT_PENDING, I_NPROBS, I_NEVENTS, I_UPTO, I_PRIME, I_PRIME_LEN, I_RELEASE = range(9)
_N_STATE_INTS = 9
EVENT_CAPACITY = EVENTS_PER_FRAME * MAX_CALL_FRAMES + EVENTS_SLACK


def _pad(n: int) -> int:
    return -(-n // LANES) * LANES


class NetworkWeights:
    """The frozen network's weights from a model file, in the kernel's layout (see the module docstring)."""

    def __init__(self, tensors: Mapping[str, np.ndarray], architecture: dict, source: str = "model"):
        if architecture.get("name") != ARCHITECTURE_NAME:
            raise ModelFileError(
                f"{source}: the numba backend runs {ARCHITECTURE_NAME!r} networks, this model is "
                f"{architecture.get('name')!r}; use backend='onnxruntime'"
            )
        w = tensors
        missing = [n for n in _WEIGHTS if n not in w]
        if missing:
            raise ModelFileError(f"{source}: numba backend: initializer(s) missing: {', '.join(missing)}")
        f64 = {n: np.asarray(w[n], dtype=np.float64) for n in _WEIGHTS}
        self.n_features = int(f64["inp.weight"].shape[1])
        self.c1 = int(f64["inp.weight"].shape[0])
        self.c2 = int(f64["pw.weight"].shape[0])
        self.hid = int(f64["gru.weight_hh_l0"].shape[1])
        self.kernel = int(f64["dw.weight"].shape[2])
        self.c1p, self.c2p, self.hidp = _pad(self.c1), _pad(self.c2), _pad(self.hid)
        w_inp, b_inp = f64["inp.weight"], f64["inp.bias"]
        if all(n in w for n in _NORMALISATION):  # fold (f - mean) / std into the first layer
            inv_std = 1.0 / np.asarray(w["feat_std"], dtype=np.float64)
            w_inp = w_inp * inv_std[None, :]
            b_inp = b_inp - w_inp @ np.asarray(w["feat_mean"], dtype=np.float64)
        self.w_in = self._t(w_inp, self.c1p)
        self.b_in = self._vec(b_inp, self.c1p)
        self.w_dw = self._t(f64["dw.weight"][:, 0, :], self.c1p)  # [kernel, c1p]
        self.b_dw = self._vec(f64["dw.bias"], self.c1p)
        self.w_pw = self._t(f64["pw.weight"], self.c2p, rows=self.c1p)
        self.b_pw = self._vec(f64["pw.bias"], self.c2p)
        self.w_ih = self._gates(f64["gru.weight_ih_l0"], self.c2p)
        self.b_ih = self._gate_vec(f64["gru.bias_ih_l0"])
        self.w_hh = self._gates(f64["gru.weight_hh_l0"], self.hidp)
        self.b_hh = self._gate_vec(f64["gru.bias_hh_l0"])
        self.w_out = self._vec(f64["out.weight"][0], self.hidp, np.float64)
        self.b_out = float(f64["out.bias"][0])

    @staticmethod
    def _t(w: np.ndarray, cols: int, rows: int | None = None) -> np.ndarray:
        """w [out, in] as float32 [in (padded to rows), out padded to cols]."""
        out = np.zeros((rows or w.shape[1], cols), dtype=np.float32)
        out[: w.shape[1], : w.shape[0]] = w.T
        return out

    @staticmethod
    def _vec(v: np.ndarray, n: int, dtype=np.float32) -> np.ndarray:
        out = np.zeros(n, dtype=dtype)
        out[: v.shape[0]] = v
        return out

    def _gates(self, w: np.ndarray, rows: int) -> np.ndarray:
        """GRU weights [3 hid, in] (gates r, z, n) as float32 [rows, 3 hidp], each gate's block padded."""
        out = np.zeros((rows, 3 * self.hidp), dtype=np.float32)
        for g in range(3):
            out[: w.shape[1], g * self.hidp : g * self.hidp + self.hid] = w[g * self.hid : (g + 1) * self.hid].T
        return out

    def _gate_vec(self, v: np.ndarray) -> np.ndarray:
        out = np.zeros(3 * self.hidp, dtype=np.float32)
        for g in range(3):
            out[g * self.hidp : g * self.hidp + self.hid] = v[g * self.hid : (g + 1) * self.hid]
        return out


def pack_model(spec: FeatureSpec, weights: NetworkWeights) -> PackedArrays:
    """The model's constants (front-end tables + network weights) as one packed buffer."""
    tables = FrontendTables(spec)
    w = weights
    regions = {
        M_DIMS: (np.int64, (_N_DIMS,)),
        M_FLOATS: (np.float64, (_N_FLOATS,)),
        M_WINDOW: (np.float64, tables.window.shape),
        M_TWR: (np.float64, tables.twiddle_re.shape),
        M_TWI: (np.float64, tables.twiddle_im.shape),
        M_SPLIT: (np.float64, tables.split.shape),
        M_MEL_RANGE: (np.int64, tables.mel_range.shape),
        M_MEL_W: (np.float64, tables.mel_weights.shape),
        M_W_IN: (np.float32, w.w_in.shape),
        M_B_IN: (np.float32, w.b_in.shape),
        M_W_DW: (np.float32, w.w_dw.shape),
        M_B_DW: (np.float32, w.b_dw.shape),
        M_W_PW: (np.float32, w.w_pw.shape),
        M_B_PW: (np.float32, w.b_pw.shape),
        M_W_IH: (np.float32, w.w_ih.shape),
        M_B_IH: (np.float32, w.b_ih.shape),
        M_W_HH: (np.float32, w.w_hh.shape),
        M_B_HH: (np.float32, w.b_hh.shape),
        M_W_OUT: (np.float64, w.w_out.shape),
    }
    packed = PackedArrays([regions[r] for r in range(len(regions))])
    dims = np.zeros(_N_DIMS, dtype=np.int64)
    dims[[D_NFEAT, D_C1, D_C1P, D_C2, D_C2P, D_HID, D_HIDP, D_KERNEL]] = (
        w.n_features, w.c1, w.c1p, w.c2, w.c2p, w.hid, w.hidp, w.kernel)
    dims[[D_WIN, D_HOP, D_NFFT, D_NMELS, D_NBINS, D_FAST_FFT, D_NMELW]] = (
        spec.win_length_samples, spec.hop_length_samples, spec.n_fft, spec.n_mels, spec.n_bins, int(tables.fast),
        tables.mel_weights.size)
    floats = np.zeros(_N_FLOATS, dtype=np.float64)
    floats[F_LOG_FLOOR], floats[F_B_OUT] = tables.log_floor, w.b_out
    for dtype, code in INPUT_CODES.items():
        floats[F_PCM_SCALE + code] = pcm_scale(dtype)
    for region, value in (
        (M_DIMS, dims), (M_FLOATS, floats), (M_WINDOW, tables.window),
        (M_TWR, tables.twiddle_re), (M_TWI, tables.twiddle_im), (M_SPLIT, tables.split),
        (M_MEL_RANGE, tables.mel_range), (M_MEL_W, tables.mel_weights), (M_W_IN, w.w_in), (M_B_IN, w.b_in),
        (M_W_DW, w.w_dw), (M_B_DW, w.b_dw), (M_W_PW, w.w_pw), (M_B_PW, w.b_pw), (M_W_IH, w.w_ih),
        (M_B_IH, w.b_ih), (M_W_HH, w.w_hh), (M_B_HH, w.b_hh), (M_W_OUT, w.w_out),
    ):
        packed.set(region, value)
    return packed


def pack_stream_state(spec: FeatureSpec, weights: NetworkWeights, tracker: TrackerState,
                      prime_hops: int = 0, leveling: np.ndarray | None = None) -> PackedArrays:
    """A fresh stream's state and scratch (call ``reset_stream`` before use); ``prime_hops`` > 0:
    each stream (after every reset) is primed on its first ``prime_hops`` hops (``vad.core.priming``);
    ``leveling``: its input is leveled with these coefficients (``LevelingConfig.coefficients``)."""
    if not 0 <= prime_hops <= MAX_OPENING_HOPS:
        raise ValueError(f"prime_hops={prime_hops}: must be 0..{MAX_OPENING_HOPS}")
    w = weights
    fast = spec.n_fft == 512
    regions = [None] * _N_STATE_REGIONS
    regions[S_INTS] = (np.int64, (_N_STATE_INTS,))
    regions[S_BUF] = (np.float64, (spec.n_fft,))
    regions[S_STAGE] = (np.float64, (STAGE_SAMPLES,))
    regions[S_FFT_A] = (np.float64, (512 if fast else spec.n_fft,))
    regions[S_FFT_B] = (np.float64, (512 if fast else 0,))
    regions[S_SPECTRUM] = (np.float64, (0 if fast else 2 * spec.n_bins,))
    regions[S_AXES] = (np.int64, (1,))
    regions[S_POWER] = (np.float64, (spec.n_bins,))
    regions[S_MEL] = (np.float64, (spec.n_mels,))
    regions[S_FEATS] = (np.float32, (NET_BLOCK_FRAMES, w.n_features))
    regions[S_A] = (np.float32, (NET_BLOCK_FRAMES, w.c1p))
    regions[S_Y] = (np.float32, (NET_BLOCK_FRAMES, w.c1p))
    regions[S_Z] = (np.float32, (NET_BLOCK_FRAMES, w.c2p))
    regions[S_GI] = (np.float32, (NET_BLOCK_FRAMES, 3 * w.hidp))
    regions[S_GH] = (np.float32, (1, 3 * w.hidp))
    regions[S_H] = (np.float32, (w.hidp,))
    regions[S_RING] = (np.float32, (max(w.kernel - 1, 1), w.c1p))
    regions[S_PROBS] = (np.float32, (MAX_CALL_FRAMES,))
    regions[S_TI] = (np.int64, (TRACKER_INTS,))
    regions[S_TF] = (np.float64, (TRACKER_FLOATS,))
    regions[S_TBUF] = (np.float64, tracker.buf.shape)
    regions[S_EV_I] = (np.int64, (EVENT_CAPACITY, 3))
    regions[S_EV_F] = (np.float64, (EVENT_CAPACITY,))
    regions[S_OPENING] = (np.float64, (max(prime_hops, 1) * spec.hop_length_samples,))
    regions[S_LEVEL] = (np.float64, (LEVEL_COEFFICIENTS + 2,))
    packed = PackedArrays(regions)
    if leveling is not None:
        packed.view(S_LEVEL)[:LEVEL_COEFFICIENTS] = leveling
    packed.view(S_INTS)[I_UPTO] = STAGE_ALL
    packed.view(S_INTS)[I_PRIME_LEN] = prime_hops * spec.hop_length_samples
    packed.set(S_TI, tracker.ti)
    packed.set(S_TF, tracker.tf)
    return packed


# --- the fused step ----------------------------------------------------------------------------------


@njit(cache=True, nogil=True, error_model="numpy")
def _run_block(model, state, dims, nb, first):
    """The network on the nb pending feature frames; probabilities -> S_PROBS[first:]. A separate
    kernel (not inlined into ``_stage_step`` by numba, whose IR inlining is the slow part of a
    first compile; LLVM sees it whole anyway)."""
    km1 = max(dims[D_KERNEL] - 1, 1)
    c1p, c2p, hidp, nfeat = dims[D_C1P], dims[D_C2P], dims[D_HIDP], dims[D_NFEAT]
    g = 3 * hidp
    _network_frames(
        region_f32_2d(state, S_FEATS, NET_BLOCK_FRAMES, nfeat), nb, dims,
        region_f32_2d(model, M_W_IN, nfeat, c1p), region_f32(model, M_B_IN),
        region_f32_2d(model, M_W_DW, dims[D_KERNEL], c1p), region_f32(model, M_B_DW),
        region_f32_2d(model, M_W_PW, c1p, c2p), region_f32(model, M_B_PW),
        region_f32_2d(model, M_W_IH, c2p, g), region_f32(model, M_B_IH),
        region_f32_2d(model, M_W_HH, hidp, g), region_f32(model, M_B_HH),
        region_f64(model, M_W_OUT), region_f64(model, M_FLOATS)[F_B_OUT],
        region_f32_2d(state, S_RING, km1, c1p), region_i64(state, S_INTS)[I_HEAD:I_HEAD + 1],
        region_f32(state, S_H),
        region_f32_2d(state, S_A, NET_BLOCK_FRAMES, c1p), region_f32_2d(state, S_Y, NET_BLOCK_FRAMES, c1p),
        region_f32_2d(state, S_Z, NET_BLOCK_FRAMES, c2p), region_f32_2d(state, S_GI, NET_BLOCK_FRAMES, g),
        region_f32_2d(state, S_GH, 1, g), region_f32(state, S_PROBS), first,
    )


def _spectrum_in(storage, kind):
    """The FFT scratch in ``storage`` (float64 state region) as the type of ``kind`` (an empty float64
    or complex128 array), which selects the FFT that compiles (``vad.runtime.frontend._power``)."""
    raise NotImplementedError("_spectrum_in runs only inside compiled kernels (numba overload below)")


@overload(_spectrum_in, inline="always", jit_options={"nogil": True, "error_model": "numpy"})
def _spectrum_in_overload(storage, kind):
    if isinstance(kind.dtype, types.Complex):
        return lambda storage, kind: storage.view(np.complex128)
    return lambda storage, kind: storage


@njit(cache=True, nogil=True, error_model="numpy")
def _stage_step(model, state, n, kind):
    """Everything after the input conversion, for S_STAGE[:n] (scaled float64 samples): each
    completed frame through the front end, the network block by block, and the post-processing.
    S_INTS[I_UPTO] < STAGE_ALL stops early (NumbaBackend.run, ``vad bench --breakdown``; a state
    entry rather than an argument, so that the kernel has one signature and compiles once). Appends to S_PROBS / S_EV_* at
    the counts kept in S_INTS. This is the one large kernel: every stage is inlined into it, so it
    compiles once, whatever the input dtype of ``stream_chunk``."""
    dims = region_i64(model, M_DIMS)
    nmels = dims[D_NMELS]
    ints = region_i64(state, S_INTS)
    stage = region_f64(state, S_STAGE)
    buf = region_f64(state, S_BUF)
    feats = region_f32_2d(state, S_FEATS, NET_BLOCK_FRAMES, nmels)
    window = region_f64(model, M_WINDOW)
    twr = region_f64(model, M_TWR)
    twi = region_f64(model, M_TWI)
    split = region_f64_2d(model, M_SPLIT, 2, dims[D_NBINS])
    mel_range = region_i64_2d(model, M_MEL_RANGE, nmels, 3)
    mel_w = region_f64(model, M_MEL_W)
    log_floor = region_f64(model, M_FLOATS)[F_LOG_FLOOR]
    fa = region_f64(state, S_FFT_A)
    fb = region_f64(state, S_FFT_B)
    spectrum = _spectrum_in(region_f64(state, S_SPECTRUM), kind)
    axes = region_i64(state, S_AXES)
    power = region_f64(state, S_POWER)
    mel = region_f64(state, S_MEL)
    pos = ints[I_POS:I_POS + 1]
    level = region_f64(state, S_LEVEL)
    lev = level[:_LEVEL_TRACKER]
    lev_state = level[_LEVEL_TRACKER:]
    nb = ints[I_NFEAT_PENDING]
    first = ints[I_NPROBS]
    upto = ints[I_UPTO]
    n_out = first
    i = 0
    while True:  # one call site per stage below: each is inlined once
        if i < n:
            i, k = frame_samples(stage, i, n, 1.0, buf, pos, dims[D_HOP], dims[D_WIN], window, twr, twi, split,
                                 mel_range, mel_w, log_floor, fa, fb, spectrum, axes, power, mel, feats, nb,
                                 NET_BLOCK_FRAMES - nb, lev, lev_state)
            nb += k
        if nb == NET_BLOCK_FRAMES or (i >= n and nb > 0):
            if upto >= STAGE_NETWORK:
                _run_block(model, state, dims, nb, n_out)
            n_out += nb
            nb = 0
        if i >= n:
            break
    if upto >= STAGE_ALL and n_out > first:
        ints[I_NEVENTS] = tracker_push(
            region_f32(state, S_PROBS)[first:], n_out - first, region_i64(state, S_TI), region_f64(state, S_TF),
            region_f64(state, S_TBUF), region_i64_2d(state, S_EV_I, EVENT_CAPACITY, 3),
            region_f64(state, S_EV_F), ints[I_NEVENTS])
    ints[I_NFEAT_PENDING] = nb
    ints[I_NPROBS] = n_out


@njit(cache=True, nogil=True, error_model="numpy")
def _prime(model, state, kind):
    """Prime the stream on its opening (the I_PRIME samples held back in S_OPENING, scaled): the
    front end and the network run on ``vad.core.priming.prime_samples`` of its whole hops, built
    here piece by piece in S_STAGE (the opening mirrored backwards from the stream's start), their
    probabilities dropped and no post-processing; then the held samples run as the stream's first
    (their frames from S_PROBS[0])."""
    hop = region_i64(model, M_DIMS)[D_HOP]
    ints = region_i64(state, S_INTS)
    stage = region_f64(state, S_STAGE)
    opening = region_f64(state, S_OPENING)
    held = ints[I_PRIME]
    length = held - held % hop
    own = ints[I_UPTO]
    ints[I_UPTO] = min(own, STAGE_NETWORK)
    total = PRIME_HOPS * hop
    piece = max(hop, STAGE_SAMPLES - STAGE_SAMPLES % hop)  # whole hops (S_STAGE holds STAGE_SAMPLES)
    j = 0
    while j < total:
        m = min(piece, total - j)
        for t in range(m):
            q = (total - 1 - j - t) % (2 * length)  # distance before the stream's start, mirrored
            stage[t] = opening[q] if q < length else opening[2 * length - 1 - q]
        _stage_step(model, state, m, kind)
        ints[I_NPROBS] = 0  # the pre-roll's probabilities are dropped
        j += m
    ints[I_UPTO] = own
    ints[I_PRIME] = -1
    j = 0
    while j < held:  # S_OPENING may be longer than S_STAGE
        m = min(STAGE_SAMPLES, held - j)
        stage[:m] = opening[j:j + m]
        _stage_step(model, state, m, kind)
        j += m


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _consume(x, scale, model, state, kind):
    """x (times scale) through ``_stage_step`` up to the stage in S_INTS[I_UPTO], STAGE_SAMPLES at a
    time; the frame and event counts in S_INTS start from 0 (what this call completed)."""
    ints = region_i64(state, S_INTS)
    ints[I_NPROBS] = 0
    ints[I_NEVENTS] = 0
    stage = region_f64(state, S_STAGE)
    n = x.size
    i = 0
    have = ints[I_PRIME]
    if have >= 0:  # the stream's opening: held back until complete (or released), then the stream is primed
        i = min(ints[I_PRIME_LEN] - have, n)
        copy_scaled(x, 0, region_f64(state, S_OPENING), have, i, scale)
        have += i
        ints[I_PRIME] = have
        if have == ints[I_PRIME_LEN] or (ints[I_RELEASE] and have >= region_i64(model, M_DIMS)[D_HOP]):
            _prime(model, state, kind)
    while i < n:
        m = min(STAGE_SAMPLES, n - i)
        copy_scaled(x, i, stage, 0, m, scale)
        _stage_step(model, state, m, kind)
        i += m


STAGE_FRONTEND, STAGE_NETWORK, STAGE_ALL = 1, 2, 3  # how far _stage_step goes (a stream state's S_INTS[I_UPTO])
_FRAMES_MASK = (1 << 32) - 1
INPUT_INT16, INPUT_INT32, INPUT_FLOAT32, INPUT_FLOAT64 = range(4)  # stream_chunk's sample codes
INPUT_CODES = {np.dtype(np.int16): INPUT_INT16, np.dtype(np.int32): INPUT_INT32,
               np.dtype(np.float32): INPUT_FLOAT32, np.dtype(np.float64): INPUT_FLOAT64}
_INPUT_ITEMSIZE = (2, 4, 4, 8)  # bytes per sample, by code
CHUNK_NOT_TAKEN = -(1 << 62)  # stream_chunk's answer to a chunk it cannot take as it is (nothing consumed)
# the spectrum types (``_spectrum_in``), read-only so that the constants compiled into
# stream_chunk / stream_chunk_rfft and the same arrays passed from Python have one numba type
SPECTRUM_FAST = np.zeros(0, dtype=np.float64)
SPECTRUM_RFFT = np.zeros(0, dtype=np.complex128)
SPECTRUM_FAST.flags.writeable = False
SPECTRUM_RFFT.flags.writeable = False


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def _chunk(raw, code, model, state, kind):
    """``stream_chunk``'s body for the FFT that ``kind`` selects."""
    itemsize = _INPUT_ITEMSIZE[code]
    n = raw.size  # (numpy calls arrays of size <= 1 contiguous whatever their strides; an empty one may point anywhere)
    if (n > 1 and raw.strides[0] != 2) or (n > 0 and raw.ctypes.data % itemsize != 0) \
            or n * 2 > MAX_CHUNK_HOPS * region_i64(model, M_DIMS)[D_HOP] * itemsize:
        return CHUNK_NOT_TAKEN
    scale = region_f64(model, M_FLOATS)[F_PCM_SCALE + code]
    ints = region_i64(state, S_INTS)
    if code == INPUT_FLOAT32 or code == INPUT_FLOAT64:  # int16/int32 PCM is always in range
        bad = first_bad(raw.view(np.float32), MAX_FLOAT_SAMPLE_MAGNITUDE) if code == INPUT_FLOAT32 else first_bad(
            raw.view(np.float64), MAX_FLOAT_SAMPLE_MAGNITUDE)
        if bad >= 0:
            return -1 - bad
    if code == INPUT_INT16:
        _consume(raw, scale, model, state, kind)
    elif code == INPUT_FLOAT32:
        _consume(raw.view(np.float32), scale, model, state, kind)
    elif code == INPUT_INT32:
        _consume(raw.view(np.int32), scale, model, state, kind)
    else:
        _consume(raw.view(np.float64), scale, model, state, kind)
    return ints[I_NPROBS] + (ints[I_NEVENTS] << 32)


@njit(cache=True, nogil=True, error_model="numpy")
def stream_chunk(raw, code, model, state):
    """The engine's one call per chunk, and the only kernel entry of a stream (models with the
    fixed-size FFT; ``stream_chunk_rfft`` for the others): the samples whose memory ``raw`` holds
    (as an int16 view; int16 samples pass as they are; ``code`` their dtype, INPUT_*), scaled to
    [-1, 1) for PCM (the model's F_PCM_SCALE), through the stages up to the state's S_INTS[I_UPTO]
    (STAGE_ALL for the engine; STAGE_NETWORK for ``NumbaBackend.run``). Four arguments, one
    signature for every dtype and stage: the call costs little, and the large step compiles, and
    is linked and optimised by LLVM, once.

    Returns CHUNK_NOT_TAKEN, nothing consumed, for a chunk that is strided, misaligned for its
    dtype or longer than MAX_CHUNK_HOPS hops (the engine copies or splits it: these checks
    are here, not in Python, because the live path calls the compiled entry directly); -1 - i
    when float sample i breaks the sample contract (NaN/inf or beyond +-MAX_FLOAT_SAMPLE_MAGNITUDE;
    nothing consumed); else n_frames + n_events << 32: the probabilities of the completed frames
    are in S_PROBS[:n_frames], the post-processing events they completed in S_EV_I / S_EV_F[:n_events].
    """
    return _chunk(raw, code, model, state, SPECTRUM_FAST)


@njit(cache=True, nogil=True, error_model="numpy")
def stream_chunk_rfft(raw, code, model, state):
    """``stream_chunk`` for models whose n_fft has no fixed-size FFT (rocket-fft's r2c)."""
    return _chunk(raw, code, model, state, SPECTRUM_RFFT)


def chunk_kernel(kind: np.ndarray):
    """The stream_chunk variant for a backend's spectrum type (``SPECTRUM_FAST`` or ``SPECTRUM_RFFT``)."""
    return stream_chunk_rfft if kind.dtype == SPECTRUM_RFFT.dtype else stream_chunk


def compiled_entry(dispatcher, *args):
    """The machine-code entry of ``dispatcher``'s compiled overload for exactly the types of
    ``args``: calling it skips numba's type resolution (about 0.2 us a call). The caller must
    pass arguments of exactly those types (same dtypes and dimensions: the entry converts them
    without checking; stream_chunk checks layout and alignment itself). The dispatcher itself
    when no such overload is compiled or numba does not expose it."""
    from numba import typeof

    try:
        return dispatcher.overloads[tuple(typeof(a) for a in args)].entry_point
    except (AttributeError, KeyError, TypeError):
        return dispatcher


@njit(cache=True, nogil=True, error_model="numpy")
def breakdown_chunks(chunks, scale, model, state, upto, kind):
    """For ``vad bench --breakdown``: each row of chunks [n, length] (int16) as ``stream_chunk``
    runs it, but only up to a stage: STAGE_FRONTEND (framing + log-mel), STAGE_NETWORK (+ the
    network), STAGE_ALL (+ the post-processing: stream_chunk without the call overhead). The
    state's own stage is restored afterwards."""
    ints = region_i64(state, S_INTS)
    own = ints[I_UPTO]
    ints[I_UPTO] = upto
    for c in range(chunks.shape[0]):
        _consume(chunks[c], scale, model, state, kind)
    ints[I_UPTO] = own


@njit(cache=True, nogil=True, error_model="numpy")
def stream_flush(state):
    """End of stream for the post-processing: returns the number of events in S_EV_I / S_EV_F."""
    return tracker_flush(region_i64(state, S_TI), region_f64(state, S_TF),
                         region_i64_2d(state, S_EV_I, EVENT_CAPACITY, 3), region_f64(state, S_EV_F), 0)


@njit(cache=True, nogil=True, error_model="numpy")
def reset_stream(model, state):
    """Back to the start of a stream: zero left padding, zero network state, fresh post-processing,
    and (when the state primes its streams) priming armed for the next stream's opening."""
    dims = region_i64(model, M_DIMS)
    region_f64(state, S_BUF)[:] = 0.0
    region_f32(state, S_RING)[:] = 0.0
    region_f32(state, S_H)[:] = 0.0
    ints = region_i64(state, S_INTS)
    ints[I_POS] = dims[D_WIN] - dims[D_HOP]
    ints[I_HEAD] = 0
    ints[I_NFEAT_PENDING] = 0
    ints[I_PRIME] = 0 if ints[I_PRIME_LEN] > 0 else -1
    ints[I_RELEASE] = 0
    region_f64(state, S_LEVEL)[_LEVEL_TRACKER:] = 0.0
    tracker_reset(region_i64(state, S_TI), region_f64(state, S_TF))


class NumbaBackend:
    """Raw samples -> probabilities in numba: the fused step (front end + network) without the
    post-processing, and the packed constants the engine's per-chunk step runs on.

    Same contract as ``vad.runtime.ortbackend.OrtBackend``: ``initial_state()`` gives one
    stream's state, ``run(samples, state)`` takes float32 samples (a whole number of hops) and
    returns (probabilities float32 [len // hop], state); the state is updated in place. Results
    do not depend on how hops are grouped into calls (bit for bit).

    Args:
        model: a verified ``vad.runtime.modelfile.ModelFile``.
    """

    name = "numba"
    grouping_invariant = True

    def __init__(self, model):
        self.spec = model.metadata.feature_spec
        self.weights = NetworkWeights(model.tensors, model.metadata.architecture, str(model.path))
        if self.weights.n_features != self.spec.n_mels:
            raise ModelFileError(
                f"{model.path}: the network reads {self.weights.n_features} features, the feature spec has "
                f"n_mels={self.spec.n_mels}"
            )
        self.packed = pack_model(self.spec, self.weights)
        # the FFT's spectrum type (_spectrum_in) and the stream_chunk compiled for it
        self.kind = SPECTRUM_RFFT if spectrum_array(self.spec).dtype == SPECTRUM_RFFT.dtype else SPECTRUM_FAST
        self.step = chunk_kernel(self.kind)
        self._max_samples = MAX_CHUNK_HOPS * self.spec.hop_length_samples

    def new_stream_state(self, tracker: TrackerState, prime_hops: int = 0,
                         leveling: np.ndarray | None = None) -> PackedArrays:
        """A reset stream state for the fused step, with ``tracker``'s post-processing configuration;
        ``prime_hops`` > 0: each stream is primed on its first ``prime_hops`` hops
        (``vad.core.priming``); ``leveling``: its input leveled with these coefficients
        (``vad.core.leveling``). The backend contract's ``initial_state`` does neither: it is the
        raw graph's, as onnxruntime's."""
        state = pack_stream_state(self.spec, self.weights, tracker, prime_hops, leveling)
        reset_stream(self.packed.buffer, state.buffer)
        return state

    def initial_state(self) -> PackedArrays:
        from vad.core.postprocess import PostprocessConfig

        return self.new_stream_state(TrackerState(PostprocessConfig(), self.spec.hop_s))

    def run(self, samples: np.ndarray, state: PackedArrays) -> tuple[np.ndarray, PackedArrays]:
        probs = state.view(S_PROBS)
        state.view(S_INTS)[I_UPTO] = STAGE_NETWORK  # the front end and the network, no post-processing
        samples = np.ascontiguousarray(samples, dtype=np.float32)
        if not samples.flags.writeable:  # a read-only view would be a second kernel signature
            samples = samples.copy()
        out = []
        for start in range(0, max(samples.shape[0], 1), self._max_samples):
            raw = samples[start : start + self._max_samples].view(np.int16)
            r = self.step(raw, INPUT_FLOAT32, self.packed.buffer, state.buffer)
            out.append(probs[: r & _FRAMES_MASK].copy())
        return (out[0] if len(out) == 1 else np.concatenate(out)), state


# --- numba's cache and the modules compiled into these kernels ------------------------------------
_KERNEL_SOURCES = (_frontend, _packed, _postprocess, _features, _priming, _leveling)  # their code and constants compile in
_SOURCES_DIGEST_FILE = "network.kernel-sources.sha256"


def kernel_sources_digest() -> str:
    """SHA-256 over the source files whose code and constants this module's kernels compile in."""
    digest = hashlib.sha256()
    for module in _KERNEL_SOURCES:
        digest.update(Path(module.__file__).read_bytes())
    return digest.hexdigest()


def _drop_stale_kernels() -> None:
    """numba's on-disk cache keys a kernel on the contents of its own file only (numba >= 0.61 hashes
    them), but these kernels compile in code from ``_KERNEL_SOURCES``: after an edit there, or an
    upgrade that leaves the old cache files behind, the cached machine code would be stale. A digest
    of those files is kept beside the cache; when it differs, this module's cached kernels are
    flushed, so they compile afresh (once) instead of running old code."""
    from numba.core.dispatcher import Dispatcher

    from vad.core.atomicfile import atomic_write_text

    kernels = [k for k in globals().values() if isinstance(k, Dispatcher) and getattr(k, "_cache", None) is not None]
    folder = next((k._cache.cache_path for k in kernels if getattr(k._cache, "cache_path", None)), None)
    if folder is None:  # caching unavailable (e.g. no writable cache folder): nothing is reused
        return
    marker = Path(folder) / _SOURCES_DIGEST_FILE
    digest = kernel_sources_digest()
    try:
        if marker.is_file() and marker.read_text(encoding="utf-8").strip() == digest:
            return
        for kernel in kernels:
            kernel._cache.flush()
        atomic_write_text(marker, digest + "\n")
    except OSError:  # a cache folder this process cannot write: nothing to flush or record from here
        pass


_drop_stale_kernels()
