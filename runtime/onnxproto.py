"""The few ONNX protobuf operations the project needs, in pure Python (no ``onnx`` package).

``onnx`` is a development dependency only and onnxruntime does not expose initializer
values, so the model loader reads the weights (to verify their digest, and for the numba
backend) with ``read_tensors`` and the metadata with ``read_metadata_props``, and the
exporter edits the serialized model with ``append_metadata_props`` /
``drop_initializer_inputs``.
Field numbers are those of onnx.proto (ModelProto, GraphProto, TensorProto, ValueInfoProto).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vad.core.errors import ModelFileError

MODEL_GRAPH = 7
MODEL_METADATA_PROPS = 14
STRING_ENTRY_KEY, STRING_ENTRY_VALUE = 1, 2
GRAPH_INITIALIZER = 5
GRAPH_INPUT = 11
TENSOR_DIMS, TENSOR_DATA_TYPE, TENSOR_NAME, TENSOR_RAW_DATA, TENSOR_DATA_LOCATION = 1, 2, 8, 9, 14
TENSOR_FLOAT_DATA, TENSOR_INT32_DATA, TENSOR_INT64_DATA, TENSOR_DOUBLE_DATA = 4, 5, 7, 10
TENSOR_LOCATION_EXTERNAL = 1
VALUE_INFO_NAME = 1
ONNX_FLOAT, ONNX_INT32, ONNX_INT64, ONNX_DOUBLE = 1, 6, 7, 11
# ONNX data type -> (numpy little-endian dtype, the typed field that holds it without raw_data)
_DTYPES = {
    ONNX_FLOAT: ("<f4", TENSOR_FLOAT_DATA),
    ONNX_INT32: ("<i4", TENSOR_INT32_DATA),
    ONNX_INT64: ("<i8", TENSOR_INT64_DATA),
    ONNX_DOUBLE: ("<f8", TENSOR_DOUBLE_DATA),
}
_WIRE_VARINT, _WIRE_64BIT, _WIRE_LEN, _WIRE_32BIT = 0, 1, 2, 5


def _varint(buf, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf):
            raise ModelFileError("truncated protobuf varint")
        byte = buf[pos]
        pos += 1
        result |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return result & 0xFFFFFFFFFFFFFFFF, pos  # a 64-bit field
        shift += 7
        if shift > 63:
            raise ModelFileError("malformed protobuf varint (longer than 10 bytes)")


def encode_varint(value: int) -> bytes:
    out = bytearray()
    while True:
        byte = value & 0x7F
        value >>= 7
        if value:
            out.append(byte | 0x80)
        else:
            out.append(byte)
            return bytes(out)


def length_delimited(field: int, payload: bytes) -> bytes:
    """One length-delimited field (string, bytes or sub-message) with its key."""
    return encode_varint((field << 3) | _WIRE_LEN) + encode_varint(len(payload)) + payload


def fields(buf: memoryview):
    """Yield (field, wire type, value, start, end) of one message; value is an int or a memoryview."""
    pos = 0
    while pos < len(buf):
        start = pos
        key, pos = _varint(buf, pos)
        field, wire = key >> 3, key & 7
        if wire == _WIRE_VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _WIRE_64BIT:
            value, pos = buf[pos : pos + 8], pos + 8
        elif wire == _WIRE_LEN:
            size, pos = _varint(buf, pos)
            value, pos = buf[pos : pos + size], pos + size
        elif wire == _WIRE_32BIT:
            value, pos = buf[pos : pos + 4], pos + 4
        else:
            raise ModelFileError(f"unsupported protobuf wire type {wire}")
        if pos > len(buf):
            raise ModelFileError("truncated protobuf message")
        yield field, wire, value, start, pos


def _string_field(buf: memoryview, number: int) -> str:
    for field, wire, value, _s, _e in fields(buf):
        if field == number and wire == _WIRE_LEN:
            try:
                return bytes(value).decode("utf-8")
            except UnicodeDecodeError as exc:
                raise ModelFileError(f"malformed protobuf string: {exc}") from exc
    return ""


def _packed(value, wire: int, dtype: str, varint: bool) -> np.ndarray:
    """Values of a repeated numeric field (packed or one element)."""
    if not varint:  # fixed-size values: packed bytes, or one 32/64-bit value
        return np.frombuffer(bytes(value), dtype=dtype)
    items = []
    if wire == _WIRE_LEN:
        pos = 0
        while pos < len(value):
            item, pos = _varint(value, pos)
            items.append(item)
    else:
        items.append(value)
    out = np.array(items, dtype=np.uint64).view(np.int64)  # two's complement varints
    return out.astype(dtype)


def _tensor(buf: memoryview) -> tuple[str, np.ndarray]:
    """(name, array) of one TensorProto; ModelFileError for a type or layout this reader lacks."""
    name, dims, dtype, raw, typed, external = "", [], None, None, {}, False
    for field, wire, value, _s, _e in fields(buf):
        if field == TENSOR_NAME:
            name = bytes(value).decode("utf-8", errors="replace")
        elif field == TENSOR_DIMS:
            dims.extend(_packed(value, wire, "<i8", varint=True).tolist())
        elif field == TENSOR_DATA_TYPE:
            dtype = value
        elif field == TENSOR_RAW_DATA:
            raw = bytes(value)
        elif field == TENSOR_DATA_LOCATION:
            external = value == TENSOR_LOCATION_EXTERNAL
        elif field in (TENSOR_FLOAT_DATA, TENSOR_INT32_DATA, TENSOR_INT64_DATA, TENSOR_DOUBLE_DATA):
            typed.setdefault(field, []).append((value, wire))
    if external:
        raise ModelFileError(f"initializer {name!r} keeps its data outside the file (external data is not supported)")
    if dtype not in _DTYPES:
        raise ModelFileError(f"initializer {name!r} has ONNX data type {dtype}, which this reader does not support")
    np_dtype, typed_field = _DTYPES[dtype]
    if raw is not None:
        data = np.frombuffer(raw, dtype=np_dtype)
    else:
        varint = typed_field in (TENSOR_INT32_DATA, TENSOR_INT64_DATA)
        wire_dtype = "<f4" if typed_field == TENSOR_FLOAT_DATA else "<f8" if typed_field == TENSOR_DOUBLE_DATA else "<i8"
        parts = [_packed(v, w, wire_dtype, varint) for v, w in typed.get(typed_field, [])]
        data = np.concatenate(parts).astype(np_dtype) if parts else np.zeros(0, dtype=np_dtype)
    count = int(np.prod(dims, dtype=np.int64)) if dims else 1
    if data.size != count:
        raise ModelFileError(f"initializer {name!r} holds {data.size} values but its shape {dims} needs {count}")
    return name, data.astype(np_dtype[1:]).reshape(dims)


def _graph(model: memoryview) -> memoryview:
    for field, wire, value, _s, _e in fields(model):
        if field == MODEL_GRAPH and wire == _WIRE_LEN:
            return value
    raise ModelFileError("ONNX model has no graph")


def read_tensors(model_bytes: bytes) -> dict[str, np.ndarray]:
    """{name: array} of every initializer of a serialized model (float32, float64, int32, int64).

    Raises ModelFileError for a malformed message, an unsupported type or external data.
    """
    out: dict[str, np.ndarray] = {}
    for field, wire, value, _s, _e in fields(_graph(memoryview(model_bytes))):
        if field == GRAPH_INITIALIZER and wire == _WIRE_LEN:
            name, array = _tensor(value)
            if name in out:
                raise ModelFileError(f"initializer {name!r} appears twice")
            out[name] = array
    return out


def read_initializers(path: str | Path) -> dict[str, np.ndarray]:
    """``read_tensors`` of the file at ``path``."""
    return read_tensors(Path(path).read_bytes())


def read_metadata_props(model_bytes: bytes) -> dict[str, str]:
    """The ModelProto's metadata_props as {key: value} (a later duplicate key wins, as in onnxruntime)."""
    props: dict[str, str] = {}
    for field, wire, value, _s, _e in fields(memoryview(model_bytes)):
        if field == MODEL_METADATA_PROPS and wire == _WIRE_LEN:
            key = _string_field(value, STRING_ENTRY_KEY)
            props[key] = _string_field(value, STRING_ENTRY_VALUE)
    return props


def drop_initializer_inputs(model_bytes: bytes) -> bytes:
    """The model with every graph input that names an initializer removed (weights stay constant)."""
    model = memoryview(model_bytes)
    out = bytearray()
    for field, wire, value, start, end in fields(model):
        if field != MODEL_GRAPH or wire != _WIRE_LEN:
            out += model[start:end]
            continue
        names = {_string_field(v, TENSOR_NAME) for f, w, v, _s, _e in fields(value) if f == GRAPH_INITIALIZER}
        graph = bytearray()
        for gfield, _gw, gvalue, gstart, gend in fields(value):
            if gfield == GRAPH_INPUT and _string_field(gvalue, VALUE_INFO_NAME) in names:
                continue
            graph += value[gstart:gend]
        out += length_delimited(MODEL_GRAPH, bytes(graph))
    return bytes(out)


def append_metadata_props(model_bytes: bytes, props: dict[str, str]) -> bytes:
    """The model with ``props`` appended as metadata_props entries (a repeated field may be appended)."""
    extra = b"".join(
        length_delimited(MODEL_METADATA_PROPS, length_delimited(1, k.encode("utf-8")) + length_delimited(2, v.encode("utf-8")))
        for k, v in props.items()
    )
    return model_bytes + extra
