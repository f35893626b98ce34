"""The printer: IR objects to text that the parser reads back to the same IR.

Generic form for every op (``print_ir(op, generic=True)``), or the pretty forms of ``builtin.module``
and ``func.func``. Value names are stable: a value keeps the name it had in the text (``%x``) unless
that name is taken, and unnamed values are numbered ``%0, %1, ...`` within each op that is isolated
from above, the way MLIR numbers them. ``print(parse(print(parse(x)))) == print(parse(x))``.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.ir import Block, Operation, Region, Value


class _Names:
    """The names given out in one isolated-from-above scope (and the scopes it is nested in)."""

    __slots__ = ("parent", "used", "next_value", "next_block")

    def __init__(self, parent: "_Names | None"):
        self.parent = parent
        self.used: set[str] = set(parent.used) if parent is not None else set()
        self.next_value = 0
        self.next_block = 0


class Printer:
    """Prints operations; one instance prints one piece of IR (names are assigned as it goes)."""

    def __init__(self, generic: bool = False, print_locations: bool = True, numbered: bool = False):
        self.generic = generic
        self.print_locations = print_locations
        self.numbered = numbered  # ignore name hints (for comparing IR up to renaming)
        self.value_names: dict[Value, str] = {}
        self.block_names: dict[Block, str] = {}
        self.names = _Names(None)
        self.out: list[str] = []
        self.type_text: dict = {}
        self.attr_text: dict = {}
        self.signature_text: dict = {}

    # -- entry points ------------------------------------------------------------------------

    def print_op_to_string(self, op: Operation) -> str:
        self.print_op(op, 0)
        return "".join(self.out)

    def print_module(self, op: Operation, weights=None) -> str:
        """The text of a top-level op, with its resource section.

        ``weights`` (an :class:`xir.weights.WeightsIndex`, or None) lists the resources stored in a
        weights file: they print as its index in ``external_resources``, the others as hex."""
        self.print_op(op, 0)
        self.out.append("\n")
        resources = getattr(op, "resources", None) or {}
        stored = weights.entries if weights is not None else {}
        blobs = [(name, h) for name, h in resources.items() if name not in stored and h.data is not None]
        groups = []
        if blobs:
            entries = []
            for name, handle in blobs:
                header = handle.alignment.to_bytes(4, "little").hex().upper()
                entries.append(f'      {A.symbol_text(name)}: "0x{header}{handle.data.hex().upper()}"')
            groups.append("  dialect_resources: {\n    builtin: {\n" + ",\n".join(entries) + "\n    }\n  }")
        if stored:
            groups.append("  external_resources: {\n" + weights.section_text() + "\n  }")
        if groups:
            self.out.append("\n{-#\n" + ",\n".join(groups) + "\n#-}\n")
        return "".join(self.out)

    # -- names -------------------------------------------------------------------------------

    def _fresh(self, hint: str | None) -> str:
        names = self.names
        if hint and not self.numbered:
            name = hint
            k = 1
            while name in names.used:
                name = f"{hint}_{k}"
                k += 1
        else:
            while True:
                name = str(names.next_value)
                names.next_value += 1
                if name not in names.used:
                    break
        names.used.add(name)
        return "%" + name

    def value_name(self, value: Value) -> str:
        name = self.value_names.get(value)
        if name is None:
            name = self.value_names[value] = self._fresh(value.name_hint)
        return name

    def _operand_name(self, value: Value) -> str:
        name = self.value_names.get(value)
        if name is not None:
            return name
        owner = getattr(value, "owner", None)
        if isinstance(owner, Operation) and self._grouped(owner.results):
            self._name_results(owner)  # defined later (graph region): name its whole group now
            return self.value_names[value]
        return self.value_name(value)

    def _grouped(self, results) -> bool:
        """Whether results print as one group ``%0:2`` (used as ``%0#1``), not one name each."""
        return len(results) > 1 and all(r.name_hint is None or self.numbered for r in results)

    def _name_results(self, op: Operation) -> str:
        """Names the results of ``op`` and returns their definition text (without ' = ')."""
        results = op.results
        if self._grouped(results):
            base = self.value_names.get(results[0])
            if base is None or "#" not in base:
                base = self._fresh(None)
                for i, r in enumerate(results):
                    self.value_names[r] = f"{base}#{i}"
            else:
                base = base.partition("#")[0]
            return base
        return ", ".join(self.value_name(r) for r in results)

    def block_name(self, block: Block) -> str:
        name = self.block_names.get(block)
        if name is None:
            name = self._name_region_blocks(block.parent)[block]
        return name

    def _name_region_blocks(self, region: Region, hide_entry: bool = False) -> dict:
        """Names every block of ``region``: labels are scoped to their region, as in MLIR.
        ``hide_entry``: the entry label is not printed, so its name hint must not matter."""
        used: set[str] = set()
        blocks = region.blocks if region is not None else []
        # Hints of the form bbN are numbering, not names: such blocks are numbered afresh.
        wanted = [None if self.numbered or _is_numbered_label(b.name_hint) else b.name_hint for b in blocks]
        if hide_entry and wanted:
            wanted[0] = None
        counter = 0
        for block, hint in zip(blocks, wanted):
            if hint and "^" + hint not in used:
                name = "^" + hint
            else:
                while f"^bb{counter}" in used or f"bb{counter}" in wanted:
                    counter += 1
                name = f"^bb{counter}"
            used.add(name)
            self.block_names[block] = name
        return self.block_names

    # -- types and attributes -------------------------------------------------------------------

    def type(self, t: T.Type) -> str:
        text = self.type_text.get(t)
        if text is None:
            text = self.type_text[t] = str(t)
        return text

    def attr(self, a: A.Attribute) -> str:
        try:
            text = self.attr_text.get(a)
        except TypeError:
            return str(a)
        if text is None:
            text = self.attr_text[a] = str(a)
        return text

    def _dict(self, entries: dict) -> str:
        parts = []
        for name, value in entries.items():
            key = A.symbol_text(name)
            parts.append(key if value is A.UNIT else f"{key} = {self.attr(value)}")
        return ", ".join(parts)

    def _signature(self, op: Operation) -> str:
        key = (tuple(v.type for v in op._operands), tuple(r.type for r in op.results))
        text = self.signature_text.get(key)
        if text is None:
            text = self.signature_text[key] = str(T.FunctionType(*key))
        return text

    # -- operations ----------------------------------------------------------------------------

    def print_op(self, op: Operation, indent: int) -> None:
        out = self.out
        isolated = op.definition is not None and _is_isolated(op)
        if isolated:
            self.names = _Names(self.names)
        if not self.generic and op.name in _PRETTY and op.definition is not None and _PRETTY[op.name][1](op):
            _PRETTY[op.name][0](self, op, indent)
        else:
            self._print_generic(op, indent)
        if self.print_locations and op.location is not None:
            out.append(f" {self.attr(op.location)}")
        if isolated:
            self.names = self.names.parent

    def _print_generic(self, op: Operation, indent: int) -> None:
        out = self.out
        if op.results:
            out.append(self._results_text(op))
            out.append(" = ")
        out.append(A.quote_string(op.name))
        out.append("(")
        out.append(", ".join([self._operand_name(v) for v in op._operands]))
        out.append(")")
        if op.successors:
            out.append("[" + ", ".join(self.block_name(b) for b in op.successors) + "]")
        if op.properties:
            out.append(" <{" + self._dict(op.properties) + "}>")
        if op.regions:
            out.append(" (")
            for i, region in enumerate(op.regions):
                if i:
                    out.append(", ")
                self.print_region(region, indent, print_entry_label=True)
            out.append(")")
        if op.attributes:
            out.append(" {" + self._dict(op.attributes) + "}")
        out.append(" : ")
        out.append(self._signature(op))

    def _results_text(self, op: Operation) -> str:
        text = self._name_results(op)
        if "#" in self.value_names.get(op.results[0], "") and len(op.results) > 1:
            return f"{text}:{len(op.results)}"
        return text

    def print_region(self, region: Region, indent: int, print_entry_label: bool) -> None:
        out = self.out
        out.append("{\n")
        if not print_entry_label and len(region.blocks) > 1 and region.blocks[0] not in self.block_names:
            self._name_region_blocks(region, hide_entry=True)
        for i, block in enumerate(region.blocks):
            # An empty entry block needs its label, or it would read back as a region with no blocks.
            label = i > 0 or (print_entry_label and (block.args or len(region.blocks) > 1
                                                     or block.first_op is None))
            self.print_block(block, indent, label)
        out.append("  " * indent + "}")

    def print_block(self, block: Block, indent: int, label: bool) -> None:
        out = self.out
        if label:
            out.append("  " * indent + self.block_name(block))
            if block.args:
                args = ", ".join(f"{self.value_name(a)}: {self.type(a.type)}" for a in block.args)
                out.append(f"({args})")
            out.append(":\n")
        pad = "  " * (indent + 1)
        op = block.first_op
        while op is not None:
            out.append(pad)
            self.print_op(op, indent + 1)
            out.append("\n")
            op = op.next_op

    # -- pretty forms --------------------------------------------------------------------------

    def _print_module(self, op: Operation, indent: int) -> None:
        out = self.out
        out.append("builtin.module")
        sym = op.properties.get("sym_name")
        if sym is not None:
            out.append(" @" + A.symbol_text(sym.value))
        if op.attributes:
            out.append(" attributes {" + self._dict(op.attributes) + "}")
        out.append(" ")
        self.print_region(op.regions[0], indent, print_entry_label=False)

    def _print_func(self, op: Operation, indent: int) -> None:
        out = self.out
        props = op.properties
        signature = props["function_type"].value
        out.append("func.func ")
        if "sym_visibility" in props:
            out.append(props["sym_visibility"].value + " ")
        out.append("@" + A.symbol_text(props["sym_name"].value))
        arg_attrs = _dicts(props.get("arg_attrs"), len(signature.inputs))
        res_attrs = _dicts(props.get("res_attrs"), len(signature.results))
        body = op.regions[0]
        args = []
        for i, t in enumerate(signature.inputs):
            text = self.type(t)
            if body.blocks:
                text = f"{self.value_name(body.blocks[0].args[i])}: {text}"
            if arg_attrs[i]:
                text += " {" + self._dict(arg_attrs[i]) + "}"
            args.append(text)
        out.append("(" + ", ".join(args) + ")")
        results = signature.results
        if results:
            texts = [self.type(t) + (" {" + self._dict(d) + "}" if d else "") for t, d in zip(results, res_attrs)]
            if len(results) == 1 and not res_attrs[0] and not isinstance(results[0], T.FunctionType):
                out.append(" -> " + texts[0])
            else:
                out.append(" -> (" + ", ".join(texts) + ")")
        if op.attributes:
            out.append(" attributes {" + self._dict(op.attributes) + "}")
        if body.blocks:
            out.append(" ")
            self.print_region(body, indent, print_entry_label=False)


def _is_numbered_label(hint: str | None) -> bool:
    return hint is None or (hint.startswith("bb") and hint[2:].isdigit())


def _dicts(array, n: int) -> list[dict]:
    if array is None:
        return [{} for _ in range(n)]
    return [d.value for d in array.value]


def _module_is_pretty(op: Operation) -> bool:
    region = op.regions[0] if len(op.regions) == 1 else None
    return (region is not None and len(region.blocks) == 1 and not region.blocks[0].args
            and not op._operands and not op.results and set(op.properties) <= {"sym_name"})


def _func_is_pretty(op: Operation) -> bool:
    props = op.properties
    signature = props.get("function_type")
    if not isinstance(props.get("sym_name"), A.StringAttr) or not isinstance(signature, A.TypeAttr):
        return False
    signature = signature.value
    if not isinstance(signature, T.FunctionType) or op._operands or op.results or len(op.regions) != 1:
        return False
    if not set(props) <= {"sym_name", "function_type", "sym_visibility", "arg_attrs", "res_attrs"}:
        return False
    for key, n in (("arg_attrs", len(signature.inputs)), ("res_attrs", len(signature.results))):
        array = props.get(key)
        if array is not None and (not isinstance(array, A.ArrayAttr) or len(array) != n
                                  or not all(isinstance(d, A.DictionaryAttr) for d in array)):
            return False
    blocks = op.regions[0].blocks
    if blocks:
        # The pretty form can only show an entry block whose arguments are the signature's inputs.
        if tuple(a.type for a in blocks[0].args) != signature.inputs:
            return False
    return True


_PRETTY = {
    "builtin.module": (Printer._print_module, _module_is_pretty),
    "func.func": (Printer._print_func, _func_is_pretty),
}


def _is_isolated(op: Operation) -> bool:
    from xir.traits import IsolatedFromAbove

    return op.definition.has_trait(IsolatedFromAbove)


def print_ir(op: Operation, generic: bool = False, print_locations: bool = True,
             numbered: bool = False, weights=None) -> str:
    """The text of ``op`` (a module prints with its resource section), ending in a newline.

    Resources print inline as hex, except those ``weights`` (an :class:`xir.weights.WeightsIndex`)
    places in a weights file; :func:`xir.weights.save_module` writes a module with its weights."""
    return Printer(generic, print_locations, numbered).print_module(op, weights)
