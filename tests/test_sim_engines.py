"""The simulator's compute engines, bit for bit against the quant dialect's integer kernels
(the oracle, NCHW), on random NHWC tiles; and their JIT cache across processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numba
import numpy as np
import pytest

from xir.backend.sim import engines as E
from xir.dialects.graph.nn_kernels import window_out_size
from xir.dialects.quant import fixed
from xir.dialects.quant import kernels as K

ACTS = K.ACTIVATIONS


def int8(rng, *shape):
    return rng.integers(-128, 128, size=shape).astype(np.int8)


def nchw(x):
    return x.transpose(2, 0, 1)[None]


def nhwc(y):
    return y[0].transpose(1, 2, 0)


def random_nonlinear(rng, act):
    """(output_fp, hsigmoid_in) legal for ``act``."""
    if act in ("hard_sigmoid", "hard_swish"):
        return int(rng.integers(7, 10)), int(rng.integers(-3, 9))
    return int(rng.integers(-1, 8)), None


def random_shifts(rng):
    """(shift_bias, shift_cut) in the DPU's ranges, small cuts often, so that ties occur."""
    cut = int(rng.choice([0, 1, 2, 3, int(rng.integers(0, 17))]))
    return int(rng.integers(min(0, cut - 16), 17)), cut


def oracle_conv(x, w, bias, stride, dilation, pad, shift_bias, shift_cut, act, ofp, h,
                depthwise=False):
    """What the quant kernels compute for an NHWC tile, as NHWC."""
    if depthwise:
        w_nchw, group = w.reshape(w.shape[-3:]).transpose(2, 0, 1)[:, None], x.shape[2]
    else:
        w_nchw, group = w.transpose(0, 3, 1, 2), 1
    acc = K.conv2d_acc(nchw(x), w_nchw, stride, pad, dilation, group)
    num, shift = K.add_bias(acc, bias, shift_bias, shift_cut)
    return nhwc(K.finish(num, shift, act, ofp, h))


def random_conv_case(rng, max_kernel=16, depthwise=False):
    """Random kernel (1-16), strides, dilation, pads (up to (k - 1) · dilation, so windows may
    hang over any edge), channel counts off multiples of 16, a shape with at least one output."""
    kh, kw = (int(k) for k in rng.integers(1, max_kernel + 1, size=2))
    dh, dw = (int(d) for d in rng.integers(1, 3, size=2)) if max(kh, kw) <= 8 else (1, 1)
    sh, sw = (int(s) for s in rng.integers(1, 5, size=2))
    pad = tuple(int(rng.integers(0, (k - 1) * d + 1)) for k, d in ((kh, dh), (kw, dw)) * 2)
    pad = (pad[0], pad[1], pad[2], pad[3])
    h = int(rng.integers(max(1, (kh - 1) * dh + 1 - pad[0] - pad[2]), 24))
    w = int(rng.integers(max(1, (kw - 1) * dw + 1 - pad[1] - pad[3]), 24))
    c = int(rng.integers(1, 40))
    m = 1 if depthwise else int(rng.integers(1, 36))
    return (kh, kw), (sh, sw), (dh, dw), pad, h, w, c, m


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("seed", range(6))
def test_conv_tile_matches_quant_kernels(act, seed):
    rng = np.random.default_rng([seed, ACTS.index(act)])
    (kh, kw), stride, dilation, pad, h, w, c, m = random_conv_case(rng)
    x, wt = int8(rng, h, w, c), int8(rng, m, kh, kw, c)
    bias = int8(rng, m) if seed % 3 else None
    shift_bias, shift_cut = random_shifts(rng)
    ofp, hin = random_nonlinear(rng, act)
    got = E.conv_tile(x, wt, bias, stride, dilation, pad, shift_bias, shift_cut,
                      E.nonlinear(act, ofp, hin))
    want = oracle_conv(x, wt, bias, stride, dilation, pad, shift_bias if bias is not None else 0,
                       shift_cut, act, ofp, hin)
    assert got.dtype == np.int8 and got.shape == want.shape
    np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("k_channels", [(1, 1, 1024), (1, 1, 1025), (3, 3, 300), (16, 16, 9)])
def test_conv_long_reductions_are_exact(dtype, k_channels):
    """The extreme accumulators: every product (-128)·(-128) = 2^14, K around and above the
    float32 chunk of 1024 (sums up to 2^24 per chunk and beyond it in total); then sums near
    the extremes with every low bit significant."""
    kh, kw, c = k_channels
    x = np.full((kh + 1, kw, c), -128, dtype=np.int8)
    w = np.full((3, kh, kw, c), -128, dtype=np.int8)
    acc = E.conv_accumulators(x, w, dtype=dtype).sum(axis=0, dtype=np.int64)
    assert (acc == (kh * kw * c) << 14).all()
    # Near the extremes ({-128, -127}, odd products among them), sums far above 2^24 whose low
    # bits matter: float32 chunks longer than 1024 get these wrong (76 of 100 at 3x3x300).
    rng = np.random.default_rng(kh * c)
    x = (rng.integers(0, 2, size=(kh + 4, kw + 3, c)) - 128).astype(np.int8)
    w = (rng.integers(0, 2, size=(5, kh, kw, c)) - 128).astype(np.int8)
    want = nhwc(K.conv2d_acc(nchw(x), w.transpose(0, 3, 1, 2), (1, 1), (0, 0, 0, 0), (1, 1), 1))
    got = E.conv_accumulators(x, w, dtype=dtype).sum(axis=0, dtype=np.int64)
    np.testing.assert_array_equal(got.reshape(want.shape), want)
    bias = int8(rng, 5)
    y = E.conv_tile(x, w, bias, shift_bias=2, shift_cut=12, dtype=dtype)
    np.testing.assert_array_equal(y, oracle_conv(x, w, bias, (1, 1), (1, 1), (0, 0, 0, 0), 2, 12,
                                                 "none", 0, None))


def test_conv_tile_with_prepared_weights():
    rng = np.random.default_rng(3)
    x, w, bias = int8(rng, 6, 7, 300), int8(rng, 10, 2, 3, 300), int8(rng, 10)
    act = E.nonlinear("relu")
    want = E.conv_tile(x, w, bias, shift_bias=1, shift_cut=10, act=act)
    for dtype in (np.float32, np.float64):
        got = E.conv_tile(x, w, bias, shift_bias=1, shift_cut=10, act=act, dtype=dtype,
                          weights=E.gemm_weights(w, dtype))
        np.testing.assert_array_equal(got, want)
    with pytest.raises(ValueError, match="are not the float32"):
        E.conv_tile(x, w, weights=E.gemm_weights(w[:5]))


def test_conv_by_strips_and_channel_tiles_equals_whole():
    """Output rows computed strip by strip from input tiles with their halo (pads only where a
    tile touches the edge) and output channels 16 at a time give the whole convolution."""
    rng = np.random.default_rng(7)
    kh, kw, sh, sw, dh, dw = 5, 3, 2, 1, 2, 1
    pad = (4, 1, 3, 1)
    h, w, c, m = 29, 13, 19, 37
    x, wt, bias = int8(rng, h, w, c), int8(rng, m, kh, kw, c), int8(rng, m)
    act = E.nonlinear("leaky_relu", 3)
    whole = E.conv_tile(x, wt, bias, (sh, sw), (dh, dw), pad, 1, 7, act)
    np.testing.assert_array_equal(whole, oracle_conv(x, wt, bias, (sh, sw), (dh, dw), pad, 1, 7,
                                                     "leaky_relu", 3, None))
    oh = whole.shape[0]
    pieces = []
    for r0 in range(0, oh, 3):
        r1 = min(oh, r0 + 3)
        first, last = r0 * sh - pad[0], (r1 - 1) * sh - pad[0] + (kh - 1) * dh
        tile = x[max(first, 0):min(last, h - 1) + 1]
        tile_pad = (max(0, -first), pad[1], max(0, last - (h - 1)), pad[3])
        pieces.append(np.concatenate(
            [E.conv_tile(tile, wt[o:o + 16], bias[o:o + 16], (sh, sw), (dh, dw), tile_pad, 1, 7,
                         act) for o in range(0, m, 16)], axis=2))
    np.testing.assert_array_equal(np.concatenate(pieces), whole)


@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("seed", range(4))
def test_depthwise_conv_tile_matches_quant_kernels(act, seed):
    rng = np.random.default_rng([seed, 100 + ACTS.index(act)])
    (kh, kw), stride, dilation, pad, h, w, c, _ = random_conv_case(rng, depthwise=True)
    x, wt = int8(rng, h, w, c), int8(rng, 1, kh, kw, c)
    bias = int8(rng, c) if seed % 2 else None
    shift_bias, shift_cut = random_shifts(rng)
    ofp, hin = random_nonlinear(rng, act)
    got = E.depthwise_conv_tile(x, wt, bias, stride, dilation, pad, shift_bias, shift_cut,
                                E.nonlinear(act, ofp, hin))
    want = oracle_conv(x, wt, bias, stride, dilation, pad, shift_bias if bias is not None else 0,
                       shift_cut, act, ofp, hin, depthwise=True)
    np.testing.assert_array_equal(got, want)


def ceil_pads(h, w, kernel, stride, pad):
    """The bottom/right pads that make a floor-mode pooling produce the ceil-mode outputs."""
    outs = [window_out_size(n, k, s, a, b, 1, True)
            for n, k, s, a, b in ((h, kernel[0], stride[0], pad[0], pad[2]),
                                  (w, kernel[1], stride[1], pad[1], pad[3]))]
    return (pad[0], pad[1], (outs[0] - 1) * stride[0] + kernel[0] - h - pad[0],
            (outs[1] - 1) * stride[1] + kernel[1] - w - pad[1])


@pytest.mark.parametrize("kind", ["max", "avg"])
@pytest.mark.parametrize("seed", range(12))
def test_pool_tile_matches_quant_kernels(kind, seed):
    rng = np.random.default_rng([seed, kind == "max"])
    kernel = tuple(int(k) for k in rng.choice([1, 2, 3, 5, 6, 7, 14, 4], size=2))
    if seed % 3 == 0:
        kernel = (kernel[0], kernel[0])  # the DPU's table of square kernels
    stride = tuple(int(s) for s in rng.integers(1, 4, size=2))
    pad = tuple(int(rng.integers(0, k // 2 + 1)) for k in kernel * 2)
    h, w = (int(rng.integers(k, k + 12)) for k in kernel)
    x = int8(rng, h, w, int(rng.integers(1, 35)))
    ceil = bool(seed % 2)
    oracle = K.max_pool2d if kind == "max" else K.avg_pool2d
    want = nhwc(oracle(nchw(x), kernel, stride, pad, ceil))
    m, s = K.avg_pool_factor(*kernel)
    got = E.pool_tile(x, kind, kernel, stride, ceil_pads(h, w, kernel, stride, pad) if ceil
                      else pad, m, s)
    np.testing.assert_array_equal(got, want)


def test_avg_pool_ties_round_up():
    """A window sum times m / 2^s landing exactly on .5 rounds toward +inf (DPU_ROUND)."""
    x = np.array([[[1], [0]], [[0], [0]]], dtype=np.int8)  # 2x2 window: 1 · 1/4 → 0.25 → 0
    assert E.pool_tile(x, "avg", (2, 2), multi_factor=1, shift_factor=1)[0, 0, 0] == 1  # 0.5
    assert E.pool_tile(-x, "avg", (2, 2), multi_factor=1, shift_factor=1)[0, 0, 0] == 0  # -0.5


@pytest.mark.parametrize("act", ["none", "relu", "leaky_relu", "relu6", "hard_sigmoid"])
@pytest.mark.parametrize("kind", ["add", "mul"])
def test_eltwise_tile_matches_quant_kernels(kind, act):
    rng = np.random.default_rng([ACTS.index(act), kind == "add"])
    for _ in range(20):
        shape = tuple(int(n) for n in rng.integers(1, 9, size=3))
        a, b = int8(rng, *shape), int8(rng, *shape)
        write = int(rng.integers(-15, 16))
        reads = tuple(int(r) for r in rng.integers(0, 16, size=2))
        ofp, hin = random_nonlinear(rng, act)
        if kind == "add":
            want = K.finish(fixed.eltwise_read(a.astype(np.int64), reads[0])
                            + fixed.eltwise_read(b.astype(np.int64), reads[1]), write + 2, act,
                            ofp, hin)
            if act in ("none", "relu", "leaky_relu"):
                np.testing.assert_array_equal(want, K.eltwise_add((a, b), reads, write, act))
        else:
            reads = (0, 0)
            want = K.finish(a.astype(np.int64) * b, write, act, ofp, hin)
            if act in ("none", "relu", "leaky_relu"):
                np.testing.assert_array_equal(want, K.eltwise_mul((a, b), write, act))
        got = E.eltwise_tile(a, b, kind, reads, write, E.nonlinear(act, ofp, hin))
        np.testing.assert_array_equal(got, want)


def test_eltwise_tile_rejects_bad_operands():
    a = np.zeros((2, 2, 3), dtype=np.int8)
    with pytest.raises(ValueError, match="differ in shape"):
        E.eltwise_tile(a, a[:1], "add")
    with pytest.raises(ValueError, match="unknown eltwise type"):
        E.eltwise_tile(a, a, "sub")
    with pytest.raises(ValueError, match="unknown pool type"):
        E.pool_tile(a, "min", (1, 1))


@numba.njit
def _round_all(num, shift, out):
    for i in range(num.size):
        out[0, i] = fixed.round_shift_dpu(num[i], shift)
        out[1, i] = fixed.round_shift_std(num[i], shift)
        out[2, i] = fixed.round_shift_py3(num[i], shift)


@pytest.mark.parametrize("shift", [-2, 0, 1, 2, 5, 17])
def test_compiled_rounding_matches_numpy_rounding_on_ties(shift):
    """The formulas compiled by Numba (scalars) and run by numpy (arrays) agree, ties included:
    every mode, every integer around the multiples of 2^(shift - 1)."""
    base = np.arange(-40, 41, dtype=np.int64) << max(shift - 1, 0)
    num = np.concatenate([base - 1, base, base + 1])
    out = np.empty((3, num.size), dtype=np.int64)
    _round_all(num, shift, out)
    for row, mode in zip(out, K.ROUND_MODES):
        np.testing.assert_array_equal(row, K.round_shift(num, shift, mode))
    assert list(K.round_shift(np.array([-5, -3, -1, 1, 3, 5]), 1, K.DPU_ROUND)) == \
        [-2, -1, 0, 1, 2, 3]


CACHE_PROBE = """
import json, time
t0 = time.perf_counter()
from xir.backend.sim import engines as E
t1 = time.perf_counter()
E.warm_up()
t2 = time.perf_counter()
fns = [E._im2col, E._conv_finish, E._depthwise, E._pool, E._eltwise]
print(json.dumps({"import": t1 - t0, "warm_up": t2 - t1,
                  "hits": sum(sum(f.stats.cache_hits.values()) for f in fns),
                  "misses": sum(sum(f.stats.cache_misses.values()) for f in fns)}))
"""


def test_jit_cache_is_reused_by_a_second_process(tmp_path):
    """The first process compiles and writes the cache (NUMBA_CACHE_DIR); a second one loads
    every engine from it and compiles nothing."""
    env = {**os.environ, "NUMBA_CACHE_DIR": str(tmp_path)}
    runs = [json.loads(subprocess.run([sys.executable, "-c", CACHE_PROBE], env=env, check=True,
                                      capture_output=True, text=True).stdout)
            for _ in range(2)]
    assert runs[0]["misses"] >= 5 and runs[0]["hits"] == 0
    assert list(tmp_path.rglob("engines._conv_finish-*.nbi"))
    assert runs[1]["misses"] == 0 and runs[1]["hits"] >= 5
    assert runs[1]["warm_up"] < runs[0]["warm_up"]


def test_engine_cache_stamp_covers_the_formulas():
    """A cached engine is stale when fixed.py changes, not only when engines.py does."""
    stamp = E._conv_finish._cache._cache_file._source_stamp
    assert isinstance(stamp, tuple) and stamp[1] == E.FORMULAS_DIGEST
