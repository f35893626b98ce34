"""The dpu dialect: the DPU's fused INT8 ops, on NHWC tensors, with every hardware shift an
attribute.

``dpu.conv2d_fix``, ``dpu.depthwise_conv2d_fix``, ``dpu.transposed_conv2d_fix`` (bias and a
fused nonlinear), ``dpu.pool_fix`` (max, avg), ``dpu.eltwise_fix`` (add, mul, nonlinear),
``dpu.concat``, ``dpu.upsample_fix`` and ``dpu.reshape`` (:mod:`.nn`, :mod:`.tensor`), and the
host glue ``dpu.to_nhwc`` / ``dpu.to_nchw``. Their integer semantics are the quant dialect's
kernels; the fuse pass (:mod:`xir.passes.fuse`) builds them from quant ops. See ``docs/dpu.md``.
"""

from xir.dialect import Dialect

from .nn import NN_OPS
from .tensor import TENSOR_OPS

DPU = Dialect("dpu", [*NN_OPS, *TENSOR_OPS],
              "Fused DPU ops on NHWC int8 tensors, with the hardware's shifts as attributes.")
