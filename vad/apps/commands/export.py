"""`vad export`: freeze a consolidated checkpoint (or re-export a model file) into one
self-contained raw-audio ONNX model file."""

from __future__ import annotations

import argparse
import sys

NAME = "export"
HELP = "export a consolidated checkpoint, or convert an older .onnx model, to one self-contained raw-audio .onnx model"

_EPILOG = """\
examples:
  vad export runs/1mflops/consolidated.pt -o models/vad-1mflops.onnx
  vad export ckpt.pt -o small.onnx --name vad-small --onset 0.6 --offset 0.4
  vad export old-features-model.onnx -o model.onnx     # convert a model file to the current format

The model takes raw 16 kHz float32 audio plus explicit state and returns one speech
probability per 10 ms (the front end is inside the graph; see models/README.md). It carries
its feature spec, widths, FLOPs, parameters, latency, post-processing defaults, validation
metrics, training config, graph interface and a digest of its weights (see `vad info`).
Converting a .onnx keeps all of its metadata; it may be converted in place (-o the same file:
it is read completely before the new file replaces it). Opset 17, no external data; the file is
checked against torch before it is written, atomically.
"""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.formatter_class = argparse.RawDescriptionHelpFormatter
    parser.epilog = _EPILOG
    parser.add_argument("checkpoint", metavar="SOURCE",
                        help="consolidated checkpoint (.pt) from `vad train`, or an exported model (.onnx) to convert")
    parser.add_argument("-o", "--output", required=True, metavar="MODEL.onnx", help="output model file")
    parser.add_argument("--name", help="model name stored in the metadata (default: the source's, else file stem)")
    pp = parser.add_argument_group("post-processing defaults stored in the model (default: the source's or built-in)")
    pp.add_argument("--onset", type=float, metavar="P", help="onset threshold")
    pp.add_argument("--offset", type=float, metavar="P", help="offset threshold")
    pp.add_argument("--min-speech-ms", type=float, metavar="MS")
    pp.add_argument("--min-silence-ms", type=float, metavar="MS")
    pp.add_argument("--speech-pad-ms", type=float, metavar="MS")
    pp.add_argument("--max-speech-s", type=float, metavar="S", help="split longer segments (0 = no limit)")
    parser.add_argument("--leveling", choices=("on", "off"),
                        help="input leveling the runtime applies before the network (vad.core.leveling, its "
                        "default settings): on or off (default: the source model's; off for a checkpoint)")


def run(args) -> int:
    import time
    from pathlib import Path

    from vad.core.errors import require_extra

    require_extra("train", "vad export")
    from vad.core.leveling import LevelingConfig
    from vad.core.postprocess import PostprocessConfig
    from vad.training.export import convert_onnx, export_checkpoint, load_model_weights

    source = Path(args.checkpoint)
    is_model = source.suffix.lower() == ".onnx"
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
        if is_model:
            base = load_model_weights(source)[1].postprocess
        else:
            from vad.training.consolidate import load_consolidated

            base = load_consolidated(source)[1].get("postprocess")
            base = PostprocessConfig.from_dict(base) if isinstance(base, dict) else PostprocessConfig()
        postprocess = base.replace(**overrides)
    start = time.perf_counter()
    export = convert_onnx if is_model else export_checkpoint
    extra = {} if args.leveling is None else {"leveling": LevelingConfig() if args.leveling == "on" else None}
    path = export(source, args.output, name=args.name, postprocess=postprocess, **extra)
    elapsed = time.perf_counter() - start
    print(f"wrote {path} ({path.stat().st_size / 1024:.1f} KB) in {elapsed:.2f} s", file=sys.stderr)
    return 0
