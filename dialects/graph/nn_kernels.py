"""numpy kernels behind the graph dialect's neural-network ops (NCHW, float32).

Convolution is im2col plus one batched matrix product, laid out as ``W (M, C·KH·KW) @ cols
(C·KH·KW, OH·OW)`` so that the product is already NCHW; a 1x1 stride-1 convolution needs no
im2col at all (the input, seen as (C, H·W), is the matrix). Pooling reduces one window offset
at a time, separably (rows, then columns), over strided views. Nothing loops over pixels, and
everything stays float32 (BLAS sgemm; no float64 temporaries the size of an activation).
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import as_strided, sliding_window_view


def window_out_size(size: int, kernel: int, stride: int, pad_begin: int, pad_end: int,
                    dilation: int = 1, ceil_mode: bool = False) -> int:
    """How many windows of ``kernel`` (dilated) fit along one padded axis.

    With ``ceil_mode`` a partial last window counts, unless it would start inside the end
    padding (the ONNX / PyTorch rule)."""
    span = size + pad_begin + pad_end - dilation * (kernel - 1) - 1
    if not ceil_mode:
        return span // stride + 1
    out = -(-span // stride) + 1
    if (out - 1) * stride >= size + pad_begin:
        out -= 1
    return out


def windows(x: np.ndarray, kernel: tuple[int, int], strides: tuple[int, int],
            dilations: tuple[int, int] = (1, 1)) -> np.ndarray:
    """View (N, C, OH, OW, KH, KW) of the windows of an already padded NCHW ``x``."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    span = (dh * (kh - 1) + 1, dw * (kw - 1) + 1)
    view = sliding_window_view(x, span, axis=(2, 3))
    return view[:, :, ::sh, ::sw, ::dh, ::dw]


def pad_hw(x: np.ndarray, pads, value: float = 0.0, extra_rows: int = 0) -> np.ndarray:
    """``x`` padded on H and W by pads = (top, left, bottom, right); negative pads crop;
    ``extra_rows`` more rows of ``value`` go below the bottom padding.

    Without any padding this is ``x`` itself (or a view of it), not a copy."""
    top, left, bottom, right = pads
    x = x[:, :, max(-top, 0):x.shape[2] - max(-bottom, 0), max(-left, 0):x.shape[3] - max(-right, 0)]
    top, left, bottom, right = (max(p, 0) for p in pads)
    bottom += extra_rows
    if not (top or left or bottom or right):
        return x
    n, c, h, w = x.shape
    padded = np.empty((n, c, h + top + bottom, w + left + right), dtype=x.dtype)
    # fill only the border; the interior is overwritten by x
    padded[:, :, :top] = value
    padded[:, :, top + h:] = value
    padded[:, :, top:top + h, :left] = value
    padded[:, :, top:top + h, left + w:] = value
    padded[:, :, top:top + h, left:left + w] = x
    return padded


def im2col(x: np.ndarray, kernel: tuple[int, int], strides, pads, dilations) -> np.ndarray:
    """The columns (N, C·KH·KW, OH, OW) of ``x`` (N, C, H, W), rows ordered (C, KH, KW) like a
    flattened weight; a view of ``x`` when the kernel is 1x1 with stride 1 and no padding."""
    view = windows(pad_hw(x, pads), kernel, strides, dilations)  # N, C, OH, OW, KH, KW
    n, c, oh, ow, kh, kw = view.shape
    return view.transpose(0, 1, 4, 5, 2, 3).reshape(n, c * kh * kw, oh, ow)


def im2col_rows(x: np.ndarray, kernel: tuple[int, int], pads, dilations) -> np.ndarray:
    """Stride-1 columns over whole padded rows: (N, C·KH·KW, OH, WP), WP the padded width.

    Column (oh, ow) is the window at (oh, ow) for ow < OW; the last WP - OW columns of each
    row are windows that wrap into the next row, for the caller to crop after the product.
    Each row of the result is then one contiguous run of the padded input, which copies two
    to three times faster than (OH, OW) windows."""
    (kh, kw), (dh, dw) = kernel, dilations
    padded = pad_hw(x, pads, extra_rows=1)  # the last wrapped windows read into this row
    n, c, hp, wp = padded.shape
    oh = hp - 1 - dh * (kh - 1)
    sn, sc, sh, sw = padded.strides
    view = as_strided(padded, (n, c, kh, kw, oh * wp), (sn, sc, dh * sh, dw * sw, sw),
                      writeable=False)
    return view.reshape(n, c * kh * kw, oh, wp)


def conv2d(x, w, b, strides, pads, dilations, group: int) -> np.ndarray:
    """Grouped 2-D convolution (cross-correlation, as ONNX Conv) by im2col and one (batched)
    matrix product per group: weight (M/g, C/g·KH·KW) times columns (C/g·KH·KW, OH·OW)."""
    m, _, kh, kw = w.shape
    rows = tuple(strides) == (1, 1) and (kh, kw) != (1, 1) and _rows_pay_off(m // group, x.shape[3])
    if rows:
        cols = im2col_rows(x, (kh, kw), pads, dilations)
    else:
        cols = im2col(x, (kh, kw), strides, pads, dilations)
    n, k, oh, width = cols.shape  # width: OW, or the padded width for row columns
    cols = cols.reshape(n, group, k // group, oh * width)
    kernel = w.reshape(group, m // group, -1).astype(np.float32, copy=False)
    y = np.matmul(kernel, cols.astype(np.float32, copy=False))  # N, G, M/G, OH·width
    if b is not None:
        y += b.reshape(group, -1, 1).astype(np.float32, copy=False)
    y = y.reshape(n, m, oh, width)
    if rows:  # drop the wrapped windows
        y = np.ascontiguousarray(y[:, :, :, :width - dilations[1] * (kw - 1)])
    return y


def _rows_pay_off(group_outputs: int, width: int) -> bool:
    """Whether :func:`im2col_rows` beats :func:`im2col` for a stride-1 convolution: its faster
    copy must outweigh the product over the wrapped columns and the crop, which it does
    (measured) for narrow outputs on narrow inputs: depthwise, DenseNet's 3x3 convolutions."""
    return group_outputs <= 32 and width <= 32


def conv_transpose2d(x, w, b, strides, pads, dilations, group: int, output_padding) -> np.ndarray:
    """Grouped transposed convolution: spread the input by the strides, then convolve with the
    flipped kernel (weight layout (C, M/group, KH, KW), as ONNX ConvTranspose)."""
    n, c, h, wd = x.shape
    sh, sw = strides
    spread = np.zeros((n, c, (h - 1) * sh + 1, (wd - 1) * sw + 1), dtype=x.dtype)
    spread[:, :, ::sh, ::sw] = x
    kh, kw = w.shape[2:]
    dh, dw = dilations
    eh, ew = dh * (kh - 1), dw * (kw - 1)
    top, left, bottom, right = pads
    oph, opw = output_padding
    full = (eh - top, ew - left, eh - bottom + oph, ew - right + opw)
    cin, mg = c // group, w.shape[1]
    # (C, M/g, KH, KW) -> (M, C/g, KH, KW), flipped in space
    flipped = w.reshape(group, cin, mg, kh, kw).transpose(0, 2, 1, 3, 4).reshape(group * mg, cin, kh, kw)
    return conv2d(spread, flipped[:, :, ::-1, ::-1], b, (1, 1), full, dilations, group)


def _reduce_windows(x, kernel, strides, dilations, out_hw, ufunc) -> np.ndarray:
    """``ufunc`` (np.maximum, np.add) reduced over each window of an already padded ``x``:
    along W first, then along H, one window offset at a time over strided views."""
    (kh, kw), (sh, sw), (dh, dw), (oh, ow) = kernel, strides, dilations, out_hw
    rows = _reduce_axis(x, 3, kw, sw, dw, ow, ufunc)
    return _reduce_axis(rows, 2, kh, sh, dh, oh, ufunc)


def _reduce_axis(x, axis: int, kernel: int, stride: int, dilation: int, out: int, ufunc):
    """``ufunc`` reduced over 1-D windows along ``axis`` of ``x``, into a fresh array."""
    def offset(i):
        index = [slice(None)] * x.ndim
        start = i * dilation
        index[axis] = slice(start, start + (out - 1) * stride + 1, stride)
        return x[tuple(index)]

    acc = np.array(offset(0))
    for i in range(1, kernel):
        ufunc(acc, offset(i), out=acc)
    return acc


def max_pool2d(x, kernel, strides, pads, ceil_mode: bool, dilations=(1, 1)) -> np.ndarray:
    """The maximum of each (dilated) window; padding is -inf, so it never wins."""
    _, _, h, w = x.shape
    oh = window_out_size(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode)
    ow = window_out_size(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    padded = pad_hw(x, _ceil_pads(x.shape, kernel, strides, pads, oh, ow, dilations), -np.inf)
    return _reduce_windows(padded, kernel, strides, dilations, (oh, ow), np.maximum)


def avg_pool2d(x, kernel, strides, pads, ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    """Average over each window; the divisor counts the real elements, plus the explicit
    padding (never the ceil-mode overhang) when ``count_include_pad``."""
    n, c, h, w = x.shape
    oh = window_out_size(h, kernel[0], strides[0], pads[0], pads[2], ceil_mode=ceil_mode)
    ow = window_out_size(w, kernel[1], strides[1], pads[1], pads[3], ceil_mode=ceil_mode)
    full = _ceil_pads(x.shape, kernel, strides, pads, oh, ow)
    sums = _reduce_windows(pad_hw(x, full), kernel, strides, (1, 1), (oh, ow), np.add)
    if count_include_pad:
        mask = pad_hw(np.ones((1, 1, h + pads[0] + pads[2], w + pads[1] + pads[3]), x.dtype),
                      (0, 0, full[2] - pads[2], full[3] - pads[3]))
    else:
        mask = pad_hw(np.ones((1, 1, h, w), x.dtype), full)
    counts = _reduce_windows(mask, kernel, strides, (1, 1), (oh, ow), np.add)
    sums /= counts
    return sums.astype(np.float32, copy=False)


def _ceil_pads(shape, kernel, strides, pads, oh, ow, dilations=(1, 1)):
    """``pads`` with bottom/right grown so that ``oh`` x ``ow`` whole windows fit."""
    _, _, h, w = shape
    span_h, span_w = dilations[0] * (kernel[0] - 1) + 1, dilations[1] * (kernel[1] - 1) + 1
    extra_h = max((oh - 1) * strides[0] + span_h - (h + pads[0] + pads[2]), 0)
    extra_w = max((ow - 1) * strides[1] + span_w - (w + pads[1] + pads[3]), 0)
    return (pads[0], pads[1], pads[2] + extra_h, pads[3] + extra_w)


def lrn(x, size: int, alpha: float, beta: float, bias: float) -> np.ndarray:
    """Local response normalization across channels (ONNX LRN)."""
    c = x.shape[1]
    before = (size - 1) // 2
    squares = np.square(x, dtype=np.float32)
    sums = np.zeros_like(squares)
    for offset in range(-before, size - before):  # channel c sums c-before .. c+after
        lo, hi = max(offset, 0), c + min(offset, 0)
        sums[:, lo - offset:hi - offset] += squares[:, lo:hi]
    sums *= np.float32(alpha / size)
    sums += np.float32(bias)
    np.power(sums, np.float32(-beta), out=sums)
    sums *= x
    return sums


def batch_norm(x, scale, bias, mean, var, epsilon: float) -> np.ndarray:
    """Inference batch normalization on axis 1, ``(x - mean) * scale / sqrt(var + epsilon) +
    bias``, in float32 in place on one fresh array (the per-channel factor in float64)."""
    shape = (1, -1) + (1,) * (x.ndim - 2)
    factor = (scale / np.sqrt(var.astype(np.float64) + epsilon)).astype(np.float32)
    y = np.subtract(x, mean.reshape(shape), dtype=np.float32)
    y *= factor.reshape(shape)
    y += bias.reshape(shape)
    return y


def softmax(x, axis: int) -> np.ndarray:
    """``exp(x) / sum(exp(x))`` along ``axis``, shifted by the maximum so exp cannot overflow."""
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
