"""The few ONNX protobuf operations the project needs, in pure Python (no ``onnx`` package).

``onnx`` is a development dependency only and onnxruntime does not expose initializer
values, so the numba backend reads the weights with ``read_initializers`` and the exporter
edits the serialized model with ``append_metadata_props`` / ``drop_initializer_inputs``.
Field numbers are those of onnx.proto (ModelProto, GraphProto, TensorProto, ValueInfoProto).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from vad.core.errors import ModelFileError

MODEL_GRAPH = 7
MODEL_METADATA_PROPS = 14
GRAPH_INITIALIZER = 5
GRAPH_INPUT = 11
TENSOR_DIMS, TENSOR_DATA_TYPE, TENSOR_FLOAT_DATA, TENSOR_NAME, TENSOR_RAW_DATA = 1, 2, 4, 8, 9
VALUE_INFO_NAME = 1
ONNX_FLOAT = 1
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
            return result, pos
        shift += 7


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
            return bytes(value).decode("utf-8")
    return ""


def _tensor(buf: memoryview) -> tuple[str, np.ndarray | None]:
    name, dims, dtype, raw, floats = "", [], None, None, []
    for field, wire, value, _s, _e in fields(buf):
        if field == TENSOR_NAME:
            name = bytes(value).decode("utf-8")
        elif field == TENSOR_DIMS:
            if wire == _WIRE_LEN:  # packed
                pos = 0
                while pos < len(value):
                    d, pos = _varint(value, pos)
                    dims.append(d)
            else:
                dims.append(value)
        elif field == TENSOR_DATA_TYPE:
            dtype = value
        elif field == TENSOR_RAW_DATA:
            raw = bytes(value)
        elif field == TENSOR_FLOAT_DATA:
            floats.append(np.frombuffer(bytes(value), dtype="<f4"))
    if dtype != ONNX_FLOAT:
        return name, None
    data = np.frombuffer(raw, dtype="<f4") if raw is not None else np.concatenate(floats or [np.zeros(0, "<f4")])
    return name, data.astype(np.float32).reshape(dims)


def _graph(model: memoryview) -> memoryview:
    for field, wire, value, _s, _e in fields(model):
        if field == MODEL_GRAPH and wire == _WIRE_LEN:
            return value
    raise ModelFileError("ONNX model has no graph")


def read_initializers(path: str | Path) -> dict[str, np.ndarray]:
    """{name: float32 array} of the float initializers of an ONNX file."""
    data = memoryview(Path(path).read_bytes())
    out: dict[str, np.ndarray] = {}
    for field, wire, value, _s, _e in fields(_graph(data)):
        if field == GRAPH_INITIALIZER and wire == _WIRE_LEN:
            name, array = _tensor(value)
            if array is not None:
                out[name] = array
    return out


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
