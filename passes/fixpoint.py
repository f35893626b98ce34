"""Choosing a power-of-two scale: the fix point of a tensor, value = q · 2^-fp (q: int8).

Three methods, as the DPU quantizers define them (reference/dpu.md §3):

- **non-overflow**: the largest fix point that clips nothing:
  ``step = max(min / (-2^(b-1) - 0.5), max / (2^(b-1) - 0.5))``, ``fp = floor(log2(1 / step))``;
- **diffs** (min-MSE): try ``fp`` from the non-overflow one up to four more and keep the one with
  the least ``Σ (x − Q(x))²``; for activations each calibration batch votes and the most frequent
  fix point wins (:class:`Votes`);
- **percentile**: non-overflow on the given percentile of ``|x|`` (clipping the rare tail).
"""

from __future__ import annotations

from collections import Counter

import numpy as np

BITS = 8
FP_RANGE = (-16, 24)  # fix points outside it only come from degenerate (all-zero) tensors
DIFFS_SPAN = 5  # diffs tries fp_nonoverflow ... fp_nonoverflow + 4
EMPTY_FP = 7  # the fix point of a tensor that is all zeros: any would do; this keeps 1.0 exact


def _clamp_fp(fp: int) -> int:
    return int(min(max(fp, FP_RANGE[0]), FP_RANGE[1]))


def nonoverflow_fp(low: float, high: float, bits: int = BITS) -> int:
    """The largest fix point at which ``[low, high]`` does not clip."""
    steps = [low / (-(2 ** (bits - 1)) - 0.5), high / (2 ** (bits - 1) - 0.5)]
    step = max(steps)
    if not step > 0:
        return EMPTY_FP
    return _clamp_fp(int(np.floor(np.log2(1.0 / step))))


def fake_quantize(x: np.ndarray, fp: int, bits: int = BITS, half_up: bool = True) -> np.ndarray:
    """``x`` rounded to the grid ``q · 2^-fp`` and clamped to ``bits``-bit q, back in float:
    half toward +inf (DPU_ROUND, activations) when ``half_up``, else half away from zero
    (STD_ROUND, weights and bias)."""
    scaled = np.asarray(x, np.float64) * (2.0 ** fp)
    q = np.floor(scaled + 0.5) if half_up else np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return np.clip(q, lo, hi) * (2.0 ** -fp)


def diffs_fp(x: np.ndarray, bits: int = BITS, half_up: bool = True,
             low: float | None = None, high: float | None = None) -> int:
    """The fix point among non-overflow … non-overflow + 4 with the least squared error over
    ``x`` (the non-overflow start from ``low``/``high`` when given: the range of the data
    ``x`` is a sample of)."""
    x = np.asarray(x, np.float32).reshape(-1)
    if x.size == 0:
        return EMPTY_FP
    low = float(x.min()) if low is None else low
    high = float(x.max()) if high is None else high
    start = nonoverflow_fp(low, high, bits)
    lo, hi = -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    buffer = np.empty_like(x)
    errors = []
    for fp in range(start, min(start + DIFFS_SPAN, FP_RANGE[1] + 1)):
        # the same rounding as fake_quantize, in float32 and in place: exact for |x · 2^fp| < 2^24
        np.multiply(x, np.float32(2.0 ** fp), out=buffer)
        if half_up:
            buffer += np.float32(0.5)
            np.floor(buffer, out=buffer)
        else:
            np.copysign(np.floor(np.abs(buffer) + np.float32(0.5)), buffer, out=buffer)
        np.clip(buffer, lo, hi, out=buffer)
        buffer *= np.float32(2.0 ** -fp)
        buffer -= x
        errors.append((float(np.dot(buffer, buffer)), fp))
    return min(errors)[1]  # ties go to the smaller fix point: the wider range


def percentile_fp(x: np.ndarray, percentile: float = 99.99, bits: int = BITS) -> int:
    """Non-overflow on the ``percentile`` of ``|x|`` (symmetric)."""
    x = np.asarray(x, np.float64)
    if x.size == 0:
        return EMPTY_FP
    bound = float(np.percentile(np.abs(x), percentile))
    return nonoverflow_fp(-bound, bound, bits)


class Votes:
    """The per-batch vote of the diffs method: each batch proposes a fix point; the most frequent
    wins (a tie goes to the smaller fix point, the one that clips less)."""

    def __init__(self):
        self.counts: Counter = Counter()

    def add(self, fp: int) -> None:
        """Record one batch's choice."""
        self.counts[int(fp)] += 1

    def winner(self) -> int | None:
        """The elected fix point (None before any vote)."""
        if not self.counts:
            return None
        return min(self.counts, key=lambda fp: (-self.counts[fp], fp))
