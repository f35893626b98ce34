"""partition: cut ``@main`` into DPU and CPU subgraphs, each outlined into a function of its own.

The third of the small passes that offload a model to the DPU (TVM's BYOC recipe): ``fuse`` has
made the DPU's ops (``dpu.*``, NHWC, with the layout ops ``dpu.to_nhwc`` / ``dpu.to_nchw`` at
their boundaries), the inspector has said where each op runs; ``partition`` groups the ops into
regions (:mod:`.regions`: maximal one-device regions with no cycle between them) and outlines
each region into ``func.func private @subgraph_<k>_<dpu|cpu>`` with ``xir.device = "DPU"`` or
``"CPU"``. ``@main`` keeps its signature and calls the subgraphs in an order that respects the
data flow::

    func.func @main(%x: tensor<1x3x8x8xf32>) -> tensor<1x10xf32> {
      %x_q = "quant.quantize"(%x) {fix_point = 6} ...
      %x_nhwc = "dpu.to_nhwc"(%x_q) ...
      %y = "func.call"(%x_nhwc) <{callee = @subgraph_0_dpu}> ...
      %z = "func.call"(%y) <{callee = @subgraph_1_cpu}> ...
      "func.return"(%z) ...
    }

Where an op runs: its discardable attribute ``xir.device`` (``"DPU"`` or ``"CPU"``) if it has one;
else the glue ops (:data:`GLUE_OPS`: layout and quantize/dequantize) are glue, any other ``dpu.*``
op runs on the DPU and every other op on the CPU. Glue joins a CPU subgraph it is connected to;
glue connected to none (the quantize and layout change of a model input that goes straight to the
DPU) stays in ``@main`` as host code. Constants (``*.constant`` ops without operands) are copied
into every subgraph that uses them. The function's arguments are the USER's.

Naming: ``k`` numbers the subgraphs in the order ``@main`` calls them (from 0, DPU and CPU
together), and the suffix says the device; a name already taken in the module gets ``_1``,
``_2``, ... appended. The result is deterministic: the same input gives the same text.

:func:`partition_module` does the work and returns a :class:`PartitionSummary`; the pass prints
its one-line summary to stderr, in the inspector's words::

    Total device subgraph number 3, DPU subgraph number 1, CPU subgraph number 1

Running the pass on a module that is already partitioned changes nothing.
"""

from __future__ import annotations

import sys

import attrs

from xir import attributes as A
from xir.diagnostics import XirError
from xir.dialects.func import FuncOp
from xir.ir import Block, Operation, OpResult, Region
from xir.pass_manager import Pass, register_pass
from xir.symbols import SymbolTable, entry_function, resolve_symbol

from .regions import CPU, DPU, GLUE, Node, grow_regions
from .regions import Region as DeviceRegion

USER = "USER"
DEVICE_ATTR = "xir.device"
GLUE_OPS = frozenset({"dpu.to_nhwc", "dpu.to_nchw", "quant.quantize", "quant.dequantize"})


def is_constant(op: Operation) -> bool:
    """A constant: a ``*.constant`` op without operands (copied into each subgraph using it)."""
    return op.name.endswith(".constant") and not op.operands


def op_device(op: Operation) -> str:
    """Where ``op`` runs: ``DPU``, ``CPU`` or ``GLUE`` (see the module docstring)."""
    attr = op.attributes.get(DEVICE_ATTR)
    if attr is not None:
        device = getattr(attr, "value", None)
        if device not in (DPU, CPU):
            raise op.error(f"has {DEVICE_ATTR} = {attr}; expects \"DPU\" or \"CPU\"")
        return device
    if op.name in GLUE_OPS:
        return GLUE
    return DPU if op.name.startswith("dpu.") else CPU


@attrs.frozen
class Subgraph:
    """One outlined subgraph: its function's name, its device and how many ops it runs
    (constants not counted)."""

    name: str
    device: str
    ops: int


@attrs.frozen
class PartitionSummary:
    """What the partition made: the subgraphs in call order, whether there is a USER subgraph
    (the function's inputs) and how many ops ``@main`` runs itself (glue)."""

    subgraphs: tuple[Subgraph, ...] = attrs.field(converter=tuple)
    user: int = 0
    host_ops: int = 0

    def count(self, device: str) -> int:
        """The number of subgraphs of ``device`` (``USER`` counts the inputs' subgraph)."""
        if device == USER:
            return self.user
        return sum(1 for s in self.subgraphs if s.device == device)

    @property
    def total(self) -> int:
        """All subgraphs, the USER's included, as Vitis AI counts them."""
        return self.user + len(self.subgraphs)

    def names(self, device: str | None = None) -> list[str]:
        """The subgraphs' function names (of ``device`` only, if given), in call order."""
        return [s.name for s in self.subgraphs if device in (None, s.device)]

    def line(self) -> str:
        """``Total device subgraph number N, DPU subgraph number M, CPU subgraph number K``."""
        return (f"Total device subgraph number {self.total}, DPU subgraph number "
                f"{self.count(DPU)}, CPU subgraph number {self.count(CPU)}")


def _main(module: Operation) -> Operation:
    return entry_function(module, "main", "partition")


def _callee(module: Operation, call: Operation) -> Operation | None:
    ref = call.get_attr("callee")
    return resolve_symbol(module, ref) if isinstance(ref, A.SymbolRefAttr) else None


def _subgraph_calls(module: Operation, block: Block) -> list[tuple[Operation, Operation]]:
    """The calls of ``block`` to subgraph functions (those with ``xir.device``), with callees."""
    calls = []
    for op in block.ops:
        if op.name == "func.call":
            callee = _callee(module, op)
            if callee is not None and DEVICE_ATTR in callee.attributes:
                calls.append((op, callee))
    return calls


def partition_summary(module: Operation) -> PartitionSummary:
    """The summary of a partitioned module, read from ``@main`` and the functions it calls."""
    block = _main(module).regions[0].blocks[0]
    calls = _subgraph_calls(module, block)
    subgraphs = []
    for _, callee in calls:
        body = callee.regions[0].blocks[0].ops if callee.regions[0].blocks else ()
        count = sum(1 for op in body if not is_constant(op) and op.name != "func.return")
        subgraphs.append(Subgraph(callee.sym_name.value, callee.attributes[DEVICE_ATTR].value,
                                  count))
    called = {id(c) for c, _ in calls}
    host = sum(1 for op in block.ops if id(op) not in called and not is_constant(op)
               and op is not block.last_op)
    return PartitionSummary(subgraphs, user=1 if block.args else 0, host_ops=host)


def summary_line(module: Operation) -> str:
    """The one-line summary of a partitioned module (see :meth:`PartitionSummary.line`)."""
    return partition_summary(module).line()


def partition_module(module: Operation) -> PartitionSummary:
    """Partition ``@main`` of ``module`` in place (see the module docstring); its summary."""
    func = _main(module)
    if len(func.regions[0].blocks) != 1:
        raise func.error("has several blocks; partition needs a single-block @main")
    block = func.regions[0].blocks[0]
    if _subgraph_calls(module, block):
        return partition_summary(module)
    terminator = block.last_op
    ops = [op for op in block.ops if op is not terminator]
    nodes = [Node(op, op_device(op), tuple(v.owner for v in op.operands
                                          if isinstance(v, OpResult)))
             for op in ops if not is_constant(op)]
    regions = grow_regions(nodes)
    table = SymbolTable(module)
    order, calls, outlined, copied = [], [], [], {}
    for item in regions.schedule():
        if not isinstance(item, DeviceRegion):  # a glue op that stays in @main
            order.append(item)
            continue
        name = table.unique_name(f"subgraph_{len(calls)}_{item.device.lower()}")
        calls.append(_outline(table, name, item.device, list(item.members), copied))
        order.append(calls[-1])
        outlined.extend(item.members)
    position = {op: i for i, op in enumerate(ops)}
    for op in sorted(outlined, key=position.__getitem__, reverse=True):
        op.erase()
    for op in copied:
        if not any(r.uses for r in op.results):
            op.erase()
    kept = [op for op in ops if is_constant(op) and op.parent is block]
    for op in kept + order:
        op.detach()
        block.insert_before(op, terminator)
    return partition_summary(module)


def _outline(table: SymbolTable, name: str, device: str, members: list[Operation],
             copied: dict) -> Operation:
    """Move ``members`` (ops of @main, in program order) into a new function ``@name``; put a
    call to it before the first of them and make their outside users read the call's results.
    The constants they read are copied in (and noted in ``copied``)."""
    inside = set(members)
    inputs, constants = {}, {}
    for op in members:
        for v in op.operands:
            owner = v.owner if isinstance(v, OpResult) else None
            if owner in inside:
                continue
            if owner is not None and is_constant(owner):
                constants.setdefault(owner, None)
            else:
                inputs.setdefault(v, None)
    outputs = [r for op in members for r in op.results
               if any(user not in inside for user in r.users)]
    entry = Block([v.type for v in inputs])
    value_map = {}
    for arg, v in zip(entry.args, inputs):
        arg.name_hint = v.name_hint
        value_map[v] = arg
    for op in (*constants, *members):
        entry.append(op.clone(value_map))
    entry.append(Operation.create("func.return", [value_map[r] for r in outputs]))
    func = FuncOp.from_signature(name, [v.type for v in inputs], [r.type for r in outputs],
                                 visibility="private",
                                 attributes={DEVICE_ATTR: A.StringAttr(device)},
                                 body=Region([entry]))
    table.insert(func)
    call = Operation.create("func.call", list(inputs), [r.type for r in outputs],
                            properties={"callee": A.SymbolRefAttr(name)})
    members[0].parent.insert_before(call, members[0])
    for old, new in zip(outputs, call.results):
        new.name_hint = old.name_hint
        old.replace_uses_if(new, lambda user, _: user not in inside)
    copied.update(constants)
    return call


@register_pass
@attrs.frozen
class Partition(Pass):
    """Outline the DPU and CPU regions of @main into subgraph functions, called from @main."""

    name = "partition"

    def run(self, module: Operation) -> None:
        """Partition ``module`` and print the one-line summary to stderr."""
        try:
            summary = partition_module(module)
        except ValueError as e:  # a malformed device graph; regions reports it as a ValueError
            raise XirError(f"cannot partition: {e}") from None
        sys.stderr.write(summary.line() + "\n")
        sys.stderr.flush()
