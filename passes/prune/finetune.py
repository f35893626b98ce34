"""The fine-tune hook: train a pruned model in your own framework, and bring the weights back.

:func:`finetune` exports a graph-dialect module to ONNX, hands it to a user callable and writes
what the callable returns into a clone of the module::

    def hook(model: onnx.ModelProto) -> dict[str, np.ndarray]:
        ...  # import the initializers into PyTorch / JAX / ..., train, read them out
        return {"conv2.weight": w2, "bn2.bias": b2, ...}

    tuned = finetune(pruned, hook)

The callable may return any subset of the model's initializers, by the names the exported
model gives them; each must keep its shape. Pass the physically pruned model
(:func:`~.transform.remove_channels`): entries that are exactly zero before the hook stay zero
after it (``keep_zeros``), so a zeroed or sparse model keeps its pattern even if the training
framework revives the zeros. ``examples/digits/finetune_hook.py`` is a worked hook in PyTorch.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from xir import attributes as A
from xir.diagnostics import XirError
from xir.dialects.graph.constants import constant_attr, identifier, module_of
from xir.ir import Operation

from ..cle import replace_operand
from ..dpu_rules import constant_array

Hook = Callable[[object], dict]


def set_constant(op: Operation, index: int, array, name: str | None = None) -> None:
    """Make operand ``index`` of ``op`` a new ``graph.constant`` holding ``array`` (float32),
    located like the constant it replaces (so the exported initializer keeps its name); or, with
    ``index`` one past the last operand (a bias for a layer that had none), a new operand
    located at ``name``."""
    array = np.asarray(array, np.float32)
    if index < len(op.operands):
        replace_operand(op, index, array, "tuned")
        return
    attr = constant_attr(module_of(op), array, name)
    new = Operation.create("graph.constant", (), [attr.type], attributes={"value": attr},
                           location=A.NameLoc(name))
    new.results[0].name_hint = identifier(name)
    op.parent.insert_before(new, op)
    op.set_operands([*op.operands, new.results[0]])


def export_named(module):
    """``module`` as ONNX, and the ``graph.constant`` op behind each initializer (by name)."""
    from xir.frontends import onnx_export as E

    func = E.main_function(module)
    proto = E.export_onnx(module)
    ex = E.new_exporter(next(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")))
    E.export_inputs(ex, func)
    constants = {}
    for op in func.regions[0].entry.ops:  # the names export_onnx gave, in the same order
        ex.node_name = A.location_name(op.location)
        if op.name == "func.return":
            break
        E.export_graph_op(ex, op)
        if op.name == "graph.constant":
            constants[ex.name_of(op.results[0])] = op
    return proto, constants


def finetune(module, hook: Hook, keep_zeros: bool = True):
    """A clone of ``module`` with the weights ``hook`` returns for it.

    ``hook(model)`` gets the module as an ``onnx.ModelProto`` and returns a dict from
    initializer names to new values (numpy arrays, or anything ``np.asarray`` takes). A hook
    that raises, returns something else, names an unknown initializer or changes a shape is an
    XirError naming the initializer. With ``keep_zeros``, entries that are exactly zero in
    ``module`` stay zero (pruned channels and sparse patterns survive the training)."""
    clone = module.clone()
    proto, constants = export_named(clone)
    try:
        updates = hook(proto)
    except Exception as e:  # noqa: BLE001 - the user's code: any failure is theirs to read
        raise XirError(f"fine-tune hook failed: {type(e).__name__}: {e}") from e
    if not isinstance(updates, dict):
        raise XirError(f"fine-tune hook returned {type(updates).__name__}, not a dict from "
                       "initializer names to arrays")
    arrays = {name: _checked(name, value, constants) for name, value in updates.items()}
    for name, array in arrays.items():
        op = constants[name]
        old = constant_array(op.results[0], np.float32)
        if keep_zeros:
            array = np.where(old == 0, np.float32(0), array)
        for user, index in list(op.results[0].uses):
            set_constant(user, index, array)
    return clone


def _checked(name: str, value, constants: dict) -> np.ndarray:
    """The hook's ``value`` for initializer ``name`` as float32, if it may replace it."""
    if name not in constants:
        raise XirError(f"fine-tune hook returned '{name}', which is not an initializer of the "
                       "model it was given")
    try:
        array = np.asarray(value, np.float32)
    except (TypeError, ValueError) as e:
        raise XirError(f"fine-tune hook returned '{name}' as something that is not an array: "
                       f"{e}") from None
    if constant_array(constants[name].results[0]).dtype.kind != "f":
        raise XirError(f"fine-tune hook returned '{name}', which is not a float initializer")
    shape = tuple(constants[name].results[0].type.shape)
    if array.shape != shape:
        raise XirError(f"fine-tune hook returned '{name}' of shape {array.shape}; the model's "
                       f"is {shape}")
    if not np.isfinite(array).all():
        raise XirError(f"fine-tune hook returned '{name}' with NaN or infinite values")
    return array
