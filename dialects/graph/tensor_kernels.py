"""Shape rules and numpy kernels behind :mod:`.tensor`, written once for both shape inference and
evaluation. Shapes are tuples of ints where ``DYNAMIC`` (-1) marks an unknown dimension."""

from __future__ import annotations

import math

import numpy as np

from xir.types import DYNAMIC


def broadcast_dims(a: tuple, b: tuple) -> tuple | None:
    """The numpy broadcast of two shapes, or None when they do not broadcast."""
    out = []
    for i in range(1, max(len(a), len(b)) + 1):
        x = a[-i] if i <= len(a) else 1
        y = b[-i] if i <= len(b) else 1
        if x == y or y == 1:
            out.append(x)
        elif x == 1:
            out.append(y)
        elif DYNAMIC in (x, y):
            out.append(y if x == DYNAMIC else x)
        else:
            return None
    return tuple(reversed(out))


def broadcasts_to(shape: tuple, target: tuple) -> bool:
    """Whether ``shape`` broadcasts to ``target`` one way (ONNX's unidirectional broadcasting)."""
    if len(shape) > len(target):
        return False
    return all(d in (1, t) or DYNAMIC in (d, t) for d, t in zip(shape[::-1], target[::-1]))


def normalize_axis(axis: int, rank: int) -> int | None:
    """``axis`` in ``[0, rank)`` (negative counts from the end), or None when out of range."""
    if not -rank <= axis < rank:
        return None
    return axis + rank if axis < 0 else axis


def product(dims) -> int:
    """The product of ``dims``, DYNAMIC if any of them is."""
    return DYNAMIC if DYNAMIC in dims else math.prod(dims)


def slice_bounds(dim: int, start: int, end: int, step: int) -> tuple[int, int, int]:
    """ONNX Slice clamping for one axis: (start, end, length) with negative indices resolved and
    both bounds clamped to the axis (``end`` may be -1 for a negative step, meaning "past 0")."""
    if start < 0:
        start += dim
    if end < 0:
        end += dim
    if step > 0:
        start = min(max(start, 0), dim)
        end = min(max(end, 0), dim)
        length = max(0, -(-(end - start) // step))
    else:
        start = min(max(start, 0), dim - 1)
        end = min(max(end, -1), dim - 1)
        length = max(0, -(-(start - end) // -step))
    return start, end, length


def slice_array(x: np.ndarray, starts, ends, axes, steps) -> np.ndarray:
    """ONNX Slice of ``x`` (a view): per listed axis, ``start:end:step`` clamped by
    :func:`slice_bounds`."""
    index = [slice(None)] * x.ndim
    for start, end, axis, step in zip(starts, ends, axes, steps):
        start, end, _ = slice_bounds(x.shape[axis], start, end, step)
        index[axis] = slice(start, end if end >= 0 else None, step)
    return x[tuple(index)]


def pad_array(x: np.ndarray, pads, mode: str, value: float) -> np.ndarray:
    """ONNX Pad: ``pads`` is [begin_0, ..., begin_n, end_0, ..., end_n]; negative pads crop."""
    rank = x.ndim
    begins, ends = pads[:rank], pads[rank:]
    crop = tuple(slice(-b if b < 0 else 0, x.shape[i] + e if e < 0 else None)
                 for i, (b, e) in enumerate(zip(begins, ends)))
    x = x[crop]
    widths = [(max(b, 0), max(e, 0)) for b, e in zip(begins, ends)]
    if mode == "constant":
        return np.pad(x, widths, mode="constant", constant_values=np.float32(value))
    return np.pad(x, widths, mode=mode)


def split_sizes(dim: int, count: int) -> list[int]:
    """ONNX ``num_outputs``: equal chunks of ceil(dim / count), the last one smaller."""
    chunk = -(-dim // count)
    return [chunk] * (count - 1) + [dim - chunk * (count - 1)]


# -- resize -------------------------------------------------------------------------------------


def _source_coordinates(out_size: int, in_size: int, scale: float, mode: str) -> np.ndarray:
    """Where each output index samples the input (ONNX coordinate_transformation_mode)."""
    x = np.arange(out_size, dtype=np.float64)
    if mode == "half_pixel":
        return (x + 0.5) / scale - 0.5
    if mode == "pytorch_half_pixel":
        return (x + 0.5) / scale - 0.5 if out_size > 1 else np.zeros_like(x)
    if mode == "align_corners":
        return x * (in_size - 1) / (out_size - 1) if out_size > 1 else np.zeros_like(x)
    return x / scale  # asymmetric


def _nearest(coords: np.ndarray, rule: str, in_size: int) -> np.ndarray:
    if rule == "round_prefer_floor":
        index = np.where(coords - np.floor(coords) == 0.5, np.floor(coords), np.round(coords))
    elif rule == "round_prefer_ceil":
        index = np.floor(coords + 0.5)
    elif rule == "floor":
        index = np.floor(coords)
    else:  # ceil
        index = np.ceil(coords)
    return np.clip(index, 0, in_size - 1).astype(np.int64)


def resize_array(x: np.ndarray, out_shape, scales, mode: str, transform: str,
                 nearest_mode: str) -> np.ndarray:
    """ONNX Resize, separably, one axis at a time (nearest or linear)."""
    y = x.astype(np.float64)
    for axis, (in_size, out_size, scale) in enumerate(zip(x.shape, out_shape, scales)):
        if in_size == out_size and scale == 1.0:
            continue
        coords = _source_coordinates(out_size, in_size, scale, transform)
        if mode == "nearest":
            y = np.take(y, _nearest(coords, nearest_mode, in_size), axis=axis)
            continue
        coords = np.clip(coords, 0, in_size - 1)
        low = np.floor(coords).astype(np.int64)
        high = np.minimum(low + 1, in_size - 1)
        weight = (coords - low).reshape([-1 if i == axis else 1 for i in range(x.ndim)])
        y = np.take(y, low, axis=axis) * (1 - weight) + np.take(y, high, axis=axis) * weight
    return y.astype(x.dtype)
