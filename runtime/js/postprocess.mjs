// Post-processing of frame probabilities into speech segments: a line-by-line port of
// vad/core/postprocess.py (SegmentTracker, PostprocessConfig checks, segment conversion).
// The rules, event timing and tie-breaking are exactly those of the Python module (its
// docstring is the specification); the test (tests/test_js_client.py) checks that this port
// gives the same segments as `vad label` on the same audio.

const CONFIG_FIELDS = [
  "onset_threshold", "offset_threshold", "min_speech_ms", "min_silence_ms", "speech_pad_ms", "max_speech_s",
];

// Python's round(): half to even (int(round(ms / hop_ms)) in postprocess.py)
function roundHalfEven(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function frames(ms, hopMs) {
  return roundHalfEven(ms / hopMs);
}

/** Validate a post-processing config object (the model metadata's "postprocess" entry). */
export function checkConfig(config) {
  if (config === null || typeof config !== "object") throw new Error("post-processing config must be an object");
  const unknown = Object.keys(config).filter((k) => !CONFIG_FIELDS.includes(k));
  if (unknown.length) throw new Error(`post-processing config has unknown field(s): ${unknown.sort().join(", ")}`);
  const out = {};
  for (const name of CONFIG_FIELDS) {
    const value = config[name];
    if (typeof value !== "number" || !Number.isFinite(value)) {
      throw new Error(`PostprocessConfig.${name}=${value}: must be a finite number`);
    }
    if (value < 0) throw new Error(`PostprocessConfig.${name}=${value}: must be >= 0`);
    out[name] = value;
  }
  for (const name of ["onset_threshold", "offset_threshold"]) {
    if (out[name] > 1) throw new Error(`PostprocessConfig.${name}=${out[name]}: must be in [0, 1]`);
  }
  if (out.offset_threshold > out.onset_threshold) {
    throw new Error(`PostprocessConfig.offset_threshold=${out.offset_threshold} must be <= onset_threshold=${out.onset_threshold}`);
  }
  return out;
}

/** A segment boundary in frames: kind "start" (endFrame/meanProbability null) or "end". */
function event(kind, startFrame, endFrame = null, meanProbability = null) {
  return { kind, startFrame, endFrame, meanProbability };
}

/** Streaming post-processing state machine (vad.core.postprocess.SegmentTracker). */
export class SegmentTracker {
  constructor(config, hopS) {
    if (typeof hopS !== "number" || !Number.isFinite(hopS) || hopS <= 0) {
      throw new Error(`hop_s=${hopS}: must be a finite number > 0`);
    }
    this.config = checkConfig(config);
    this.hopS = hopS;
    const hopMs = 1000.0 * hopS;
    this.onset = this.config.onset_threshold;
    this.offset = this.config.offset_threshold;
    this.minSpeechFrames = Math.max(1, frames(this.config.min_speech_ms, hopMs));
    this.minSilenceFrames = Math.max(1, frames(this.config.min_silence_ms, hopMs));
    this.padFrames = frames(this.config.speech_pad_ms, hopMs);
    this.maxSpeechFrames = this.config.max_speech_s > 0 ? frames(1000.0 * this.config.max_speech_s, hopMs) : 0;
    if (this.config.max_speech_s > 0) this.maxSpeechFrames = Math.max(1, this.maxSpeechFrames);
    this.reset();
  }

  reset() {
    this.framesPushed = 0;
    this.inSpeech = false;
    this.start = 0; // detected start of the open segment
    this.lastActive = 0;
    this.sum = 0.0; // sum of p over [start, current]
    this.sumAtActive = 0.0; // sum of p over [start, lastActive]
    this.silenceRun = 0;
    this.confirmed = false; // its start event is out
    this.emittedStart = 0; // padded start of the open (confirmed) segment
    this.buffer = []; // p over [start, current], only with max speech
    this.boundary = 0; // no segment may start before this frame (end of the last one)
    this.pending = null; // [padded start, detected end, mean]
    this.flushed = false;
  }

  resolvePending(nextStart, streamEnd, events) {
    const [start, rawEnd, mean] = this.pending;
    let end = rawEnd + this.padFrames;
    if (nextStart !== null && nextStart - rawEnd < 2 * this.padFrames) {
      end = rawEnd + Math.floor((nextStart - rawEnd) / 2);
    }
    if (streamEnd !== null) end = Math.min(end, streamEnd);
    events.push(event("end", start, end, mean));
    this.boundary = end;
    this.pending = null;
  }

  confirm(events) {
    this.confirmed = true;
    if (this.pending !== null) this.resolvePending(this.start, null, events);
    this.emittedStart = Math.max(this.start - this.padFrames, this.boundary, 0);
    events.push(event("start", this.emittedStart));
  }

  split(events) {
    const buf = this.buffer;
    const length = this.lastActive + 1 - this.start;
    const stop = Math.min(length, this.maxSpeechFrames + 1); // the first part is at most max_speech long
    // argmin of buf[lo:stop], the earliest on ties; lo: the first part is at least min_speech long where max_speech allows
    const lo = Math.min(this.minSpeechFrames, stop - 1);
    let cut = lo;
    for (let k = lo + 1; k < stop; k++) if (buf[k] < buf[cut]) cut = k;
    let first = 0.0;
    for (let k = 0; k < cut; k++) first += buf[k];
    const at = this.start + cut;
    events.push(event("end", this.emittedStart, at, first / cut));
    events.push(event("start", at));
    this.boundary = at;
    this.emittedStart = at;
    this.start = at;
    this.buffer = buf.slice(cut);
    let total = 0.0;
    let atActive = 0.0;
    for (let k = 0; k < this.buffer.length; k++) {
      total += this.buffer[k];
      if (k === this.lastActive - at) atActive = total;
    }
    this.sum = total;
    this.sumAtActive = atActive;
  }

  endOpen() {
    if (this.confirmed) {
      const length = this.lastActive + 1 - this.start;
      this.pending = [this.emittedStart, this.lastActive + 1, this.sumAtActive / length];
    }
    this.inSpeech = false;
    this.confirmed = false;
    this.buffer = [];
  }

  step(i, p, events) {
    if (!this.inSpeech) {
      if (p >= this.onset) {
        this.inSpeech = true;
        this.start = i;
        this.lastActive = i;
        this.sum = p;
        this.sumAtActive = p;
        this.silenceRun = 0;
        this.confirmed = false;
        if (this.maxSpeechFrames) this.buffer = [p];
        if (this.minSpeechFrames <= 1) this.confirm(events);
      }
      return;
    }
    this.sum += p;
    if (this.maxSpeechFrames) this.buffer.push(p);
    if (p >= this.offset) {
      this.lastActive = i;
      this.sumAtActive = this.sum;
      this.silenceRun = 0;
      if (!this.confirmed && i + 1 - this.start >= this.minSpeechFrames) this.confirm(events);
      while (this.confirmed && this.maxSpeechFrames && i + 1 - this.start > this.maxSpeechFrames) this.split(events);
    } else {
      this.silenceRun += 1;
      if (this.silenceRun >= this.minSilenceFrames) this.endOpen();
    }
  }

  tryFinishPending(events) {
    if (this.pending === null) return;
    const earliestNext = this.inSpeech ? this.start : this.framesPushed;
    if (earliestNext >= this.pending[1] + 2 * this.padFrames) this.resolvePending(null, null, events);
  }

  /** Feed the next frames' probabilities (an array or typed array of values in [0, 1]); return completed events. */
  push(probabilities) {
    if (this.flushed) throw new Error("SegmentTracker.push after flush(): call reset() to start a new stream");
    const values = Array.from(probabilities, Number); // doubles, like Python's p.tolist()
    values.forEach((v, k) => {
      if (!(v >= 0.0 && v <= 1.0)) throw new Error(`probabilities[${k}]=${v}: must be a finite value in [0, 1]`);
    });
    const events = [];
    const base = this.framesPushed;
    if (!this.inSpeech && this.pending === null && values.every((v) => v < this.onset)) {
      this.framesPushed += values.length; // fast path: silence, nothing open
      return events;
    }
    values.forEach((value, k) => {
      this.step(base + k, value, events);
      this.framesPushed = base + k + 1;
      this.tryFinishPending(events);
    });
    return events;
  }

  /** End of stream: close the open segment and emit every remaining end event. */
  flush() {
    const events = [];
    if (this.flushed) return events;
    if (this.inSpeech) this.endOpen();
    if (this.pending !== null) this.resolvePending(null, this.framesPushed, events);
    this.flushed = true;
    return events;
  }
}
