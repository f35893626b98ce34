"""numpy kernels behind the graph dialect's neural-network ops (NCHW, float32).

Windows are views (``sliding_window_view``), so convolution is im2col plus one matrix product
per group and pooling is one reduction; nothing loops over pixels.
"""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view


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


def pad_hw(x: np.ndarray, pads, value: float = 0.0) -> np.ndarray:
    """``x`` padded on H and W by pads = (top, left, bottom, right); negative pads crop."""
    top, left, bottom, right = pads
    x = x[:, :, max(-top, 0):x.shape[2] - max(-bottom, 0), max(-left, 0):x.shape[3] - max(-right, 0)]
    widths = ((0, 0), (0, 0), (max(top, 0), max(bottom, 0)), (max(left, 0), max(right, 0)))
    return np.pad(x, widths, constant_values=value)


def conv2d(x, w, b, strides, pads, dilations, group: int) -> np.ndarray:
    """Grouped 2-D convolution (cross-correlation, as ONNX Conv) by im2col."""
    cols = windows(pad_hw(x, pads), w.shape[2:], strides, dilations)  # N, C, OH, OW, KH, KW
    cin, cout = w.shape[1], w.shape[0] // group
    outs = []
    for g in range(group):
        patch = cols[:, g * cin:(g + 1) * cin]
        n, c, oh, ow, kh, kw = patch.shape
        matrix = patch.transpose(0, 2, 3, 1, 4, 5).reshape(n * oh * ow, c * kh * kw)
        kernel = w[g * cout:(g + 1) * cout].reshape(cout, -1)
        outs.append((matrix @ kernel.T).reshape(n, oh, ow, cout))
    y = np.concatenate(outs, axis=3).transpose(0, 3, 1, 2)
    if b is not None:
        y = y + b.reshape(1, -1, 1, 1)
    return np.ascontiguousarray(y, dtype=np.float32)


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


def max_pool2d(x, kernel, strides, pads, ceil_mode: bool, dilations=(1, 1)) -> np.ndarray:
    """The maximum of each (dilated) window; padding is -inf, so it never wins."""
    _, _, h, w = x.shape
    oh = window_out_size(h, kernel[0], strides[0], pads[0], pads[2], dilations[0], ceil_mode)
    ow = window_out_size(w, kernel[1], strides[1], pads[1], pads[3], dilations[1], ceil_mode)
    padded = pad_hw(x, _ceil_pads(x.shape, kernel, strides, pads, oh, ow, dilations), -np.inf)
    return windows(padded, kernel, strides, dilations)[:, :, :oh, :ow].max(axis=(4, 5))


def avg_pool2d(x, kernel, strides, pads, ceil_mode: bool, count_include_pad: bool) -> np.ndarray:
    """Average over each window; the divisor counts the real elements, plus the explicit
    padding (never the ceil-mode overhang) when ``count_include_pad``."""
    n, c, h, w = x.shape
    oh = window_out_size(h, kernel[0], strides[0], pads[0], pads[2], ceil_mode=ceil_mode)
    ow = window_out_size(w, kernel[1], strides[1], pads[1], pads[3], ceil_mode=ceil_mode)
    full = _ceil_pads(x.shape, kernel, strides, pads, oh, ow)
    sums = windows(pad_hw(x, full), kernel, strides)[:, :, :oh, :ow].sum(axis=(4, 5))
    if count_include_pad:
        mask = pad_hw(np.ones((1, 1, h + pads[0] + pads[2], w + pads[1] + pads[3]), x.dtype),
                      (0, 0, full[2] - pads[2], full[3] - pads[3]))
    else:
        mask = pad_hw(np.ones((1, 1, h, w), x.dtype), full)
    counts = windows(mask, kernel, strides)[:, :, :oh, :ow].sum(axis=(4, 5))
    return (sums / counts).astype(np.float32)


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
    before, after = (size - 1) // 2, -(-(size - 1) // 2)
    squares = np.pad(x.astype(np.float64) ** 2, ((0, 0), (before, after), (0, 0), (0, 0)))
    sums = sliding_window_view(squares, size, axis=1).sum(axis=-1)[:, :c]
    return (x / (bias + alpha / size * sums) ** beta).astype(np.float32)


def softmax(x, axis: int) -> np.ndarray:
    shifted = x - x.max(axis=axis, keepdims=True)
    e = np.exp(shifted)
    return (e / e.sum(axis=axis, keepdims=True)).astype(np.float32)
