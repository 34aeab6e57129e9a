#!/usr/bin/env node
// Stream a WAV file through a model file of this project in 10 ms chunks with onnxruntime-node
// and print the speech segments, post-processed with the defaults the model's metadata holds.
//
//   npm install --ignore-scripts        (in this folder: installs onnxruntime-node)
//   node vad_stream.mjs speech.wav                      # shipped default model
//   node vad_stream.mjs --model m.onnx --json --probabilities speech.wav
//
// The model takes raw float32 samples at its rate (16 kHz) plus explicit state and returns one
// probability per 10 ms hop (models/README.md): this program only reads the WAV, feeds one hop
// per call, carries the state and runs postprocess.mjs (a port of vad/core/postprocess.py). It
// primes the stream first and levels its input when the model asks for it, as the Python runtime
// does (priming.mjs and leveling.mjs, ports of vad/core/priming.py and vad/core/leveling.py).
// Text output: one line per segment as soon as the stream has completed it. --json: one JSON
// object at the end ({"segments": [...], "probabilities": [...] with --probabilities}).

import { readFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseArgs } from "node:util";
import * as ort from "onnxruntime-node";

import { readModelMetadata } from "./modelfile.mjs";
import { makeLeveler } from "./leveling.mjs";
import { SegmentTracker } from "./postprocess.mjs";
import { PRIME_OPENING_HOPS, primeSamples } from "./priming.mjs";
import { readWav } from "./wav.mjs";

const HERE = dirname(fileURLToPath(import.meta.url));
const DEFAULT_MODEL = join(HERE, "..", "..", "models", "default.onnx");

function usage(message) {
  if (message) console.error(`vad_stream: error: ${message}`);
  console.error("usage: node vad_stream.mjs [--model MODEL.onnx] [--json] [--probabilities] INPUT.wav");
  process.exit(2);
}

/** The model, its metadata and one stream's state: run(hopSamples) -> probability; prime(opening)
 * before a stream's first run (priming.mjs). */
export async function openModel(path) {
  const bytes = new Uint8Array(await readFile(path));
  const meta = readModelMetadata(bytes, path);
  const session = await ort.InferenceSession.create(bytes, {
    executionProviders: ["cpu"], intraOpNumThreads: 1, interOpNumThreads: 1, executionMode: "sequential",
  });
  const iface = meta.interface;
  const states = Object.entries(iface.inputs).filter(([name]) => name !== "audio");
  const zeroState = () => Object.fromEntries(states.map(([name, dims]) => {
    const shape = [1, ...dims.slice(1)];
    return [name, new ort.Tensor("float32", new Float32Array(shape.reduce((a, b) => a * b, 1)), shape)];
  }));
  let state = zeroState();
  const hop = meta.feature_spec.hop_length_samples;
  const leveler = makeLeveler(meta.leveling, hop / meta.feature_spec.sample_rate_hz);
  return {
    meta,
    hop: meta.feature_spec.hop_length_samples,
    rate: meta.feature_spec.sample_rate_hz,
    reset() {
      state = zeroState();
      if (leveler) leveler.reset();
    },
    /** Probabilities (Float32Array, one per hop) of float32 samples, a whole number of hops. */
    async run(samples) {
      const x = leveler ? leveler.apply(samples, hop) : samples; // the model's input leveling, if any
      const feeds = { audio: new ort.Tensor("float32", x, [1, x.length]), ...state };
      const out = await session.run(feeds);
      for (const [name] of states) state[name] = out[iface.state_outputs[name]];
      return out.probability.data;
    },
    /** Prime the state on the stream's opening (its first hops, Float32Array); nothing returned. */
    async prime(opening) {
      await this.run(primeSamples(opening, hop));
    },
  };
}

async function main() {
  let parsed;
  try {
    parsed = parseArgs({
      allowPositionals: true,
      options: { model: { type: "string" }, json: { type: "boolean" }, probabilities: { type: "boolean" } },
    });
  } catch (err) {
    usage(err.message);
  }
  const { values, positionals } = parsed;
  if (positionals.length !== 1) usage("give exactly one INPUT.wav");
  const input = positionals[0];
  const model = await openModel(values.model ?? DEFAULT_MODEL);
  const { samples, rate } = readWav(new Uint8Array(await readFile(input)), input);
  if (rate !== model.rate) {
    throw new Error(`${input}: ${rate} Hz; the model runs at ${model.rate} Hz: resample first, e.g. ` +
      `ffmpeg -i ${input} -ar ${model.rate} OUT.wav`);
  }
  const hopS = model.hop / model.rate;
  const tracker = new SegmentTracker(model.meta.postprocess, hopS);
  const segments = [];
  const probabilities = [];
  const emit = (events) => {
    for (const ev of events) {
      if (ev.kind !== "end") continue;
      const seg = { start_s: ev.startFrame * hopS, end_s: ev.endFrame * hopS, probability: ev.meanProbability };
      segments.push(seg);
      if (!values.json) {
        console.log(`speech ${seg.start_s.toFixed(3)} s -> ${seg.end_s.toFixed(3)} s  ` +
          `(${(seg.end_s - seg.start_s).toFixed(3)} s, mean p ${seg.probability.toFixed(3)})`);
      }
    }
  };
  const started = process.hrtime.bigint();
  const openingHops = Math.min(PRIME_OPENING_HOPS, Math.floor(samples.length / model.hop));
  if (openingHops > 0) await model.prime(samples.subarray(0, openingHops * model.hop));
  for (let pos = 0; pos + model.hop <= samples.length; pos += model.hop) { // 10 ms per call
    const p = await model.run(samples.subarray(pos, pos + model.hop));
    if (values.probabilities) probabilities.push(...p);
    emit(tracker.push(p));
  }
  emit(tracker.flush());
  const elapsedUs = Number(process.hrtime.bigint() - started) / 1000;
  const hops = Math.floor(samples.length / model.hop);
  console.error(`vad_stream: ${model.meta.name}: ${hops} hops of ${1000 * hopS} ms in ${(elapsedUs / 1000).toFixed(1)} ms ` +
    `(${(elapsedUs / Math.max(hops, 1)).toFixed(1)} us per 10 ms call, onnxruntime-node ${ort.env.versions.common})`);
  if (values.json) {
    const out = { model: model.meta.name, postprocess: model.meta.postprocess, segments };
    if (values.probabilities) out.probabilities = probabilities;
    console.log(JSON.stringify(out));
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  main().catch((err) => {
    console.error(`vad_stream: error: ${err.message}`);
    process.exit(1);
  });
}
