"""What every dpu-dialect op shares: NHWC int8 tensors, fix points and the hardware shifts as
attributes, and the check that each shift agrees with the fix points and lies in the DPU's range.

A dpu op is a quant op in the DPU's layout: feature maps are ``tensor<NxHxWxCxi8>`` (NHWC),
weights are OHWI, and besides the fix points (value = q · 2^-fp) every shift the hardware is
programmed with is an attribute (``shift_cut``, ``shift_bias``, ``shift_read``, ``shift_write``,
``shift_hsigmoid``, ``shift_hswish``, and the average pool's ``multi_factor``/``shift_factor``),
so that instruction generation reads numbers, never formulas. The verifier recomputes each shift
from the fix points (the formulas of ``docs/quant.md``) and checks both that it matches and that
it lies in the DPU's range (``reference/dpu.md`` §3). Semantics are the quant dialect's kernels
(:mod:`xir.dialects.quant.kernels`), called on NCHW views where a kernel wants NCHW: one
implementation of the integer arithmetic.
"""

from __future__ import annotations

import numpy as np

from xir import types as T
from xir.dialects.graph.base import ShapeError
from xir.dialects.quant.base import QuantOp

NCHW_TO_NHWC = (0, 2, 3, 1)
NHWC_TO_NCHW = (0, 3, 1, 2)


def to_nhwc_array(x) -> np.ndarray:
    """An NCHW array as NHWC."""
    return np.transpose(x, NCHW_TO_NHWC)


def to_nchw_array(x) -> np.ndarray:
    """An NHWC array as NCHW."""
    return np.transpose(x, NHWC_TO_NCHW)


def permute_type(t: T.TensorType, perm, element: T.Type | None = None) -> T.TensorType:
    """Tensor type ``t`` with its dims permuted by ``perm`` (and elements ``element``, if given)."""
    if not isinstance(t, T.TensorType) or t.shape is None or len(t.shape) != len(perm):
        raise ShapeError(f"expects a rank-{len(perm)} tensor, but got {t}")
    return T.TensorType(tuple(t.shape[i] for i in perm), element or t.element_type)


def nhwc_type(t: T.TensorType, element: T.Type | None = None) -> T.TensorType:
    """An NCHW tensor type as NHWC."""
    return permute_type(t, NCHW_TO_NHWC, element)


def nchw_type(t: T.TensorType, element: T.Type | None = None) -> T.TensorType:
    """An NHWC tensor type as NCHW."""
    return permute_type(t, NHWC_TO_NCHW, element)


def check_rank(t: T.TensorType, rank: int, what: str) -> None:
    """ShapeError unless ``t`` is a ranked tensor of rank ``rank``."""
    if not isinstance(t, T.TensorType) or t.shape is None or len(t.shape) != rank:
        raise ShapeError(f"{what} must have rank {rank}, but is {t}")


class DpuOp(QuantOp):
    """Base class of dpu-dialect ops (a quant op in NHWC, so quant and dpu ops check each
    other's fix points where one reads what the other writes).

    ``expected_shifts`` returns ``{name: (formula, value, (low, high))}``: each hardware shift
    the op's fix points imply, the formula that computes it and its DPU range (None for no
    range); the verifier requires each such shift attribute, with that value, in that range,
    and no shift attribute that the op does not use.
    """

    shift_names: tuple = ()  # the shift attributes this op may carry

    def expected_shifts(self) -> dict:
        """``{name: (formula, value, range or None)}`` of the shifts the fix points imply."""
        return {}

    def verify_fix_points(self) -> None:
        p = self.param
        expected = self.expected_shifts()
        for name in self.shift_names:
            if p[name] is not None and name not in expected:
                raise self.error(f"has '{name}', which its fix points and nonlinear do not use")
        for name, (formula, value, bounds) in expected.items():
            actual = p[name]
            if actual is None:
                raise self.error(f"needs '{name}' = {formula} = {value}")
            if actual != value:
                raise self.error(f"{name} = {_show(actual)} does not match its fix points: "
                                 f"{formula} = {_show(value)}")
            for k, v in enumerate(value if isinstance(value, tuple) else (value,)):
                if bounds is not None:
                    label = f"{name} #{k}" if isinstance(value, tuple) else name
                    self.check_shift(label, formula, v, bounds(v) if callable(bounds) else bounds)


def _show(value) -> str:
    if isinstance(value, tuple):
        return "[" + ", ".join(map(str, value)) + "]"
    return str(value)


class SameFixPointDpuOp(DpuOp):
    """A dpu op that moves or selects int8 values: it reads and writes at ``fix_point``."""

    def operand_fix_points(self) -> list:
        return [self.param["fix_point"]] * len(self._operands)

    def output_fix_point(self) -> int:
        return self.param["fix_point"]
