"""`vad export`: freeze a consolidated checkpoint into one self-contained ONNX model file."""

from __future__ import annotations

import argparse
import sys

NAME = "export"
HELP = "export a consolidated training checkpoint to one self-contained .onnx model (with its metadata)"

_EPILOG = """\
examples:
  vad export runs/1mflops/consolidated.pt -o models/vad-1mflops.onnx
  vad export ckpt.pt -o small.onnx --name vad-small --onset 0.6 --offset 0.4

The model carries its feature spec, widths, FLOPs, parameters, latency, post-processing
defaults, validation metrics and training config (see `vad info`). Opset 17, no external
data; the file is written atomically.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("checkpoint", metavar="CHECKPOINT", help="consolidated checkpoint (.pt) from `vad train`")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="output model file")
    parser.add_argument("--name", help="model name stored in the metadata (default: checkpoint's, else file stem)")
    pp = parser.add_argument_group("post-processing defaults stored in the model (default: checkpoint's or built-in)")
    pp.add_argument("--onset", type=float, metavar="P", help="onset threshold")
    pp.add_argument("--offset", type=float, metavar="P", help="offset threshold")
    pp.add_argument("--min-speech-ms", type=float, metavar="MS")
    pp.add_argument("--min-silence-ms", type=float, metavar="MS")
    pp.add_argument("--speech-pad-ms", type=float, metavar="MS")
    pp.add_argument("--max-speech-s", type=float, metavar="S", help="split longer segments (0 = no limit)")


def run(args) -> int:
    import time

    from vad.core.errors import require_extra

    require_extra("train", "vad export")
    from vad.core.postprocess import PostprocessConfig
    from vad.training.consolidate import load_consolidated
    from vad.training.export import export_checkpoint

    overrides = {
        "onset_threshold": args.onset,
        "offset_threshold": args.offset,
        "min_speech_ms": args.min_speech_ms,
        "min_silence_ms": args.min_silence_ms,
        "speech_pad_ms": args.speech_pad_ms,
        "max_speech_s": args.max_speech_s,
    }
    postprocess = None
    if any(v is not None for v in overrides.values()):
        _model, info = load_consolidated(args.checkpoint)
        base = info.get("postprocess")
        base = PostprocessConfig.from_dict(base) if isinstance(base, dict) else PostprocessConfig()
        postprocess = base.replace(**overrides)
    start = time.perf_counter()
    path = export_checkpoint(args.checkpoint, args.output, name=args.name, postprocess=postprocess)
    elapsed = time.perf_counter() - start
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB) in {elapsed:.2f} s", file=sys.stderr)
    return 0
