"""Graph dialect → ONNX: the inverse of :mod:`.onnx_import`.

:func:`export_onnx` turns a module holding ``func.func @main`` in the graph dialect into an
``onnx.ModelProto``: the function's arguments become graph inputs, its results graph outputs,
``graph.constant`` ops initializers (named after the constant's location or value name), and
every other graph op one ONNX node (named after its location). Parameters that ONNX takes as
inputs (Reshape's shape, Slice's starts/ends/axes/steps, Pad's pads, ...) become int64 or float
initializers. :func:`save_onnx` writes the model atomically.
"""

from __future__ import annotations

import os

import numpy as np

from xir import attributes as A
from xir.attributes import location_name
from xir.diagnostics import XirError, first_line
from xir.dialects.graph.base import get_float, get_int, get_ints, get_str
from xir.dialects.graph.onnx_mapping import value_type_to_onnx

from xir.dialects.graph.constants import identifier


class _Exporter:
    """The state of one export: the nodes and initializers built so far and the ONNX name of
    every IR value."""

    def __init__(self, opset: int):
        import onnx

        self.onnx = onnx
        self.helper = onnx.helper
        self.opset = opset
        self.nodes: list = []
        self.inits: list = []
        self.names: dict[int, str] = {}  # id(value) -> ONNX name
        self.used: set[str] = set()
        self.node_names: set[str] = set()
        self.op = None
        self.node_name = None
        self.domains: dict[str, int] = {}  # custom domains of graph.onnx nodes -> their opset

    def unique(self, base: str | None, fallback: str) -> str:
        """``base`` (or ``fallback``), made unique among all names in the graph."""
        base = base or fallback
        name, i = base, 1
        while name in self.used:
            name, i = f"{base}_{i}", i + 1
        self.used.add(name)
        return name

    def name_of(self, value) -> str:
        """The ONNX name of an IR value, given when it was defined."""
        try:
            return self.names[id(value)]
        except KeyError:
            raise self.error("uses a value that is not defined in @main") from None

    def define(self, value, base: str | None, fallback: str) -> str:
        """Give IR value ``value`` a fresh ONNX name."""
        name = self.unique(base, fallback)
        self.names[id(value)] = name
        return name

    def init(self, array, base: str) -> str:
        """A new initializer holding ``array``; its name."""
        name = self.unique(f"{self.node_name}_{base}" if self.node_name else base, base)
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(array), name))
        return name

    def ints_init(self, values, base: str) -> str:
        """An int64 1-D initializer (a shape-like parameter passed as an input)."""
        return self.init(np.asarray(list(values), dtype=np.int64).reshape(-1), base)

    def error(self, message: str) -> XirError:
        """An XirError about the op being exported."""
        where = f" (at '{self.node_name}')" if self.node_name else ""
        return XirError(f"{message}{where}")

    def node(self, op_type: str, inputs: list, outputs: list, **attrs) -> None:
        """Append one ONNX node named after the op being exported."""
        attrs = {k: v for k, v in attrs.items() if v is not None}
        self.add_node(self.helper.make_node(op_type, inputs, outputs, **attrs))

    def add_node(self, node) -> None:
        """Append a built ``onnx.NodeProto``, named after the op being exported (uniquely)."""
        base = self.node_name or node.op_type.lower()
        name, i = base, 1
        while name in self.node_names:
            name, i = f"{base}_{i}", i + 1
        self.node_names.add(name)
        node.name = name
        self.nodes.append(node)


def _value_info(name: str, type_, what: str):
    """The graph input or output ``name`` (a dynamic batch is ``N``, other dynamic dims ``D<i>``)."""
    try:
        return value_type_to_onnx(name, type_)
    except ValueError:
        raise XirError(f"cannot export {what} '{name}' of type {type_} to ONNX") from None


# -- one exporter per graph op -----------------------------------------------------------------
# each takes (exporter, op, attrs, input names, output names) and appends node(s)


def _simple(op_type, **names):
    """An op whose attributes map one-to-one (``names``: ONNX name -> (graph name, kind))."""
    def export(ex, op, attrs, ins, outs):
        kw = {}
        for onnx_name, (graph_name, kind) in names.items():
            getter = {"ints": get_ints, "int": get_int, "float": get_float, "str": get_str}[kind]
            value = getter(attrs, graph_name)
            if value is not None:
                kw[onnx_name] = list(value) if kind == "ints" else value
        ex.node(op_type, ins, outs, **kw)
    return export


def _constant_value(op):
    value = op.all_attributes()["value"]
    if not isinstance(value, (A.DenseElementsAttr, A.DenseResourceAttr)):
        raise XirError(f"cannot export a constant holding {type(value).__name__}")
    return np.ascontiguousarray(value.to_numpy())


def _reshape(ex, op, attrs, ins, outs):
    ex.node("Reshape", [ins[0], ex.ints_init(get_ints(attrs, "shape"), "shape")], outs,
            allowzero=get_int(attrs, "allowzero", 0) or None)


def _slice(ex, op, attrs, ins, outs):
    inputs = [ins[0], ex.ints_init(get_ints(attrs, "starts"), "starts"),
              ex.ints_init(get_ints(attrs, "ends"), "ends")]
    axes, steps = get_ints(attrs, "axes"), get_ints(attrs, "steps")
    if axes is not None or steps is not None:
        axes = axes if axes is not None else range(len(get_ints(attrs, "starts")))
        inputs.append(ex.ints_init(axes, "axes"))
    if steps is not None:
        inputs.append(ex.ints_init(steps, "steps"))
    ex.node("Slice", inputs, outs)


def _axes_op(op_type, since=13):
    def export(ex, op, attrs, ins, outs):
        axes = get_ints(attrs, "axes")
        kw = {}
        if op_type == "ReduceMean":
            kw["keepdims"] = get_int(attrs, "keepdims", 1)
        if axes is None:
            ex.node(op_type, ins, outs, **kw)
        elif ex.opset >= since:
            ex.node(op_type, [ins[0], ex.ints_init(axes, "axes")], outs, **kw)
        else:
            ex.node(op_type, ins, outs, axes=list(axes), **kw)
    return export


def _pad(ex, op, attrs, ins, outs):
    value = get_float(attrs, "value", 0.0)
    inputs = [ins[0], ex.ints_init(get_ints(attrs, "pads"), "pads")]
    if value != 0.0:
        inputs.append(ex.init(np.array(value, np.float32), "value"))
    ex.node("Pad", inputs, outs, mode=get_str(attrs, "mode", "constant"))


def _split(ex, op, attrs, ins, outs):
    split, axis = get_ints(attrs, "split"), get_int(attrs, "axis", 0)
    if split is not None:
        ex.node("Split", [ins[0], ex.ints_init(split, "split")], outs, axis=axis)
    elif ex.opset >= 18:
        ex.node("Split", ins, outs, axis=axis, num_outputs=len(outs))
    else:
        # opset < 18 splits evenly only when the size divides: spell the sizes out
        sizes = op._sizes(op.operands[0].type.shape, attrs)[1]
        if any(int(n) < 0 for n in sizes):
            raise ValueError(f"an even split of a dynamic dimension needs opset 18 (not {ex.opset})")
        ex.node("Split", [ins[0], ex.ints_init(sizes, "split")], outs, axis=axis)


def _clip(ex, op, attrs, ins, outs):
    lo, hi = get_float(attrs, "min"), get_float(attrs, "max")
    inputs = [ins[0], ex.init(np.array(lo, np.float32), "min") if lo is not None else ""]
    if hi is not None:
        inputs.append(ex.init(np.array(hi, np.float32), "max"))
    while inputs[-1] == "":
        inputs.pop()
    ex.node("Clip", inputs, outs)


def _resize(ex, op, attrs, ins, outs):
    scales, sizes = attrs.get("scales"), get_ints(attrs, "sizes")
    inputs = [ins[0], ""]
    if sizes is not None:
        inputs += ["", ex.ints_init(sizes, "sizes")]
    else:
        inputs.append(ex.init(np.array([float(s.value) for s in scales], np.float32), "scales"))
    ex.node("Resize", inputs, outs, mode=get_str(attrs, "mode", "nearest"),
            coordinate_transformation_mode=get_str(attrs, "coordinate_transformation_mode",
                                                   "half_pixel"),
            nearest_mode=get_str(attrs, "nearest_mode", "round_prefer_floor"))


def _max_pool(ex, op, attrs, ins, outs):
    kernel = get_ints(attrs, "kernel_shape")
    shape = op.operands[0].type.shape
    if (tuple(shape[2:]) == tuple(kernel) and get_ints(attrs, "pads", [0] * 4) == (0,) * 4
            and get_ints(attrs, "dilations", [1, 1]) == (1, 1)):
        # the importer spells GlobalMaxPool as a max pool over the whole (static) window
        ex.node("GlobalMaxPool", ins, outs)
        return
    _simple("MaxPool", kernel_shape=("kernel_shape", "ints"), strides=("strides", "ints"),
            pads=("pads", "ints"), dilations=("dilations", "ints"),
            ceil_mode=("ceil_mode", "int"))(ex, op, attrs, ins, outs)


_CONV = dict(strides=("strides", "ints"), pads=("pads", "ints"), dilations=("dilations", "ints"),
             group=("group", "int"))

def _onnx_node(ex, op, attrs, ins, outs):
    """A kept ONNX node: as it was if written for the export opset (or a custom domain), else
    converted to it by onnx's version converter."""
    domain = op.onnx_domain
    if domain not in ("", "ai.onnx"):
        if ex.domains.setdefault(domain, op.opset.value) != op.opset.value:
            raise ValueError(f"domain '{domain}' is used at opsets {ex.domains[domain]} and "
                             f"{op.opset.value}")
        ex.add_node(op.to_onnx_node(ins, outs, ""))
        return
    if op.opset.value == ex.opset:
        ex.add_node(op.to_onnx_node(ins, outs, ""))
        return
    _converted_node(ex, op, ins, outs)


def _converted_node(ex, op, ins, outs):
    """Splice in the nodes (and initializers) that the version converter makes of ``op``."""
    from xir.dialects.graph.onnx_runner import one_node_model

    try:
        model = ex.onnx.version_converter.convert_version(one_node_model(op), ex.opset)
    except Exception as e:  # the converter raises RuntimeError or its own ConvertError
        raise ValueError(f"converting it from opset {op.opset.value} to {ex.opset} failed "
                         f"({first_line(e)})") from None
    graph = model.graph
    renamed = {f"in{i}": n for i, n in enumerate(ins)} | {f"out{i}": n for i, n in enumerate(outs)}
    renamed[""] = ""

    def rename(old: str) -> str:
        if old not in renamed:
            renamed[old] = ex.unique(f"{ex.node_name or 'node'}_{old}", "v")
        return renamed[old]

    for init in graph.initializer:
        if init.name not in renamed:
            init.name = rename(init.name)
            ex.inits.append(init)
    for node in graph.node:
        node.input[:] = [rename(n) for n in node.input]
        node.output[:] = [rename(n) for n in node.output]
        ex.add_node(node)


EXPORTERS = {
    "graph.conv2d": _simple("Conv", **_CONV),
    "graph.conv_transpose2d": _simple("ConvTranspose", output_padding=("output_padding", "ints"),
                                      **_CONV),
    "graph.max_pool2d": _max_pool,
    "graph.avg_pool2d": _simple("AveragePool", kernel_shape=("kernel_shape", "ints"),
                                strides=("strides", "ints"), pads=("pads", "ints"),
                                ceil_mode=("ceil_mode", "int"),
                                count_include_pad=("count_include_pad", "int")),
    "graph.global_avg_pool": _simple("GlobalAveragePool"),
    "graph.batch_norm": _simple("BatchNormalization", epsilon=("epsilon", "float")),
    "graph.lrn": _simple("LRN", size=("size", "int"), alpha=("alpha", "float"),
                         beta=("beta", "float"), bias=("bias", "float")),
    "graph.softmax": _simple("Softmax", axis=("axis", "int")),
    "graph.relu": _simple("Relu"),
    "graph.sigmoid": _simple("Sigmoid"),
    "graph.tanh": _simple("Tanh"),
    "graph.hard_swish": _simple("HardSwish"),
    "graph.leaky_relu": _simple("LeakyRelu", alpha=("alpha", "float")),
    "graph.hard_sigmoid": _simple("HardSigmoid", alpha=("alpha", "float"), beta=("beta", "float")),
    "graph.prelu": _simple("PRelu"),
    "graph.clip": _clip,
    "graph.identity": _simple("Identity"),
    "graph.add": _simple("Add"),
    "graph.sub": _simple("Sub"),
    "graph.mul": _simple("Mul"),
    "graph.div": _simple("Div"),
    "graph.matmul": _simple("MatMul"),
    "graph.gemm": _simple("Gemm", alpha=("alpha", "float"), beta=("beta", "float"),
                          transA=("trans_a", "int"), transB=("trans_b", "int")),
    "graph.flatten": _simple("Flatten", axis=("axis", "int")),
    "graph.reshape": _reshape,
    "graph.transpose": _simple("Transpose", perm=("perm", "ints")),
    "graph.squeeze": _axes_op("Squeeze"),
    "graph.unsqueeze": _axes_op("Unsqueeze"),
    "graph.concat": _simple("Concat", axis=("axis", "int")),
    "graph.split": _split,
    "graph.slice": _slice,
    "graph.pad": _pad,
    "graph.reduce_mean": _axes_op("ReduceMean", since=18),
    "graph.resize": _resize,
    "graph.onnx": _onnx_node,
}


def main_function(module):
    """The ``@main`` of ``module`` (XirError if there is none)."""
    from xir.symbols import entry_function

    return entry_function(module, "main", "export to ONNX")


def _default_opset(func) -> int:
    """17, unless every kept ONNX node of the default domain was written for one opset from 13
    to 21: that one, so that they export unchanged."""
    versions = {op.opset.value for op in func.walk()
                if op.name == "graph.onnx" and op.onnx_domain in ("", "ai.onnx")}
    if len(versions) == 1 and 13 <= next(iter(versions)) <= 21:
        return versions.pop()
    return 17


def export_onnx(module, opset: int | None = None):
    """Export a graph-dialect module (its ``func.func @main``) as an ``onnx.ModelProto``.

    Constants become initializers, every other graph op one ONNX node named after its location;
    a ``?`` dimension becomes the symbolic dimension ``N`` (axis 0) or ``D<axis>``. Raises
    :class:`~xir.diagnostics.XirError` (``cannot export 'graph.x' to ONNX (at 'node')``) for an op
    with no ONNX counterpart. Supports opsets 13 to 21 (by default 17, or the opset the module's
    ``graph.onnx`` nodes were written for); a ``graph.onnx`` node of another opset is converted
    by onnx's version converter.
    """
    func = main_function(module)
    opset = _default_opset(func) if opset is None else opset
    ex = new_exporter(opset)
    inputs = export_inputs(ex, func)
    outputs = []
    for op in func.regions[0].entry.ops:
        ex.node_name = location_name(op.location)
        if op.name == "func.return":
            outputs = export_return(ex, op, inputs)
            break
        export_graph_op(ex, op)
    return make_model(ex, inputs, outputs)


def new_exporter(opset: int) -> _Exporter:
    """A fresh export state for ``opset`` (XirError outside 13 to 21)."""
    if not 13 <= opset <= 21:
        raise XirError(f"cannot export to ONNX opset {opset} (supported: 13 to 21)")
    return _Exporter(opset)


def export_inputs(ex: _Exporter, func) -> list:
    """Name ``func``'s arguments (their source names when kept in ``xir.name``) and return
    their ONNX graph inputs."""
    arg_attrs = func.properties.get("arg_attrs")
    arg_attrs = list(arg_attrs) if arg_attrs is not None else []
    inputs = []
    for i, arg in enumerate(func.regions[0].entry.args):
        name = None
        if i < len(arg_attrs) and isinstance(arg_attrs[i], A.DictionaryAttr):
            entry = arg_attrs[i].value.get("xir.name")
            name = entry.value if isinstance(entry, A.StringAttr) else None
        name = ex.define(arg, name or arg.name_hint, f"input{i}")
        inputs.append(_value_info(name, arg.type, "input"))
    return inputs


def export_return(ex: _Exporter, op, inputs: list, name_of=None) -> list:
    """The graph outputs for the values ``func.return`` ``op`` returns (``name_of(value)`` gives
    their ONNX names, by default ``ex.name_of``)."""
    name_of = name_of or ex.name_of
    outputs = []
    for i, v in enumerate(op.operands):
        name = name_of(v)
        if name in {o.name for o in outputs} or name in {x.name for x in inputs} or \
                name in {t.name for t in ex.inits}:
            # an output must be a node output (and each one distinct): route via Identity
            new = ex.unique(f"output{i}", f"output{i}")
            ex.node_name = None
            ex.node("Identity", [name], [new])
            name = new
        outputs.append(_value_info(name, v.type, "output"))
    return outputs


def export_graph_op(ex: _Exporter, op) -> None:
    """Append the initializer or node(s) of one graph-dialect op (``ex.node_name`` set to its
    name), naming its results; XirError if it has no ONNX counterpart."""
    if op.name == "graph.constant":
        try:
            array = _constant_value(op)
        except (XirError, ValueError) as e:
            raise ex.error(f"cannot export 'graph.constant' to ONNX: {e}") from None
        name = ex.define(op.results[0], ex.node_name or op.results[0].name_hint, "const")
        ex.inits.append(ex.onnx.numpy_helper.from_array(array, name))
        return
    exporter = EXPORTERS.get(op.name)
    if exporter is None:
        if ex.node_name is None and op.results and op.results[0].name_hint:
            ex.node_name = op.results[0].name_hint
        raise ex.error(f"cannot export '{op.name}' to ONNX")
    ins = [ex.name_of(v) for v in op.operands]
    outs = [ex.define(r, r.name_hint and identifier(r.name_hint), f"{ex.node_name or 't'}_out")
            for r in op.results]
    run_exporter(ex, op, exporter, ins, outs)


def run_exporter(ex: _Exporter, op, exporter, ins: list, outs: list) -> None:
    """Call one of :data:`EXPORTERS` on ``op``, its errors turned into XirErrors."""
    try:
        exporter(ex, op, op.all_attributes(), ins, outs)
    except (ValueError, KeyError, TypeError, AttributeError) as e:
        raise ex.error(f"cannot export '{op.name}' to ONNX: {e}") from None


def make_model(ex: _Exporter, inputs: list, outputs: list):
    """The ``onnx.ModelProto`` of everything ``ex`` built, with these graph inputs and outputs."""
    helper = ex.helper
    ex.node_name = None
    graph = helper.make_graph(ex.nodes, "main", inputs, outputs, initializer=ex.inits)
    opsets = [helper.make_opsetid("", ex.opset)]
    opsets += [helper.make_opsetid(d, v) for d, v in sorted(ex.domains.items())]
    model = helper.make_model(graph, opset_imports=opsets, producer_name="xir")
    model.ir_version = 8 if ex.opset <= 17 else 9 if ex.opset <= 20 else 10
    return model


def save_onnx(module, path) -> None:
    """Export ``module`` (see :func:`export_onnx`) and write it to ``path`` atomically (no partial
    file on error)."""
    from xir.files import write_atomically

    write_atomically(os.fspath(path), export_onnx(module).SerializeToString())
