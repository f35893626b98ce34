"""What every graph-dialect op shares: shape inference, numpy semantics, and attribute helpers.

A graph op is a framework-neutral float op on NCHW tensors. Its class declares operands, results
and attributes (see :mod:`xir.opdef`) and implements two methods:

- ``infer_result_types(operand_types, attributes) -> list[Type]`` (a classmethod): the result
  types that the operand types and attributes imply, raising :class:`ShapeError` with a message
  when they are inconsistent. The verifier checks every op's result types against it, and the
  ONNX importer uses it to type what it builds.
- ``evaluate(self, *inputs) -> list[np.ndarray]``: the op's semantics on numpy arrays, the ground
  truth that later levels are checked against.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T
from xir.ir import Operation


class ShapeError(ValueError):
    """Operand types and attributes that do not fit together (the message says how)."""


class GraphOp(Operation):
    """Base class of graph-dialect ops."""

    @classmethod
    def infer_result_types(cls, operand_types: list[T.Type], attributes: dict) -> list[T.Type]:
        raise NotImplementedError(f"{cls.__name__} does not infer its result types")

    def evaluate(self, *inputs):
        raise NotImplementedError(f"'{self.name}' has no numpy semantics")

    @classmethod
    def params(cls, attributes: dict) -> dict:
        """Each declared attribute as a Python value, with the declared default filled in (so a
        default is written once, in the op's definition): an int, a float, a string, a tuple of
        numbers for an array, None if absent."""
        values = {}
        for field in cls.definition.of("attribute"):
            value = attributes.get(field.name, field.default)
            if isinstance(value, A.ArrayAttr):
                value = tuple(v.value for v in value)
            elif isinstance(value, A.DenseArrayAttr):
                value = tuple(value.values)
            elif value is not None and hasattr(value, "value"):
                value = value.value
            values[field.name] = value
        return values

    @property
    def param(self) -> dict:
        """This op's attribute values (see :meth:`params`)."""
        return self.params(self.all_attributes())

    def all_attributes(self) -> dict:
        """Properties and attributes together (the graph dialect keeps its parameters in
        attributes; properties win where both are set)."""
        return {**self.attributes, **self.properties}

    def verify_(self) -> None:
        self._verify_attribute_names()
        operand_types = [v.type for v in self._operands]
        if not all(isinstance(t, T.TensorType) and t.shape is not None for t in operand_types):
            return  # unranked operands: nothing to check statically
        try:
            expected = self.infer_result_types(operand_types, self.all_attributes())
        except ShapeError as e:
            raise self.error(str(e)) from None
        actual = [r.type for r in self.results]
        if len(expected) != len(actual):
            raise self.error(f"has {len(actual)} results, but its operands imply {len(expected)}")
        for i, (e, a) in enumerate(zip(expected, actual)):
            if not _compatible(e, a):
                raise self.error(f"result #{i} has type '{a}', but its operands and attributes "
                                 f"imply '{e}'")


    def _verify_attribute_names(self) -> None:
        """A parameter the op does not declare is a mistake (``stride`` for ``strides``), not
        something to ignore; discardable attributes are namespaced (``dialect.name``), as in MLIR."""
        declared = {f.name for kind in ("attribute", "property") for f in self.definition.of(kind)}
        for name in self.attributes:
            if "." not in name and name not in declared:
                import difflib

                close = difflib.get_close_matches(name, sorted(declared), n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise self.error(f"has no attribute '{name}'{hint}")


def _compatible(expected: T.Type, actual: T.Type) -> bool:
    """Equal, or equal but for dynamic dimensions on either side."""
    if expected == actual:
        return True
    if not (isinstance(expected, T.TensorType) and isinstance(actual, T.TensorType)):
        return False
    if expected.element_type != actual.element_type or expected.shape is None or actual.shape is None:
        return expected.element_type == actual.element_type
    return len(expected.shape) == len(actual.shape) and all(
        e == a or T.DYNAMIC in (e, a) for e, a in zip(expected.shape, actual.shape))


# -- reading attributes ------------------------------------------------------------------------


def get_ints(attributes: dict, name: str, default=None) -> tuple[int, ...] | None:
    """An integer-array attribute as a tuple (``default`` when absent)."""
    value = attributes.get(name)
    if value is None:
        return None if default is None else tuple(default)
    if isinstance(value, A.DenseArrayAttr):
        return tuple(int(v) for v in value.values)
    return tuple(int(v.value) for v in value)


def get_int(attributes: dict, name: str, default=None) -> int | None:
    value = attributes.get(name)
    return default if value is None else int(value.value)


def get_float(attributes: dict, name: str, default=None) -> float | None:
    value = attributes.get(name)
    return default if value is None else float(value.value)


def get_str(attributes: dict, name: str, default=None) -> str | None:
    value = attributes.get(name)
    return default if value is None else value.value


def check_weighted_operands(operand_types) -> None:
    """A convolution's or dense's operands: input, weight and at most one bias (ShapeError)."""
    if len(operand_types) not in (2, 3):
        raise ShapeError(f"expects input, weight and at most one bias, but got "
                         f"{len(operand_types)} operands")


def ints_attr(values) -> A.ArrayAttr:
    """An integer-array attribute (``[1, 1]``)."""
    return A.ArrayAttr(tuple(A.IntegerAttr(int(v)) for v in values))


def float_attr(value: float) -> A.FloatAttr:
    """An f32 float attribute."""
    return A.FloatAttr(A._round_to("f32", float(value)), T.f32)


def tensor_of(shape, element_type: T.Type = T.f32) -> T.TensorType:
    """A ranked tensor type from a shape whose unknown dims are None or DYNAMIC."""
    return T.TensorType(tuple(T.DYNAMIC if d is None else int(d) for d in shape), element_type)
