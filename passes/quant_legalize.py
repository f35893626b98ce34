"""The DPU's shift legalization: calibrated fix points moved until every shift is in range.

Calibration chooses each tensor's fix point for accuracy alone; the DPU then needs the shifts
between them inside its registers' ranges (reference/dpu.md §3, the ranges in
:mod:`xir.dialects.quant.base`). These functions take the chosen fix points of one op and
return legal ones, changing as little as they can. They are pure integer functions, so each rule
can be tested on its own; :mod:`.quantize` calls them while it lowers a graph.

- conv / transposed conv / dense: ``shift_cut = i + w - o`` in [0, 16]. Above 16 the weights
  lose precision (w lowered); below 0 the output asks for more fraction bits than the product
  has, so o is lowered to i + w (nothing is lost: the product grid is 2^-(i+w)).
  ``shift_bias = i + w - b`` in [min(0, shift_cut - 16), 16]: below, b is lowered; above, b is
  raised, unless that would clip the bias (b above its non-overflow fix point), in which case w
  is lowered instead (and o with it if shift_cut would go negative).
- fused hard sigmoid: the accumulator is written at ``h`` (its own calibrated fix point), the
  output at o >= 7, ``14 + h - o`` in [0, 31].
- eltwise add: ``shift_read = f_k - min(f)`` <= 15 (the caller requantizes an input that is
  further off), ``shift_write = min(f) - o`` in [-15, 15] (o clamped).
- eltwise multiply: ``Σ f - o`` in [-15, 15] (o clamped).
- standalone relu / relu6 / leaky relu / PReLU: ``i - o`` in [-15, 15] (o clamped); relu6
  writes at fix point 4 (see :data:`RELU6_FP`); hard sigmoid: o >= 7 and ``14 + i - o`` in
  [0, 31]; PReLU slopes: their fix point in [0, 15] (clamped).
- hard swish, fused (h = hsigmoid_in) or standalone (h = i): its inner hard sigmoid is written at
  fix point 7, ``14 + h - 7`` in [0, 31] (h clamped to [-7, 24]), and ``h + 7 - o`` in [0, 15]
  (o clamped to [h - 8, h + 7]).
"""

from __future__ import annotations

from xir.dialects.quant.base import (HSIGMOID_OUTPUT_FP_MIN, PRELU_SLOPE_FP, SHIFT_BIAS_HIGH,
                                     SHIFT_CUT, SHIFT_HSIGMOID, SHIFT_HSWISH, SHIFT_READ,
                                     SHIFT_WRITE, shift_bias_range)
from xir.dialects.quant.kernels import HSIGMOID_SHIFT, HSWISH_HSIGMOID_FP

# The public DPU implementations clamp relu6 at the integer 96 = 6 · 2^4, which is 6.0 only at
# fix point 4 (docs/quant.md): relu6 outputs are written at fix point 4 so that every engine
# computes the same integers.
RELU6_FP = 4
MAX_SHIFT_READ = SHIFT_READ[1]


def _clamp(value: int, low: int, high: int) -> int:
    return max(low, min(high, value))


def accumulate(i: int, w: int, b: int | None, o: int, b_limit: int | None = None):
    """Legal ``(w, b, o)`` for a convolution or dense reading at ``i`` (see the module text);
    ``b_limit`` is the largest fix point at which the bias does not clip."""
    if i + w - o > SHIFT_CUT[1]:
        w = o + SHIFT_CUT[1] - i
    if i + w - o < SHIFT_CUT[0]:
        o = i + w
    if b is None:
        return w, b, o
    if i + w - b > SHIFT_BIAS_HIGH:
        b = i + w - SHIFT_BIAS_HIGH
        if b_limit is not None and b > b_limit:  # raising b would clip the bias: lower w
            b = b_limit
            w = b + SHIFT_BIAS_HIGH - i
            if i + w - o < SHIFT_CUT[0]:
                o = i + w
    low, _ = shift_bias_range(i + w - o)
    if i + w - b < low:
        b = i + w - low
    return w, b, o


def hard_sigmoid_fps(h: int, o: int) -> tuple[int, int]:
    """Legal ``(hsigmoid_in, output_fp)``: o >= 7 and 14 + h - o in [0, 31]."""
    o = max(o, HSIGMOID_OUTPUT_FP_MIN)
    h = _clamp(h, o - 14 + SHIFT_HSIGMOID[0], o - 14 + SHIFT_HSIGMOID[1])
    return h, o


def hard_swish_fps(h: int, o: int) -> tuple[int, int]:
    """Legal ``(hsigmoid_in, output_fp)`` of a hard swish: 14 + h - 7 in [0, 31] and
    h + 7 - o in [0, 15]."""
    inner = HSIGMOID_SHIFT - HSWISH_HSIGMOID_FP  # shift_hsigmoid = h + inner
    h = _clamp(h, SHIFT_HSIGMOID[0] - inner, SHIFT_HSIGMOID[1] - inner)
    product = h + HSWISH_HSIGMOID_FP  # the fix point of x · hsigmoid(x)
    o = _clamp(o, product - SHIFT_HSWISH[1], product - SHIFT_HSWISH[0])
    return h, o


def prelu_slope_fp(fp: int) -> int:
    """A legal fix point of PReLU slopes."""
    return _clamp(fp, *PRELU_SLOPE_FP)


def add_output(fps, o: int) -> int:
    """A legal output fix point of an eltwise add of inputs at ``fps``."""
    low = min(fps)
    return _clamp(o, low - SHIFT_WRITE[1], low - SHIFT_WRITE[0])


def mul_output(fps, o: int) -> int:
    """A legal output fix point of an eltwise multiply of inputs at ``fps``."""
    total = sum(fps)
    return _clamp(o, total - SHIFT_WRITE[1], total - SHIFT_WRITE[0])


def activation_output(kind: str, i: int, o: int) -> int:
    """A legal output fix point of a standalone activation ``kind`` reading at ``i``."""
    if kind == "hard_sigmoid":
        return hard_sigmoid_output(i, o)
    if kind == "relu6":
        o = RELU6_FP
    return _clamp(o, i - SHIFT_WRITE[1], i - SHIFT_WRITE[0])


def hard_sigmoid_output(i: int, o: int) -> int:
    """A legal output fix point of a standalone hard sigmoid reading at ``i``."""
    o = max(o, HSIGMOID_OUTPUT_FP_MIN)
    return _clamp(o, i + 14 - SHIFT_HSIGMOID[1], i + 14 - SHIFT_HSIGMOID[0])
