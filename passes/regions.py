"""Regions: the maximal one-device pieces a function is cut into, with no cycle between them.

This is the part of partitioning that knows no dialect, shared by the partitioner
(:mod:`.partition`, which outlines each region into a function) and the inspector's summary
(:meth:`.inspection.InspectionReport.summary`, which counts them), so that both give the same
numbers. It sees a function as a list of :class:`Node` s in program order, each with a key, a device
and the keys of the nodes it reads; a key that names no node (a function argument, which is the
USER's, or a constant, which every region that uses it copies) is a source and makes no edge.

Devices: ``DPU``, ``CPU`` and ``GLUE``. A glue node (the layout and quantize/dequantize ops at a
DPU boundary) goes with the CPU: it may share a region with CPU nodes and other glue nodes. A
region holding only glue nodes is reported with device ``GLUE``; the partitioner dissolves it (its
ops stay in ``@main`` as host code) and :meth:`Regions.schedule` lists its nodes one by one.

The algorithm, one pass over the nodes in program order. Each node ``v`` looks at the regions
of the nodes it reads (its *producer regions*, in operand order) and, keeping the device rule
above, takes greedily as many of them as it can without making a cycle between regions:

- ``v`` may join a producer region ``R`` only if ``v`` does not also reach ``R``'s nodes through
  another region: no other producer region of ``v`` is downstream of ``R``;
- ``v`` may merge several producer regions ``M`` only if no region outside ``M`` lies on a path
  from one region of ``M`` to another or to ``v``.

Both are one test: for every region ``X`` that reaches ``v`` and is not in ``M``, no region of ``M``
reaches ``X``. Each region keeps the set of regions that reach it (transitively closed, as a bit
set); a merge renames the merged ids in every set that holds one of them and adds the merged
region's ancestors there. If ``v`` can take no producer region it starts a new one. Adding a node
that nothing reads yet can never close a cycle, so the regions form a DAG after every step.

Determinism: the result depends only on the order of the nodes and of their inputs (no hashing of
keys, no set iteration): regions are numbered by their first node, candidates are tried in
operand order, and :meth:`Regions.schedule` breaks ties by program order.
"""

from __future__ import annotations

import heapq
from typing import Hashable, Iterable

import attrs

DPU, CPU, GLUE = "DPU", "CPU", "GLUE"
REGION_DEVICES = (DPU, CPU, GLUE)


def _tuple(values) -> tuple:
    return tuple(values)


@attrs.frozen
class Node:
    """One op of the function: its ``key`` (any hashable: a name, an op), its ``device``
    (``DPU``, ``CPU`` or ``GLUE``) and the keys of the nodes it reads, in operand order."""

    key: Hashable
    device: str
    inputs: tuple = attrs.field(default=(), converter=_tuple)


@attrs.frozen
class Region:
    """A region: its ``index`` (regions are numbered by their first node), its ``device``
    (``GLUE`` for a region of glue nodes only) and its nodes' keys in program order."""

    index: int
    device: str
    members: tuple = attrs.field(converter=_tuple)


@attrs.frozen
class Regions:
    """The regions of a list of nodes, and which region holds each node."""

    nodes: tuple[Node, ...] = attrs.field(converter=_tuple)
    regions: tuple[Region, ...] = attrs.field(converter=_tuple)
    region_of: dict = attrs.field(factory=dict)

    def count(self, device: str) -> int:
        """The number of regions of ``device``."""
        return sum(1 for r in self.regions if r.device == device)

    def edges(self) -> list[tuple[int, int]]:
        """The data edges between regions, ``(producer index, consumer index)``, each once."""
        found = {}
        for n in self.nodes:
            for k in n.inputs:
                if k in self.region_of and self.region_of[k] != self.region_of[n.key]:
                    found[(self.region_of[k], self.region_of[n.key])] = None
        return list(found)

    def schedule(self) -> list:
        """An order to run the function in: each DPU or CPU region as one :class:`Region`, each
        node of a glue-only region as its key, every item after all it reads; among the items
        that are ready, the one whose first node comes first in program order runs first."""
        position = {n.key: i for i, n in enumerate(self.nodes)}

        def unit(key):
            region = self.regions[self.region_of[key]]
            return ("node", key) if region.device == GLUE else ("region", region.index)

        first: dict = {}
        for n in self.nodes:
            first.setdefault(unit(n.key), position[n.key])
        waiting = {u: 0 for u in first}
        consumers: dict = {u: [] for u in first}
        for n in self.nodes:
            to = unit(n.key)
            for k in dict.fromkeys(n.inputs):
                if k in self.region_of and unit(k) != to and to not in consumers[unit(k)]:
                    consumers[unit(k)].append(to)
                    waiting[to] += 1
        ready = [(first[u], u) for u, w in waiting.items() if w == 0]
        heapq.heapify(ready)
        order = []
        while ready:
            _, u = heapq.heappop(ready)
            order.append(self.regions[u[1]] if u[0] == "region" else u[1])
            for c in consumers[u]:
                waiting[c] -= 1
                if waiting[c] == 0:
                    heapq.heappush(ready, (first[c], c))
        if len(order) != len(first):
            raise AssertionError("regions: the region graph has a cycle")  # a bug, never input
        return order


def _compatible(a: str, b: str) -> bool:
    return a == b or (a != DPU and b != DPU)


def _bits(mask: int):
    while mask:
        low = mask & -mask
        yield low.bit_length() - 1
        mask ^= low


def grow_regions(nodes: Iterable[Node]) -> Regions:
    """Cut ``nodes`` (in program order: each after every node it reads) into maximal one-device
    regions with no cycle between them (see the module docstring for the algorithm)."""
    nodes = tuple(nodes)
    position = {n.key: i for i, n in enumerate(nodes)}
    owner: dict = {}  # key -> live region id
    members: dict[int, list] = {}  # live region id -> keys
    device: dict[int, str] = {}
    reaches: dict[int, int] = {}  # live region id -> bit set of the regions that reach it
    for i, n in enumerate(nodes):
        if n.device not in REGION_DEVICES:
            raise ValueError(f"regions: node {n.key!r} has device {n.device!r} "
                             f"(expects one of {', '.join(REGION_DEVICES)})")
        for k in n.inputs:
            if position.get(k, -1) >= i:
                raise ValueError(f"regions: node {n.key!r} reads {k!r}, which does not come "
                                 "before it")
        producers = list(dict.fromkeys(owner[k] for k in n.inputs if k in owner))
        upstream = 0  # every region that reaches n
        for p in producers:
            upstream |= (1 << p) | reaches[p]
        chosen = 0
        for p in producers:
            if _compatible(device[p], n.device) and _acyclic(chosen | (1 << p), upstream, reaches):
                chosen |= 1 << p
        if not chosen:
            rid = len(device)
            members[rid], device[rid], reaches[rid] = [n.key], n.device, upstream
            owner[n.key] = rid
            continue
        ids = list(_bits(chosen))
        rid = ids[0]
        merged = sorted([k for c in ids for k in members[c]] + [n.key], key=position.__getitem__)
        kinds = {device[c] for c in ids} | {n.device}
        ancestors = upstream & ~chosen
        for c in ids[1:]:
            del members[c], reaches[c]
            device[c] = None  # ids are never reused
        members[rid], reaches[rid] = merged, ancestors
        device[rid] = DPU if DPU in kinds else CPU if CPU in kinds else GLUE
        for k in merged:
            owner[k] = rid
        for other, mask in reaches.items():
            if other != rid and mask & chosen:
                reaches[other] = (mask & ~chosen) | (1 << rid) | ancestors
    live = sorted(members, key=lambda r: position[members[r][0]])
    number = {rid: index for index, rid in enumerate(live)}
    regions = tuple(Region(number[rid], device[rid], members[rid]) for rid in live)
    return Regions(nodes, regions, {k: number[rid] for k, rid in owner.items()})


def _acyclic(chosen: int, upstream: int, reaches: dict[int, int]) -> bool:
    """Whether merging the regions of ``chosen`` with a node reached by ``upstream`` leaves the
    region graph acyclic: no region outside ``chosen`` that reaches the node is reached by
    one of ``chosen``."""
    return all(not reaches[x] & chosen for x in _bits(upstream & ~chosen))
