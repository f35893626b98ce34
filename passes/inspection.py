"""What the inspector found: one :class:`NodeReport` per layer, and the summary over them.

This is the data behind every form of the report (terminal table, JSON, SVG). The JSON shape is
an interface other tools read::

    {"target": NAME,
     "nodes": [{"name", "op", "device", "reasons": [...], "fused_into": NAME | null,
                "notes": [...], "macs": n, "inputs": [NAME, ...]}],
     "summary": {"ops": {"DPU": n, "CPU": n, "USER": n}, "subgraphs": {"DPU": m, "CPU": k},
                 "dpu_mac_fraction": x, "macs": {"DPU": n, "CPU": n}}}

A node is a graph op (or a model input, device USER), named after the ONNX node it came from.
``fused_into`` names the node whose DPU instruction carries this one (a BatchNorm or ReLU after
a convolution); ``inputs`` name the nodes it reads, which is what subgraphs are cut along.
"""

from __future__ import annotations

import attrs

DPU, CPU, USER = "DPU", "CPU", "USER"
DEVICES = (DPU, CPU, USER)


def _tuple(values) -> tuple:
    return tuple(values)


@attrs.frozen
class NodeReport:
    """One layer: where it runs and, if not on the DPU, every reason why (each naming the node,
    the value and the allowed range, and a fix where one exists)."""

    name: str
    op: str
    device: str
    reasons: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    fused_into: str | None = None
    notes: tuple[str, ...] = attrs.field(default=(), converter=_tuple)
    macs: int = 0
    inputs: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    def to_json(self) -> dict:
        """The node as the JSON report lists it."""
        return {"name": self.name, "op": self.op, "device": self.device,
                "reasons": list(self.reasons), "fused_into": self.fused_into,
                "notes": list(self.notes), "macs": self.macs, "inputs": list(self.inputs)}


@attrs.frozen
class Summary:
    """Op counts per device, the subgraphs the partition will cut, and the DPU's share of MACs."""

    ops: dict
    subgraphs: dict
    macs: dict
    dpu_mac_fraction: float

    def to_json(self) -> dict:
        """The summary as the JSON report gives it."""
        return {"ops": dict(self.ops), "subgraphs": dict(self.subgraphs),
                "dpu_mac_fraction": self.dpu_mac_fraction, "macs": dict(self.macs)}

    def text(self) -> str:
        """The one-line summary: ``Total device subgraph number 4, DPU subgraph number 2 ...``."""
        total = sum(self.subgraphs.values()) + (1 if self.ops.get(USER) else 0)
        ops = ", ".join(f"{d} {self.ops.get(d, 0)}" for d in DEVICES)
        return (f"Total device subgraph number {total}, DPU subgraph number "
                f"{self.subgraphs.get(DPU, 0)}, CPU subgraph number {self.subgraphs.get(CPU, 0)}; "
                f"ops: {ops}; {self.dpu_mac_fraction:.1%} of MACs on the DPU")


@attrs.frozen
class InspectionReport:
    """Every node of a model inspected against one target."""

    target: str
    nodes: tuple[NodeReport, ...] = attrs.field(converter=_tuple)

    def node(self, name: str) -> NodeReport:
        """The node called ``name`` (KeyError if none)."""
        for n in self.nodes:
            if n.name == name:
                return n
        raise KeyError(name)

    def groups(self) -> dict[str, list[str]]:
        """Fused groups: each node that others fuse into, with its members in order (itself first)."""
        groups: dict[str, list[str]] = {}
        for n in self.nodes:
            if n.fused_into is not None:
                groups.setdefault(n.fused_into, [n.fused_into]).append(n.name)
        return groups

    def summary(self) -> Summary:
        """Counts per device, the subgraph count (the partitioner's regions), MAC shares."""
        ops = {d: sum(1 for n in self.nodes if n.device == d) for d in DEVICES}
        macs = {d: sum(n.macs for n in self.nodes if n.device == d) for d in (DPU, CPU)}
        total = macs[DPU] + macs[CPU]
        return Summary(ops=ops, subgraphs=self._subgraphs(), macs=macs,
                       dpu_mac_fraction=round(macs[DPU] / total, 6) if total else 0.0)

    def _subgraphs(self) -> dict[str, int]:
        # the regions the partitioner cuts (maximal one-device regions with no cycle between
        # them); model inputs (USER) are sources, not regions
        from .regions import Node, grow_regions

        regions = grow_regions(Node(n.name, n.device, n.inputs) for n in self.nodes
                               if n.device != USER)
        return {d: regions.count(d) for d in (DPU, CPU)}

    def to_json(self) -> dict:
        """The whole report as JSON data (see the module docstring for the shape)."""
        return {"target": self.target, "nodes": [n.to_json() for n in self.nodes],
                "summary": self.summary().to_json()}
