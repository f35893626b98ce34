"""The graph dialect: framework-neutral float ops in NCHW, where every model enters xir.

Each op has a verifier (shape and type rules), shape inference and numpy semantics (see
:mod:`.base`). Neural-network ops live in :mod:`.nn`, tensor and elementwise ops in :mod:`.tensor`;
an ONNX node outside the dialect is kept whole as ``graph.onnx`` (:mod:`.onnx_op`).
"""

from xir.dialect import Dialect

from .nn import NN_OPS
from .onnx_op import ONNX_OPS
from .tensor import TENSOR_OPS

GRAPH = Dialect("graph", [*NN_OPS, *TENSOR_OPS, *ONNX_OPS],
                "Framework-neutral float ops in NCHW, with numpy semantics.")
