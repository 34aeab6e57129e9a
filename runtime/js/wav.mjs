// A small WAV (RIFF) reader: PCM 8/16/24/32-bit and IEEE float 32/64, any channel count
// (averaged to mono, as vad/core/audio.py's load_audio does), returned as float32 in [-1, 1).
// Integer scaling is libsndfile's: int16 / 32768, int24 / 2^23, int32 / 2^31, uint8 (x - 128) / 128.

const PCM = 1, FLOAT = 3, EXTENSIBLE = 0xfffe;

export function readWav(bytes, source = "input") {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const tag = (at) => String.fromCharCode(...bytes.subarray(at, at + 4));
  if (bytes.length < 12 || tag(0) !== "RIFF" || tag(8) !== "WAVE") {
    throw new Error(`${source}: not a WAV file (no RIFF/WAVE header); convert it first, e.g. ffmpeg -i IN -ar 16000 OUT.wav`);
  }
  let format = null;
  let data = null;
  for (let pos = 12; pos + 8 <= bytes.length;) {
    const id = tag(pos);
    let size = view.getUint32(pos + 4, true);
    const body = pos + 8;
    size = Math.min(size, bytes.length - body); // a streamed WAV may declare 0xFFFFFFFF
    if (id === "fmt ") {
      if (size < 16) throw new Error(`${source}: fmt chunk too short`);
      let code = view.getUint16(body, true);
      const bits = view.getUint16(body + 14, true);
      if (code === EXTENSIBLE && size >= 26) code = view.getUint16(body + 24, true); // SubFormat GUID's first 2 bytes
      format = { code, channels: view.getUint16(body + 2, true), rate: view.getUint32(body + 4, true), bits };
    } else if (id === "data") {
      data = bytes.subarray(body, body + size);
    }
    pos = body + size + (size % 2); // chunks are padded to an even size
  }
  if (!format || !data) throw new Error(`${source}: WAV file lacks a fmt or data chunk`);
  const { code, channels, rate, bits } = format;
  if (channels < 1) throw new Error(`${source}: WAV declares ${channels} channels`);
  const width = bits / 8;
  const supported = (code === PCM && [8, 16, 24, 32].includes(bits)) || (code === FLOAT && [32, 64].includes(bits));
  if (!supported) throw new Error(`${source}: unsupported WAV sample format (code ${code}, ${bits} bits)`);
  const n = Math.floor(data.length / (width * channels));
  const dv = new DataView(data.buffer, data.byteOffset, data.byteLength);
  const sample = (at) => {
    if (code === FLOAT) return bits === 32 ? dv.getFloat32(at, true) : dv.getFloat64(at, true);
    if (bits === 8) return (dv.getUint8(at) - 128) / 128;
    if (bits === 16) return dv.getInt16(at, true) / 32768;
    if (bits === 24) return ((dv.getUint8(at + 2) << 24) | (dv.getUint8(at + 1) << 16) | (dv.getUint8(at) << 8)) / 2 ** 31;
    return dv.getInt32(at, true) / 2 ** 31;
  };
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) {
    let sum = 0.0;
    for (let c = 0; c < channels; c++) sum += sample((i * channels + c) * width);
    out[i] = channels === 1 ? sum : sum / channels;
  }
  return { samples: out, rate };
}
