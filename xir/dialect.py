"""The dialect registry: which dialects and ops exist, loaded lazily by name.

A dialect is a namespace of ops (``func.return`` belongs to ``func``). Dialects are found through the
Python entry-point group ``xir.dialects``: each entry maps a dialect name to a :class:`Dialect` object
(``func = "xir.dialects.func:FUNC"``). xir's own dialects are registered that way too, so a third
party's package plugs in exactly like ours. Nothing is imported until a dialect is first named, which
keeps start-up fast.
"""

from __future__ import annotations

ENTRY_POINT_GROUP = "xir.dialects"


class Dialect:
    """A named set of operation classes."""

    def __init__(self, name: str, ops=(), description: str = ""):
        self.name = name
        self.description = description
        self.op_classes: dict = {}
        for op_class in ops:
            self.add_op(op_class)

    def __repr__(self) -> str:
        return f"<Dialect {self.name}: {len(self.op_classes)} ops>"

    def add_op(self, op_class) -> None:
        """Register ``op_class`` (its ``name`` must start with this dialect's name and a dot)."""
        if op_class.name.partition(".")[0] != self.name:
            raise ValueError(f"op '{op_class.name}' does not belong to dialect '{self.name}'")
        self.op_classes[op_class.name] = op_class


_dialects: dict[str, Dialect] = {}
_entry_points: dict | None = None
_missing: set[str] = set()


def register_dialect(dialect: Dialect) -> Dialect:
    """Make ``dialect`` known (replacing one of the same name)."""
    _dialects[dialect.name] = dialect
    _missing.discard(dialect.name)
    return dialect


def _discover() -> dict:
    global _entry_points
    if _entry_points is None:
        from importlib.metadata import entry_points

        _entry_points = {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}
    return _entry_points


def lookup_dialect(name: str) -> Dialect | None:
    """The dialect called ``name``, loading it through its entry point on first use."""
    dialect = _dialects.get(name)
    if dialect is not None or name in _missing:
        return dialect
    if name == "builtin":
        from xir.builtin import BUILTIN  # registers itself on import; again if since forgotten

        return register_dialect(BUILTIN)
    ep = _discover().get(name)
    if ep is None:
        _missing.add(name)
        return None
    dialect = ep.load()
    if not isinstance(dialect, Dialect):
        raise TypeError(f"entry point '{name}' in group {ENTRY_POINT_GROUP} is not a Dialect")
    return register_dialect(dialect)


def lookup_op(name: str):
    """The registered class of op ``name`` (``dialect.op``), or None."""
    dialect_name, dot, _ = name.partition(".")
    if not dot:
        return None
    dialect = lookup_dialect(dialect_name)
    return None if dialect is None else dialect.op_classes.get(name)


def known_dialects() -> list[str]:
    """Names of every dialect that is registered or installed (for help texts)."""
    return sorted(set(_dialects) | set(_discover()) | {"builtin"})
