"""ONNX → graph dialect: the import driver.

:func:`import_onnx` turns an ONNX model into a module with one ``func.func @main``: its arguments
are the graph inputs that have no initializer, its results the graph outputs. Initializers and
folded constants are kept as numpy arrays while importing and become ``graph.constant`` ops only
where a graph op uses them (large ones as ``dense_resource`` blobs in ``module.resources``, small
ones inline). Nodes whose inputs are all constant and whose op is a shape computation (Shape,
Gather, Concat, Reshape, ...) are evaluated with numpy. Each node's name becomes the location of
the ops built for it. The per-op mapping lives in :mod:`.onnx_ops`.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from xir import attributes as A
from xir import types as T
from xir.builtin import ModuleOp
from xir.diagnostics import XirError, first_line
from xir.dialect import lookup_op
from xir.dialects.graph.constants import constant_attr
from xir.dialects.graph.constants import identifier
from xir.dialects.graph.onnx_mapping import element_type_of, value_type_from_onnx
from xir.ir import Block, Operation, Region


class NodeError(XirError):
    """An import error about one node."""


class Unsupported(NodeError):
    """A valid node that graph ops cannot express; the importer keeps it as a ``graph.onnx`` op."""

    reason = ""


class Importer:
    """The state of one import: the module being built, and what each ONNX name denotes
    (a numpy array for a known constant, an IR value otherwise)."""

    def __init__(self, model):
        import onnx

        self.model = model
        self.onnx = onnx
        self.opset = self.opset_of("")
        self.module = ModuleOp.build()
        self.env: dict[str, object] = {}
        self.materialized: dict[int, object] = {}
        self.block: Block | None = None
        self.node = None
        self.location = None
        self.const_names: dict[int, tuple] = {}  # id(array) -> (array, its ONNX name)
        self.symbolic: dict[int, tuple] = {}  # id(array) -> (array, source dims): see onnx_ops
        self._declared: dict | None = None

    # -- values and constants -----------------------------------------------------------------

    def is_const(self, x) -> bool:
        """Whether a node input is a constant known at import time (a numpy array)."""
        return isinstance(x, np.ndarray)

    def const(self, x, what: str = "input") -> np.ndarray:
        """A node input that must be a known constant (:class:`Unsupported` if it is computed at
        run time: the node is then kept as a ``graph.onnx`` op)."""
        if not self.is_const(x):
            raise self.unsupported(f"{what} must be a constant (computed at run time here)")
        return x

    def value(self, x, any_dtype: bool = False):
        """An IR value for ``x``: itself if it is one, else a ``graph.constant`` holding it (as
        f32, as graph ops take; in its own element type when ``any_dtype``)."""
        if not self.is_const(x):
            return x
        cached = self.materialized.get(id(x))
        if cached is not None and cached[0] is x and (
                any_dtype or cached[1].type.element_type == T.f32):
            return cached[1]
        entry = self.symbolic.get(id(x))
        if entry is not None and entry[0] is x:
            raise self.unsupported("uses a shape that depends on a dynamic dimension as a tensor")
        if any_dtype:
            try:
                element_type_of(x.dtype)
            except ValueError as e:
                raise self.error(str(e)) from None
        else:
            if x.dtype.kind not in "fiub":
                raise self.error(f"cannot use a constant of dtype {x.dtype} as a tensor operand")
            if x.dtype.kind != "f":
                raise self.unsupported(f"graph ops take f32 tensors; a constant here has dtype {x.dtype}")
        onnx_name = self.const_names.get(id(x), (None, None))[1]
        attr = constant_attr(self.module, x if any_dtype else x.astype(np.float32, copy=False),
                             onnx_name or "cst")
        location = A.NameLoc(onnx_name) if onnx_name else self.location
        op = Operation.create("graph.constant", (), [attr.type], attributes={"value": attr},
                              location=location)
        if onnx_name:
            op.result.name_hint = identifier(onnx_name)
        self.block.append(op)
        self.materialized[id(x)] = (x, op.result)
        return op.result

    def opset_of(self, domain: str) -> int:
        """The model's opset version of ``domain`` (1 if the model does not import it)."""
        return opset_version(self.model, domain)

    def declared_type(self, name: str) -> T.TensorType | None:
        """The type the model gives ONNX value ``name`` (its value_info or outputs, completed by
        ONNX shape inference over the whole model); None if unknown."""
        if self._declared is None:
            try:
                model = self.onnx.shape_inference.infer_shapes(self.model)
            except Exception:  # inference is a hint here: the model's own lists still count
                model = self.model
            self._declared = {v.name: v.type for v in (*model.graph.value_info, *model.graph.output)}
        proto = self._declared.get(name)
        try:
            return None if proto is None else value_type_from_onnx(proto, f"value '{name}'")
        except ValueError:
            return None

    def shape(self, x) -> tuple:
        """The static shape of ``x`` (a dynamic dim is ``T.DYNAMIC``)."""
        return tuple(x.shape) if self.is_const(x) else tuple(x.type.shape)

    # -- building ops -----------------------------------------------------------------------

    def emit(self, name: str, operands, attributes: dict | None = None, results: int | None = None):
        """Build graph op ``name`` on ``operands`` (constants are materialized), its result types
        inferred by the op class; returns its results."""
        attributes = {k: v for k, v in (attributes or {}).items() if v is not None}
        operands = [self.value(x) for x in operands]
        op_class = lookup_op(name)
        try:
            types = op_class.infer_result_types([v.type for v in operands], attributes)
        except ValueError as e:
            raise self.error(f"{name}: {e}") from None
        op = Operation.create(name, operands, types, attributes=attributes, location=self.location)
        self.block.append(op)
        return list(op.results)

    def emit1(self, name: str, operands, attributes: dict | None = None):
        """:meth:`emit` for a one-result op: its result."""
        return self.emit(name, operands, attributes)[0]

    def unsupported(self, message: str) -> Unsupported:
        """An :class:`Unsupported` about the node being converted: graph ops cannot express it
        (``reason`` keeps the bare message)."""
        error = self.error(message, Unsupported)
        error.reason = message
        return error

    def error(self, message: str, kind: type = NodeError) -> NodeError:
        """An XirError about the node being converted (``Op: message (node 'name')``)."""
        node = self.node
        if node is None:
            return kind(message)
        if not message.startswith("unsupported"):
            message = f"{node.op_type}: {message}"
        return kind(f"{message} (node '{node_label(node)}')")

    # -- attributes -------------------------------------------------------------------------

    def attrs(self, node) -> dict:
        """The node's attributes as Python values (tensors as numpy arrays)."""
        helper = self.onnx.helper
        out = {}
        for a in node.attribute:
            value = helper.get_attribute_value(a)
            if isinstance(value, self.onnx.TensorProto):
                value = self.onnx.numpy_helper.to_array(value)
            elif isinstance(value, bytes):
                value = value.decode()
            elif isinstance(value, list) and value and isinstance(value[0], bytes):
                value = [v.decode() for v in value]
            out[a.name] = value
        return out

    # -- the driver -------------------------------------------------------------------------

    def run(self) -> ModuleOp:
        """Convert the whole graph; the module holding ``func.func @main``."""
        graph = self.model.graph
        for init in graph.initializer:
            self._bind(init.name, _initializer(self.onnx, init))
        inputs = [i for i in graph.input if i.name not in self.env]
        arg_types = [self._input_type(i) for i in inputs]
        block = Block(arg_types)
        for arg, i in zip(block.args, inputs):
            arg.name_hint = identifier(i.name)
            self.env[i.name] = arg
        self.block = block
        for node in graph.node:
            self.node = node
            self.location = A.NameLoc(node_label(node))
            ins = []
            for name in node.input:
                if name == "":
                    ins.append(None)
                elif name not in self.env:
                    raise self.error(f"input '{name}' is not a graph input, an initializer or an "
                                     "earlier node's output")
                else:
                    ins.append(self.env[name])
            outs = self._convert(node, ins)
            for name, value in zip(node.output, outs):
                if name:
                    if value is not None and not self.is_const(value):
                        if value.name_hint is None and getattr(value, "owner", None) is not None:
                            value.name_hint = identifier(name)
                    self._bind(name, value)
        self.node = None
        self.location = None
        results = []
        for out in graph.output:
            if out.name not in self.env or self.env[out.name] is None:
                raise XirError(f"graph output '{out.name}' is not produced by any node")
            results.append(self.value(self.env[out.name]))
        from xir.dialects.func import FuncOp

        block.append(Operation.create("func.return", results, []))
        arg_attrs = [{} if identifier(i.name) == i.name else {"xir.name": A.StringAttr(i.name)}
                     for i in inputs]
        func = FuncOp.from_signature("main", arg_types, [r.type for r in results],
                                     arg_attrs=arg_attrs, body=Region([block]))
        self.module.body.append(func)
        return self.module

    def _convert(self, node, ins: list) -> list:
        """The values of ``node``'s outputs: graph ops where they can express the node, else one
        ``graph.onnx`` op that keeps it whole."""
        from . import onnx_generic, onnx_ops

        reason = onnx_generic.why_generic(self, node, ins)
        if reason is None:
            mark = self.block.last_op
            try:
                return onnx_ops.convert(self, node, self.attrs(node), ins)
            except Unsupported as e:
                self._roll_back(mark)
                reason = e.reason
        return onnx_generic.emit_generic(self, node, ins, reason)

    def _roll_back(self, mark) -> None:
        """Erase the ops appended after ``mark`` (a node's half-built conversion) and forget the
        constants and resources they held."""
        erased = []
        while self.block.last_op is not mark:
            op = self.block.last_op
            erased.append(op)
            op.erase()
        gone = {id(r) for op in erased for r in op.results}
        self.materialized = {k: v for k, v in self.materialized.items() if id(v[1]) not in gone}
        for op in erased:
            value = op.attributes.get("value")
            if isinstance(value, A.DenseResourceAttr):
                self.module.resources.pop(value.handle.name, None)

    def _bind(self, name: str, value) -> None:
        """Let ONNX name ``name`` denote ``value`` (a constant remembers its first name)."""
        self.env[name] = value
        if self.is_const(value) and id(value) not in self.const_names:
            self.const_names[id(value)] = (value, name)

    def _input_type(self, info) -> T.TensorType:
        if not info.type.HasField("tensor_type"):
            raise XirError(f"graph input '{info.name}' is not a tensor")
        if not info.type.tensor_type.HasField("shape"):
            raise XirError(f"graph input '{info.name}' has no shape")
        try:
            type_ = value_type_from_onnx(info.type, f"graph input '{info.name}'")
        except ValueError as e:
            raise XirError(str(e)) from None
        if type_ is None:
            raise XirError(f"graph input '{info.name}' has no element type")
        return type_


def _initializer(onnx, init) -> np.ndarray:
    """An initializer's array (XirError if it cannot be read or holds NaN: a corrupt model)."""
    try:
        array = onnx.numpy_helper.to_array(init)
    except Exception as e:  # a missing external data file, a size that does not match, ...
        raise XirError(f"initializer '{init.name}' cannot be read: {first_line(e)}") from None
    if array.dtype.kind == "f" and np.isnan(array.sum()):  # a NaN (or +inf and -inf) somewhere
        nans = int(np.count_nonzero(np.isnan(array)))
        if nans:
            raise XirError(f"initializer '{init.name}' holds NaN in {nans} of {array.size} values")
    return array


def node_label(node) -> str:
    """How messages name an ONNX node: its name, else its first output."""
    return node.name or (node.output[0] if node.output else node.op_type)


def load_model(model_or_path):
    """An ``onnx.ModelProto`` from a path, bytes or a model (XirError, one line, if unreadable)."""
    import onnx

    if isinstance(model_or_path, onnx.ModelProto):
        return model_or_path
    try:
        if isinstance(model_or_path, (bytes, bytearray)):
            model = onnx.load_from_string(bytes(model_or_path))
            where = "the given bytes"
        else:
            where = f"'{model_or_path}'"
            model = onnx.load(str(Path(model_or_path)))
    except FileNotFoundError:
        raise XirError(f"cannot read ONNX model {where}: no such file") from None
    except Exception as e:  # protobuf DecodeError and friends
        raise XirError(f"cannot read ONNX model {where}: not a valid ONNX file "
                       f"({first_line(e)})") from None
    if not model.HasField("graph") or (not model.graph.node and not model.graph.output):
        raise XirError(f"cannot read ONNX model {where}: not a valid ONNX file (no graph)")
    return model


def opset_version(model, domain: str = "") -> int:
    """``model``'s opset version of ``domain`` ('' and 'ai.onnx' both name the default
    domain; 1 if the model does not import it)."""
    default = ("", "ai.onnx")
    return next((o.version for o in model.opset_import
                 if o.domain == domain or (domain in default and o.domain in default)), 1)


def check_opset(model) -> None:
    """XirError (one line) unless xir imports ``model``'s opset: any up to the newest the
    installed onnx knows. Nodes of opsets before 7 keep their own semantics; the ``graph.onnx``
    ops among them are upgraded to opset 7 only to run in onnxruntime."""
    import onnx

    version, newest = opset_version(model), onnx.defs.onnx_opset_version()
    if version > newest:
        raise XirError(f"unsupported ONNX opset {version}: the installed onnx {onnx.__version__} "
                       f"knows opsets up to {newest}")


def import_onnx(model_or_path) -> ModuleOp:
    """Import an ONNX model (a path, serialized bytes, or an ``onnx.ModelProto``) into a module
    holding ``func.func @main`` in the graph dialect.

    A node that graph ops cannot express is kept whole as a ``graph.onnx`` op. Raises :class:`~xir.diagnostics.XirError` with a one-line
    message on an unreadable file, an unsupported opset, an invalid node or inconsistent shapes.
    """
    model = load_model(model_or_path)
    check_opset(model)
    return Importer(model).run()
