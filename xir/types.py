"""Builtin types: immutable, hashable values, printed in MLIR syntax.

Every type is an immutable value class (:mod:`xir.value`) with a cached hash. The parser interns types by their text, so
a type written 100k times in a file is one object; code that builds types directly may compare them
by value (``==``) and use them as dictionary keys.
"""

from __future__ import annotations

import re

from xir.value import value_class


class Type:
    """Base of every type. ``str(t)`` is the type's textual form."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<type {self}>"


@value_class
class IntegerType(Type):
    """``i32`` (signless), ``si8`` (signed) or ``ui8`` (unsigned) integers of ``width`` bits."""

    width: int
    signedness: str = ""  # "", "s" or "u"

    def __str__(self) -> str:
        return f"{self.signedness}i{self.width}"


FLOAT_KINDS = ("bf16", "f16", "f32", "f64", "f80", "f128", "tf32", "f8E4M3FN", "f8E5M2")


@value_class
class FloatType(Type):
    """A floating-point type named by its MLIR keyword (``f32``, ``bf16``, ...)."""

    kind: str

    @property
    def width(self) -> int:
        return {"bf16": 16, "f16": 16, "f32": 32, "f64": 64, "f80": 80, "f128": 128, "tf32": 19}.get(
            self.kind, 8
        )

    def __str__(self) -> str:
        return self.kind


@value_class
class IndexType(Type):
    """The target-sized ``index`` type."""

    def __str__(self) -> str:
        return "index"


@value_class
class NoneType(Type):
    """The unit type ``none``."""

    def __str__(self) -> str:
        return "none"


DYNAMIC = -1  # a dynamic dimension, printed as ``?``


def _dims_text(shape: tuple[int, ...]) -> str:
    return "".join(("?" if d == DYNAMIC else str(d)) + "x" for d in shape)


@value_class
class TensorType(Type):
    """A ranked tensor ``tensor<1x?x4xf32>`` (``shape`` uses ``DYNAMIC`` for ``?``), or unranked
    ``tensor<*xf32>`` when ``shape`` is None. ``encoding`` is an optional attribute."""

    shape: tuple[int, ...] | None
    element_type: Type
    encoding: object = None

    @property
    def rank(self) -> int | None:
        return None if self.shape is None else len(self.shape)

    @property
    def has_static_shape(self) -> bool:
        return self.shape is not None and DYNAMIC not in self.shape

    @property
    def num_elements(self) -> int:
        n = 1
        for d in self.shape or ():
            n *= d
        return n

    def __str__(self) -> str:
        dims = "*x" if self.shape is None else _dims_text(self.shape)
        enc = "" if self.encoding is None else f", {self.encoding}"
        return f"tensor<{dims}{self.element_type}{enc}>"


@value_class
class VectorType(Type):
    """A fixed-size vector ``vector<4x4xf32>``."""

    shape: tuple[int, ...]
    element_type: Type

    def __str__(self) -> str:
        return f"vector<{_dims_text(self.shape)}{self.element_type}>"


@value_class
class ComplexType(Type):
    """``complex<f32>``."""

    element_type: Type

    def __str__(self) -> str:
        return f"complex<{self.element_type}>"


def _type_list_text(types: tuple[Type, ...]) -> str:
    return ", ".join(map(str, types))


@value_class
class FunctionType(Type):
    """``(inputs) -> results``; also the type signature of every operation in generic form."""

    inputs: tuple[Type, ...]
    results: tuple[Type, ...]

    def __str__(self) -> str:
        results = self.results
        if len(results) == 1 and not isinstance(results[0], FunctionType):
            out = str(results[0])
        else:
            out = f"({_type_list_text(results)})"
        return f"({_type_list_text(self.inputs)}) -> {out}"


@value_class
class DialectType(Type):
    """A type of a dialect: ``!dialect.name`` or ``!dialect.name<body>``.

    Unregistered dialects keep ``body`` as the raw text between the angle brackets, so it prints back
    exactly; a registered dialect may subclass this to decode the body.
    """

    dialect: str
    name: str
    body: str | None = None

    def __str__(self) -> str:
        body = "" if self.body is None else f"<{self.body}>"
        return f"!{self.dialect}.{self.name}{body}"


# -- constructors for the common cases ---------------------------------------------------------

i1 = IntegerType(1)
i8 = IntegerType(8)
i16 = IntegerType(16)
i32 = IntegerType(32)
i64 = IntegerType(64)
f16 = FloatType("f16")
bf16 = FloatType("bf16")
f32 = FloatType("f32")
f64 = FloatType("f64")
index = IndexType()
none = NoneType()

_INTEGER_RE = re.compile(r"([su]?)i([1-9][0-9]*)")
_SCALARS: dict[str, Type] = {"index": index, "none": none}
_SCALARS.update((k, FloatType(k)) for k in FLOAT_KINDS)


def scalar_type(text: str) -> Type:
    """Decode a scalar type keyword (``i32``, ``ui8``, ``f32``, ``index``, ``none``)."""
    t = _SCALARS.get(text)
    if t is None:
        m = _INTEGER_RE.fullmatch(text)
        if m is None:
            raise ValueError(f"unknown scalar type '{text}'")
        t = _SCALARS[text] = IntegerType(int(m.group(2)), m.group(1))
    return t


def tensor(shape, element_type: Type = f32) -> TensorType:
    """``tensor(shape, elt)``: a ranked tensor type; ``None`` entries in ``shape`` are dynamic."""
    return TensorType(tuple(DYNAMIC if d is None else int(d) for d in shape), element_type)
