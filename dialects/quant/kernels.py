"""The integer arithmetic of the quant dialect, in numpy, exactly as the DPU computes it.

A quantized tensor holds integers q with a fix point fp: its value is q · 2^-fp. Every kernel
here works on integer arrays (int64 accumulators) and ends in one rounding: a value that the
DPU computes as ``num / 2^shift`` is carried as the integer pair (num, shift) until
:func:`round_shift` divides it out, so no float ever enters the integer path. (The one float
product, convolution by float64 BLAS, is exact: int8 · int8 products are at most 2^14 and their
sums stay far below 2^53.)

The formulas follow ``reference/dpu.md`` §3 and the public DPU reference implementations; each
function says which one it is. The docs page ``docs/quant.md`` lists them all. The element-wise
formulas themselves (rounding, bias alignment, activations, the average's multiplier) are
written once, in :mod:`xir.dialects.quant.fixed`, whose functions run both here on numpy arrays
and, compiled by Numba, inside the simulator's engines; this module applies them to tensors.
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from xir.dialects.graph.nn_kernels import (_ceil_pads, _reduce_windows, im2col, pad_hw,
                                           window_out_size)

from . import fixed
from .fixed import ACTIVATIONS, HSIGMOID_SHIFT, HSWISH_HSIGMOID_FP, relu6_bound

# Re-exported: the callers of this module name these constants as kernels.X.
INT8_MIN, INT8_MAX = fixed.INT8_MIN, fixed.INT8_MAX
LEAKY_NUMERATOR, LEAKY_SHIFT = fixed.LEAKY_NUMERATOR, fixed.LEAKY_SHIFT
HSIGMOID_NUMERATOR, HSIGMOID_CAP = fixed.HSIGMOID_NUMERATOR, fixed.HSIGMOID_CAP

DPU_ROUND = "DPU_ROUND"  # half toward +inf: floor(x + 1/2)
STD_ROUND = "STD_ROUND"  # half away from zero
PY3_ROUND = "PY3_ROUND"  # half to even (Python 3's round, numpy's rint)
ROUND_MODES = (DPU_ROUND, STD_ROUND, PY3_ROUND)



# -- rounding ------------------------------------------------------------------------------------


def round_shift(num, shift: int, mode: str = DPU_ROUND) -> np.ndarray:
    """round(num / 2^shift) in exact integer arithmetic (int64), ties broken by ``mode``;
    a negative ``shift`` is a left shift (exact, nothing to round)."""
    num = np.asarray(num, dtype=np.int64)
    if mode == DPU_ROUND:
        return fixed.round_shift_dpu(num, shift)
    if mode == STD_ROUND:
        return fixed.round_shift_std(num, shift)
    if mode == PY3_ROUND:
        return fixed.round_shift_py3(num, shift)
    raise ValueError(f"unknown round mode '{mode}' (expects one of {', '.join(ROUND_MODES)})")


def _dpu_rounding(num, shift: int) -> np.ndarray:
    """The ``rnd`` the formulas of :mod:`.fixed` take here: :func:`round_shift` in its default
    mode, looked up when called, so that replacing ``round_shift`` in this module switches the
    rule of every kernel (as the checks against half-to-even runtimes do)."""
    return round_shift(num, shift)


def round_float(x, mode: str) -> np.ndarray:
    """``x`` (float) rounded to an integer-valued float64 by ``mode``, exactly: the tie test
    compares the fraction x - floor(x), which floats hold exactly (floor(x + 0.5) would not)."""
    x = np.asarray(x, dtype=np.float64)
    if mode == PY3_ROUND:
        return np.rint(x)
    if mode == DPU_ROUND:
        floor = np.floor(x)
        return floor + (x - floor >= 0.5)
    if mode == STD_ROUND:
        magnitude = np.abs(x)
        floor = np.floor(magnitude)
        return np.copysign(floor + (magnitude - floor >= 0.5), x)
    raise ValueError(f"unknown round mode '{mode}' (expects one of {', '.join(ROUND_MODES)})")


def int_range(bits: int) -> tuple[int, int]:
    """The signed range [-2^(b-1), 2^(b-1) - 1] of ``bits``-bit integers."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def fix(x, fix_point: int, bits: int = 8, mode: str = DPU_ROUND) -> np.ndarray:
    """The integers clamp(round(x · 2^fp), -2^(b-1), 2^(b-1) - 1) of float ``x`` (int64)."""
    low, high = int_range(bits)
    scaled = np.ldexp(np.asarray(x, dtype=np.float64), fix_point)  # exact: a power of two
    return np.clip(round_float(scaled, mode), low, high).astype(np.int64)


def to_float(q, fix_point: int) -> np.ndarray:
    """The values q · 2^-fp as float32 (exact for int8 q and any sane fp)."""
    return np.ldexp(np.asarray(q, dtype=np.float32), -fix_point).astype(np.float32)


def clamp_int8(q) -> np.ndarray:
    """``q`` saturated to [-128, 127], as int8."""
    return fixed.clamp8(q).astype(np.int8)


# -- the end of every op: activation, rounding, clamping -----------------------------------------


def finish(num, shift: int, activation: str = "none", output_fp: int = 0,
           hsigmoid_in: int | None = None) -> np.ndarray:
    """The int8 result of the value ``num / 2^shift`` (num an integer array) after
    ``activation``, rounded once with DPU_ROUND and clamped, as the DPU ends a conv, an eltwise
    or an ALU op:

    - none: round_shift(num, shift);
    - relu: round_shift(max(num, 0), shift);
    - relu6: clamp(round_shift(max(num, 0), shift), 0, 6 · 2^output_fp);
    - leaky_relu: round_shift(num · (26 if num < 0 else 2^8), shift + 8);
    - hard_sigmoid: t = round_shift(num, shift) at fix point ``hsigmoid_in``, then
      :func:`hard_sigmoid` of t from ``hsigmoid_in`` to ``output_fp``;
    - hard_swish: the same t, then :func:`hard_swish` of t.
    """
    return fixed.finish(np.asarray(num, dtype=np.int64), shift,
                        *finish_params(activation, output_fp, hsigmoid_in),
                        _dpu_rounding).astype(np.int8)


def finish_params(activation: str, output_fp: int = 0, hsigmoid_in: int | None = None) -> tuple:
    """The arguments (activation code, relu6 bound, hsigmoid_in, shift_hsigmoid, shift_hswish)
    that :func:`xir.dialects.quant.fixed.finish` takes after (num, shift), for ``activation``
    ending an op that writes at ``output_fp``."""
    if activation not in ACTIVATIONS:
        raise ValueError(f"unknown activation '{activation}'")
    code = ACTIVATIONS.index(activation)
    h = 0 if hsigmoid_in is None else hsigmoid_in
    if code == fixed.HARD_SWISH:
        return code, 0, h, shift_hsigmoid(h, HSWISH_HSIGMOID_FP), shift_hswish(h, output_fp)
    if code == fixed.HARD_SIGMOID:
        return code, 0, h, shift_hsigmoid(h, output_fp), 0
    return code, relu6_bound(output_fp) if code == fixed.RELU6 else 0, 0, 0, 0


def hard_sigmoid(t, input_fp: int, output_fp: int) -> np.ndarray:
    """The DPU's hard sigmoid, relu6(x + 3) · 2731 / 2^14, from fix point ``input_fp`` (the
    DPU's ``hsigmoid_in``) to ``output_fp``::

        n   = min(max(t · 2731 + 3 · 2731 · 2^input_fp, 0), 2^32)
        out = clamp(round_shift(n, shift_hsigmoid)),  shift_hsigmoid = 14 + input_fp - output_fp

    There is no upper clip at 6: with output_fp >= 7, x + 3 >= 6 already saturates at 127.
    A negative ``input_fp`` scales numerator and shift by 2^-input_fp, which keeps 3 · 2^fp an
    integer without changing the value."""
    t = np.asarray(t, dtype=np.int64)
    return fixed.hard_sigmoid(t, input_fp, shift_hsigmoid(input_fp, output_fp),
                              _dpu_rounding).astype(np.int8)


def shift_hsigmoid(input_fp: int, output_fp: int) -> int:
    """The hard sigmoid's shift, 14 + hsigmoid_in - output_fp."""
    return HSIGMOID_SHIFT + input_fp - output_fp


def hard_swish(t, input_fp: int, output_fp: int) -> np.ndarray:
    """The DPU's hard swish x · hsigmoid(x), from fix point ``input_fp`` (hsigmoid_in) to
    ``output_fp``: the hard sigmoid of t rounded and clamped to int8 at fix point 7
    (:func:`hard_sigmoid`, so s in [0, 127]), then one more DPU rounding of the product::

        s   = hard_sigmoid(t, input_fp, 7)
        out = clamp(round_shift(t · s, shift_hswish)),  shift_hswish = input_fp + 7 - output_fp
    """
    t = np.asarray(t, dtype=np.int64)
    return fixed.hard_swish(t, input_fp, shift_hsigmoid(input_fp, HSWISH_HSIGMOID_FP),
                            shift_hswish(input_fp, output_fp), _dpu_rounding).astype(np.int8)


def shift_hswish(input_fp: int, output_fp: int) -> int:
    """The hard swish's final shift, hsigmoid_in + 7 - output_fp."""
    return input_fp + HSWISH_HSIGMOID_FP - output_fp


def prelu(q, slope, shift: int, slope_fp: int) -> np.ndarray:
    """PReLU with int8 slopes a at fix point ``slope_fp`` (broadcast to ``q`` as numpy does;
    per channel: shape (C, 1, 1)): both sides brought to the grid 2^-(input_fp + slope_fp),
    then one DPU rounding by ``shift`` = input_fp + slope_fp - output_fp::

        out = clamp(round_shift(q < 0 ? q · a : q << slope_fp, shift))

    The leaky relu is the case a = 26, slope_fp = 8."""
    q = np.asarray(q, dtype=np.int64)
    return fixed.prelu(q, np.asarray(slope, dtype=np.int64), shift, slope_fp,
                       _dpu_rounding).astype(np.int8)


# -- convolution and dense -----------------------------------------------------------------------


def conv2d_acc(x, w, strides, pads, dilations, group: int) -> np.ndarray:
    """The int64 accumulators Σ x·w of a grouped 2-D convolution, NCHW (ONNX Conv layout):
    im2col (the graph dialect's) and one exact float64 matrix product per group."""
    m, _, kh, kw = w.shape
    cols = im2col(np.asarray(x, dtype=np.float64), (kh, kw), strides, pads, dilations)
    n, k, oh, ow = cols.shape
    cols = cols.reshape(n, group, k // group, oh * ow)
    kernel = np.asarray(w, dtype=np.float64).reshape(group, m // group, -1)
    return np.matmul(kernel, cols).reshape(n, m, oh, ow).astype(np.int64)


def conv_transpose2d_acc(x, w, strides, pads, dilations, group: int, output_padding) -> np.ndarray:
    """The int64 accumulators of a grouped transposed convolution (weight (C, M/group, KH, KW),
    as ONNX ConvTranspose): the input spread by the strides, convolved with the flipped kernel
    (as the graph dialect's ``conv_transpose2d``)."""
    n, c, h, wd = x.shape
    sh, sw = strides
    spread = np.zeros((n, c, (h - 1) * sh + 1, (wd - 1) * sw + 1), dtype=np.int64)
    spread[:, :, ::sh, ::sw] = x
    kh, kw = w.shape[2:]
    eh, ew = dilations[0] * (kh - 1), dilations[1] * (kw - 1)
    top, left, bottom, right = pads
    oph, opw = output_padding
    full = (eh - top, ew - left, eh - bottom + oph, ew - right + opw)
    cin, mg = c // group, w.shape[1]
    flipped = (np.asarray(w).reshape(group, cin, mg, kh, kw).transpose(0, 2, 1, 3, 4)
               .reshape(group * mg, cin, kh, kw)[:, :, ::-1, ::-1])
    return conv2d_acc(spread, flipped, (1, 1), full, dilations, group)


def dense_acc(x, w) -> np.ndarray:
    """The int64 accumulators x (N, K) · w (M, K)ᵀ (exact float64 product)."""
    return (np.asarray(x, np.float64) @ np.asarray(w, np.float64).T).astype(np.int64)


def add_bias(acc, bias, shift_bias: int, shift_cut: int) -> tuple[np.ndarray, int]:
    """The numerator and shift of acc / 2^shift_cut + bias / 2^(shift_cut - shift_bias), the
    bias on channel axis 1, computed exactly:

    - shift_bias >= 0: (acc + (bias << shift_bias), shift_cut);
    - shift_bias < 0: ((acc << -shift_bias) + bias, shift_cut - shift_bias).
    """
    acc = np.asarray(acc, dtype=np.int64)
    if bias is None:
        return acc, shift_cut
    b = np.asarray(bias, dtype=np.int64).reshape((1, -1) + (1,) * (acc.ndim - 2))
    return fixed.bias_numerator(acc, b, shift_bias), fixed.bias_shift(shift_bias, shift_cut)


# -- pooling -------------------------------------------------------------------------------------

# The DPU's average-pool multipliers (m, s) for square kernels: the window sum times m / 2^s.
AVG_POOL_FACTORS = {3: (7, 6), 5: (10, 8), 6: (7, 8), 7: (21, 10), 14: (21, 12)}


def avg_pool_factor(kh: int, kw: int) -> tuple[int, int]:
    """The multiplier (m, s), m / 2^s standing for 1 / (kh · kw): the DPU's table for square
    kernels 3, 5, 6, 7, 14; otherwise, for n = kh · kw, the m = round_half_even(2^s / n) closest
    to 1 / n over s in [0, ceil(log2(128 · n))), the smallest s on a tie (the Vitis AI
    quantizer's search). A power-of-two n gets exactly 1 / 2^s."""
    if kh == kw and kh in AVG_POOL_FACTORS:
        return AVG_POOL_FACTORS[kh]
    n = kh * kw
    best, best_diff = (0, 0), Fraction(1)
    for s in range((128 * n - 1).bit_length()):  # ceil(log2(128 n))
        m = round(Fraction(1 << s, n))  # Fraction rounds half to even, like Python's round
        diff = abs(Fraction(m, 1 << s) - Fraction(1, n))
        if diff < best_diff:
            best, best_diff = (m, s), diff
    return best


def _out_hw(shape, kernel, strides, pads, ceil_mode: bool, dilations=(1, 1)):
    _, _, h, w = shape
    return (window_out_size(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode),
            window_out_size(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode))


def max_pool2d(x, kernel, strides, pads, ceil_mode: bool, dilations=(1, 1)) -> np.ndarray:
    """The maximum of each window (padding never wins), as int8; no rounding."""
    out = _out_hw(x.shape, kernel, strides, pads, ceil_mode, dilations)
    full = _ceil_pads(x.shape, kernel, strides, pads, *out, dilations)
    padded = pad_hw(np.asarray(x, dtype=np.int64), full, INT8_MIN - 1)
    return _reduce_windows(padded, kernel, strides, dilations, out, np.maximum).astype(np.int8)


def avg_pool2d(x, kernel, strides, pads, ceil_mode: bool) -> np.ndarray:
    """The DPU's average: each window's integer sum (padding counts as zeros) times the
    multiplier m / 2^s of :func:`avg_pool_factor`: clamp(round_shift(sum · m, s))."""
    out = _out_hw(x.shape, kernel, strides, pads, ceil_mode)
    full = _ceil_pads(x.shape, kernel, strides, pads, *out)
    sums = _reduce_windows(pad_hw(np.asarray(x, dtype=np.int64), full), kernel, strides, (1, 1),
                           out, np.add)
    return fixed.avg_pool_value(sums, *avg_pool_factor(*kernel), _dpu_rounding).astype(np.int8)


# -- elementwise ---------------------------------------------------------------------------------


def eltwise_add(inputs, shift_reads, shift_write: int, activation: str = "none") -> np.ndarray:
    """The DPU's eltwise add: each input read with 2 guard bits and shifted right (floor) by its
    shift_read, summed, then written with shift_write (the 2 guard bits come off there too):
    finish(Σ ((q_k << 2) >> shift_read_k), shift_write + 2)."""
    total = sum(fixed.eltwise_read(np.asarray(q, dtype=np.int64), r)
                for q, r in zip(inputs, shift_reads))
    return finish(total, shift_write + 2, activation)


def eltwise_mul(inputs, shift_write: int, activation: str = "none") -> np.ndarray:
    """The DPU's eltwise multiply (shift_read 0): finish(Π q_k, shift_write)."""
    product = np.int64(1)
    for q in inputs:
        product = product * np.asarray(q, dtype=np.int64)
    return finish(product, shift_write, activation)


def resize_nearest(x, scale_h: int, scale_w: int) -> np.ndarray:
    """Nearest-neighbour upsampling by integer factors: out[i, j] = x[i // sh, j // sw]."""
    return np.repeat(np.repeat(x, scale_h, axis=2), scale_w, axis=3)
