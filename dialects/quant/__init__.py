"""The quant dialect: int8 tensors with power-of-two scales, computed exactly as the DPU does.

A ``tensor<...xi8>`` holds integers q; the ops' fix-point attributes say what they stand for,
value = q · 2^-fix_point. Each op has the graph dialect's shape rule, a verifier that also keeps
every shift inside the DPU's ranges, and integer numpy semantics (:mod:`.kernels`): the
bit-exact reference that the dpu dialect and the simulator are checked against. Convolutions,
dense and pooling live in :mod:`.nn`; constants, the float boundary, eltwise and data movement
in :mod:`.tensor`. See ``docs/quant.md``.
"""

from xir.dialect import Dialect

from .nn import NN_OPS
from .tensor import TENSOR_OPS

QUANT = Dialect("quant", [*NN_OPS, *TENSOR_OPS],
                "int8 tensors with fix points; the DPU's integer arithmetic, bit-exact.")
