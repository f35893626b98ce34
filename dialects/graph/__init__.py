"""The graph dialect: framework-neutral float ops in NCHW, where every model enters xir.

Each op has a verifier (shape and type rules), shape inference and numpy semantics (see
:mod:`.base`). Neural-network ops live in :mod:`.nn`, tensor and elementwise ops in :mod:`.tensor`.
"""

from xir.dialect import Dialect

from .nn import NN_OPS
from .tensor import TENSOR_OPS

GRAPH = Dialect("graph", [*NN_OPS, *TENSOR_OPS],
                "Framework-neutral float ops in NCHW, with numpy semantics.")
