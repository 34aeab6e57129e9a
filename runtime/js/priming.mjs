// Start-of-stream priming, a port of vad/core/priming.py (its docstring explains why): before a
// stream's first frame the graph runs on a pre-roll made of the stream's opening (its first
// PRIME_OPENING_HOPS hops, or all its whole hops when it is shorter), mirrored backwards from the
// stream's start, and the pre-roll's probabilities are dropped. tests/test_js_client.py checks the
// constants against the Python ones and the probabilities against the Python runtime.

export const PRIME_HOPS = 200;
export const PRIME_OPENING_HOPS = 40;

/** The pre-roll (Float32Array, nHops hops) for the opening's whole hops (Float32Array). */
export function primeSamples(opening, hop, nHops = PRIME_HOPS) {
  const length = Math.floor(opening.length / hop) * hop;
  if (length === 0) throw new Error(`priming needs at least one hop (${hop} samples) of opening`);
  const total = nHops * hop;
  const out = new Float32Array(total);
  for (let j = 0; j < total; j++) {
    const q = (total - 1 - j) % (2 * length); // distance before the stream's start, mirrored
    out[j] = opening[q < length ? q : 2 * length - 1 - q];
  }
  return out;
}
