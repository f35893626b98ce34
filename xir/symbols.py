"""Symbol tables: ops named by a ``sym_name`` property inside an op with the SymbolTable trait
(``builtin.module``), looked up by ``@name`` or nested ``@outer::@inner`` references."""

from __future__ import annotations

from xir import attributes as A
from xir.ir import Operation


def symbol_name(op: Operation) -> str | None:
    """The symbol ``op`` defines (its ``sym_name``), or None."""
    sym = op.properties.get("sym_name") or op.attributes.get("sym_name")
    return sym.value if isinstance(sym, A.StringAttr) else None


def entry_function(module: Operation, name: str = "main", purpose: str | None = None):
    """The top-level function ``@name`` of ``module``; XirError ``module has no function
    @name`` (``cannot <purpose>: ...`` when a purpose is given) if there is none."""
    from xir.diagnostics import XirError

    op = SymbolTable(module).lookup(name)
    if op is None or not op.regions or not op.regions[0].blocks:
        message = f"module has no function @{name}"
        raise XirError(f"cannot {purpose}: {message}" if purpose else message)
    return op


class SymbolTable:
    """The symbols defined directly in the region of ``op`` (a module), by name."""

    def __init__(self, op: Operation):
        self.op = op
        self.symbols: dict[str, Operation] = {}
        for region in op.regions:
            for child in region.ops:
                name = symbol_name(child)
                if name is not None and name not in self.symbols:
                    self.symbols[name] = child

    def lookup(self, name: str) -> Operation | None:
        return self.symbols.get(name)

    def __contains__(self, name: str) -> bool:
        return name in self.symbols

    def unique_name(self, base: str) -> str:
        """``base``, or ``base_1``, ``base_2``... whichever is not yet taken."""
        name, k = base, 1
        while name in self.symbols:
            name, k = f"{base}_{k}", k + 1
        return name

    def insert(self, op: Operation) -> str:
        """Add ``op`` to the table's region (renaming it if its name is taken); returns its name."""
        name = self.unique_name(symbol_name(op) or "sym")
        op.properties["sym_name"] = A.StringAttr(name)
        self.op.regions[0].blocks[0].append(op)
        self.symbols[name] = op
        return name

    def erase(self, name: str) -> None:
        self.symbols.pop(name).erase()


def resolve_symbol(root: Operation, ref: A.SymbolRefAttr) -> Operation | None:
    """The op that ``@a::@b`` names, starting from symbol table op ``root``."""
    op = SymbolTable(root).lookup(ref.root)
    for name in ref.nested:
        if op is None:
            return None
        op = SymbolTable(op).lookup(name)
    return op
