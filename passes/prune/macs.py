"""What pruning is measured in: a model's multiply-accumulates and parameters, at batch 1.

MACs are :func:`xir.passes.dpu_rules.macs` per op (convolutions, dense layers; pools and
elementwise ops count none), with a dynamic dimension (a symbolic batch) counted as 1.
Parameters are the elements of the float constants the model's ops read, but batch norms'
running statistics: PyTorch's count of a model's parameters.
"""

from __future__ import annotations

from types import SimpleNamespace

from xir import types as T

from ..dpu_rules import macs as _macs
from ..dpu_rules import producer

BN_STATISTICS = (3, 4)  # operand indices of a batch norm's running mean and variance


def _batch1(value) -> SimpleNamespace:
    """A stand-in for ``value`` whose dynamic dimensions are 1."""
    shape = tuple(1 if d == T.DYNAMIC else d for d in value.type.shape)
    return SimpleNamespace(type=T.TensorType(shape, value.type.element_type))


def op_macs(op) -> int:
    """Multiply-accumulates of one run of ``op`` at batch 1."""
    values = (*op.operands, *op.results)
    if not any(isinstance(v.type, T.TensorType) and T.DYNAMIC in (v.type.shape or ())
               for v in values):
        return _macs(op)
    stand_in = SimpleNamespace(name=op.name, operands=[_batch1(v) for v in op.operands],
                               results=[_batch1(v) for v in op.results],
                               param=getattr(op, "param", {}))
    return _macs(stand_in)


def _ops(module):
    return (op for op in module.walk() if op.name != "graph.constant")


def model_macs(module) -> int:
    """Multiply-accumulates of one run of ``module`` at batch 1."""
    return sum(op_macs(op) for op in _ops(module))


def model_params(module) -> int:
    """Elements of the float constants ``module``'s ops read (each constant once), batch norms'
    running mean and variance left out."""
    seen = {}
    for op in _ops(module):
        for i, value in enumerate(op.operands):
            owner = producer(value)
            if owner is None or owner.name != "graph.constant" or value.type.element_type != T.f32:
                continue
            statistic = op.name == "graph.batch_norm" and i in BN_STATISTICS
            seen[owner] = seen.get(owner, True) and statistic
    return sum(owner.results[0].type.num_elements for owner, statistic in seen.items()
               if not statistic)
