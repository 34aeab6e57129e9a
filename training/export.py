"""Freeze a consolidated ``FrozenVAD`` into ONE self-contained ONNX file that takes raw audio.

The graph follows ``vad.core.modelmeta`` (metadata schema 2): inputs ``audio`` float32
[batch, samples] (a whole number of hops at the spec's rate), ``state_frames`` [batch,
win - hop], ``state_conv`` [batch, k-1, input_width], ``state_gru`` [batch, gru_width];
outputs ``probability`` [batch, samples / hop] and one ``<state>_out`` per state. Batch and
samples are dynamic, so the same file runs one hop at a time (streaming) or a whole signal,
with the same probabilities (tested). ``models/README.md`` documents it for other languages.

The front end inside the graph (``GraphFrontEnd``) is built from the ``FeatureSpec`` alone
(``vad.core.features``: framing rule, ``hann_window``, ``mel_filterbank``) and computes in
float64 like every other implementation, so it matches ``vad.core.features.logmel``:

* framing: frame ``i`` is samples ``[i * hop, i * hop + win)`` of ``[state_frames, audio]``,
  i.e. it ends at input sample ``(i + 1) * hop`` (zeros in a fresh ``state_frames`` are the
  causal left pad); it is cut from whole rows of one hop (Pad, Reshape, Slice, Concat: block
  copies and no run-time shape arithmetic); ``state_frames_out`` is the last ``win - hop`` samples;
* DFT: the zero-padded ``n_fft``-point real DFT as a two-stage (Cooley-Tukey) product of
  small matrices, ``n_fft = P * Q``: a P-point DFT over ``n1`` for each ``n2``, a twiddle
  multiply, then a Q-point DFT over ``n2`` (``_dft_split`` picks the P, Q with the fewest
  multiply-adds; ~44k per frame for n_fft 512 against ~205k for one dense DFT matrix). The
  front end uses only Pad, Reshape, Slice, Concat, Transpose, Cast, MatMul, Mul, Add, Sub,
  Gather (of constant tables), Clip and Log: ops every ONNX runtime has had since opset 13,
  unlike ``DFT``/``STFT`` (opset 17, missing from several mobile and GPU execution providers);
* power ``|X|^2``, the mel matrix (float64, rows re-ordered to the DFT's output order by a
  constant Gather), ``log(max(mel, log_floor))``, cast to float32;
* then the network, with its per-band normalisation (``feat_mean``/``feat_std``).

Choices (measured on this machine, torch 2.13 / onnxruntime 1.32):

* Exporter: the legacy TorchScript exporter (``dynamo=False``) with a 3-hop example input:
  well under a second per export, one file, weights embedded.
* ``do_constant_folding=False`` and ``keep_initializers_as_inputs=True``: every network
  initializer keeps its ``FrozenVAD.state_dict()`` name and torch layout (``inp.weight``,
  ``gru.weight_ih_l0``, ...; the front end's tables are ``frontend.*``), and equal weights are
  not merged, so any reader of the file (the numba backend) finds each weight by name. The
  initializers are then removed from the graph inputs again
  (``vad.runtime.onnxproto.drop_initializer_inputs``) so they are constants and onnxruntime
  folds the front-end tables and the gate re-ordering when it loads the session.
* Opset ``OPSET`` = 17: accepted by onnxruntime >= 1.12 (2022), onnxruntime-node/-web,
  the mobile packages and TensorRT/OpenVINO releases of the same period.
* Metadata: ``ModelMetadata.to_metadata_props()`` is appended to the serialized ``ModelProto``
  as ``metadata_props`` entries (``vad.runtime.onnxproto.append_metadata_props``), with
  ``weights_sha256`` (``vad.core.modelmeta.weights_digest`` of the initializers as read back
  from the serialized bytes) and ``interface`` filled in. No ``onnx`` package is needed.
* The file is checked before it is written: loaded and verified like the runtime loads it,
  and run on a probe signal against torch on the reference front end (``EXPORT_TOLERANCE``).
  It is written atomically (temp file in the target folder + ``os.replace``).

Conversion: ``convert_onnx`` re-exports an existing model file (a schema-1 features-input file
or a current one) from its initializers and metadata; ``vad export MODEL.onnx -o NEW.onnx``.
"""

from __future__ import annotations

import io
import math
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from vad.runtime.onnxproto import (
    append_metadata_props,
    drop_initializer_inputs,
    read_metadata_props,
    read_tensors,
)
from vad.training.model import ArchConfig, FrozenVAD

from vad.core.atomicfile import atomic_write_bytes
from vad.core.errors import InvalidInputError, ModelFileError
from vad.core.features import FeatureSpec, hann_window, logmel, mel_filterbank
from vad.core.leveling import LevelingConfig
from vad.core.modelmeta import (
    ARCHITECTURE_NAME,
    AUDIO_INPUT,
    FRAMES_STATE,
    NETWORK_STATES,
    PROBABILITY_OUTPUT,
    STATE_OUT_SUFFIX,
    ModelMetadata,
    interface_description,
    metadata_dict_from_props,
    parse_metadata_props,
    weights_digest,
)
from vad.core.postprocess import PostprocessConfig

OPSET = 17
EXAMPLE_HOPS = 3
EXPORT_TOLERANCE = 1e-4  # max abs probability difference graph vs torch on the export probe
_PROBE_SECONDS = 2.0
_PROBE_SEED = 20240515


def build_metadata(
    model: FrozenVAD,
    feature_spec: FeatureSpec,
    postprocess: PostprocessConfig | None = None,
    metrics: dict[str, Any] | None = None,
    training: dict[str, Any] | None = None,
    name: str = "vad",
) -> ModelMetadata:
    """Metadata for ``model`` run on ``feature_spec`` frames (FLOPs from the single counter).

    ``weights_sha256`` and ``interface`` are left empty: ``onnx_bytes`` fills them in.
    """
    arch = model.arch
    if arch.n_features != feature_spec.n_mels:
        raise InvalidInputError(
            f"model reads {arch.n_features} features per frame but the feature spec has n_mels={feature_spec.n_mels}"
        )
    hop_ms = 1000.0 * feature_spec.hop_s
    return ModelMetadata(
        feature_spec=feature_spec,
        architecture={
            "name": ARCHITECTURE_NAME,
            "widths": dict(arch.widths),
            "n_features": arch.n_features,
            "conv_kernel_frames": arch.conv_kernel_frames,
        },
        network_flops_per_second=model.flops_per_second(feature_spec.frames_per_second),
        frontend_flops_per_second=feature_spec.flops_per_second(),
        parameters=int(model.parameter_count()),
        frame_latency_ms=hop_ms,
        lookahead_ms=0.0,
        postprocess=postprocess or PostprocessConfig(),
        metrics=dict(metrics or {}),
        training=dict(training or {}),
        name=name,
    )


# --- the front end as a graph ----------------------------------------------------------------


def _dft_split(spec: FeatureSpec) -> tuple[int, int]:
    """(P, Q) with P * Q = n_fft minimising the two-stage DFT's multiply-adds (Q = 1: one stage)."""
    best = None
    for q in range(1, spec.n_fft + 1):
        if spec.n_fft % q:
            continue
        cost = _dft_macs(spec, spec.n_fft // q, q)
        if best is None or cost < best[0]:
            best = (cost, spec.n_fft // q, q)
    return best[1], best[2]


def _dft_shape(spec: FeatureSpec, p: int, q: int) -> tuple[int, int]:
    """(n1 count, k2 count): rows of the first stage and output columns of the second."""
    return -(-spec.win_length_samples // q), (spec.n_fft // 2) // p + 1


def _dft_macs(spec: FeatureSpec, p: int, q: int) -> int:
    n1, k2 = _dft_shape(spec, p, q)
    return q * n1 * 2 * p + 4 * q * p + p * 2 * q * 2 * k2


def graph_frontend_flops_per_frame(spec: FeatureSpec) -> float:
    """FLOPs of one frame of ``GraphFrontEnd`` (a multiply-add = 2): window, the two DFT stages
    and twiddles, power, the (dense) mel product and the log. More than the FFT count of
    ``FeatureSpec.flops_per_frame``: matrix products instead of an FFT."""
    p, q = _dft_split(spec)
    _n1, k2 = _dft_shape(spec, p, q)
    return float(spec.win_length_samples + 2 * _dft_macs(spec, p, q) + 3 * p * k2
                 + 2 * p * k2 * spec.n_mels + spec.n_mels)


class GraphFrontEnd(nn.Module):
    """``vad.core.features.logmel`` as exportable torch ops on raw audio plus framing state.

    ``forward(audio [B, N] float32, state_frames [B, win - hop] float32)`` returns
    (log-mel float32 [B, N // hop, n_mels], new state_frames); N must be a multiple of hop.
    See the module docstring for the method. Buffers (float64 unless noted): ``window``
    [Q, n1], ``stage1`` [n1, 2P], ``twiddle_re``/``twiddle_im`` [Q, P], ``stage2`` [2Q, 2 k2],
    ``mel`` [n_bins, n_mels], ``mel_rows`` int64 (the DFT output order of the mel rows).
    """

    def __init__(self, spec: FeatureSpec):
        super().__init__()
        if not isinstance(spec, FeatureSpec):
            raise InvalidInputError(f"spec must be a FeatureSpec, got {type(spec).__name__}")
        self.spec = spec
        p, q = _dft_split(spec)
        n1_count, k2_count = _dft_shape(spec, p, q)
        self.p, self.q, self.n1_count, self.k2_count = p, q, n1_count, k2_count
        window = np.zeros(n1_count * q)
        window[: spec.win_length_samples] = hann_window(spec)
        n1 = np.arange(n1_count)[:, None]
        k1 = np.arange(p)[None, :]
        n2 = np.arange(q)[:, None]
        k2 = np.arange(k2_count)[None, :]
        # angles from exact integer products reduced modulo the period, then one float64 cos/sin
        a1 = 2 * np.pi * ((n1 * k1) % p) / p
        tw = -2 * np.pi * ((n2 * k1) % spec.n_fft) / spec.n_fft
        a2 = 2 * np.pi * ((n2 * k2) % q) / q
        c2, s2 = np.cos(a2), np.sin(a2)
        k = k1.T + p * k2  # [P, k2]: the DFT bin of each output position
        rows = np.where(k < spec.n_bins, k, spec.n_bins)  # n_bins: the zero row appended in forward
        tables = {
            "window": window.reshape(n1_count, q).T,  # [Q, n1]: sample n = q * n1 + n2
            "stage1": np.concatenate([np.cos(a1), -np.sin(a1)], axis=1),
            "twiddle_re": np.cos(tw),
            "twiddle_im": np.sin(tw),
            "stage2": np.block([[c2, -s2], [s2, c2]]),
            "mel": mel_filterbank(spec).T,
        }
        for name, table in tables.items():
            self.register_buffer(name, torch.from_numpy(np.ascontiguousarray(table, dtype=np.float64)))
        # power comes out as [.., P, k2] (row-major): the mel row of each position's bin
        self.register_buffer("mel_rows", torch.from_numpy(rows.reshape(-1).astype(np.int64)))
        # framing geometry: a lead pad makes [lead | state | audio] a whole number of hop rows;
        # each frame copies `pieces` rows and keeps n1 * Q samples (the window zeroes any past win)
        hop, keep = spec.hop_length_samples, spec.left_pad_samples
        self._lead = (-keep) % hop
        self._pieces = -(-(self._lead + n1_count * q) // hop)
        self._tail = (self._pieces - 1 - (self._lead + keep) // hop) * hop

    def forward(self, audio: torch.Tensor, state_frames: torch.Tensor):
        spec = self.spec
        hop, keep = spec.hop_length_samples, spec.left_pad_samples
        x = torch.cat([state_frames, audio], dim=1)  # [B, keep + N]
        new_state = x[:, -keep:]
        # framing by whole-row copies: pad so that [lead | x] splits into rows of one hop; frame i
        # is `pieces` consecutive rows from row i, cut to the span_samples after the lead
        x = nn.functional.pad(x, (self._lead, self._tail))
        rows = _reshape(x, (0, -1, hop))  # [B, F + pieces - 1, hop]
        last = self._pieces - 1
        frames = torch.cat([rows[:, j : j - last] if j < last else rows[:, j:] for j in range(self._pieces)], dim=2)
        frames = frames[:, :, self._lead : self._lead + self.n1_count * self.q]  # [B, F, n1 * Q]
        frames = _reshape(frames, (0, 0, self.n1_count, self.q)).transpose(2, 3)  # [B, F, Q, n1]
        frames = frames.to(torch.float64) * self.window  # samples past the window are zeroed here
        a = torch.matmul(frames, self.stage1)  # [B, F, Q, 2P]: P-point DFTs over n1 (re | im)
        a_re, a_im = a[..., : self.p], a[..., self.p :]
        b_re = a_re * self.twiddle_re - a_im * self.twiddle_im
        b_im = a_re * self.twiddle_im + a_im * self.twiddle_re
        b = torch.cat([b_re, b_im], dim=-2).transpose(-1, -2)  # [B, F, P, 2Q]
        spectrum = torch.matmul(b, self.stage2)  # [B, F, P, 2 k2]: Q-point DFTs over n2 (re | im)
        re, im = spectrum[..., : self.k2_count], spectrum[..., self.k2_count :]
        power = _reshape(re * re + im * im, (0, 0, -1))  # [B, F, P * k2]
        mel_table = torch.cat([self.mel, torch.zeros(1, spec.n_mels, dtype=torch.float64)], dim=0)
        mel = torch.matmul(power, mel_table[self.mel_rows])  # [B, F, n_mels]
        return torch.log(torch.clamp(mel, min=spec.log_floor)).to(torch.float32), new_state


class _StaticReshape(torch.autograd.Function):
    """``Reshape`` with a constant target shape in ONNX terms (0 = keep that input dimension,
    -1 = inferred), so the graph computes no shapes at run time."""

    @staticmethod
    def forward(ctx, x, shape):
        target = [x.shape[i] if d == 0 else d for i, d in enumerate(shape)]
        return x.reshape(target)

    @staticmethod
    def symbolic(g, x, shape):
        return g.op("Reshape", x, g.op("Constant", value_t=torch.tensor(shape, dtype=torch.int64)))


def _reshape(x: torch.Tensor, shape: tuple[int, ...]) -> torch.Tensor:
    return _StaticReshape.apply(x, shape)


class RawAudioVAD(FrozenVAD):
    """A ``FrozenVAD`` (same parameter names) with ``GraphFrontEnd`` in front: the exported graph.

    ``forward(audio, state_frames, state_conv, state_gru)`` returns (probability [B, N // hop],
    state_frames_out, state_conv_out, state_gru_out).
    """

    def __init__(self, model: FrozenVAD, spec: FeatureSpec):
        super().__init__(model.arch)
        self.load_state_dict(model.state_dict())
        self.frontend = GraphFrontEnd(spec)

    def initial_state(self, batch: int = 1):
        frames = torch.zeros(batch, self.frontend.spec.left_pad_samples)
        return (frames, *super().initial_state(batch))

    def forward(self, audio, state_frames, state_conv, state_gru):
        features, frames_out = self.frontend(audio, state_frames)
        prob, conv_out, gru_out = super().forward(features, state_conv, state_gru)
        return prob, frames_out, conv_out, gru_out


# --- export ---------------------------------------------------------------------------------


def _atomic_write_bytes(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_bytes(path, data)


def _check_exportable(model: FrozenVAD, metadata: ModelMetadata) -> None:
    if not isinstance(model, FrozenVAD):
        raise InvalidInputError(f"export needs a FrozenVAD, got {type(model).__name__}")
    if not isinstance(metadata, ModelMetadata):
        raise InvalidInputError(f"export needs a ModelMetadata, got {type(metadata).__name__}")
    spec = metadata.feature_spec
    if model.arch.n_features != spec.n_mels:
        raise InvalidInputError(
            f"model reads {model.arch.n_features} features but metadata.feature_spec.n_mels={spec.n_mels}"
        )
    if spec.left_pad_samples == 0:
        raise InvalidInputError(
            "raw-audio export needs win_length_samples > hop_length_samples (the framing state is "
            f"win - hop samples); the spec has both {spec.hop_length_samples}"
        )
    for name, tensor in model.state_dict().items():
        if not bool(torch.isfinite(tensor).all()):
            raise InvalidInputError(f"model weight {name!r} has non-finite values; refusing to export it")


def onnx_bytes(model: FrozenVAD, metadata: ModelMetadata) -> bytes:
    """The serialized raw-audio ONNX model (graph + weights + metadata_props with digest and interface)."""
    _check_exportable(model, metadata)
    spec = metadata.feature_spec
    graph = RawAudioVAD(model, spec).eval()
    state_in = [FRAMES_STATE, *NETWORK_STATES]
    state_out = [n + STATE_OUT_SUFFIX for n in state_in]
    example = (torch.zeros(1, EXAMPLE_HOPS * spec.hop_length_samples), *graph.initial_state(1))
    dynamic_axes = {AUDIO_INPUT: {0: "batch", 1: "samples"}, PROBABILITY_OUTPUT: {0: "batch", 1: "frames"}}
    dynamic_axes.update({n: {0: "batch"} for n in state_in + state_out})
    buf = io.BytesIO()
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # legacy-exporter deprecation and GRU batch notes
        torch.onnx.export(
            graph,
            example,
            buf,
            dynamo=False,
            opset_version=OPSET,
            do_constant_folding=False,
            keep_initializers_as_inputs=True,  # also skips deduplicating equal weights
            export_params=True,
            input_names=[AUDIO_INPUT, *state_in],
            output_names=[PROBABILITY_OUTPUT, *state_out],
            dynamic_axes=dynamic_axes,
        )
    data = drop_initializer_inputs(buf.getvalue())
    state_shapes = {n: tuple(t.shape[1:]) for n, t in zip(state_in, example[1:], strict=True)}
    interface = interface_description(spec, state_shapes)
    interface["graph_frontend_flops_per_second"] = graph_frontend_flops_per_frame(spec) * spec.frames_per_second
    final = metadata.replace(weights_sha256=weights_digest(read_tensors(data)), interface=interface)
    return append_metadata_props(data, final.to_metadata_props())


def probe_signal(spec: FeatureSpec, seconds: float = _PROBE_SECONDS, seed: int = _PROBE_SEED) -> np.ndarray:
    """Seeded float32 test audio at ``spec``'s rate: harmonic bursts over noise at changing levels."""
    rng = np.random.default_rng(seed)
    rate, hop = spec.sample_rate_hz, spec.hop_length_samples
    n = int(seconds * rate) // hop * hop
    t = np.arange(n) / rate
    f0 = 110.0 + 40.0 * np.sin(2 * np.pi * 0.9 * t)
    voiced = sum(np.sin(2 * np.pi * h * np.cumsum(f0) / rate) / h for h in range(1, 10))
    gate = (np.sin(2 * np.pi * 1.3 * t) > 0).astype(float)
    levels = np.repeat(10.0 ** (rng.uniform(-70, -10, n // hop) / 20.0), hop)
    return (0.3 * voiced * gate + levels * rng.standard_normal(n)).astype(np.float32)


def _check_against_torch(model: FrozenVAD, session, spec: FeatureSpec) -> float:
    """Max abs probability difference of the graph (in two calls, state carried) vs torch on ``logmel``."""
    audio = probe_signal(spec)
    with torch.no_grad():
        feats = torch.from_numpy(logmel(audio, spec))[None]
        want = model(feats, *model.initial_state(1))[0][0].numpy()
    split = (audio.size // spec.hop_length_samples // 3) * spec.hop_length_samples
    state = {i.name: np.zeros([1, *i.shape[1:]], np.float32) for i in session.get_inputs() if i.name != AUDIO_INPUT}
    names = [PROBABILITY_OUTPUT] + [n + STATE_OUT_SUFFIX for n in state]
    got = []
    for part in (audio[:split], audio[split:]):
        outs = session.run(names, {AUDIO_INPUT: part[None], **state})
        got.append(outs[0][0])
        state = dict(zip(state, outs[1:], strict=True))
    return float(np.max(np.abs(np.concatenate(got) - want)))


def export_onnx(model: FrozenVAD, metadata: ModelMetadata, path: str | Path) -> Path:
    """Write ``model`` with ``metadata`` to ``path`` as one self-contained raw-audio ONNX file.

    Returns the path. Before writing, the bytes are verified as the runtime loads them
    (``vad.runtime.modelfile``) and run against torch on a probe signal; a failure raises
    ModelFileError and writes nothing. The file is written atomically.
    """
    import onnxruntime as ort
    from vad.runtime.modelfile import verify_tensors

    path = Path(path)
    data = onnx_bytes(model, metadata)
    try:
        written = parse_metadata_props(read_metadata_props(data), source=str(path))
        verify_tensors(read_tensors(data), written, str(path))
        session = ort.InferenceSession(data, providers=["CPUExecutionProvider"])
    except Exception as exc:  # pragma: no cover - would be an exporter bug
        raise ModelFileError(f"exported model for {path} does not load back: {exc}") from exc
    was_training = model.training
    try:
        diff = _check_against_torch(model.eval(), session, metadata.feature_spec)
    finally:
        model.train(was_training)
    if not diff <= EXPORT_TOLERANCE:
        raise ModelFileError(
            f"exported graph for {path} differs from torch by {diff:.3g} in probability (> {EXPORT_TOLERANCE})"
        )
    _atomic_write_bytes(path, data)
    return path


# --- from a consolidated checkpoint or an existing model file -----------------------------


KEEP_LEVELING = "keep"  # default of convert_onnx (the source's leveling) and export_checkpoint (the trained one)


def trained_leveling(info: dict) -> LevelingConfig | None:
    """The input leveling a consolidated checkpoint's network was trained on (its cache's
    ``StreamOptions.input_leveling``, kept in the training record), or None."""
    record = info.get("training")
    data = record.get("data") if isinstance(record, dict) else None
    options = data.get("stream_options") if isinstance(data, dict) else None
    config = options.get("input_leveling") if isinstance(options, dict) else None
    return None if config is None else LevelingConfig.from_dict(config, "training stream option input_leveling")


def export_checkpoint(
    checkpoint: str | Path, path: str | Path, name: str | None = None, postprocess: PostprocessConfig | None = None,
    leveling: LevelingConfig | None | str = KEEP_LEVELING,
) -> Path:
    """Export a consolidated checkpoint (``training.consolidate``, kind ``vad-frozen``) to ``path``.

    Feature spec, widths, FLOPs, parameters, latency, metrics and training config come from
    the checkpoint (``training.consolidate.metadata_fields``); post-processing defaults from
    ``postprocess``, else the checkpoint's ``postprocess`` entry when it has one, else
    ``PostprocessConfig()``. The name defaults to the checkpoint's ``name`` or the file stem.
    ``leveling``: the input leveling the runtime is to apply (``vad.core.leveling``; None: none);
    by default the one the network was trained on (``trained_leveling``), none for most recipes.
    """
    from vad.training.consolidate import load_consolidated, metadata_fields

    model, info = load_consolidated(checkpoint)
    if postprocess is None:
        pp = info.get("postprocess")
        postprocess = PostprocessConfig.from_dict(pp) if isinstance(pp, dict) else PostprocessConfig()
    try:
        fields = metadata_fields(info)
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{checkpoint}: consolidated checkpoint lacks metadata: {exc}") from exc
    if leveling == KEEP_LEVELING:
        leveling = trained_leveling(info)
    metadata = ModelMetadata(
        **fields, postprocess=postprocess, name=name or str(info.get("name") or Path(path).stem), leveling=leveling
    )
    return export_onnx(model, metadata, path)


def load_model_weights(source: str | Path) -> tuple[FrozenVAD, ModelMetadata]:
    """(FrozenVAD, metadata) rebuilt from an exported model file of any schema (1: log-mel
    input; 2: raw audio): the network's initializers by name, architecture and the other
    metadata fields from its metadata. The weights of a schema-2 file are verified first."""
    from vad.runtime.modelfile import verify_tensors

    source = Path(source)
    if not source.is_file():
        raise ModelFileError(f"model file not found: {source}")
    data = source.read_bytes()
    try:
        props = read_metadata_props(data)
        tensors = read_tensors(data)
    except ModelFileError as exc:
        raise ModelFileError(f"{source}: not a readable ONNX model: {exc}") from exc
    version, raw = metadata_dict_from_props(props, str(source))
    raw = {k: v for k, v in raw.items() if k not in ("schema_version", "weights_sha256", "interface")}
    metadata = ModelMetadata.from_dict(raw, source=str(source))
    if version >= 2:
        verify_tensors(tensors, parse_metadata_props(props, source=str(source)), str(source))
    arch_info = metadata.architecture
    if arch_info.get("name") != ARCHITECTURE_NAME:
        raise ModelFileError(f"{source}: architecture {arch_info.get('name')!r} is not {ARCHITECTURE_NAME!r}; cannot rebuild it")
    try:
        widths = arch_info["widths"]
        arch = ArchConfig(
            n_features=int(arch_info.get("n_features", metadata.feature_spec.n_mels)),
            input_width=int(widths["input"]),
            conv_width=int(widths["conv"]),
            gru_width=int(widths["gru"]),
            conv_kernel_frames=int(arch_info["conv_kernel_frames"]),
        )
    except (KeyError, TypeError, ValueError) as exc:
        raise ModelFileError(f"{source}: metadata architecture is incomplete: {exc}") from exc
    model = FrozenVAD(arch)
    state = model.state_dict()
    missing = sorted(set(state) - set(tensors))
    if missing:
        raise ModelFileError(f"{source}: initializer(s) missing: {', '.join(missing)}")
    try:
        model.load_state_dict({k: torch.from_numpy(np.array(tensors[k], dtype=np.float32)) for k in state})
    except RuntimeError as exc:
        raise ModelFileError(f"{source}: initializers do not fit architecture {arch}: {exc}") from exc
    return model.eval(), metadata


def convert_onnx(
    source: str | Path, path: str | Path, name: str | None = None, postprocess: PostprocessConfig | None = None,
    leveling: LevelingConfig | None | str = KEEP_LEVELING,
) -> Path:
    """Re-export the model file ``source`` to ``path`` in the current format (``load_model_weights``).

    Keeps every metadata field (name, feature spec, metrics, training record, post-processing,
    input leveling) unless ``name``/``postprocess``/``leveling`` override it (``leveling=None``
    removes it); FLOPs and parameters are recounted from the rebuilt network and must agree with
    the stored ones.
    """
    model, old = load_model_weights(source)
    fresh = build_metadata(model, old.feature_spec)
    for key in ("network_flops_per_second", "frontend_flops_per_second", "parameters"):
        if not math.isclose(float(getattr(fresh, key)), float(getattr(old, key)), rel_tol=1e-9):
            raise ModelFileError(
                f"{source}: metadata {key}={getattr(old, key)!r} does not match the network ({getattr(fresh, key)!r})"
            )
    metadata = old.replace(
        architecture={**old.architecture, **fresh.architecture},
        name=name or old.name,
        postprocess=postprocess or old.postprocess,
        leveling=old.leveling if leveling == KEEP_LEVELING else leveling,
    )
    return export_onnx(model, metadata, path)
