// Input leveling, a port of vad/core/leveling.py (its docstring explains it): a model whose
// metadata has a "leveling" object gets each hop scaled by a slow, causal gain that brings the
// stream's tracked level to target_dbfs. tests/test_js_client.py checks this port against Python.

const LEVEL_FLOOR_POWER = 1e-12;
const DB_TO_LN_AMPLITUDE = Math.log(10) / 20;

/** A tracker for one stream from the metadata's leveling object and the hop in seconds; null: none. */
export function makeLeveler(config, hopS) {
  if (!config) return null;
  const up = Math.exp((-1000 * hopS) / config.attack_ms);
  const down = Math.exp((-1000 * hopS) / config.release_ms);
  let level = 0;
  let started = false;
  return {
    reset() { level = 0; started = false; },
    /** The samples (Float32Array, a whole number of hops) leveled hop by hop, as a new array. */
    apply(samples, hop) {
      const out = new Float32Array(samples.length);
      for (let start = 0; start + hop <= samples.length; start += hop) {
        let power = 0;
        for (let j = start; j < start + hop; j++) power += samples[j] * samples[j];
        const d = 10 * Math.log10(power / hop + LEVEL_FLOOR_POWER);
        if (!started) {
          level = d;
          started = true;
        } else {
          const a = d > level ? up : down;
          level = a * level + (1 - a) * d;
        }
        const gainDb = Math.min(Math.max(config.target_dbfs - level, -config.max_gain_db), config.max_gain_db);
        const gain = Math.exp(gainDb * DB_TO_LN_AMPLITUDE);
        for (let j = start; j < start + hop; j++) out[j] = samples[j] * gain;
      }
      return out;
    },
  };
}
