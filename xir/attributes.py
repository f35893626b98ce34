"""Builtin attributes and locations: immutable, hashable values, printed in MLIR syntax.

Dense payloads stay as numpy arrays (numpy is imported only when a dense attribute is built) with a
splat flag, so a splat ``dense<0.0> : tensor<1024x1024xf32>`` costs one element, not four megabytes.
"""

from __future__ import annotations

import math
import re
import struct

from xir.types import FloatType, IndexType, IntegerType, TensorType, Type, VectorType
from xir.types import f64, i1, i64
from xir.value import FrozenError, value_class


class Attribute:
    """Base of every attribute. ``str(a)`` is the attribute's textual form."""

    __slots__ = ()

    def __repr__(self) -> str:
        return f"<attr {self}>"


# -- strings -------------------------------------------------------------------------------------

_ESCAPE_RE = re.compile(r'\\(?:([0-9a-fA-F]{2})|(.))', re.S)
_SIMPLE_ESCAPES = {"n": "\n", "t": "\t", '"': '"', "\\": "\\"}
_PLAIN_RE = re.compile(r'[ !#-\[\]-~]*')  # printable ASCII except " and \


def unescape_string(body: str) -> str:
    """Decode the body of an MLIR string literal (``\\n``, ``\\t``, ``\\"``, ``\\\\``, ``\\XX``)."""
    if "\\" not in body:
        return body
    out = bytearray()
    pos = 0
    for m in _ESCAPE_RE.finditer(body):
        out += body[pos:m.start()].encode()
        if m.group(1):
            out.append(int(m.group(1), 16))
        else:
            c = _SIMPLE_ESCAPES.get(m.group(2))
            if c is None:
                raise ValueError(f"unknown escape '\\{m.group(2)}' in string")
            out += c.encode()
        pos = m.end()
    out += body[pos:].encode()
    return out.decode("utf-8", errors="surrogateescape")


def quote_string(value: str) -> str:
    """The MLIR string literal for ``value``: printable ASCII as is, other bytes as ``\\XX``."""
    if _PLAIN_RE.fullmatch(value):
        return f'"{value}"'
    out = []
    for b in value.encode("utf-8", errors="surrogateescape"):
        c = chr(b)
        if c == '"' or c == "\\":
            out.append("\\" + c)
        elif 32 <= b < 127:
            out.append(c)
        else:
            out.append(f"\\{b:02X}")
    return '"' + "".join(out) + '"'


_BARE_ID_RE = re.compile(r"[A-Za-z_][A-Za-z0-9_$.]*")


def symbol_text(name: str) -> str:
    """A name as a bare identifier when it is one, else as a string literal."""
    return name if _BARE_ID_RE.fullmatch(name) else quote_string(name)


# -- scalars -------------------------------------------------------------------------------------


@value_class
class IntegerAttr(Attribute):
    """An integer of an integer or index type: ``4``, ``4 : i32``. The ``: i64`` is elided."""

    value: int
    type: Type = i64

    def __str__(self) -> str:
        if self.type == i64:
            return str(self.value)
        return f"{self.value} : {self.type}"


@value_class
class BoolAttr(Attribute):
    """``true`` or ``false`` (an ``i1``)."""

    value: bool

    @property
    def type(self) -> Type:
        return i1

    def __str__(self) -> str:
        return "true" if self.value else "false"


_PACK = {"f16": "e", "f32": "f", "f64": "d"}


_BF16_MAX = (2 - 2 ** -7) * 2.0 ** 127


def _round_bf16(value: float) -> float:
    """``value`` rounded to the nearest bfloat16 (ties to even): 8 significant bits, the exponent
    range of f32 (subnormals down to 2**-133)."""
    if value == 0 or not math.isfinite(value):
        return value
    exponent = math.frexp(value)[1]
    if exponent > 128:
        return math.copysign(math.inf, value)
    quantum = max(exponent - 8, -133)
    result = math.copysign(math.ldexp(round(math.ldexp(value, -quantum)), quantum), value)
    return result if abs(result) <= _BF16_MAX else math.copysign(math.inf, value)


def _round_to(kind: str, value: float) -> float:
    """``value`` rounded to the precision of the float type ``kind`` (where struct knows it)."""
    if kind == "bf16":
        return _round_bf16(value)
    fmt = _PACK.get(kind)
    if fmt is None or not math.isfinite(value):
        return value
    try:
        return struct.unpack(fmt, struct.pack(fmt, value))[0]
    except OverflowError:
        return math.copysign(math.inf, value)


def float_text(value: float, kind: str = "f64") -> str:
    """The shortest decimal literal with a '.' that reads back to ``value`` in type ``kind``."""
    if kind != "f64" and (kind in _PACK or kind == "bf16"):
        for digits in range(6, 18):
            text = f"{value:.{digits}g}"
            if _round_to(kind, float(text)) == value:
                break
    else:
        text = repr(value)
    if "." not in text:
        mantissa, e, exponent = text.partition("e")
        text = f"{mantissa}.0{e}{exponent}"
    return text


def float_literal(value: float, kind: str = "f64") -> str:
    """``value`` as a literal of float type ``kind``: decimal if finite, else its bit pattern in hex."""
    if math.isfinite(value):
        return float_text(value, kind)
    if kind == "bf16":
        bits, digits = int.from_bytes(struct.pack("<f", value), "little") >> 16, 4
    else:
        fmt = _PACK.get(kind, "d")
        bits, digits = int.from_bytes(struct.pack("<" + fmt, value), "little"), struct.calcsize(fmt) * 2
    return f"0x{bits:0{digits}X}"


def _float_key(value: float) -> bytes:
    # Floats compare by bit pattern, as MLIR's attributes do: -0.0 is not 0.0, and a NaN is itself.
    return struct.pack("<d", value)


@value_class
class FloatAttr(Attribute):
    """A float of a float type: ``1.5 : f32``; non-finite values print as their bit pattern."""

    value: float
    type: FloatType = f64

    def __eq__(self, other):
        return (type(other) is type(self) and self.type == other.type
                and _float_key(self.value) == _float_key(other.value))

    def __hash__(self):
        return hash((self.type, _float_key(self.value)))

    def __str__(self) -> str:
        return f"{float_literal(self.value, self.type.kind)} : {self.type}"


def float_from_bits(bits: int, type: FloatType) -> float:
    """The float whose bit pattern in ``type`` is ``bits`` (MLIR's hex float literals)."""
    if type.kind == "bf16":
        if not 0 <= bits < 1 << 16:
            raise ValueError(f"hexadecimal float literal does not fit {type}")
        return struct.unpack("<f", (bits << 16).to_bytes(4, "little"))[0]
    fmt = _PACK.get(type.kind)
    if fmt is None:
        raise ValueError(f"hexadecimal float literals of type {type} are not supported")
    size = struct.calcsize(fmt)
    if not 0 <= bits < 1 << (8 * size):
        raise ValueError(f"hexadecimal float literal does not fit {type}")
    return struct.unpack("<" + fmt, bits.to_bytes(size, "little"))[0]


@value_class
class StringAttr(Attribute):
    """A string: ``"conv1"``; ``type`` is set only for a typed string ``"x" : i32``."""

    value: str
    type: Type | None = None

    def __str__(self) -> str:
        text = quote_string(self.value)
        return text if self.type is None else f"{text} : {self.type}"


@value_class
class UnitAttr(Attribute):
    """The presence-only attribute: ``unit``, or just the name in a dictionary."""

    def __str__(self) -> str:
        return "unit"


UNIT = UnitAttr()
TRUE = BoolAttr(True)
FALSE = BoolAttr(False)


@value_class
class TypeAttr(Attribute):
    """A type used as an attribute value (``function_type = (i32) -> i32``)."""

    value: Type

    def __str__(self) -> str:
        return str(self.value)


@value_class
class SymbolRefAttr(Attribute):
    """A reference to a symbol: ``@root`` or nested ``@root::@leaf``."""

    root: str
    nested: tuple[str, ...] = ()

    def __str__(self) -> str:
        return "::".join("@" + symbol_text(n) for n in (self.root, *self.nested))


# -- containers ----------------------------------------------------------------------------------


@value_class
class ArrayAttr(Attribute):
    """A list of attributes: ``[1, "a", i32]``."""

    value: tuple[Attribute, ...]

    def __iter__(self):
        return iter(self.value)

    def __len__(self) -> int:
        return len(self.value)

    def __getitem__(self, i):
        return self.value[i]

    def __str__(self) -> str:
        return "[" + ", ".join(map(str, self.value)) + "]"


def dict_entries_text(entries) -> str:
    """``a = 1, b`` for the (name, attribute) pairs of a dictionary (unit values print bare)."""
    parts = []
    for name, value in entries:
        key = symbol_text(name)
        parts.append(key if value is UNIT else f"{key} = {value}")
    return ", ".join(parts)


@value_class
class DictionaryAttr(Attribute):
    """A dictionary of named attributes: ``{a = 1, b}``; entries keep their order."""

    value: dict

    def __eq__(self, other):
        return isinstance(other, DictionaryAttr) and self.value == other.value

    def __hash__(self):
        return hash(tuple(self.value.items()))

    def __str__(self) -> str:
        return "{" + dict_entries_text(self.value.items()) + "}"


@value_class
class DenseArrayAttr(Attribute):
    """A flat array of scalars stored inline: ``array<i64: 1, 2, 3>``."""

    element_type: Type
    values: tuple

    def __eq__(self, other):
        return (type(other) is type(self) and self.element_type == other.element_type
                and self._key() == other._key())

    def __hash__(self):
        return hash((self.element_type, self._key()))

    def _key(self) -> tuple:
        if isinstance(self.element_type, FloatType):
            return tuple(_float_key(v) for v in self.values)
        return self.values

    def __str__(self) -> str:
        if not self.values:
            return f"array<{self.element_type}>"
        if isinstance(self.element_type, FloatType):
            items = ", ".join(float_literal(v, self.element_type.kind) for v in self.values)
        elif self.element_type == i1:
            items = ", ".join("true" if v else "false" for v in self.values)
        else:
            items = ", ".join(map(str, self.values))
        return f"array<{self.element_type}: {items}>"


@value_class
class DialectAttr(Attribute):
    """An attribute of a dialect: ``#dialect.name`` or ``#dialect.name<body>`` (body kept as text)."""

    dialect: str
    name: str
    body: str | None = None

    def __str__(self) -> str:
        body = "" if self.body is None else f"<{self.body}>"
        return f"#{self.dialect}.{self.name}{body}"


# -- dense elements ------------------------------------------------------------------------------


def numpy_dtype(element_type: Type):
    """The numpy dtype that holds elements of ``element_type``."""
    import numpy as np

    if isinstance(element_type, FloatType):
        names = {"f16": np.float16, "f32": np.float32, "f64": np.float64}
        if element_type.kind in names:
            return np.dtype(names[element_type.kind])
    elif isinstance(element_type, IntegerType):
        if element_type.width == 1:
            return np.dtype(np.bool_)
        if element_type.width in (8, 16, 32, 64):
            kind = "uint" if element_type.signedness == "u" else "int"
            return np.dtype(f"{kind}{element_type.width}")
    elif isinstance(element_type, IndexType):
        return np.dtype(np.int64)
    raise ValueError(f"dense elements of type {element_type} are not supported")


HEX_PRINT_THRESHOLD = 64  # dense payloads with more elements print as one hex string


class DenseElementsAttr(Attribute):
    """Constant tensor contents: ``dense<[1.0, 2.0]> : tensor<2xf32>``, ``dense<0.0> : ...`` (splat),
    or ``dense<"0x...">`` (raw little-endian bytes, how large payloads print).

    ``array`` is a numpy array: of one element when ``is_splat``, else of the full shape.
    """

    __slots__ = ("type", "array", "is_splat", "_hash")

    def __init__(self, type: TensorType | VectorType, array, is_splat: bool | None = None):
        import numpy as np

        array = np.asarray(array, dtype=numpy_dtype(type.element_type))
        if is_splat is None:
            is_splat = array.size == 1
        if is_splat:
            array = array.reshape(())
        else:
            array = array.reshape(type.shape)
        array.setflags(write=False)
        object.__setattr__(self, "type", type)
        object.__setattr__(self, "array", array)
        object.__setattr__(self, "is_splat", bool(is_splat))
        object.__setattr__(self, "_hash", None)

    def __setattr__(self, name, value):
        raise FrozenError(f"DenseElementsAttr is immutable; cannot set '{name}'")

    def to_numpy(self):
        """The full-shape contents (a splat is broadcast, read-only)."""
        import numpy as np

        if self.is_splat:
            return np.broadcast_to(self.array, self.type.shape)
        return self.array

    def __eq__(self, other):
        return (
            isinstance(other, DenseElementsAttr)
            and self.type == other.type
            and self.is_splat == other.is_splat
            and self.array.tobytes() == other.array.tobytes()
        )

    def __hash__(self):
        if self._hash is None:
            object.__setattr__(self, "_hash", hash((self.type, self.is_splat, self.array.tobytes())))
        return self._hash

    def _element_text(self, v) -> str:
        element = self.type.element_type
        if isinstance(element, FloatType):
            v = float(v)
            if math.isfinite(v):
                return float_text(v, element.kind)
            return "0x" + self.array.dtype.type(v).tobytes()[::-1].hex().upper()
        if element == i1:
            return "true" if v else "false"
        return str(int(v))

    def __str__(self) -> str:
        if self.is_splat:
            body = self._element_text(self.array.item())
        elif self.array.size == 0:
            body = ""  # as MLIR prints it: a nested [] could not show the shape of tensor<2x0x3xf32>
        elif self.array.size > HEX_PRINT_THRESHOLD or not self._elements_print_exactly():
            body = '"0x' + self.array.astype(self.array.dtype.newbyteorder("<")).tobytes().hex().upper() + '"'
        else:
            body = self._nested_text(self.array.tolist())
        return f"dense<{body}> : {self.type}"

    def _elements_print_exactly(self) -> bool:
        element = self.type.element_type
        return not isinstance(element, FloatType) or all(math.isfinite(v) for v in self.array.flat)

    def _nested_text(self, value) -> str:
        if isinstance(value, list):
            return "[" + ", ".join(self._nested_text(v) for v in value) + "]"
        return self._element_text(value)


# -- resources -----------------------------------------------------------------------------------


class ResourceHandle:
    """A named blob of bytes that lives outside the IR text (MLIR's dialect resources).

    Attributes refer to the handle by name; ``data`` is filled when the resource section is read,
    and may stay None for a handle that names a resource the file does not carry. A resource kept
    in a weights file (:mod:`xir.weights`) is deferred: ``data`` is fetched by a loader the first
    time it is used, as a read-only ``memoryview`` of the mapped file instead of ``bytes``.
    """

    __slots__ = ("name", "_data", "_loader", "alignment")

    def __init__(self, name: str, data: bytes | None = None, alignment: int = 4):
        self.name = name
        self._data = data
        self._loader = None
        self.alignment = alignment

    @property
    def data(self) -> bytes | memoryview | None:
        """The blob's bytes (loaded now if they were deferred), or None if there are none."""
        if self._loader is not None:
            self._data = self._loader()
            self._loader = None
        return self._data

    @data.setter
    def data(self, data: bytes | memoryview | None) -> None:
        self._data = data
        self._loader = None

    def defer(self, loader, alignment: int) -> None:
        """Let ``data`` come from ``loader()`` (called once) the first time it is used."""
        self._data = None
        self._loader = loader
        self.alignment = alignment

    @property
    def loaded(self) -> bool:
        """Whether the data is at hand, not waiting for its loader."""
        return self._loader is None

    def __reduce__(self):
        # A deferred blob is a view of a mapped file, which cannot be pickled: pickle its bytes.
        data = self.data
        return (ResourceHandle, (self.name, None if data is None else bytes(data), self.alignment))

    def __repr__(self) -> str:
        if not self.loaded:
            return f"<resource {self.name}: not loaded yet>"
        size = "missing" if self._data is None else f"{len(self._data)} bytes"
        return f"<resource {self.name}: {size}>"


@value_class
class DenseResourceAttr(Attribute):
    """Tensor contents held in a named resource: ``dense_resource<conv1_w> : tensor<8x3x3x3xf32>``."""

    handle: ResourceHandle
    type: Type

    def __eq__(self, other):
        return (
            isinstance(other, DenseResourceAttr)
            and self.handle.name == other.handle.name
            and self.type == other.type
        )

    def __hash__(self):
        return hash((self.handle.name, self.type))

    def to_numpy(self):
        """The resource's bytes viewed as an array of this attribute's type."""
        import numpy as np

        if self.handle.data is None:
            raise ValueError(f"resource '{self.handle.name}' has no data")
        dtype = numpy_dtype(self.type.element_type).newbyteorder("<")
        return np.frombuffer(self.handle.data, dtype=dtype).reshape(self.type.shape)

    def __str__(self) -> str:
        return f"dense_resource<{symbol_text(self.handle.name)}> : {self.type}"


# -- locations -----------------------------------------------------------------------------------


class Location(Attribute):
    """Where an operation came from; prints as ``loc(...)``."""

    __slots__ = ()

    def __str__(self) -> str:
        return f"loc({self.body()})"

    def body(self) -> str:
        raise NotImplementedError


@value_class
class UnknownLoc(Location):
    """No known location: ``loc(unknown)``."""

    def body(self) -> str:
        return "unknown"


@value_class
class FileLineColLoc(Location):
    """``loc("model.xir":12:5)``."""

    filename: str
    line: int
    column: int

    def body(self) -> str:
        return f"{quote_string(self.filename)}:{self.line}:{self.column}"


@value_class
class NameLoc(Location):
    """A named location, ``loc("conv1")``, optionally wrapping a child: ``loc("conv1"("m.onnx":3:1))``."""

    name: str
    child: Location | None = None

    def body(self) -> str:
        child = "" if self.child is None else f"({self.child.body()})"
        return quote_string(self.name) + child


@value_class
class FusedLoc(Location):
    """Several locations fused into one (an op built from several source ops)."""

    locations: tuple[Location, ...]
    metadata: Attribute | None = None

    def body(self) -> str:
        meta = "" if self.metadata is None else f"<{self.metadata}>"
        return f"fused{meta}[" + ", ".join(l.body() for l in self.locations) + "]"


@value_class
class CallSiteLoc(Location):
    """``loc(callsite("callee" at "caller"))``."""

    callee: Location
    caller: Location

    def body(self) -> str:
        return f"callsite({self.callee.body()} at {self.caller.body()})"


UNKNOWN_LOC = UnknownLoc()


def location_name(loc: Location | None) -> str | None:
    """The user-facing name carried by a location (the source model's node name), if any."""
    if isinstance(loc, NameLoc):
        return loc.name
    if isinstance(loc, FusedLoc):
        names = [n for n in map(location_name, loc.locations) if n]
        return "+".join(names) if names else None
    return None

