// Reading what a model file of this project carries, in plain JavaScript: the ONNX protobuf's
// metadata_props (ModelProto field 14: key/value strings). onnxruntime-node does not expose a
// model's custom metadata, so this walks the protobuf wire format (the same few rules as
// runtime/onnxproto.py). Keys: "vad.schema_version" and "vad.metadata" (JSON; models/README.md).

const MODEL_METADATA_PROPS = 14;
const WIRE_VARINT = 0, WIRE_64BIT = 1, WIRE_LEN = 2, WIRE_32BIT = 5;
export const SCHEMA_KEY = "vad.schema_version";
export const METADATA_KEY = "vad.metadata";
export const SCHEMA_VERSION = 2; // the raw-audio format this client runs

function varint(buf, pos) {
  let result = 0n;
  let shift = 0n;
  for (;;) {
    if (pos >= buf.length) throw new Error("truncated protobuf varint");
    const byte = buf[pos++];
    result |= BigInt(byte & 0x7f) << shift;
    if (!(byte & 0x80)) return [result, pos];
    shift += 7n;
    if (shift > 63n) throw new Error("malformed protobuf varint");
  }
}

/** Yield [field, wire, value] of one message; value is a BigInt (varint) or a Uint8Array view. */
function* fields(buf) {
  let pos = 0;
  while (pos < buf.length) {
    let key;
    [key, pos] = varint(buf, pos);
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    let value;
    if (wire === WIRE_VARINT) {
      [value, pos] = varint(buf, pos);
    } else if (wire === WIRE_64BIT || wire === WIRE_32BIT) {
      const size = wire === WIRE_64BIT ? 8 : 4;
      value = buf.subarray(pos, pos + size);
      pos += size;
    } else if (wire === WIRE_LEN) {
      let size;
      [size, pos] = varint(buf, pos);
      value = buf.subarray(pos, pos + Number(size));
      pos += Number(size);
    } else {
      throw new Error(`unsupported protobuf wire type ${wire}`);
    }
    if (pos > buf.length) throw new Error("truncated protobuf message");
    yield [field, wire, value];
  }
}

/** {key: value} of a serialized ONNX model's metadata_props (a later duplicate key wins). */
export function readMetadataProps(bytes) {
  const decoder = new TextDecoder("utf-8", { fatal: true });
  const props = {};
  for (const [field, wire, entry] of fields(bytes)) {
    if (field !== MODEL_METADATA_PROPS || wire !== WIRE_LEN) continue;
    let key = "";
    let value = "";
    for (const [f, w, v] of fields(entry)) {
      if (w !== WIRE_LEN) continue;
      if (f === 1) key = decoder.decode(v);
      else if (f === 2) value = decoder.decode(v);
    }
    props[key] = value;
  }
  return props;
}

/** The model's metadata object (feature_spec, postprocess, interface, ...); throws naming `source`. */
export function readModelMetadata(bytes, source = "model") {
  let props;
  try {
    props = readMetadataProps(bytes);
  } catch (err) {
    throw new Error(`${source}: not a readable ONNX model: ${err.message}`);
  }
  if (!(SCHEMA_KEY in props) || !(METADATA_KEY in props)) {
    throw new Error(`${source}: not a VAD model of this project: its metadata lacks ${SCHEMA_KEY}/${METADATA_KEY}`);
  }
  const version = Number(props[SCHEMA_KEY]);
  if (version !== SCHEMA_VERSION) {
    throw new Error(`${source}: metadata schema ${props[SCHEMA_KEY]}; this client runs schema ${SCHEMA_VERSION} ` +
      "(raw-audio input); convert older files with `vad export OLD.onnx -o NEW.onnx`");
  }
  try {
    return JSON.parse(props[METADATA_KEY]);
  } catch (err) {
    throw new Error(`${source}: metadata is not valid JSON: ${err.message}`);
  }
}
