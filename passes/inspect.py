"""inspect: which layers of a model run on a DPU target, which fall back to the CPU, and why.

:func:`inspect_module` checks every op of ``@main`` against a target description: each op alone
(:mod:`.dpu_rules`), then the fusion patterns (:mod:`.fusion`: conv → bn → relu is one DPU op),
then what depends on neighbours (an activation with nothing to fuse into; a reshape, flatten or
squeeze runs on the DPU only inside a DPU subgraph). The result is an
:class:`~.inspection.InspectionReport`. As a pass (``xir-opt -p 'inspect{target=B512}'``) it
writes the findings onto the ops as discardable attributes: ``xir.device``, ``xir.reasons`` and
``xir.fused_into``, for the partitioner and for FileCheck.
"""

from __future__ import annotations

import attrs

from xir import attributes as A
from xir.ir import Operation
from xir.pass_manager import Pass, register_pass
from xir.symbols import entry_function

from . import dpu_rules as R
from .fusion import find_groups
from .inspection import CPU, DPU, USER, InspectionReport, NodeReport

SKIPPED = ("graph.constant", "func.return")


def main_function(module: Operation) -> Operation:
    """``@main`` of ``module`` (XirError if there is none)."""
    return entry_function(module, "main", "inspect")


class _Inspection:
    """The state of one inspection: every op's verdict, device and group."""

    def __init__(self, func: Operation, target):
        self.target = target
        self.block = func.regions[0].blocks[0]
        self.ops = [op for op in self.block.ops if op.name not in SKIPPED]
        self.names = _unique_names(func, self.ops)
        self.verdicts = {op: R.check(op, target) for op in self.ops}
        self.anchor_of: dict = {}
        self.device: dict = {}
        self.reasons: dict = {op: list(v.reasons) for op, v in self.verdicts.items()}

    def run(self) -> None:
        for group in find_groups(self.ops, self.target, self.verdicts):
            self.verdicts[group.anchor] = group.verdict
            self.reasons[group.anchor] = list(group.verdict.reasons)
            for member in (*group.leading, *group.following):
                self.anchor_of[member] = group.anchor
        for op in self.ops:
            verdict = self.verdicts[op]
            if op in self.anchor_of or verdict.kind == "layout":
                continue
            if verdict.kind == "activation":
                verdict = self.verdicts[op] = R.standalone_activation(op, self.target, verdict)
                self.reasons[op] = list(verdict.reasons)
            self.device[op] = DPU if verdict.on_dpu else CPU
            hint = self._order_hint(op)
            if hint and self.device[op] == CPU:
                self.reasons[op].append(hint)
        for member, anchor in self.anchor_of.items():
            self.device[member] = self.device[anchor]
            self.reasons[member] = [] if self.device[anchor] == DPU else [
                f"{self.names[member]}: fused into '{self.names[anchor]}', which runs on the CPU"]
        self._place_layout_ops()

    def _place_layout_ops(self) -> None:
        """A layout op runs on the DPU only between DPU ops: demote until nothing changes."""
        layout = [op for op in self.ops if self.verdicts[op].kind == "layout"]
        for op in layout:
            self.device[op], self.reasons[op] = DPU, []
        changed = True
        while changed:
            changed = False
            for op in layout:
                if self.device[op] == DPU:
                    reason = self._layout_reason(op)
                    if reason:
                        self.device[op], self.reasons[op] = CPU, [reason]
                        changed = True

    def _layout_reason(self, op) -> str | None:
        what, name = op.name.split(".")[1], self.names[op]
        producer = R.producer(op.operands[0])
        if producer is None:
            return f"{name}: The input of {what} is not on DPU (it is a model input)"
        if self.device.get(producer) != DPU:
            return (f"{name}: The input of {what} is not on DPU (it comes from "
                    f"'{self.names.get(producer, producer.name)}')")
        for user in op.results[0].users:
            if user.name == "func.return":
                return f"{name}: The output of {what} is a model output, which the CPU receives"
            if self.device.get(user) != DPU:
                return f"{name}: The output of {what} is not used on DPU (by '{self.names[user]}')"
        return None

    def _notes(self, op) -> list[str]:
        notes = list(self.verdicts[op].notes) if self.device[op] == DPU and op not in self.anchor_of \
            else []
        hint = self._order_hint(op)
        if hint and self.device[op] == DPU:
            notes.append(hint)
        from .prune.sparse import sparsity_note

        sparse = sparsity_note(op, R.node_name(op))
        if sparse:
            notes.append(sparse)
        return notes

    def _order_hint(self, op) -> str | None:
        """For an affine left on its own because it follows an activation fused into a
        convolution (conv → relu → bn): say so, and the fix."""
        if self.verdicts[op].kind != "affine" or op in self.anchor_of:
            return None
        act = R.producer(op.operands[0])
        anchor = self.anchor_of.get(act)
        if act is None or act.name not in R.ACTIVATION_OPS or anchor is None:
            return None
        what = "BatchNorm" if op.name == "graph.batch_norm" else op.name.split(".")[1]
        return (f"{self.names[op]}: does not fold into '{self.names[anchor]}' because it follows "
                f"the activation '{self.names[act]}'; move the {what} before the activation")

    def report(self) -> InspectionReport:
        nodes = [NodeReport(name, "input", USER) for name in _arg_names(self.block)]
        args = dict(zip(self.block.args, _arg_names(self.block)))
        for op in self.ops:
            inputs = [args[v] if v in args else self.names[R.producer(v)] for v in op.operands
                      if v in args or R.producer(v) in self.names]
            anchor = self.anchor_of.get(op)
            nodes.append(NodeReport(
                name=self.names[op], op=_op_label(op), device=self.device[op],
                reasons=self._named(op, self.reasons[op]),
                fused_into=self.names[anchor] if anchor else None,
                notes=self._named(op, self._notes(op)),
                macs=R.macs(op), inputs=inputs))
        return InspectionReport(self.target.name, nodes)

    def _named(self, op, texts) -> list[str]:
        """The rules start their messages with the ONNX node's name; where that node became
        several ops (``n``, ``n#2``, ...), start them with the name the report gives ``op``."""
        base, name = R.node_name(op), self.names[op]
        prefix = f"{base}: "
        return [f"{name}: {t[len(prefix):]}" if name != base and t.startswith(prefix) else t
                for t in texts]


def _op_label(op) -> str:
    if op.name == "graph.onnx":
        return f"onnx.{op.op_type.value}"
    return op.name.split(".", 1)[1] if op.name.startswith("graph.") else op.name


def _arg_names(block) -> list[str]:
    """The names users know the function's inputs by."""
    from xir.interpreter import input_names

    return input_names(block.parent.parent)[1]


def _unique_names(func, ops) -> dict:
    """Each op's node name; an ONNX node that became several ops names them ``n``, ``n#2``, ..."""
    taken = set(_arg_names(func.regions[0].blocks[0]))
    names = {}
    for op in ops:
        base = R.node_name(op)
        name, k = base, 2
        while name in taken:
            name, k = f"{base}#{k}", k + 1
        taken.add(name)
        names[op] = name
    return names


def inspect_module(module: Operation, target) -> InspectionReport:
    """Inspect ``@main`` of a graph-dialect module against ``target`` (a
    :class:`~xir.backend.targets.Target`, or anything :func:`load_target` takes)."""
    from xir.backend.targets import load_target

    inspection = _Inspection(main_function(module), load_target(target))
    inspection.run()
    return inspection.report()


@register_pass
@attrs.frozen
class Inspect(Pass):
    """Mark every op with the device it runs on against a DPU target, and why."""

    name = "inspect"
    target: str = "DPUCZDX8G_ISA1_B4096"

    def run(self, module: Operation) -> None:
        """Attach ``xir.device``, ``xir.reasons`` and ``xir.fused_into`` to the ops of @main."""
        report = {n.name: n for n in inspect_module(module, self.target).nodes}
        func = main_function(module)
        ops = [op for op in func.regions[0].blocks[0].ops if op.name not in SKIPPED]
        for op, name in _unique_names(func, ops).items():
            node = report[name]
            op.attributes["xir.device"] = A.StringAttr(node.device)
            if node.reasons:
                op.attributes["xir.reasons"] = A.ArrayAttr(tuple(A.StringAttr(r) for r in node.reasons))
            if node.fused_into:
                op.attributes["xir.fused_into"] = A.StringAttr(node.fused_into)
