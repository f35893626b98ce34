"""The IR's objects: operations, values, blocks and regions.

An :class:`Operation` has a name, operands (values), results, attributes, properties, regions,
successor blocks and a location. A :class:`Value` is an op result or a block argument and knows its
uses. A :class:`Block` holds operations in a doubly linked list (insert and erase are O(1)) and has
arguments; a :class:`Region` holds blocks. Registered ops are instances of subclasses of
:class:`Operation` declared with :mod:`xir.opdef`; the rest are plain :class:`Operation` objects.
"""

from __future__ import annotations

from typing import Iterator

from xir.types import Type


class Value:
    """An SSA value: a result of an operation or an argument of a block.

    ``uses`` holds ``(operation, operand_index)`` pairs in the order the uses were made: a dict
    used as an ordered set (values are None), so that dropping a use is O(1) however many there are.
    ``name_hint`` is the name the value had in the text (``%x``), which the printer keeps.
    """

    __slots__ = ("type", "uses", "name_hint")

    def __init__(self, type: Type, name_hint: str | None = None):
        self.type = type
        self.uses: dict[tuple[Operation, int], None] = {}
        self.name_hint = name_hint

    @property
    def users(self) -> list["Operation"]:
        """The operations that use this value, each once, in first-use order."""
        return list(dict.fromkeys(op for op, _ in self.uses))

    def has_uses(self) -> bool:
        return bool(self.uses)

    def replace_all_uses_with(self, other: "Value") -> None:
        """Make every user of this value use ``other`` instead."""
        if other is self:
            return
        for op, index in self.uses:
            op._operands[index] = other
            other.uses[(op, index)] = None
        self.uses = {}

    def replace_uses_if(self, other: "Value", predicate) -> None:
        """Replace the uses ``(op, index)`` for which ``predicate(op, index)`` holds."""
        keep = {}
        for op, index in self.uses:
            if predicate(op, index):
                op._operands[index] = other
                other.uses[(op, index)] = None
            else:
                keep[(op, index)] = None
        self.uses = keep

    def __repr__(self) -> str:
        return f"<{type(self).__name__} %{self.name_hint or '?'}: {self.type}>"


class OpResult(Value):
    """Result number ``index`` of operation ``owner``."""

    __slots__ = ("owner", "index")

    def __init__(self, type: Type, owner: "Operation", index: int, name_hint: str | None = None):
        Value.__init__(self, type, name_hint)
        self.owner = owner
        self.index = index


class BlockArgument(Value):
    """Argument number ``index`` of block ``owner``."""

    __slots__ = ("owner", "index")

    def __init__(self, type: Type, owner: "Block", index: int, name_hint: str | None = None):
        Value.__init__(self, type, name_hint)
        self.owner = owner
        self.index = index


class Operation:
    """One operation. Create with :meth:`create` (which picks the registered class for ``name``).

    ``attributes`` and ``properties`` are dicts from names to attributes (MLIR's discardable
    attributes and inherent properties). ``location`` is the op's IR location (printed);
    ``position`` is ``(filename, line, column)`` where the parser read it (not printed), so that
    diagnostics about parsed IR point into the file.
    """

    __slots__ = (
        "_name", "_operands", "results", "attributes", "properties", "regions", "successors",
        "location", "position", "parent", "prev_op", "next_op",
    )

    # Set on registered subclasses by xir.opdef; None on generic (unregistered) operations.
    definition = None

    def __init__(
        self,
        name: str,
        operands=(),
        result_types=(),
        attributes: dict | None = None,
        properties: dict | None = None,
        regions=(),
        successors=(),
        location=None,
        position=None,
    ):
        self._name = name
        self._operands: list[Value] = list(operands)
        for i, value in enumerate(self._operands):
            value.uses[(self, i)] = None
        self.results = [OpResult(t, self, i) for i, t in enumerate(result_types)]
        self.attributes = {} if attributes is None else attributes
        self.properties = {} if properties is None else properties
        self.regions: list[Region] = []
        for region in regions:
            self.add_region(region)
        self.successors: list[Block] = list(successors)
        self.location = location
        self.position = position
        self.parent: Block | None = None
        self.prev_op: Operation | None = None
        self.next_op: Operation | None = None

    def __init_subclass__(cls, **kwargs):
        # A class that names an op (``name = "dialect.op"``) is an op definition: collect it.
        super().__init_subclass__(**kwargs)
        if isinstance(cls.__dict__.get("name"), str):
            from xir.opdef import collect_definition

            cls.definition = collect_definition(cls)

    def error(self, message: str):
        """An XirError ``'dialect.op' op <message>`` placed at this op (raise it)."""
        from xir.opdef import op_error

        return op_error(self, message)

    @property
    def name(self) -> str:
        """The full op name, ``dialect.op`` (registered classes define it as a class attribute)."""
        return self._name

    @classmethod
    def create(cls, name: str, *args, **kwargs) -> "Operation":
        """Build an op of the class registered for ``name`` (or a generic op if none is)."""
        from xir.dialect import lookup_op

        op_class = lookup_op(name) or Operation
        op = Operation.__new__(op_class)
        Operation.__init__(op, name, *args, **kwargs)
        return op

    # -- operands --------------------------------------------------------------------------

    @property
    def operands(self) -> tuple[Value, ...]:
        return tuple(self._operands)

    def set_operand(self, index: int, value: Value) -> None:
        """Use ``value`` as operand ``index`` (updating both values' use lists)."""
        old = self._operands[index]
        del old.uses[(self, index)]
        self._operands[index] = value
        value.uses[(self, index)] = None

    def set_operands(self, values) -> None:
        """Replace the whole operand list."""
        self._drop_operand_uses()
        self._operands = list(values)
        for i, value in enumerate(self._operands):
            value.uses[(self, i)] = None

    def _drop_operand_uses(self) -> None:
        for i, value in enumerate(self._operands):
            value.uses.pop((self, i), None)  # tolerant: the value's own op may be destroyed first

    @property
    def result(self) -> Value:
        """The single result of a one-result op."""
        if len(self.results) != 1:
            raise ValueError(f"'{self.name}' has {len(self.results)} results, not one")
        return self.results[0]

    @property
    def result_types(self) -> tuple[Type, ...]:
        return tuple(r.type for r in self.results)

    @property
    def operand_types(self) -> tuple[Type, ...]:
        return tuple(v.type for v in self._operands)

    @property
    def dialect_name(self) -> str:
        return self.name.partition(".")[0]

    # -- structure -------------------------------------------------------------------------

    def add_region(self, region: "Region | None" = None) -> "Region":
        """Append a region (a new empty one by default) and return it."""
        region = Region() if region is None else region
        region.parent = self
        self.regions.append(region)
        return region

    @property
    def parent_op(self) -> "Operation | None":
        """The operation whose region holds this op, if any."""
        block = self.parent
        region = block.parent if block is not None else None
        return region.parent if region is not None else None

    def is_ancestor_of(self, other: "Operation") -> bool:
        """Whether ``other`` is this op or nested somewhere inside its regions."""
        while other is not None:
            if other is self:
                return True
            other = other.parent_op
        return False

    def walk(self, reverse: bool = False) -> Iterator["Operation"]:
        """This op and every op nested in it, children before parents (post-order).

        The walk tolerates erasing the op it has just yielded.
        """
        regions = reversed(self.regions) if reverse else self.regions
        for region in regions:
            for block in (reversed(region.blocks) if reverse else region.blocks):
                for op in (block.ops_reversed() if reverse else block.ops_safe()):
                    yield from op.walk(reverse)
        yield self

    def walk_preorder(self) -> Iterator["Operation"]:
        """This op, then every op nested in it, parents before children."""
        yield self
        for region in self.regions:
            for block in region.blocks:
                for op in block.ops_safe():
                    yield from op.walk_preorder()

    def detach(self) -> "Operation":
        """Unlink this op from its block (it keeps its operands and uses)."""
        block = self.parent
        if block is not None:
            block._unlink(self)
        return self

    def erase(self) -> None:
        """Remove this op and everything inside it. Its results must have no uses left."""
        for result in self.results:
            if result.uses:
                users = ", ".join(sorted({op.name for op, _ in result.uses}))
                raise ValueError(f"cannot erase '{self.name}': its result is still used by {users}")
        self.detach()
        self._destroy()

    def _destroy(self) -> None:
        for region in self.regions:
            for block in region.blocks:
                for op in list(block.ops_reversed()):
                    for result in op.results:
                        result.uses = {}
                    op._destroy()
        self._drop_operand_uses()
        self._operands = []

    def clone(self, value_map: dict | None = None) -> "Operation":
        """A deep copy of this op, with operands remapped through ``value_map`` (updated in place
        with the results and block arguments of the copy)."""
        value_map = {} if value_map is None else value_map
        block_map: dict[Block, Block] = {}
        op = Operation.__new__(type(self))
        Operation.__init__(
            op, self.name,
            [value_map.get(v, v) for v in self._operands],
            [r.type for r in self.results],
            dict(self.attributes), dict(self.properties),
            location=self.location, position=self.position,
        )
        for old, new in zip(self.results, op.results):
            new.name_hint = old.name_hint
            value_map[old] = new
        for region in self.regions:
            op.add_region(region.clone(value_map, block_map))
        op.successors = [block_map.get(b, b) for b in self.successors]
        return op

    def get_attr(self, name: str, default=None):
        """A property or attribute by name (properties first), or ``default``."""
        value = self.properties.get(name)
        if value is None:
            value = self.attributes.get(name, default)
        return value

    def __repr__(self) -> str:
        return f"<op {self.name} at {id(self):#x}>"

    def __str__(self) -> str:
        from xir.printer import Printer

        return Printer().print_op_to_string(self)


class Block:
    """A list of operations with arguments; the unit of control flow in a region."""

    __slots__ = ("args", "parent", "first_op", "last_op", "name_hint", "__weakref__")

    def __init__(self, arg_types=(), name_hint: str | None = None):
        self.args: list[BlockArgument] = [BlockArgument(t, self, i) for i, t in enumerate(arg_types)]
        self.parent: Region | None = None
        self.first_op: Operation | None = None
        self.last_op: Operation | None = None
        self.name_hint = name_hint

    def add_arg(self, type: Type, name_hint: str | None = None) -> BlockArgument:
        arg = BlockArgument(type, self, len(self.args), name_hint)
        self.args.append(arg)
        return arg

    @property
    def ops(self) -> Iterator[Operation]:
        """The operations in order (do not erase while iterating; use :meth:`ops_safe`)."""
        op = self.first_op
        while op is not None:
            yield op
            op = op.next_op

    def ops_safe(self) -> Iterator[Operation]:
        """The operations in order, tolerating erasure of the op just yielded."""
        op = self.first_op
        while op is not None:
            following = op.next_op
            yield op
            op = following

    def ops_reversed(self) -> Iterator[Operation]:
        op = self.last_op
        while op is not None:
            preceding = op.prev_op
            yield op
            op = preceding

    def __len__(self) -> int:
        return sum(1 for _ in self.ops)

    def is_empty(self) -> bool:
        return self.first_op is None

    @property
    def terminator(self) -> Operation | None:
        return self.last_op

    def append(self, op: Operation) -> Operation:
        """Add ``op`` (which must not be in a block) at the end."""
        op.parent = self
        op.prev_op = self.last_op
        op.next_op = None
        if self.last_op is None:
            self.first_op = op
        else:
            self.last_op.next_op = op
        self.last_op = op
        return op

    def insert_before(self, op: Operation, anchor: Operation) -> Operation:
        """Add ``op`` just before ``anchor`` (an op of this block)."""
        op.parent = self
        op.next_op = anchor
        op.prev_op = anchor.prev_op
        if anchor.prev_op is None:
            self.first_op = op
        else:
            anchor.prev_op.next_op = op
        anchor.prev_op = op
        return op

    def insert_after(self, op: Operation, anchor: Operation) -> Operation:
        """Add ``op`` just after ``anchor`` (an op of this block)."""
        if anchor.next_op is None:
            return self.append(op)
        return self.insert_before(op, anchor.next_op)

    def _unlink(self, op: Operation) -> None:
        if op.prev_op is None:
            self.first_op = op.next_op
        else:
            op.prev_op.next_op = op.next_op
        if op.next_op is None:
            self.last_op = op.prev_op
        else:
            op.next_op.prev_op = op.prev_op
        op.parent = op.prev_op = op.next_op = None

    @property
    def parent_op(self) -> Operation | None:
        return self.parent.parent if self.parent is not None else None

    @property
    def uses(self) -> list[Operation]:
        """The operations that name this block as a successor."""
        if self.parent is None:
            return []
        return [op for b in self.parent.blocks for op in b.ops if self in op.successors]

    def __repr__(self) -> str:
        return f"<block ^{self.name_hint or '?'} with {len(self.args)} args>"


class Region:
    """A list of blocks owned by an operation."""

    __slots__ = ("blocks", "parent")

    def __init__(self, blocks=()):
        self.blocks: list[Block] = []
        self.parent: Operation | None = None
        for block in blocks:
            self.add_block(block)

    def add_block(self, block: Block | None = None) -> Block:
        block = Block() if block is None else block
        block.parent = self
        self.blocks.append(block)
        return block

    @property
    def entry(self) -> Block | None:
        return self.blocks[0] if self.blocks else None

    @property
    def ops(self) -> Iterator[Operation]:
        """The operations of every block, in order (not nested ones)."""
        for block in self.blocks:
            yield from block.ops

    def clone(self, value_map: dict, block_map: dict) -> "Region":
        """A deep copy; ``value_map`` and ``block_map`` are filled with the old→new pairs."""
        region = Region()
        for block in self.blocks:
            new = region.add_block(Block(name_hint=block.name_hint))
            block_map[block] = new
            for arg in block.args:
                value_map[arg] = new.add_arg(arg.type, arg.name_hint)
        for block in self.blocks:
            new = block_map[block]
            for op in block.ops:
                new.append(op.clone(value_map))
        # Successors and forward references inside the region point to clones now that all exist.
        for block in region.blocks:
            for op in block.ops:
                for new_op in op.walk():
                    new_op.successors = [block_map.get(b, b) for b in new_op.successors]
                    for i, v in enumerate(new_op._operands):
                        if v in value_map and value_map[v] is not v:
                            new_op.set_operand(i, value_map[v])
        return region
