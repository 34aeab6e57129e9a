"""`vad info`: show what an exported model carries (widths, compute, latency, defaults, metrics),
after loading it as the runtime does (weights digest verified) and with the backend it would run on.

Everything printed comes from the file, so the text form escapes control and other
non-printing characters (``escape_nonprinting``): a name with ANSI escapes cannot clear or
rewrite the terminal. ``--json`` output is escaped by the JSON encoder.
"""

from __future__ import annotations

import argparse
import json
import unicodedata

NAME = "info"
HELP = "print a model's metadata: widths, MFLOP/s, predicted us per 10 ms, parameters, size, latency, thresholds, metrics"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("model", nargs="?", metavar="MODEL.onnx", help="model file (default: the shipped model)")
    parser.add_argument("--json", action="store_true", help="print the full metadata as JSON")
    parser.add_argument("--backend", choices=("auto", "numba", "onnxruntime"), default="auto",
                        help="backend to load the model with (default auto: numba when it can run)")


def model_info(path, backend: str = "auto") -> dict:
    """The model's metadata as a dict plus file size, derived figures and the backend.

    The model is loaded like the runtime loads it (``VADModel``): a file whose weights fail
    their digest or finiteness check raises ModelFileError.
    """
    from vad.runtime.model import VADModel

    model = VADModel(path, backend=backend)
    meta = model.metadata
    info = meta.to_dict()
    info["path"] = str(model.path)
    info["file_bytes"] = model.path.stat().st_size
    info["total_flops_per_second"] = meta.total_flops_per_second
    info["algorithmic_latency_ms"] = meta.algorithmic_latency_ms
    info["weights_verified"] = True
    info["backend"] = model.backend
    info["backend_note"] = model.backend_note
    info["compute_us_per_10ms"] = _compute_latency(meta)
    return info


def escape_nonprinting(text: str) -> str:
    """``text`` with control, format and other non-printing characters (Unicode categories C*,
    line/paragraph separators) written as ``\\xNN``/``\\uNNNN``/``\\UNNNNNNNN`` escapes."""
    out = []
    for ch in text:
        if unicodedata.category(ch)[0] == "C" or unicodedata.category(ch) in ("Zl", "Zp"):
            code = ord(ch)
            out.append(f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 else f"\\U{code:08x}")
        else:
            out.append(ch)
    return "".join(out)

def _compute_latency(meta) -> dict:
    """Predicted engine microseconds per 10 ms of audio: from the cost model stored in the file at
    training/export (``training["latency"]``), and from this machine's calibration when there is one."""
    from vad.core.costmodel import CostModel, default_cost_model_path, load_cost_model
    from vad.core.errors import ModelFileError

    out: dict = {}
    per_10ms = 10.0 / meta.frame_latency_ms if meta.frame_latency_ms > 0 else 1.0
    stored = meta.training.get("latency") if isinstance(meta.training, dict) else None
    if isinstance(stored, dict) and isinstance(stored.get("us_per_frame"), (int, float)):
        cm = stored.get("cost_model") or {}
        out["stored"] = {"us": float(stored["us_per_frame"]) * per_10ms, "source": stored.get("source", ""),
                         "host": (cm.get("machine") or {}).get("host"), "measured_at": cm.get("measured_at")}
    widths = meta.architecture.get("widths") or {}
    if default_cost_model_path().is_file() and {"input", "conv", "gru"} <= set(widths):
        try:
            local: CostModel = load_cost_model()
        except ModelFileError:
            local = None
        if local is not None and (local.n_features, local.conv_kernel_frames) == (
            meta.architecture.get("n_features"), meta.architecture.get("conv_kernel_frames")
        ):
            out["this_machine"] = {"us": local.us_of(widths) * per_10ms, "host": local.machine.get("host"),
                                   "measured_at": local.measured_at, "path": str(default_cost_model_path())}
    return out


def _leveling_line(leveling: dict | None) -> str:
    if not leveling:
        return "leveling     none"
    return (f"leveling     input to {leveling['target_dbfs']:g} dBFS within +-{leveling['max_gain_db']:g} dB, "
            f"attack {leveling['attack_ms']:g} ms, release {leveling['release_ms']:g} ms (vad.core.leveling)")


def format_info(info: dict) -> str:
    from vad.core.modelmeta import MFLOP

    arch = info["architecture"]
    spec = info["feature_spec"]
    pp = info["postprocess"]
    widths = ", ".join(f"{k}={v}" for k, v in arch.get("widths", {}).items())
    lines = [
        f"model        {info['name']}  ({info['path']})",
        f"file         {info['file_bytes'] / 1024:.1f} KB, metadata schema {info['schema_version']}",
        f"architecture {arch.get('name', '?')}  widths: {widths}",
        f"parameters   {info['parameters']:,}",
        f"compute      {info['network_flops_per_second'] / MFLOP:.3f} MFLOP/s network + "
        f"{info['frontend_flops_per_second'] / MFLOP:.3f} MFLOP/s front end = "
        f"{info['total_flops_per_second'] / MFLOP:.3f} MFLOP/s",
        _latency_line(info.get("compute_us_per_10ms") or {}),
        f"latency      {info['algorithmic_latency_ms']:.1f} ms algorithmic "
        f"(frame {info['frame_latency_ms']:.1f} ms + lookahead {info['lookahead_ms']:.1f} ms)",
        f"features     {spec['n_mels']} log-mel @ {spec['sample_rate_hz']} Hz, win {spec['win_length_samples']}, "
        f"hop {spec['hop_length_samples']}, n_fft {spec['n_fft']}, {spec['fmin_hz']:g}-{spec['fmax_hz']:g} Hz",
        f"postprocess  onset {pp['onset_threshold']:g}, offset {pp['offset_threshold']:g}, "
        f"min speech {pp['min_speech_ms']:g} ms, min silence {pp['min_silence_ms']:g} ms, "
        f"pad {pp['speech_pad_ms']:g} ms, max speech {pp['max_speech_s']:g} s",
        _leveling_line(info.get("leveling")),
        f"interface    raw float32 audio [batch, samples] at {spec['sample_rate_hz']} Hz, samples a multiple of "
        f"{spec['hop_length_samples']}; states " + ", ".join(
            f"{k} {v[1:]}" for k, v in info["interface"].get("inputs", {}).items() if k != "audio"),
        f"graph        front end as matrix products in the ONNX graph: "
        f"{info['interface'].get('graph_frontend_flops_per_second', float('nan')) / MFLOP:.2f} MFLOP/s (onnxruntime backend)",
        f"weights      sha256 {info['weights_sha256'][:16]}... verified, all finite",
        f"backend      {info['backend']}" + (f"  ({info['backend_note']})" if info.get("backend_note") else ""),
    ]
    metrics = info.get("metrics") or {}
    if metrics:
        lines.append("metrics      " + ", ".join(f"{k}={_fmt(v)}" for k, v in sorted(metrics.items())))
    else:
        lines.append("metrics      (none recorded)")
    training = info.get("training") or {}
    if training:
        lines.append("training     " + ", ".join(sorted(training)) + "  (see --json)")
    return "\n".join(escape_nonprinting(line) for line in lines)


def _latency_line(lat: dict) -> str:
    parts = []
    if "stored" in lat:
        st = lat["stored"]
        parts.append(f"{st['us']:.2f} us per 10 ms predicted at export ({st['source'] or 'cost model'}, "
                     f"{st.get('host') or '?'} {st.get('measured_at') or ''})".replace(" )", ")"))
    if "this_machine" in lat:
        tm = lat["this_machine"]
        parts.append(f"{tm['us']:.2f} us per 10 ms on this machine (calibrated {tm.get('measured_at') or '?'})")
    if not parts:
        parts.append("no cost model (measure this machine with `vad calibrate`)")
    return "engine       " + "; ".join(parts)


def _fmt(value) -> str:
    if isinstance(value, float):
        return f"{value:.4g}"
    if isinstance(value, (dict, list)):
        return json.dumps(value)[:60]
    return str(value)


def run(args) -> int:
    info = model_info(args.model, backend=args.backend)
    if args.json:
        print(json.dumps(info, indent=2, sort_keys=True))
    else:
        print(format_info(info))
    return 0
