"""The reference interpreter: runs a function by evaluating its ops one after another.

It knows no dialect. Each op that can run defines ``evaluate(*operand_arrays) -> list[array]``
(its numpy semantics); the interpreter walks the body of a ``func.func`` in order, binds every
result to the array its op produced and returns what the terminator returns. An ``observe(op,
outputs)`` hook sees every op's outputs as they are produced (calibration, dumping layers by the
name in their location).

    outputs = run_module(module, {"x": x})
"""

from __future__ import annotations

from typing import Callable, Mapping, Sequence

import numpy as np

from xir import types as T
from xir.attributes import location_name, numpy_dtype
from xir.diagnostics import XirError
from xir.ir import Operation

Observer = Callable[[Operation, list], None]
Evaluator = Callable[[Operation, list], list]


def _describe(array: np.ndarray) -> str:
    return f"{array.dtype} array of shape {tuple(array.shape)}"


def fits(expected: T.Type, array: np.ndarray) -> bool:
    """Whether numpy ``array`` can be a value of type ``expected``: its dtype and shape (a
    dynamic dimension takes any size); anything but a tensor type fits."""
    if not isinstance(expected, T.TensorType):
        return True
    try:
        dtype = numpy_dtype(expected.element_type)
    except ValueError:
        dtype = None
    ok = dtype is None or array.dtype == dtype
    if ok and expected.shape is not None:
        ok = array.ndim == len(expected.shape) and all(
            e == T.DYNAMIC or e == a for e, a in zip(expected.shape, array.shape))
    return ok


def _check_input(name: str, expected: T.Type, array) -> np.ndarray:
    """``array`` as a numpy array if it fits ``expected`` (XirError saying how it does not)."""
    if not isinstance(expected, T.TensorType):
        return array  # scalars and other types pass through unchecked
    array = np.asarray(array)
    if not fits(expected, array):
        raise XirError(f"input '{name}': expected {expected}, got {_describe(array)}")
    return array


def input_names(func_op: Operation) -> tuple[list[str], list[str]]:
    """The names of a function's arguments: their IR names, and the names users know them by
    (the source model's, kept in the ``xir.name`` argument attribute when not an identifier)."""
    args = func_op.regions[0].blocks[0].args
    names = [a.name_hint or f"arg{i}" for i, a in enumerate(args)]
    shown = list(names)
    for i, d in enumerate(func_op.get_attr("arg_attrs") or ()):
        original = getattr(d, "value", {}).get("xir.name")
        if original is not None and i < len(shown):
            shown[i] = original.value
    return names, shown


def _bind_inputs(func_op: Operation, inputs) -> list[np.ndarray]:
    """The entry block's arguments in order, from a dict keyed by argument name (either name of
    :func:`input_names`) or a list; messages use the names users know."""
    args = func_op.regions[0].blocks[0].args
    names, shown = input_names(func_op)
    if isinstance(inputs, Mapping):
        inputs = {names[shown.index(k)] if k in shown and k not in names else k: v
                  for k, v in inputs.items()}
        missing = [s for n, s in zip(names, shown) if n not in inputs]
        if missing:
            raise XirError(f"missing input '{missing[0]}' (expects {', '.join(shown)})")
        unknown = sorted(set(inputs) - set(names))
        if unknown:
            raise XirError(f"unknown input '{unknown[0]}' (expects {', '.join(shown)})")
        values = [inputs[n] for n in names]
    else:
        values = list(inputs)
        if len(values) != len(names):
            raise XirError(f"expects {len(names)} inputs ({', '.join(shown)}), got {len(values)}")
    return [_check_input(s, a.type, v) for s, a, v in zip(shown, args, values)]


def run_function(func_op: Operation, inputs: Mapping[str, np.ndarray] | Sequence[np.ndarray],
                 observe: Observer | None = None,
                 evaluators: Mapping[str, Evaluator] | None = None) -> list[np.ndarray]:
    """Run the body of ``func_op`` (a function with one block) on ``inputs`` and return the
    arrays its terminator returns.

    ``inputs`` maps argument names (the entry block arguments' names) to arrays, or lists them
    in order; a missing input or one of the wrong shape or dtype is an XirError. An op without
    numpy semantics is an XirError naming the op and its location. ``observe(op, outputs)`` is
    called after every op that produces values. ``evaluators`` maps op names to functions
    ``evaluator(op, operand_arrays) -> list[array]`` run instead of those ops' own semantics
    (a runner dispatching ``func.call`` to its devices).
    """
    return run_lockstep(func_op, [inputs], observe, evaluators=evaluators)[0]


def run_lockstep(func_op: Operation, input_sets: Sequence, observe: Observer | None = None,
                 before: Callable | None = None,
                 evaluators: Mapping[str, Evaluator] | None = None) -> list[list[np.ndarray]]:
    """Run ``func_op`` on several input sets side by side, op by op (see :func:`run_function`);
    the outputs of each set.

    ``before(op, operand_sets)`` is called before each op runs, with its operands in every set:
    a pass that tunes an op on what reaches it (bias correction) may replace the op's constant
    operands there; they are read after the call."""
    block = _body(func_op)
    envs = [dict(zip(block.args, _bind_inputs(func_op, inputs))) for inputs in input_sets]
    dead_after = _dead_after(block)
    for op in block.ops:
        operand_sets = [_operands(op, env) for env in envs]
        if op is block.last_op and not op.results:  # the terminator (func.return)
            return operand_sets
        if before is not None:
            before(op, operand_sets)
            operand_sets = [_operands(op, env, late_constants=True) for env in envs]
        for env, operands in zip(envs, operand_sets):
            outputs = _evaluate(op, operands, evaluators)
            for result, value in zip(op.results, outputs):
                env[result] = value
            if observe is not None:
                observe(op, outputs)
            for v in dead_after.get(op, ()):
                env.pop(v, None)
    raise func_op.error("body has no terminator")


def _body(func_op: Operation):
    if not func_op.regions or not func_op.regions[0].blocks:
        raise XirError(f"cannot run a function without a body ('{func_op.name}')")
    blocks = func_op.regions[0].blocks
    if len(blocks) != 1:
        raise func_op.error(f"has {len(blocks)} blocks; the interpreter runs single-block bodies only")
    return blocks[0]


def _dead_after(block) -> dict:
    """For each op, the values nothing reads after it (their arrays are then dropped)."""
    last_use = {}
    for op in block.ops:
        for v in op.operands:
            last_use[v] = op
    dead_after: dict = {}
    for v, op in last_use.items():
        dead_after.setdefault(op, []).append(v)
    return dead_after


def _operands(op: Operation, env: dict, late_constants: bool = False) -> list:
    """``op``'s operand arrays; with ``late_constants``, a constant that a ``before`` hook made
    after the run passed its place is evaluated on the spot."""
    try:
        return [env[v] for v in op.operands]
    except KeyError:
        if not late_constants:
            raise op.error("uses a value that was not computed before it") from None
    values = []
    for v in op.operands:
        if v not in env:
            owner = getattr(v, "owner", None)
            if not isinstance(owner, Operation) or owner.operands:
                raise op.error("uses a value that was not computed before it")
            env[v] = _evaluate(owner, [])[v.index]
        values.append(env[v])
    return values


def _evaluate(op: Operation, operands: list, evaluators=None) -> list:
    custom = evaluators.get(op.name) if evaluators else None
    evaluate = getattr(op, "evaluate", None)
    if custom is None and evaluate is None:
        raise op.error("has no evaluate method: the interpreter cannot run it")
    try:
        outputs = list(custom(op, operands) if custom is not None else evaluate(*operands))
    except NotImplementedError as e:
        raise op.error(f"cannot be interpreted: {e}") from None
    except (ValueError, TypeError, IndexError, ArithmeticError) as e:
        raise op.error(f"failed to evaluate: {e}") from None
    if len(outputs) != len(op.results):
        raise op.error(f"evaluated to {len(outputs)} values but has {len(op.results)} results")
    return outputs


class TensorDump:
    """An ``observe`` hook that keeps every op's outputs by node name (its location's name).

    An ONNX node that became several ops keeps the outputs of the last of them, which are the
    node's own; an op with several results stores ``name:0``, ``name:1``, ... Constants are
    skipped. ``tensors`` maps names to arrays, in the order the ops ran."""

    def __init__(self):
        self.tensors: dict[str, np.ndarray] = {}

    def __call__(self, op: Operation, outputs: list) -> None:
        if op.name == "graph.constant":
            return
        base = location_name(op.location) or op.results[0].name_hint or op.name
        for i, value in enumerate(outputs):
            key = base if len(outputs) == 1 else f"{base}:{i}"
            self.tensors.pop(key, None)  # re-inserted: the order is that of the last writer
            self.tensors[key] = np.asarray(value)


def run_module(module: Operation, inputs, entry: str = "main",
               observe: Observer | None = None) -> list[np.ndarray]:
    """Run function ``@entry`` of ``module`` (see :func:`run_function`)."""
    from xir.symbols import entry_function

    return run_function(entry_function(module, entry), inputs, observe)
