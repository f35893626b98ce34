"""Declarative op definitions: an op class whose body reads like its spec.

    class AddOp(Operation):
        '''Elementwise sum of two tensors.'''
        name = "graph.add"
        lhs = operand(TensorOf(f32))
        rhs = operand(TensorOf(f32))
        output = result(TensorOf(f32))
        traits = (Pure(), Commutative(), SameOperandsAndResultType())

Operands, results, properties, attributes, regions and successors are declared with the functions
below, in order; each declaration becomes an accessor (``op.lhs``). ``traits`` adds shared rules
and markers; a ``verify_`` method adds the op's own checks (raise ``self.error(...)`` on failure).
A class is checked when it is defined: a declaration that would shadow an Operation member is an
error, not a silent override.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.diagnostics import Diagnostic, XirError
from xir.ir import Operation
from xir.value import value_class

# -- constraints -----------------------------------------------------------------------------------


class Constraint:
    """A predicate on a type or attribute, with a description for error messages."""

    description = "anything"

    def accepts(self, value) -> bool:
        return True

    def __str__(self) -> str:
        return self.description


ANY = Constraint()


@value_class
class TypeIs(Constraint):
    """Exactly one type."""

    type: T.Type

    @property
    def description(self) -> str:
        return f"'{self.type}'"

    def accepts(self, value) -> bool:
        return value == self.type


@value_class
class OfClass(Constraint):
    """Any instance of the given type or attribute classes."""

    classes: tuple
    description: str = "value"

    def accepts(self, value) -> bool:
        return isinstance(value, self.classes)


@value_class
class TensorOf(Constraint):
    """A tensor type whose element type is one of ``element_types`` (any if none are given)."""

    element_types: tuple = ()

    def __init__(self, *element_types):
        object.__setattr__(self, "element_types", tuple(element_types))
        object.__setattr__(self, "_hash", None)

    @property
    def description(self) -> str:
        if not self.element_types:
            return "tensor"
        return "tensor of " + " or ".join(map(str, self.element_types))

    def accepts(self, value) -> bool:
        return isinstance(value, T.TensorType) and (
            not self.element_types or value.element_type in self.element_types
        )


@value_class
class AnyOf(Constraint):
    """One of several constraints."""

    options: tuple

    def __init__(self, *options):
        object.__setattr__(self, "options", tuple(options))
        object.__setattr__(self, "_hash", None)

    @property
    def description(self) -> str:
        return " or ".join(map(str, self.options))

    def accepts(self, value) -> bool:
        return any(o.accepts(value) for o in self.options)


@value_class
class IntegerAttrOf(Constraint):
    """An integer attribute, optionally within ``[low, high]``."""

    low: int | None = None
    high: int | None = None

    @property
    def description(self) -> str:
        if self.low is None and self.high is None:
            return "integer attribute"
        if self.high is None:
            return f"integer attribute >= {self.low}"
        if self.low is None:
            return f"integer attribute <= {self.high}"
        return f"integer attribute in [{self.low}, {self.high}]"

    def accepts(self, value) -> bool:
        if not isinstance(value, A.IntegerAttr):
            return False
        return (self.low is None or value.value >= self.low) and (self.high is None or value.value <= self.high)


@value_class
class ArrayOf(Constraint):
    """An array attribute whose every element satisfies ``element`` (and of length ``size``, if set)."""

    element: Constraint = ANY
    size: int | None = None

    @property
    def description(self) -> str:
        n = "" if self.size is None else f"{self.size} "
        return f"array of {n}{self.element}"

    def accepts(self, value) -> bool:
        return (
            isinstance(value, A.ArrayAttr)
            and (self.size is None or len(value) == self.size)
            and all(self.element.accepts(v) for v in value)
        )


@value_class
class StringOf(Constraint):
    """A string attribute, optionally one of ``choices``."""

    choices: tuple = ()

    def __init__(self, *choices):
        object.__setattr__(self, "choices", tuple(choices))
        object.__setattr__(self, "_hash", None)

    @property
    def description(self) -> str:
        if not self.choices:
            return "string attribute"
        return "one of " + ", ".join(f'"{c}"' for c in self.choices)

    def accepts(self, value) -> bool:
        return isinstance(value, A.StringAttr) and (not self.choices or value.value in self.choices)


AnyType = OfClass((T.Type,), "any type")
AnyTensor = TensorOf()
AnyInteger = OfClass((T.IntegerType,), "integer")
AnyFloat = OfClass((T.FloatType,), "float")
AnyAttr = OfClass((A.Attribute,), "attribute")
IntegerAttrC = IntegerAttrOf()
StringAttrC = StringOf()
BoolAttrC = OfClass((A.BoolAttr,), "bool attribute")
UnitAttrC = OfClass((A.UnitAttr,), "unit attribute")
TypeAttrC = OfClass((A.TypeAttr,), "type attribute")
SymbolRefC = OfClass((A.SymbolRefAttr,), "symbol reference")
DenseC = OfClass((A.DenseElementsAttr, A.DenseResourceAttr), "dense elements")
FunctionTypeAttrC = OfClass((A.TypeAttr,), "function type attribute")


def as_constraint(c) -> Constraint:
    """Accept a Constraint, a type (meaning exactly that type) or None (anything)."""
    if c is None:
        return ANY
    if isinstance(c, Constraint):
        return c
    if isinstance(c, T.Type):
        return TypeIs(c)
    raise TypeError(f"not a constraint: {c!r}")


# -- declarations ----------------------------------------------------------------------------------


class _Field:
    """One declared part of an op; ``kind`` says which list it indexes, ``name`` is set by the class."""

    def __init__(self, kind: str, constraint: Constraint = ANY, variadic: bool = False,
                 optional: bool = False, default=None, doc: str = ""):
        self.kind = kind  # operand, result, property, attribute, region, successor
        self.constraint = constraint
        self.variadic = variadic
        self.optional = optional
        self.default = default
        self.doc = doc
        self.name = ""  # set when the op class is created
        self.index = 0

    def copy(self) -> "_Field":
        """The same declaration, for another op class (``name`` and ``index`` are per class)."""
        return _Field(self.kind, self.constraint, self.variadic, self.optional, self.default, self.doc)

    def __repr__(self) -> str:
        return f"<{self.kind} {self.name}: {self.constraint}>"

    def __get__(self, op, owner=None):
        if op is None:
            return self
        if self.kind in ("property", "attribute"):
            store = op.properties if self.kind == "property" else op.attributes
            return store.get(self.name, self.default)
        items = {"operand": op._operands, "result": op.results, "region": op.regions,
                 "successor": op.successors}[self.kind]
        return op.definition.slice(self, items)

    def __set__(self, op, value):
        if self.kind not in ("property", "attribute"):
            raise AttributeError(f"'{self.name}' is a {self.kind}; it cannot be assigned")
        store = op.properties if self.kind == "property" else op.attributes
        if value is None:
            store.pop(self.name, None)
        else:
            store[self.name] = value


def operand(constraint=None, doc: str = "") -> _Field:
    """One operand satisfying ``constraint`` (a Constraint or a type)."""
    return _Field("operand", as_constraint(constraint), doc=doc)


def var_operand(constraint=None, doc: str = "") -> _Field:
    """Any number of operands (at most one variadic group per op)."""
    return _Field("operand", as_constraint(constraint), variadic=True, doc=doc)


def result(constraint=None, doc: str = "") -> _Field:
    """One result satisfying ``constraint``."""
    return _Field("result", as_constraint(constraint), doc=doc)


def var_result(constraint=None, doc: str = "") -> _Field:
    """Any number of results (at most one variadic group per op)."""
    return _Field("result", as_constraint(constraint), variadic=True, doc=doc)


def prop(constraint=None, default=None, optional: bool = False, doc: str = "") -> _Field:
    """An inherent property ``<{name = ...}>``; required unless ``optional`` or given a ``default``."""
    return _Field("property", as_constraint(constraint), optional=optional or default is not None,
                  default=default, doc=doc)


def attr(constraint=None, default=None, optional: bool = False, doc: str = "") -> _Field:
    """An attribute ``{name = ...}``; required unless ``optional`` or given a ``default``."""
    return _Field("attribute", as_constraint(constraint), optional=optional or default is not None,
                  default=default, doc=doc)


def region(doc: str = "") -> _Field:
    """One region."""
    return _Field("region", doc=doc)


def successor(doc: str = "") -> _Field:
    """One successor block."""
    return _Field("successor", doc=doc)


def var_successor(doc: str = "") -> _Field:
    """Any number of successor blocks."""
    return _Field("successor", variadic=True, doc=doc)


# -- the definition of an op class ----------------------------------------------------------------

_RESERVED = set(dir(Operation)) | {"definition", "traits", "verify_", "summary"}


class OpDefinition:
    """What an op class declares, collected when the class is created."""

    def __init__(self, name: str):
        self.name = name
        self.fields: dict[str, list[_Field]] = {}  # kind -> fields in declaration order
        self.traits: tuple = ()

    def of(self, kind: str) -> list:
        return self.fields.get(kind, [])

    def slice(self, field: _Field, items):
        """The item(s) ``field`` names in ``items`` (one, or a list for a variadic field)."""
        fields = self.of(field.kind)
        variadic_at = next((i for i, f in enumerate(fields) if f.variadic), None)
        if variadic_at is None or field.index < variadic_at:
            return items[field.index] if not field.variadic else items[field.index:]
        extra = len(items) - len(fields)  # how many more than one item the variadic group holds
        if field.variadic:
            return list(items[field.index:field.index + extra + 1])
        return items[field.index + extra]

    def has_trait(self, trait_class) -> bool:
        return any(isinstance(t, trait_class) for t in self.traits)


def collect_definition(cls) -> OpDefinition:
    """The definition of op class ``cls``: its declarations and those of its bases, bases first
    (a small abstract base may declare what its ops share); each class gets its own accessors."""
    definition = OpDefinition(cls.__dict__["name"])
    declared: dict[str, _Field] = {}
    for base in reversed(cls.__mro__):
        for key, value in base.__dict__.items():
            if isinstance(value, _Field):
                declared[key] = value  # a redeclaration in a subclass keeps the base's position
    for key, declaration in declared.items():
        if key in _RESERVED:
            raise TypeError(f"{cls.__name__}: '{key}' would shadow a member of Operation; rename it")
        field = declaration.copy()
        field.name = key
        group = definition.fields.setdefault(field.kind, [])
        if field.variadic and any(f.variadic for f in group):
            raise TypeError(f"{cls.__name__}: at most one variadic {field.kind} group is supported")
        field.index = len(group)
        group.append(field)
        setattr(cls, key, field)
    traits = []
    for base in reversed(cls.__mro__):
        for t in base.__dict__.get("traits", ()):
            traits.append(t() if isinstance(t, type) else t)
    definition.traits = tuple(traits)
    return definition


# -- errors ----------------------------------------------------------------------------------------


def op_error(op: Operation, message: str) -> XirError:
    """``'dialect.op' op <message>``, placed where the op was parsed (or at its location)."""
    text = f"'{op.name}' op {message}"
    if op.position is not None:
        filename, line, column = op.position
        return XirError(Diagnostic(text, filename=filename, line=line, column=column))
    from xir.diagnostics import error_at

    return error_at(op.location, text)
