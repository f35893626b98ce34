"""The DPU simulator's compute engines: what one CONV, DPTWISE/ALU, POOL or ELEW instruction
computes on NHWC int8 tiles in the modeled banks, compiled by Numba (nopython, cached on disk).

The integer formulas are not written here: every engine ends in the functions of
:mod:`xir.dialects.quant.fixed` (rounding, bias alignment, activations, the average's
multiplier), the same source the quant dialect's numpy kernels run, here compiled per element
with the DPU's rounding ``fixed.round_shift_dpu`` as their ``rnd``.
``register_jitable`` below is what lets Numba compile those plain functions (``fixed`` itself
never imports Numba). The tests check every engine bit for bit against
:mod:`xir.dialects.quant.kernels`, the oracle.

Tiles: an input tile holds the rows and columns its outputs read (the halo included); ``pad``
[top, left, bottom, right] says how many virtual zero rows/columns lie beyond it, non-zero only
where the tile touches the feature map's edge. A nonlinear is the tuple
(code, relu6 bound, hsigmoid_in, shift_hsigmoid, shift_hswish) that
:func:`xir.dialects.quant.kernels.finish_params` builds (:func:`nonlinear` here).

Convolution speed. The accumulators Σ x·w are one matrix product of an im2col matrix (built by
a Numba loop, converted to float32) and the weights, done by the BLAS sgemm numpy links. It is
exact, by this bound: an int8 product has |x·w| <= 128 · 128 = 2^14, so a sum of at most
``CHUNK`` = 1024 of them has every partial sum, in whatever order and blocking sgemm adds them
(with or without FMA), an integer of magnitude <= 2^10 · 2^14 = 2^24; float32 holds every
integer up to 2^24 exactly, and an IEEE operation whose exact result is representable returns
it, so by induction no step rounds. Longer reductions (kh · kw · C > 1024) are cut into
equal chunks of at most 1024 along K, each exact, summed in int64. (float64 needs no chunks,
2^53 / 2^14 = 2^39 terms, but its GEMM runs at half the rate: ``bench/engines.py`` measures
both.) This holds for any BLAS computing a plain sum of products (OpenBLAS, MKL, BLIS); not for
a Strassen-like or reduced-precision GEMM, which numpy never uses.

JIT cache: ``cache=True`` writes the compiled engines beside this file
(``backend/sim/__pycache__``) or, if that is not writable (a read-only install), in Numba's
user-wide cache; ``NUMBA_CACHE_DIR`` overrides both. Numba invalidates a cached function when
the hash of its own source file changes, not when ``fixed.py`` does: :func:`_depends_on_formulas`
adds fixed.py's hash to each engine's cache stamp (through a Numba internal; where that is
missing, delete the cache after editing fixed.py — the bit-exactness tests catch a stale one).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numba
import numpy as np
from numba.core import types
from numba.extending import overload, register_jitable

from xir.dialects.quant import fixed
from xir.dialects.quant.kernels import finish_params

CHUNK = 1 << 10  # the longest float32 dot product that stays exact: 2^24 / 2^14
FORMULAS_DIGEST = hashlib.sha256(Path(fixed.__file__).read_bytes()).hexdigest()


def _depends_on_formulas(dispatcher):
    """``dispatcher`` cached on disk under a stamp that also holds fixed.py's hash, so that
    editing a formula invalidates the compiled engines (Numba only hashes the engine's file)."""
    cache_file = getattr(getattr(dispatcher, "_cache", None), "_cache_file", None)
    if cache_file is not None and hasattr(cache_file, "_source_stamp"):
        cache_file._source_stamp = (cache_file._source_stamp, FORMULAS_DIGEST)
    return dispatcher


def _jit(fn):
    return _depends_on_formulas(numba.njit(cache=True, nogil=True)(fn))


for _formula in (fixed.round_shift_dpu, fixed.round_shift_std, fixed.round_shift_py3,
                 fixed.clamp8, fixed.bias_numerator, fixed.bias_shift, fixed.relu6_bound,
                 fixed.prelu, fixed.hard_sigmoid, fixed.hard_swish, fixed.avg_pool_value,
                 fixed.eltwise_read):
    register_jitable(_formula)
# finish is inlined in Numba's IR, so that a loop over a tile sees its branch on the activation
# code as loop invariant, and LLVM unswitches and vectorizes the loop (left a call, the branch
# stays in the loop: finishing a conv is 5x slower). Its callees LLVM inlines by itself.
register_jitable(inline="always")(fixed.finish)


@overload(np.clip)
def _clip_integer_scalar(a, a_min, a_max):
    """np.clip of integer scalars, which Numba lacks (it has the array form)."""
    if all(isinstance(t, types.Integer) for t in (a, a_min, a_max)):
        return lambda a, a_min, a_max: min(max(a, a_min), a_max)
    return None


def nonlinear(activation: str = "none", output_fp: int = 0,
              hsigmoid_in: int | None = None) -> tuple:
    """The nonlinear tuple the engines take, for ``activation`` writing at ``output_fp``."""
    return finish_params(activation, output_fp, hsigmoid_in)


def out_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
             dilation: int = 1) -> int:
    """How many windows of ``kernel`` (dilated) fit in ``size`` padded by the pads."""
    return (size + pad_begin + pad_end - dilation * (kernel - 1) - 1) // stride + 1


# -- convolution ---------------------------------------------------------------------------------


@_jit
def _im2col(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, cols):
    """cols[oy · ow + ox, (ky · kw + kx) · C + c] = x[oy·sh - top + ky·dh, ox·sw - left + kx·dw, c]
    (zero outside x), as float32."""
    h, w, c = x.shape
    for oy in range(oh):
        for ox in range(ow):
            row = cols[oy * ow + ox]
            for ky in range(kh):
                iy = oy * sh - top + ky * dh
                for kx in range(kw):
                    ix = ox * sw - left + kx * dw
                    base = (ky * kw + kx) * c
                    if 0 <= iy < h and 0 <= ix < w:
                        for ci in range(c):
                            row[base + ci] = x[iy, ix, ci]
                    else:
                        for ci in range(c):
                            row[base + ci] = 0.0


@_jit
def _conv_finish(parts, bias, shift_bias, shift_cut, code, relu6_max, hsigmoid_in,
                 shift_hsigmoid, shift_hswish, out):
    """out[p, m] = finish(bias-aligned Σ_chunks parts[:, p, m]): the end of a CONV."""
    shift = fixed.bias_shift(shift_bias, shift_cut)
    n, pixels, m_count = parts.shape
    acc = np.empty(m_count, dtype=np.int64)
    for p in range(pixels):
        for m in range(m_count):
            acc[m] = np.int64(parts[0, p, m])
        for i in range(1, n):  # chunk by chunk, so that each loop runs along contiguous m
            for m in range(m_count):
                acc[m] += np.int64(parts[i, p, m])
        for m in range(m_count):
            num = fixed.bias_numerator(acc[m], np.int64(bias[m]), shift_bias)
            out[p, m] = fixed.finish(num, shift, code, relu6_max, hsigmoid_in,
                                     shift_hsigmoid, shift_hswish, fixed.round_shift_dpu)


def gemm_weights(w, dtype=np.float32) -> np.ndarray:
    """OHWI int8 weights (M, KH, KW, C) as the (KH · KW · C, M) float matrix the conv GEMM
    multiplies by (contiguous). A simulator may keep it per weight-bank load: converting costs
    as much as the GEMM on small feature maps."""
    return np.ascontiguousarray(w.reshape(w.shape[0], -1).T, dtype=dtype)


def conv_accumulators(x, w, stride=(1, 1), dilation=(1, 1), pad=(0, 0, 0, 0),
                      dtype=np.float32, weights=None) -> np.ndarray:
    """The exact accumulators of a convolution as (chunks, OH · OW, M) floats of ``dtype``
    (float32: K cut in equal chunks of at most :data:`CHUNK`; float64: one chunk), whose sum
    over the first axis is Σ x·w; ``x`` an NHWC tile (H, W, C), ``w`` OHWI (M, KH, KW, C),
    ``weights`` optionally its :func:`gemm_weights` of ``dtype``."""
    m, kh, kw, c = w.shape
    h, wd, _ = x.shape
    (sh, sw), (dh, dw), (top, left, bottom, right) = stride, dilation, pad
    oh, ow = out_size(h, kh, sh, top, bottom, dh), out_size(wd, kw, sw, left, right, dw)
    k = kh * kw * c
    cols = np.empty((oh * ow, k), dtype=dtype)
    _im2col(x, kh, kw, sh, sw, dh, dw, top, left, oh, ow, cols)
    if weights is None:
        weights = gemm_weights(w, dtype)
    if weights.dtype != dtype or weights.shape != (k, m):
        raise ValueError(f"weights {weights.dtype}{weights.shape} are not the "
                         f"{np.dtype(dtype).name} ({k}, {m}) matrix of {w.shape} weights")
    return gemm_parts(cols, weights)


def gemm_chunks(k: int, dtype=np.float32) -> int:
    """How many chunks :func:`gemm_parts` cuts a reduction of ``k`` into."""
    return max(1, -(-k // CHUNK)) if dtype == np.float32 else 1


def gemm_parts(cols, weights, out=None) -> np.ndarray:
    """The exact GEMM of im2col rows ``cols`` (R, K) and ``weights`` (K, M), both of one float
    dtype, as (chunks, R, M): K cut in equal chunks of at most :data:`CHUNK` for float32 (one
    chunk for float64), each chunk's product exact (the bound above). ``out``: optionally the
    (:func:`gemm_chunks`, R, M) array to write."""
    k, m = weights.shape
    count = gemm_chunks(k, weights.dtype)
    bounds = [k * i // count for i in range(count + 1)]  # equal chunks, each <= CHUNK
    parts = np.empty((count, cols.shape[0], m), dtype=weights.dtype) if out is None else out
    for i in range(count):
        a, b = bounds[i], bounds[i + 1]
        np.matmul(cols[:, a:b], weights[a:b], out=parts[i])
    return parts


def conv_tile(x, w, bias=None, stride=(1, 1), dilation=(1, 1), pad=(0, 0, 0, 0),
              shift_bias: int = 0, shift_cut: int = 0, act: tuple = nonlinear(),
              dtype=np.float32, weights=None) -> np.ndarray:
    """One CONV: the int8 NHWC output rows (OH, OW, M) of input tile ``x`` (H, W, C, its halo
    included, ``pad`` virtual zeros beyond it), OHWI weights ``w`` (M, KH, KW, C) of one
    output-channel tile, int8 ``bias`` (M) or None, then ``shift_bias``, ``shift_cut`` and the
    nonlinear ``act`` (:func:`nonlinear`): as ``dpu.conv2d_fix``. ``weights``: optionally
    ``w`` as :func:`gemm_weights` gives it, to skip the conversion; ``dtype`` the GEMM's
    (float32 or float64, both exact)."""
    m, kh, kw, _ = w.shape
    h, wd, _ = x.shape
    (sh, sw), (dh, dw), (top, left, bottom, right) = stride, dilation, pad
    oh, ow = out_size(h, kh, sh, top, bottom, dh), out_size(wd, kw, sw, left, right, dw)
    parts = conv_accumulators(x, w, stride, dilation, pad, dtype, weights)
    if bias is None:
        bias, shift_bias = np.zeros(m, dtype=np.int8), 0
    out = np.empty((oh * ow, m), dtype=np.int8)
    _conv_finish(parts, bias, shift_bias, shift_cut, *act, out)
    return out.reshape(oh, ow, m)


@_jit
def _depthwise(x, w, bias, sh, sw, dh, dw, top, left, shift_bias, shift_cut, code, relu6_max,
               hsigmoid_in, shift_hsigmoid, shift_hswish, out):
    h, wd, c = x.shape
    oh, ow, _ = out.shape
    kh, kw, _ = w.shape
    shift = fixed.bias_shift(shift_bias, shift_cut)
    acc = np.empty(c, dtype=np.int32)  # |Σ| <= 2^14 · kh · kw < 2^31 for kernels up to 256²
    for oy in range(oh):
        for ox in range(ow):
            acc[:] = 0
            for ky in range(kh):
                iy = oy * sh - top + ky * dh
                if iy < 0 or iy >= h:
                    continue
                for kx in range(kw):
                    ix = ox * sw - left + kx * dw
                    if ix < 0 or ix >= wd:
                        continue
                    for ci in range(c):
                        acc[ci] += np.int32(x[iy, ix, ci]) * np.int32(w[ky, kx, ci])
            for ci in range(c):
                num = fixed.bias_numerator(np.int64(acc[ci]), np.int64(bias[ci]), shift_bias)
                out[oy, ox, ci] = fixed.finish(num, shift, code, relu6_max, hsigmoid_in,
                                               shift_hsigmoid, shift_hswish,
                                               fixed.round_shift_dpu)


def depthwise_conv_tile(x, w, bias=None, stride=(1, 1), dilation=(1, 1), pad=(0, 0, 0, 0),
                        shift_bias: int = 0, shift_cut: int = 0,
                        act: tuple = nonlinear()) -> np.ndarray:
    """One depthwise CONV (ALU / DPTWISE): as :func:`conv_tile` with weights (1, KH, KW, C) or
    (KH, KW, C), one filter per channel; as ``dpu.depthwise_conv2d_fix``."""
    w = w.reshape(w.shape[-3:])
    kh, kw, c = w.shape
    h, wd, _ = x.shape
    (sh, sw), (dh, dw), (top, left, bottom, right) = stride, dilation, pad
    out = np.empty((out_size(h, kh, sh, top, bottom, dh), out_size(wd, kw, sw, left, right, dw),
                    c), dtype=np.int8)
    if bias is None:
        bias, shift_bias = np.zeros(c, dtype=np.int8), 0
    _depthwise(x, w, bias, sh, sw, dh, dw, top, left, shift_bias, shift_cut, *act, out)
    return out


# -- pooling -------------------------------------------------------------------------------------


@_jit
def _pool(x, is_max, kh, kw, sh, sw, top, left, multi_factor, shift_factor, out):
    h, wd, c = x.shape
    oh, ow, _ = out.shape
    acc = np.empty(c, dtype=np.int64)
    for oy in range(oh):
        for ox in range(ow):
            acc[:] = fixed.INT8_MIN - 1 if is_max else 0  # padding never wins a max, adds 0
            for ky in range(kh):
                iy = oy * sh - top + ky
                if iy < 0 or iy >= h:
                    continue
                for kx in range(kw):
                    ix = ox * sw - left + kx
                    if ix < 0 or ix >= wd:
                        continue
                    if is_max:
                        for ci in range(c):
                            acc[ci] = max(acc[ci], np.int64(x[iy, ix, ci]))
                    else:
                        for ci in range(c):
                            acc[ci] += x[iy, ix, ci]
            for ci in range(c):
                if is_max:
                    out[oy, ox, ci] = acc[ci]
                else:
                    out[oy, ox, ci] = fixed.avg_pool_value(acc[ci], multi_factor, shift_factor,
                                                           fixed.round_shift_dpu)


def pool_tile(x, kind: str, kernel, stride=(1, 1), pad=(0, 0, 0, 0), multi_factor: int = 1,
              shift_factor: int = 0) -> np.ndarray:
    """One POOL on an NHWC tile: ``kind`` max (padding never wins) or avg (the window's sum,
    padding counting as zeros, times ``multi_factor`` / 2^``shift_factor``, rounded once), as
    ``dpu.pool_fix``. A ceil-mode pooling passes its extended bottom/right pads."""
    if kind not in ("max", "avg"):
        raise ValueError(f"unknown pool type '{kind}' (expects max or avg)")
    (kh, kw), (sh, sw), (top, left, bottom, right) = kernel, stride, pad
    h, wd, c = x.shape
    out = np.empty((out_size(h, kh, sh, top, bottom), out_size(wd, kw, sw, left, right), c),
                   dtype=np.int8)
    _pool(x, kind == "max", kh, kw, sh, sw, top, left, multi_factor, shift_factor, out)
    return out


# -- eltwise -------------------------------------------------------------------------------------


@_jit
def _eltwise(a, b, is_add, read_a, read_b, shift, code, relu6_max, hsigmoid_in,
             shift_hsigmoid, shift_hswish, out):
    for i in range(out.size):
        qa, qb = np.int64(a[i]), np.int64(b[i])
        if is_add:
            num = fixed.eltwise_read(qa, read_a) + fixed.eltwise_read(qb, read_b)
        else:
            num = qa * qb
        out[i] = fixed.finish(num, shift, code, relu6_max, hsigmoid_in, shift_hsigmoid,
                              shift_hswish, fixed.round_shift_dpu)


def eltwise_tile(a, b, kind: str, shift_read=(0, 0), shift_write: int = 0,
                 act: tuple = nonlinear()) -> np.ndarray:
    """One ELEW on two int8 tiles of one shape: ``kind`` add (each input read with 2 guard bits
    and floor-shifted by its ``shift_read``, the sum written with ``shift_write`` + 2) or mul
    (the product written with ``shift_write``), then the nonlinear ``act``; as
    ``dpu.eltwise_fix``."""
    if a.shape != b.shape:
        raise ValueError(f"eltwise tiles differ in shape: {a.shape} and {b.shape}")
    if kind not in ("add", "mul"):
        raise ValueError(f"unknown eltwise type '{kind}' (expects add or mul)")
    out = np.empty(a.shape, dtype=np.int8)
    is_add = kind == "add"
    shift = shift_write + 2 if is_add else shift_write
    _eltwise(np.ascontiguousarray(a).reshape(-1), np.ascontiguousarray(b).reshape(-1), is_add,
             shift_read[0], shift_read[1], shift, *act, out.reshape(-1))
    return out


def warm_up() -> None:
    """Compile (or load from the cache) every engine for its int8 signature, on tiny tiles."""
    x = np.zeros((3, 3, 2), dtype=np.int8)
    conv_tile(x, np.zeros((2, 1, 1, 2), dtype=np.int8))
    depthwise_conv_tile(x, np.zeros((1, 1, 1, 2), dtype=np.int8))
    pool_tile(x, "max", (2, 2))
    eltwise_tile(x, x, "add")
