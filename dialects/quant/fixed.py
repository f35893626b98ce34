"""The DPU's fix-point formulas, written once for two executors.

Each function here is one formula of ``reference/dpu.md`` §3 (``docs/quant.md`` lists them),
written so that the same source runs

- under numpy, on int64 arrays: :mod:`xir.dialects.quant.kernels` calls these functions on
  whole tensors (the quant and dpu dialects' executors);
- under Numba (nopython), on int64 scalars: the simulator's engines
  (:mod:`xir.backend.sim.engines`) compile these very functions (``register_jitable``) and call
  them per element inside their loops.

So there is one definition of each formula and the two executors cannot drift apart. To keep
the source valid in both worlds the functions use only arithmetic, shifts, comparisons and the
ufuncs ``np.maximum``, ``np.minimum``, ``np.abs``, ``np.sign`` (which numpy broadcasts over
arrays and Numba applies to scalars) and ``np.clip`` (one pass over an array; for integer
scalars the engines module registers the Numba overload); no ``np.where`` (a 0-d array under
Numba), no string arguments. Integer arguments are int64 (arrays or scalars); shifts and fix
points are plain integers. A formula that rounds takes the rounding as its last argument ``rnd``,
``rnd(num, shift)`` = round(num / 2^shift): the DPU's is :func:`round_shift_dpu` (what the
engines pass); the numpy kernels pass theirs through ``kernels.round_shift``, so that one
replacement there switches every kernel's rule (as an executor checked against half-to-even
runtimes does). This module imports nothing but numpy, so the dialects never import Numba.
"""

from __future__ import annotations

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
LEAKY_NUMERATOR, LEAKY_SHIFT = 26, 8  # the DPU's leaky-relu slope: 26 / 2^8 = 0.1015625
HSIGMOID_NUMERATOR, HSIGMOID_SHIFT = 2731, 14  # hard-sigmoid's 1/6 ≈ 2731 / 2^14
HSIGMOID_CAP = 1 << 32  # the DPU clips the hard-sigmoid numerator at 2^32
HSWISH_HSIGMOID_FP = 7  # hard swish rounds its inner hard sigmoid to int8 at fix point 7

# The activations a conv, dense or eltwise op ends with, by code (the index is the code the
# engines take; the quant kernels name them).
ACTIVATIONS = ("none", "relu", "relu6", "leaky_relu", "hard_sigmoid", "hard_swish")
NONE, RELU, RELU6, LEAKY_RELU, HARD_SIGMOID, HARD_SWISH = range(6)


# -- rounding ------------------------------------------------------------------------------------


def round_shift_dpu(num, shift):
    """DPU_ROUND: round(num / 2^shift), half toward +inf, = (num + 2^(shift-1)) >> shift (a
    shift <= 0 is an exact left shift)."""
    if shift <= 0:
        return num << -shift
    return (num + (1 << (shift - 1))) >> shift  # >> is floor division by 2^shift


def round_shift_std(num, shift):
    """STD_ROUND: round(num / 2^shift), half away from zero."""
    if shift <= 0:
        return num << -shift
    return np.sign(num) * ((np.abs(num) + (1 << (shift - 1))) >> shift)


def round_shift_py3(num, shift):
    """PY3_ROUND: round(num / 2^shift), half to even."""
    if shift <= 0:
        return num << -shift
    half = 1 << (shift - 1)
    floor = num >> shift
    rest = num - (floor << shift)  # in [0, 2^shift)
    return floor + ((rest > half) | ((rest == half) & ((floor & 1) == 1)))


def clamp8(q):
    """``q`` saturated to [-128, 127] (still int64)."""
    return np.clip(q, INT8_MIN, INT8_MAX)


# -- bias, activations ---------------------------------------------------------------------------


def bias_numerator(acc, bias, shift_bias):
    """The numerator of acc / 2^shift_cut + bias / 2^(shift_cut - shift_bias), exactly:
    acc + (bias << shift_bias) when shift_bias >= 0, else (acc << -shift_bias) + bias (whose
    shift is then shift_cut - shift_bias, :func:`bias_shift`)."""
    if shift_bias >= 0:
        return acc + (bias << shift_bias)
    return (acc << -shift_bias) + bias


def bias_shift(shift_bias, shift_cut):
    """The shift that goes with :func:`bias_numerator`: shift_cut, or shift_cut - shift_bias
    when shift_bias < 0."""
    return shift_cut if shift_bias >= 0 else shift_cut - shift_bias


def relu6_bound(output_fp):
    """6 · 2^fp, the integer that stands for 6.0 (fp >= -1, so that it is an integer)."""
    return 6 << output_fp if output_fp >= 0 else 6 >> -output_fp


def prelu(q, slope, shift, slope_fp, rnd):
    """clamp(round_shift(q < 0 ? q · a : q << slope_fp, shift)), branch-free: q << slope_fp
    plus min(q, 0) · (a - 2^slope_fp)."""
    scaled = (q << slope_fp) + np.minimum(q, 0) * (slope - (1 << slope_fp))
    return clamp8(rnd(scaled, shift))


def hard_sigmoid(t, hsigmoid_in, shift_hsigmoid, rnd):
    """The DPU's hard sigmoid of t at fix point ``hsigmoid_in``::

        n   = min(max(t · 2731 + 3 · 2731 · 2^hsigmoid_in, 0), 2^32)
        out = clamp(round_shift(n, shift_hsigmoid))

    A negative ``hsigmoid_in`` scales numerator and shift by 2^-hsigmoid_in, which keeps
    3 · 2^hsigmoid_in an integer without changing the value."""
    extra = max(0, -hsigmoid_in)
    three = (3 * HSIGMOID_NUMERATOR) << (hsigmoid_in + extra)
    n = np.clip(((t * HSIGMOID_NUMERATOR) << extra) + three, 0, HSIGMOID_CAP << extra)
    return clamp8(rnd(n, shift_hsigmoid + extra))


def hard_swish(t, hsigmoid_in, shift_hsigmoid, shift_hswish, rnd):
    """The DPU's hard swish: s = :func:`hard_sigmoid` of t written at fix point 7 (its
    ``shift_hsigmoid`` = 14 + hsigmoid_in - 7), then clamp(round_shift(t · s, shift_hswish))."""
    s = hard_sigmoid(t, hsigmoid_in, shift_hsigmoid, rnd)
    return clamp8(rnd(t * s, shift_hswish))


def finish(num, shift, activation, relu6_max, hsigmoid_in, shift_hsigmoid, shift_hswish,
           rnd):
    """The int8 value (as int64) of num / 2^shift after activation number ``activation`` (an
    index of :data:`ACTIVATIONS`), rounded once by ``rnd`` (the DPU: DPU_ROUND) and clamped:

    - none: round_shift(num, shift); relu: round_shift(max(num, 0), shift);
    - relu6: min(round_shift(max(num, 0), shift), relu6_max);
    - leaky_relu: :func:`prelu` with slope 26 / 2^8;
    - hard_sigmoid, hard_swish: t = round_shift(num, shift) at ``hsigmoid_in``, then
      :func:`hard_sigmoid` / :func:`hard_swish` of t.
    """
    if activation == RELU:
        return clamp8(rnd(np.maximum(num, 0), shift))
    if activation == RELU6:
        return clamp8(np.minimum(rnd(np.maximum(num, 0), shift), relu6_max))
    if activation == LEAKY_RELU:
        return prelu(num, LEAKY_NUMERATOR, shift + LEAKY_SHIFT, LEAKY_SHIFT, rnd)
    if activation == HARD_SIGMOID:
        return hard_sigmoid(rnd(num, shift), hsigmoid_in, shift_hsigmoid, rnd)
    if activation == HARD_SWISH:
        return hard_swish(rnd(num, shift), hsigmoid_in, shift_hsigmoid, shift_hswish, rnd)
    return clamp8(rnd(num, shift))


# -- pooling and eltwise -------------------------------------------------------------------------


def avg_pool_value(window_sum, multi_factor, shift_factor, rnd):
    """The DPU's average of a window: clamp(round_shift(sum · m, s)), m / 2^s standing for
    1 / (kh · kw)."""
    return clamp8(rnd(window_sum * multi_factor, shift_factor))


def eltwise_read(q, shift_read):
    """An eltwise-add input as the engine reads it: 2 guard bits, then a floor shift by
    ``shift_read``: (q << 2) >> shift_read."""
    return (q << 2) >> shift_read
