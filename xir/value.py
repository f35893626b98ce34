"""Immutable value classes for types, attributes and other small IR values.

``@value_class`` turns a class with annotated fields into a frozen, slotted class with value
equality and a cached hash, like ``attrs.frozen(slots=True, cache_hash=True)``. It exists because
start-up time matters (``xir-opt`` on an empty module must start in a fraction of xdsl-opt's time):
attrs generates and compiles code for every class, about 0.4 ms each, and the parse path defines
fifty such classes. These classes are built from closures instead, with no code generation.
Methods the class defines itself (``__eq__``, ``__hash__``, ``__init__``) are kept.
"""

from __future__ import annotations

_MISSING = object()
_set = object.__setattr__


class FrozenError(AttributeError):
    """Raised on an attempt to change a field of a value class instance."""


def _frozen_setattr(self, name, value):
    raise FrozenError(f"{type(self).__name__} is immutable; cannot set '{name}'")


def value_class(cls):
    """Make ``cls`` (whose annotated class attributes are its fields, defaults allowed) immutable."""
    names = tuple(n for n in cls.__dict__.get("__annotations__", {}) if not n.startswith("_"))
    defaults = {n: cls.__dict__[n] for n in names if n in cls.__dict__}
    namespace = {k: v for k, v in cls.__dict__.items()
                 if k not in names and k not in ("__dict__", "__weakref__")}
    namespace["__slots__"] = names + ("_hash",)
    namespace["_fields"] = names
    count = len(names)

    def __init__(self, *args, **kwargs):
        if len(args) > count:
            raise TypeError(f"{cls.__name__}() takes {count} arguments, {len(args)} given")
        for name, value in zip(names, args):
            _set(self, name, value)
        for name in names[len(args):]:
            value = kwargs.pop(name, _MISSING)
            if value is _MISSING:
                value = defaults.get(name, _MISSING)
                if value is _MISSING:
                    raise TypeError(f"{cls.__name__}() is missing argument '{name}'")
            _set(self, name, value)
        if kwargs:
            raise TypeError(f"{cls.__name__}() got unexpected arguments {sorted(kwargs)}")
        _set(self, "_hash", None)

    def __eq__(self, other):
        if self is other:
            return True
        if type(other) is not type(self):
            return NotImplemented
        return all(getattr(self, n) == getattr(other, n) for n in names)

    def __hash__(self):
        h = self._hash
        if h is None:
            h = hash((type(self).__name__,) + tuple(getattr(self, n) for n in names))
            _set(self, "_hash", h)
        return h

    namespace.setdefault("__init__", __init__)
    if "__eq__" not in namespace:
        namespace["__eq__"] = __eq__
        namespace["__hash__"] = namespace.get("__hash__") or __hash__
    elif namespace.get("__hash__") is None:
        namespace["__hash__"] = __hash__
    namespace["__setattr__"] = _frozen_setattr
    namespace["__delattr__"] = _frozen_setattr
    return type(cls)(cls.__name__, cls.__bases__, namespace)


def evolve(value, **changes):
    """A copy of value-class instance ``value`` with some fields replaced."""
    fields = {n: getattr(value, n) for n in value._fields}
    fields.update(changes)
    return type(value)(**fields)
