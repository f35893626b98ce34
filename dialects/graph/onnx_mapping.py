"""How ONNX element types and node attributes are spelled in xir, both ways.

The importer, the exporter and :class:`~.onnx_op.OnnxOp` (which rebuilds its node to run it in
onnxruntime) all go through these functions, so a node survives import → text → export unchanged.

=================  =========================================================
ONNX attribute     xir attribute
=================  =========================================================
INT                ``7`` (IntegerAttr, i64)
FLOAT              ``1.0 : f32`` (FloatAttr)
STRING             ``"nearest"`` (StringAttr)
INTS / FLOATS      ``array<i64: 1, 2>`` / ``array<f32: 0.5>`` (typed even when empty)
STRINGS            ``["a", "b"]`` (ArrayAttr of strings)
TENSOR             ``dense<...> : tensor<...>`` (DenseElementsAttr)
=================  =========================================================

Subgraph attributes (If, Loop, Scan bodies) and sparse tensors have no spelling here.
"""

from __future__ import annotations

from xir import attributes as A
from xir import types as T

# ONNX TensorProto.DataType codes (stable across onnx releases) and the xir element types
ELEMENT_TYPES: dict[int, T.Type] = {
    1: T.f32, 2: T.IntegerType(8, "u"), 3: T.i8, 4: T.IntegerType(16, "u"), 5: T.i16,
    6: T.i32, 7: T.i64, 9: T.i1, 10: T.f16, 11: T.f64, 12: T.IntegerType(32, "u"),
    13: T.IntegerType(64, "u"),
}
_ONNX_CODES = {t: code for code, t in ELEMENT_TYPES.items()}


def element_type(code: int, what: str) -> T.Type:
    """The xir element type of ONNX data type ``code`` (ValueError naming ``what`` if none)."""
    try:
        return ELEMENT_TYPES[code]
    except KeyError:
        import onnx

        name = onnx.TensorProto.DataType.Name(code) if code in onnx.TensorProto.DataType.values() \
            else str(code)
        raise ValueError(f"{what} has element type {name}, which xir does not support") from None


def onnx_code(element: T.Type) -> int:
    """The ONNX data type code of xir element type ``element``."""
    try:
        return _ONNX_CODES[element]
    except KeyError:
        raise ValueError(f"element type {element} has no ONNX counterpart") from None


def element_type_of(dtype) -> T.Type:
    """The xir element type holding numpy ``dtype`` (ValueError if none); no onnx import."""
    import numpy as np

    from xir.attributes import numpy_dtype

    dtype = np.dtype(dtype)
    for element in ELEMENT_TYPES.values():
        if numpy_dtype(element) == dtype:
            return element
    raise ValueError(f"numpy dtype {dtype} has no xir element type")


def onnx_code_of(dtype) -> int:
    """The ONNX data type code of a numpy dtype (ValueError if ONNX has none)."""
    import numpy as np
    import onnx

    try:
        return int(onnx.helper.np_dtype_to_tensor_dtype(np.dtype(dtype)))
    except (KeyError, TypeError, ValueError):
        raise ValueError(f"numpy dtype {np.dtype(dtype)} has no ONNX counterpart") from None


def attribute_from_onnx(proto) -> A.Attribute:
    """The xir attribute for one ``onnx.AttributeProto`` (ValueError for kinds without one)."""
    import onnx

    kind = proto.type
    P = onnx.AttributeProto
    if kind == P.INT:
        return A.IntegerAttr(int(proto.i))
    if kind == P.FLOAT:
        return A.FloatAttr(A._round_to("f32", float(proto.f)), T.f32)
    if kind == P.STRING:
        return A.StringAttr(_decode(proto.s, proto.name))
    if kind == P.INTS:
        return A.DenseArrayAttr(T.i64, tuple(int(v) for v in proto.ints))
    if kind == P.FLOATS:
        return A.DenseArrayAttr(T.f32, tuple(A._round_to("f32", float(v)) for v in proto.floats))
    if kind == P.STRINGS:
        return A.ArrayAttr(tuple(A.StringAttr(_decode(s, proto.name)) for s in proto.strings))
    if kind == P.TENSOR:
        array = onnx.numpy_helper.to_array(proto.t)
        type_ = T.TensorType(tuple(int(d) for d in array.shape),
                             element_type(proto.t.data_type, f"attribute '{proto.name}'"))
        return A.DenseElementsAttr(type_, array)
    raise ValueError(f"attribute '{proto.name}' is a {P.AttributeType.Name(kind)}, "
                     "which xir cannot keep")


def _decode(raw: bytes, name: str) -> str:
    try:
        return raw.decode()
    except UnicodeDecodeError:
        raise ValueError(f"attribute '{name}' is not UTF-8 text") from None


def attribute_to_onnx(name: str, attr: A.Attribute):
    """The ``onnx.AttributeProto`` named ``name`` for an xir attribute made by
    :func:`attribute_from_onnx`."""
    import numpy as np
    import onnx

    make, P = onnx.helper.make_attribute, onnx.AttributeProto
    if isinstance(attr, A.IntegerAttr):
        return make(name, int(attr.value), attr_type=P.INT)
    if isinstance(attr, A.FloatAttr):
        return make(name, float(attr.value), attr_type=P.FLOAT)
    if isinstance(attr, A.StringAttr):
        return make(name, attr.value, attr_type=P.STRING)
    if isinstance(attr, A.DenseArrayAttr):
        if attr.element_type == T.f32:
            return make(name, [float(v) for v in attr.values], attr_type=P.FLOATS)
        return make(name, [int(v) for v in attr.values], attr_type=P.INTS)
    if isinstance(attr, A.ArrayAttr) and all(isinstance(a, A.StringAttr) for a in attr):
        return make(name, [a.value for a in attr], attr_type=P.STRINGS)
    if isinstance(attr, (A.DenseElementsAttr, A.DenseResourceAttr)):
        array = np.ascontiguousarray(attr.to_numpy())
        return make(name, onnx.numpy_helper.from_array(array, name), attr_type=P.TENSOR)
    raise ValueError(f"attribute '{name}' = {attr} has no ONNX spelling")


def value_type_to_onnx(name: str, type_: T.Type):
    """An ``onnx.ValueInfoProto`` for an xir tensor type (a dynamic dimension is symbolic)."""
    import onnx

    if not isinstance(type_, T.TensorType) or type_.shape is None:
        raise ValueError(f"'{name}' has type {type_}, which ONNX cannot express")
    dims = [("N" if i == 0 else f"D{i}") if d == T.DYNAMIC else int(d)
            for i, d in enumerate(type_.shape)]
    return onnx.helper.make_tensor_value_info(name, onnx_code(type_.element_type), dims)


def value_type_from_onnx(type_proto, what: str) -> T.TensorType | None:
    """The xir tensor type of an ``onnx.TypeProto``; None where rank or element type is unknown.
    An unknown or symbolic dimension is dynamic."""
    if not type_proto.HasField("tensor_type"):
        return None
    tensor = type_proto.tensor_type
    if tensor.elem_type == 0 or not tensor.HasField("shape"):
        return None
    dims = tuple(d.dim_value if d.HasField("dim_value") else T.DYNAMIC for d in tensor.shape.dim)
    return T.TensorType(dims, element_type(tensor.elem_type, what))
