"""Named arrays packed into one float64 buffer, so that a compiled kernel takes one argument.

Unboxing an array argument of a numba call costs about as much as a few frames of arithmetic,
and the streaming step runs every 10 ms on dozens of arrays (weights, tables, state, scratch).
They therefore travel as two buffers: the model's constants (shared, read-only) and the
stream's state. Each buffer starts with a header of two numbers per region (offset in float64
units, element count; float64 holds them exactly), so reading a region costs two loads and a
slice; regions start on 64-byte boundaries. float32 regions hold an even number of elements
(padded), so they are a whole number of float64 words. Compiled code reads a region by its index
with ``region_f64`` / ``region_f32`` / ``region_i64`` (1-D) or their ``_2d`` forms: arrays made
from a pointer into the buffer (``numba.carray``: no bounds clamping, no reshape call, so a
view costs next to nothing where a slice and a reshape cost about 20 ns each, and a stream step
takes some 40 of them per call); they live as long as the call that holds the buffer. Python
code reads a region with ``PackedArrays.view``.

This module never imports torch.
"""

from __future__ import annotations

import numpy as np
from numba import carray, njit, types
from numba.extending import intrinsic

_ALIGN_F64 = 8  # 64 bytes
_DTYPES = (np.dtype(np.float64), np.dtype(np.float32), np.dtype(np.int64))


class PackedArrays:
    """A float64 buffer holding regions ``0 .. n-1`` of the given dtypes and shapes.

    Args:
        regions: one ``(dtype, shape)`` per region index, dtype float64, float32 or int64.

    Attributes:
        buffer: the float64 array a kernel receives.
    """

    def __init__(self, regions: list[tuple[type, tuple[int, ...]]]):
        header = 2 * len(regions)
        offset = -(-header // _ALIGN_F64) * _ALIGN_F64
        self._layout: list[tuple[np.dtype, tuple[int, ...], int, int]] = []
        for dtype, shape in regions:
            dtype = np.dtype(dtype)
            if dtype not in _DTYPES:
                raise TypeError(f"unsupported region dtype {dtype}")
            count = int(np.prod(shape, dtype=np.int64))
            if dtype.itemsize == 4:
                count += count % 2  # whole float64 words: region_f32 needs no trailing slice
            words = count * dtype.itemsize // 8
            self._layout.append((dtype, tuple(int(s) for s in shape), offset, count))
            offset += -(-max(words, 1) // _ALIGN_F64) * _ALIGN_F64
        self.buffer = np.zeros(offset, dtype=np.float64)
        for r, (_dtype, _shape, start, count) in enumerate(self._layout):
            self.buffer[2 * r] = start
            self.buffer[2 * r + 1] = count

    def view(self, region: int) -> np.ndarray:
        """The region as a numpy array of its dtype and shape (a view: writes go to the buffer)."""
        dtype, shape, start, count = self._layout[region]
        words = count * dtype.itemsize // 8
        return self.buffer[start : start + words].view(dtype)[: int(np.prod(shape, dtype=np.int64))].reshape(shape)

    def set(self, region: int, values) -> None:
        self.view(region)[...] = values


def _pointer_at(dtype):
    """An intrinsic: a pointer to the ``dtype`` element that starts at float64 word ``start`` of buf."""

    @intrinsic
    def pointer_at(typingctx, buf, start):
        def codegen(context, builder, signature, args):
            data = context.make_array(signature.args[0])(context, builder, args[0]).data
            return builder.bitcast(builder.gep(data, [args[1]]), context.get_value_type(types.CPointer(dtype)))

        return types.CPointer(dtype)(buf, start), codegen

    return pointer_at


_f64_at = _pointer_at(types.float64)
_f32_at = _pointer_at(types.float32)
_i64_at = _pointer_at(types.int64)


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def region_f64(buf, region):
    return carray(_f64_at(buf, int(buf[2 * region])), int(buf[2 * region + 1]))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def region_f32(buf, region):
    return carray(_f32_at(buf, int(buf[2 * region])), int(buf[2 * region + 1]))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def region_i64(buf, region):
    return carray(_i64_at(buf, int(buf[2 * region])), int(buf[2 * region + 1]))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def region_f64_2d(buf, region, rows, cols):
    """The region's first rows * cols elements as a C-ordered [rows, cols] array (the caller keeps
    rows * cols within the region)."""
    return carray(_f64_at(buf, int(buf[2 * region])), (rows, cols))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def region_f32_2d(buf, region, rows, cols):
    return carray(_f32_at(buf, int(buf[2 * region])), (rows, cols))


@njit(cache=True, nogil=True, error_model="numpy", inline="always")
def region_i64_2d(buf, region, rows, cols):
    return carray(_i64_at(buf, int(buf[2 * region])), (rows, cols))
