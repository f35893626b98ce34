"""Making constants: a numpy array as the ``value`` of a ``graph.constant``.

Small arrays are inline ``dense<...>``; larger ones go to a named resource of the module (a
``dense_resource<name>``, printed in the resource section or stored in the weights file). The
importer and every pass that computes new weights (fold-bn, cle, ...) make constants here.
"""

from __future__ import annotations

import re

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.dialects.graph.onnx_mapping import element_type_of

INLINE_LIMIT = 16  # constants with at most this many elements are printed inline
_NAME_RE = re.compile(r"[^A-Za-z0-9_$.]")


def identifier(name: str) -> str:
    """``name`` as an identifier the textual IR accepts (letters, digits, ``_ $ .``; no leading
    digit)."""
    name = _NAME_RE.sub("_", name) or "v"
    return name if not name[0].isdigit() else "v" + name


def fresh_resource_name(module, base: str) -> str:
    """A resource name of ``module`` not taken yet, made from ``base``."""
    base = identifier(base)
    name, i = base, 1
    while name in module.resources:
        name, i = f"{base}_{i}", i + 1
    return name


def constant_attr(module, array: np.ndarray, name: str = "cst") -> A.Attribute:
    """The ``value`` attribute holding ``array`` (its own element type): inline when small,
    else a new resource of ``module`` named after ``name``."""
    array = np.asarray(array)
    type_ = T.TensorType(tuple(int(d) for d in array.shape),
                         element_type_of(array.dtype))
    if array.size <= INLINE_LIMIT:
        return A.DenseElementsAttr(type_, array)
    resource = fresh_resource_name(module, name)
    data = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).tobytes()
    handle = A.ResourceHandle(resource, data, max(4, array.dtype.itemsize))
    module.resources[resource] = handle
    return A.DenseResourceAttr(handle, type_)


def module_of(op):
    """The top-level op (the module) that ``op`` sits in."""
    while op.parent_op is not None:
        op = op.parent_op
    return op
