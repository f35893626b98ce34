"""The builtin dialect: ``builtin.module``, the top-level container of IR.

It belongs to the core because the parser needs it: every file denotes one module.
"""

from __future__ import annotations

from xir import attributes as A
from xir.dialect import Dialect, register_dialect
from xir.ir import Block, Operation, Region
from xir.opdef import StringAttrC, prop, region
from xir.traits import IsolatedFromAbove, NoTerminator, SingleBlock, SymbolTable


class ModuleOp(Operation):
    """A top-level container of operations: one region with one block, no terminator.

    ``resources`` maps resource names to the :class:`~xir.attributes.ResourceHandle` blobs that
    ``dense_resource<...>`` attributes in the module refer to.
    """

    name = "builtin.module"
    body_region = region()
    sym_name = prop(StringAttrC, optional=True)
    traits = (IsolatedFromAbove(), NoTerminator(), SymbolTable(), SingleBlock())

    @classmethod
    def build(cls, region: Region | None = None, sym_name: str | None = None,
              attributes: dict | None = None, location=None) -> "ModuleOp":
        """A module holding ``region`` (a new one with an empty block by default)."""
        if region is None:
            region = Region([Block()])
        elif not region.blocks:
            region.add_block()
        props = {} if sym_name is None else {"sym_name": A.StringAttr(sym_name)}
        op = Operation.__new__(cls)
        Operation.__init__(op, cls.name, (), (), attributes, props, [region], location=location)
        op.resources = {}
        return op

    def clone(self, value_map: dict | None = None) -> "ModuleOp":
        """A deep copy that keeps the resources (the copy's attributes share their handles)."""
        op = super().clone(value_map)
        op.resources = dict(getattr(self, "resources", None) or {})
        return op

    @property
    def body(self) -> Block:
        """The module's single block."""
        return self.regions[0].blocks[0]

    def verify_(self) -> None:
        if self.results or self._operands:
            raise self.error("takes no operands and has no results")
        if len(self.regions[0].blocks) != 1:
            raise self.error("expects one block in its region")
        if self.regions[0].blocks[0].args:
            raise self.error("expects its block to have no arguments")


BUILTIN = register_dialect(Dialect("builtin", [ModuleOp], "The module and builtin types and attributes."))
