"""What every quant-dialect op shares: int8 tensors, fix-point attributes, the DPU's shift
ranges, shape rules borrowed from the graph dialect, and the producer/consumer fix-point check.

A quant op is a graph op in the integer domain: its tensors are ``tensor<...xi8>`` holding q,
and its attributes say at which fix point fp it reads each operand and writes its result
(value = q · 2^-fp). Like a graph op it has ``infer_result_types`` (the graph op's shape rule,
with i8 elements), a verifier and ``evaluate`` (integer numpy, :mod:`.kernels`). Its verifier also
checks the shifts the fix points imply against the DPU's ranges (``reference/dpu.md`` §3), and
that every operand produced by a quant op is read at the fix point it was written at.
"""

from __future__ import annotations

from xir import types as T
from xir.dialects.graph.base import GraphOp
from xir.opdef import IntegerAttrOf, StringOf, TensorOf

from .kernels import ACTIVATIONS, ROUND_MODES

I8 = TensorOf(T.i8)
F32 = TensorOf(T.f32)
FixPoint = IntegerAttrOf(-64, 64)  # a fix point: value = q · 2^-fp
RoundMode = StringOf(*ROUND_MODES)
Activation = StringOf(*ACTIVATIONS)

# The DPU's shift ranges (reference/dpu.md §3). shift_bias's lower bound depends on shift_cut:
# min(0, -(24 - (8 + shift_cut))) = shift_cut - 16, so that the total shift stays <= 16.
SHIFT_CUT = (0, 16)
SHIFT_BIAS_HIGH = 16
SHIFT_READ = (0, 15)
SHIFT_WRITE = (-15, 15)
SHIFT_HSIGMOID = (0, 31)
SHIFT_HSWISH = (0, 15)  # a 4-bit field of the public DPU's CONVINIT
PRELU_SLOPE_FP = (0, 15)  # our assumption: the reference names no range for PReLU slopes
HSIGMOID_OUTPUT_FP_MIN = 7  # hard sigmoid outputs [0, 1]: fp 7 gives 1.0 ≈ 127/128
RELU6_OUTPUT_FP_MIN = -1  # 6 · 2^fp must be an integer


def shift_bias_range(shift_cut: int) -> tuple[int, int]:
    """[min(0, -(24 - (8 + shift_cut))), 16]: where shift_bias must lie for this shift_cut."""
    return min(0, -(24 - (8 + shift_cut))), SHIFT_BIAS_HIGH


def with_element(t: T.Type, element: T.Type) -> T.Type:
    """``t`` with element type ``element`` (a non-tensor type is returned as is)."""
    if isinstance(t, T.TensorType):
        return T.TensorType(t.shape, element)
    return t


class QuantOp(GraphOp):
    """Base class of quant-dialect ops.

    ``float_op`` names the graph op whose shape rule this op shares (attribute names and
    defaults must then match the graph op's); an op without one defines its own
    ``infer_result_types``. ``operand_fix_points`` and ``output_fix_point`` say at which fix
    points the op reads and writes (None where it does not say), and ``verify_fix_points``
    checks the op's shifts.
    """

    float_op = None

    @classmethod
    def infer_result_types(cls, operand_types, attributes):
        if cls.float_op is None:
            raise NotImplementedError(f"{cls.__name__} does not infer its result types")
        floats = [with_element(t, T.f32) for t in operand_types]
        return [with_element(t, T.i8) for t in cls.float_op.infer_result_types(floats, attributes)]

    def operand_fix_points(self) -> list:
        """The fix point at which each operand is read (None: not a fixed-point operand)."""
        return []

    def output_fix_point(self) -> int | None:
        """The fix point of the result (None if it is not a fixed-point tensor)."""
        return None

    def verify_(self) -> None:
        super().verify_()
        self.verify_fix_points()
        self._verify_producers()

    def verify_fix_points(self) -> None:
        """The op's own fix-point rules (shift ranges); raise ``self.error`` on failure."""

    def check_shift(self, name: str, formula: str, value: int, bounds: tuple[int, int]) -> None:
        """``name`` (computed as ``formula``) must lie in the DPU's range ``bounds``."""
        low, high = bounds
        if not low <= value <= high:
            raise self.error(f"{name} = {formula} = {value} is outside the DPU's range "
                             f"[{low}, {high}]")

    def _verify_producers(self) -> None:
        """An operand written by a quant op at fix point p must be read at fix point p."""
        for i, (value, expected) in enumerate(zip(self._operands, self.operand_fix_points())):
            producer = getattr(value, "owner", None)
            if expected is None or not isinstance(producer, QuantOp):
                continue
            actual = producer.output_fix_point()
            if actual is not None and actual != expected:
                raise self.error(f"reads operand #{i} at fix point {expected}, but "
                                 f"'{producer.name}' writes it at fix point {actual}")


class SameFixPointOp(QuantOp):
    """An op that moves or selects int8 values without arithmetic: its result has the input's
    ``fix_point`` (reshape, flatten, pad, max pool, resize)."""

    def operand_fix_points(self) -> list:
        return [self.param["fix_point"]]

    def output_fix_point(self) -> int:
        return self.param["fix_point"]
