"""Structural comparison of two pieces of IR, ignoring value and block names.

Two ops are the same IR when they have the same names, types, attributes, properties, regions,
blocks and successors, and their operands are wired the same way: an operand of one refers to the
result (by op position and result index) or block argument (by block position and argument index)
that corresponds to the other's. Names (``%x``, ``^bb1``) and parse positions do not matter;
locations matter unless ``ignore_locations`` is set.

Attributes are compared by value, more strictly than ``==`` where ``==`` is loose and more loosely
where the IR has several spellings of one value:

- floats by bit pattern (``-0.0`` differs from ``0.0``; a NaN equals the same NaN);
- dense elements by type and contents (``dense<[1.0, 1.0]>`` equals the splat ``dense<1.0>``);
- dictionaries by entries in order;
- resources by name and bytes.

``first_difference(a, b)`` returns a sentence naming where the first difference is (or None);
``assert_same_ir(a, b)`` raises an AssertionError with that sentence.
"""

from __future__ import annotations

import struct

from xir import attributes as A
from xir.ir import Block, Operation


def assert_same_ir(a: Operation, b: Operation, **options) -> None:
    """Raise AssertionError describing the first structural difference between ``a`` and ``b``
    (``options`` as for :func:`first_difference`)."""
    diff = first_difference(a, b, **options)
    if diff is not None:
        raise AssertionError(diff)


def same_ir(a: Operation, b: Operation, **options) -> bool:
    return first_difference(a, b, **options) is None


def first_difference(a: Operation, b: Operation, ignore_locations: bool = False,
                     unknown_location_is_none: bool = False,
                     resources: str = "all") -> str | None:
    """Where ``a`` and ``b`` first differ, as a sentence, or None if they are the same IR.

    ``ignore_locations``: op locations do not matter. ``unknown_location_is_none``: an op without
    a location equals one at ``loc(unknown)`` (xDSL gives every op a location). ``resources``:
    compare the resource blobs of the two modules, ``"all"`` of them, only those ``"referenced"``
    by attributes, or ``"none"``.
    """
    comparer = _Comparer(ignore_locations, unknown_location_is_none)
    diff = comparer.pair(a, b, _op_path("", 0, a))
    if diff is None:
        diff = comparer.compare(a, b, _op_path("", 0, a))
    if diff is None and resources != "none":
        diff = _compare_resources(a, b, referenced_only=resources == "referenced")
    return diff


# -- values and attributes -----------------------------------------------------------------------


def _float_bits(x: float) -> bytes:
    return struct.pack("<d", x)


def values_equal(a, b) -> bool:
    """Deep equality of attribute and type payloads (floats by bits, dicts in order)."""
    if a is b:
        return True
    if isinstance(a, bool) or isinstance(b, bool):
        return type(a) is type(b) and a == b
    if isinstance(a, float) or isinstance(b, float):
        return isinstance(a, float) and isinstance(b, float) and _float_bits(a) == _float_bits(b)
    if isinstance(a, (tuple, list)):
        return (isinstance(b, (tuple, list)) and len(a) == len(b)
                and all(values_equal(x, y) for x, y in zip(a, b)))
    if isinstance(a, dict):
        return (isinstance(b, dict) and list(a) == list(b)
                and all(values_equal(a[k], b[k]) for k in a))
    if type(a) is not type(b):
        return False
    if isinstance(a, A.DenseElementsAttr):
        return values_equal(a.type, b.type) and _dense_bytes(a) == _dense_bytes(b)
    if isinstance(a, A.DenseResourceAttr):
        return a.handle.name == b.handle.name and values_equal(a.type, b.type)
    fields = _fields(a)
    if fields is not None:
        return all(values_equal(getattr(a, f), getattr(b, f)) for f in fields)
    return a == b


def _fields(value):
    fields = getattr(type(value), "_fields", None)  # xir.value.value_class
    if fields is not None:
        return fields
    attrs_fields = getattr(type(value), "__attrs_attrs__", None)
    if attrs_fields is not None:
        return tuple(f.name for f in attrs_fields)
    return None


def _dense_bytes(attr: A.DenseElementsAttr) -> bytes:
    import numpy as np

    return np.ascontiguousarray(attr.to_numpy()).tobytes()


def attr_text(a) -> str:
    try:
        return str(a)
    except Exception as e:  # pragma: no cover - only used in messages
        return f"<unprintable {type(a).__name__}: {e}>"


def _dict_difference(kind: str, a: dict, b: dict) -> str | None:
    if list(a) != list(b):
        return f"{kind} names differ: {list(a)} vs {list(b)}"
    for key in a:
        if not values_equal(a[key], b[key]):
            return (f"{kind} '{key}' differs: {attr_text(a[key])} ({type(a[key]).__name__}) vs "
                    f"{attr_text(b[key])} ({type(b[key]).__name__})")
    return None


def _compare_resources(a: Operation, b: Operation, referenced_only: bool) -> str | None:
    def blobs(op):
        resources = getattr(op, "resources", None) or {}
        names = referenced_resources(op) if referenced_only else set(resources)
        return {name: (h.data, h.alignment) for name, h in resources.items()
                if h.data is not None and name in names}

    ra, rb = blobs(a), blobs(b)
    if ra != rb:
        return f"resources differ: {sorted(ra)} vs {sorted(rb)}"
    return None


def referenced_resources(op: Operation) -> set[str]:
    """The names of the resources that attributes in ``op`` (and nested ops) refer to."""
    names: set[str] = set()

    def visit(value):
        if isinstance(value, A.DenseResourceAttr):
            names.add(value.handle.name)
        elif isinstance(value, (A.ArrayAttr, A.DictionaryAttr)):
            for item in (value.value.values() if isinstance(value, A.DictionaryAttr) else value.value):
                visit(item)

    for nested in op.walk():
        for value in (*nested.properties.values(), *nested.attributes.values()):
            visit(value)
    return names


# -- operations ------------------------------------------------------------------------------------


def assert_consistent(op: Operation) -> None:
    """The links of ``op`` agree both ways: every operand's use list has the use and every use is
    an operand; every op, block and region points to its parent."""
    values = set()
    for nested in op.walk():
        for i, value in enumerate(nested.operands):
            assert (nested, i) in value.uses, f"'{nested.name}' operand {i} is missing from its value's uses"
            values.add(value)
        values.update(nested.results)
        for region in nested.regions:
            assert region.parent is nested
            for block in region.blocks:
                assert block.parent is region
                values.update(block.args)
                for inner in block.ops:
                    assert inner.parent is block
    for value in values:
        for user, i in value.uses:
            assert user.operands[i] is value, f"a use by '{user.name}' (operand {i}) is stale"


def _op_path(prefix: str, index: int, op: Operation) -> str:
    return f"{prefix}/op{index}:{op.name}"


class _Comparer:
    def __init__(self, ignore_locations: bool, unknown_location_is_none: bool):
        self.ignore_locations = ignore_locations
        self.unknown_location_is_none = unknown_location_is_none
        self.values: dict = {}  # value of a -> value of b
        self.blocks: dict = {}  # block of a -> block of b

    def pair(self, a: Operation, b: Operation, path: str) -> str | None:
        """Pair the results, regions, blocks and block arguments of ``a`` and ``b``."""
        if a.name != b.name:
            return f"{path}: op name '{a.name}' vs '{b.name}'"
        if len(a.results) != len(b.results):
            return f"{path}: {len(a.results)} results vs {len(b.results)}"
        for ra, rb in zip(a.results, b.results):
            self.values[ra] = rb
        if len(a.regions) != len(b.regions):
            return f"{path}: {len(a.regions)} regions vs {len(b.regions)}"
        for i, (ga, gb) in enumerate(zip(a.regions, b.regions)):
            rpath = f"{path}/region{i}"
            if len(ga.blocks) != len(gb.blocks):
                return f"{rpath}: {len(ga.blocks)} blocks vs {len(gb.blocks)}"
            for j, (ba, bb) in enumerate(zip(ga.blocks, gb.blocks)):
                bpath = f"{rpath}/block{j}"
                self.blocks[ba] = bb
                if len(ba.args) != len(bb.args):
                    return f"{bpath}: {len(ba.args)} arguments vs {len(bb.args)}"
                for k, (xa, xb) in enumerate(zip(ba.args, bb.args)):
                    if not values_equal(xa.type, xb.type):
                        return f"{bpath}: argument {k} has type {xa.type} vs {xb.type}"
                    self.values[xa] = xb
                opsa, opsb = list(ba.ops), list(bb.ops)
                if len(opsa) != len(opsb):
                    names_a = [o.name for o in opsa]
                    names_b = [o.name for o in opsb]
                    return f"{bpath}: {len(opsa)} ops vs {len(opsb)}: {names_a} vs {names_b}"
                for k, (oa, ob) in enumerate(zip(opsa, opsb)):
                    diff = self.pair(oa, ob, _op_path(bpath, k, oa))
                    if diff is not None:
                        return diff
        return None

    def compare(self, a: Operation, b: Operation, path: str) -> str | None:
        """Compare everything but the structure :meth:`pair` already checked."""
        for i, (ra, rb) in enumerate(zip(a.results, b.results)):
            if not values_equal(ra.type, rb.type):
                return f"{path}: result {i} has type {ra.type} vs {rb.type}"
        if len(a.operands) != len(b.operands):
            return f"{path}: {len(a.operands)} operands vs {len(b.operands)}"
        for i, (va, vb) in enumerate(zip(a.operands, b.operands)):
            expected = self.values.get(va, va)  # values defined outside the compared IR map to themselves
            if expected is not vb:
                return f"{path}: operand {i} is {_describe(va)} vs {_describe(vb)}"
        for i, (va, vb) in enumerate(zip(a.operands, b.operands)):
            if not values_equal(va.type, vb.type):
                return f"{path}: operand {i} has type {va.type} vs {vb.type}"
        if len(a.successors) != len(b.successors):
            return f"{path}: {len(a.successors)} successors vs {len(b.successors)}"
        for i, (sa, sb) in enumerate(zip(a.successors, b.successors)):
            if self.blocks.get(sa, sa) is not sb:
                return f"{path}: successor {i} is {_describe_block(sa)} vs {_describe_block(sb)}"
        diff = _dict_difference("property", a.properties, b.properties)
        if diff is None:
            diff = _dict_difference("attribute", a.attributes, b.attributes)
        if diff is not None:
            return f"{path}: {diff}"
        if not self.ignore_locations and not values_equal(self._loc(a), self._loc(b)):
            return f"{path}: location {attr_text(a.location)} vs {attr_text(b.location)}"
        for i, (ga, gb) in enumerate(zip(a.regions, b.regions)):
            for j, (ba, bb) in enumerate(zip(ga.blocks, gb.blocks)):
                bpath = f"{path}/region{i}/block{j}"
                for k, (oa, ob) in enumerate(zip(ba.ops, bb.ops)):
                    diff = self.compare(oa, ob, _op_path(bpath, k, oa))
                    if diff is not None:
                        return diff
        return None


    def _loc(self, op: Operation):
        if self.unknown_location_is_none and isinstance(op.location, A.UnknownLoc):
            return None
        return op.location


def _describe(value) -> str:
    owner = getattr(value, "owner", None)
    if isinstance(owner, Operation):
        return f"result {value.index} of '{owner.name}'"
    if isinstance(owner, Block):
        region = owner.parent
        position = region.blocks.index(owner) if region is not None else "?"
        parent = owner.parent_op.name if owner.parent_op is not None else "?"
        return f"argument {value.index} of block {position} in '{parent}'"
    return f"unattached value of type {value.type}"


def _describe_block(block: Block) -> str:
    region = block.parent
    position = region.blocks.index(block) if region is not None else "?"
    return f"block {position} with {len(block.args)} arguments"


__all__ = ["assert_consistent", "assert_same_ir", "first_difference", "referenced_resources", "same_ir",
           "values_equal"]
