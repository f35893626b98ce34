"""Dependency groups: the channels of a model that must be pruned together.

A *group* starts at a layer whose output channels are free to choose: a convolution (not a
grouped one), or a dense layer (``graph.gemm``, ``graph.matmul`` with a constant weight). Its
channels are traced forward, op by op, through everything that keeps them apart:

- per-channel ops pass them on, some with parameters that are pruned along (*members*): batch
  norm, activations (PReLU's per-channel slopes), pools, global average pooling, identities,
  spatial pads, squeezes, a per-channel constant added or multiplied, and depthwise convolutions
  (one filter per channel);
- a residual ``add`` (``mul``, ...) of two traced tensors joins their groups into one: both
  operands must lose the same channels (union-find);
- a concat along channels places each operand's groups at an offset of its output, and a
  flatten (or a reshape that is one) turns channel ``c`` into the ``block`` = H·W features
  ``c·block ... c·block + block - 1``;
- the convolutions and dense layers that read them are *consumers* (their input channels go).

A group cannot be pruned when its channels reach a model output, an op that mixes or moves
channels in a way this does not follow (a transpose, split, slice, a reshape other than a
flatten, LRN, a grouped convolution, ``graph.onnx``, any op it does not know), a broadcast along
channels, or an elementwise op whose other operand it cannot trace; ``reason`` says which, naming
the op. Where a group's channels sit in each layer is a :class:`ChannelSlice` (``offset`` and
``block`` in the layer's own channel axis), so that the transform and the recovery methods know
which weights belong to it.
"""

from __future__ import annotations

import math

import attrs

from xir import types as T
from xir.diagnostics import XirError

from ..dpu_rules import is_constant, node_name
from .macs import op_macs

# ops that act on each channel alone, with no per-channel parameter of their own
PER_CHANNEL = {
    "graph.relu", "graph.clip", "graph.leaky_relu", "graph.sigmoid", "graph.tanh",
    "graph.hard_sigmoid", "graph.hard_swish", "graph.identity", "graph.max_pool2d",
    "graph.avg_pool2d", "graph.global_avg_pool",
}
BINARY = ("graph.add", "graph.sub", "graph.mul", "graph.div")
CONVOLUTION = "graph.conv2d"
DENSE = ("graph.gemm", "graph.matmul")
ROLES = ("producer", "member", "consumer")


@attrs.frozen
class ChannelSlice:
    """Where a group's channels sit in one layer. ``role`` is ``producer`` (the layer's output
    channels are the group), ``member`` (the layer passes the channels through and has
    per-channel parameters: batch norm, depthwise convolution, PReLU, a per-channel constant) or
    ``consumer`` (the layer's input channels). Channel ``i`` of the group is the layer's
    channels ``(offset + i)·block`` to ``(offset + i + 1)·block - 1`` along that axis (``block``
    > 1 for a dense layer after a flatten)."""

    layer: str
    role: str
    offset: int = 0
    block: int = 1


@attrs.frozen
class ChannelGroup:
    """Channels that must be pruned together: the output channels of its ``producers`` (several
    when a residual add joins them), the input channels of its ``consumers``, and what lies
    between (``slices`` says where in each layer). ``macs`` is the model's MACs that scale
    linearly with the group's channel count, the other groups held fixed (its producers' MACs,
    and each consumer's and depthwise member's MACs times the group's share of its channels)."""

    name: str
    channels: int
    producers: tuple
    consumers: tuple
    macs: int
    prunable: bool = True
    reason: str = ""
    members: tuple = ()
    slices: tuple = ()


@attrs.frozen
class Use:
    """One op's part in a group (the op object behind a :class:`ChannelSlice`)."""

    op: object
    role: str
    offset: int = 0
    block: int = 1


@attrs.frozen
class _Layout:
    """How a tensor's channel axis (axis 1) splits into groups: ``segments`` are consecutive
    ``(group id or None, channels)`` runs (None: channels not traced), each channel spanning
    ``block`` elements of the axis."""

    segments: tuple
    block: int = 1

    def placed(self):
        """``(group id, offset, channels)`` of each traced segment."""
        offset = 0
        for gid, channels in self.segments:
            if gid is not None:
                yield gid, offset, channels
            offset += channels


@attrs.frozen
class Tracing:
    """What :func:`trace` found: the groups, and each group's :class:`Use` records by name."""

    groups: tuple
    uses: dict

    def group(self, name: str) -> ChannelGroup:
        """The group called ``name`` (XirError if there is none)."""
        for group in self.groups:
            if group.name == name:
                return group
        raise XirError(f"prune: the model has no channel group '{name}' (groups: "
                       f"{', '.join(g.name for g in self.groups[:8])}"
                       f"{', ...' if len(self.groups) > 8 else ''})")


def find_groups(module) -> list[ChannelGroup]:
    """The channel groups of a graph-dialect float module, in the order of their first
    producer."""
    return list(trace(module).groups)


def trace(module) -> Tracing:
    """Trace every function of ``module`` (see the module docstring)."""
    tracer = _Tracer()
    for func in module.walk():
        if func.name == "func.func" and func.regions and func.regions[0].blocks:
            for op in func.regions[0].blocks[0].ops:
                tracer.visit(op)
    return tracer.result()


class _Tracer:
    """Union-find over group ids, with the layout of every traced value."""

    def __init__(self):
        self.parent: list[int] = []
        self.channels: list[int] = []
        self.reason: list[str] = []
        self.uses: list[list[Use]] = []
        self.layout: dict = {}

    # -- union-find ----------------------------------------------------------------------------

    def new_group(self, op, channels: int) -> int:
        gid = len(self.parent)
        self.parent.append(gid)
        self.channels.append(channels)
        self.reason.append("")
        self.uses.append([Use(op, "producer")])
        return gid

    def find(self, gid: int) -> int:
        while self.parent[gid] != gid:
            self.parent[gid] = self.parent[self.parent[gid]]
            gid = self.parent[gid]
        return gid

    def union(self, a: int, b: int) -> None:
        a, b = self.find(a), self.find(b)
        if a == b:
            return
        a, b = min(a, b), max(a, b)  # the earlier producer names the group
        self.parent[b] = a
        self.uses[a].extend(self.uses[b])
        self.uses[b] = []
        self.reason[a] = self.reason[a] or self.reason[b]

    def block_groups(self, layout, reason: str) -> None:
        """Make every group of ``layout`` unprunable (the first reason found is kept)."""
        if layout is None:
            return
        for gid, _, _ in layout.placed():
            root = self.find(gid)
            self.reason[root] = self.reason[root] or reason

    def use(self, layout, op, role: str) -> None:
        for gid, offset, _ in layout.placed():
            self.uses[self.find(gid)].append(Use(op, role, offset, layout.block))

    # -- ops -----------------------------------------------------------------------------------

    def visit(self, op) -> None:
        """Trace one op: its results' layouts, and the groups it joins, uses or blocks."""
        layouts = [self.layout.get(v) for v in op.operands]
        if op.name == "graph.constant" or not any(layouts) and op.name not in (CONVOLUTION, *DENSE):
            return
        handler = _HANDLERS.get(op.name, _barrier)
        out = handler(self, op, layouts)
        if out is not None and op.results:
            self.layout[op.results[0]] = out

    def barrier(self, op, layouts, why: str = "cannot trace channels through it") -> None:
        reason = "feeds a model output" if op.name == "func.return" else \
            f"reaches {op.name} '{node_name(op)}' ({why})"
        for layout in layouts:
            self.block_groups(layout, reason)

    def result(self) -> Tracing:
        roots = sorted({self.find(g) for g in range(len(self.parent))})
        names: dict[str, int] = {}
        groups, uses = [], {}
        for root in roots:
            records = self.uses[root]
            base = node_name(records[0].op)
            names[base] = names.get(base, 0) + 1
            name = base if names[base] == 1 else f"{base}#{names[base]}"
            groups.append(_group(name, self.channels[root], records, self.reason[root]))
            uses[name] = tuple(records)
        return Tracing(tuple(groups), uses)


def _group(name: str, channels: int, records, reason: str) -> ChannelGroup:
    by_role = {role: tuple(dict.fromkeys(node_name(u.op) for u in records if u.role == role))
               for role in ROLES}
    macs = 0
    for u in records:
        total = channel_extent(u)
        share = channels * u.block / total if total else 0
        macs += op_macs(u.op) * (1 if u.role == "producer" else share)
    slices = tuple(ChannelSlice(node_name(u.op), u.role, u.offset, u.block) for u in records)
    return ChannelGroup(name, channels, by_role["producer"], by_role["consumer"], int(round(macs)),
                        not reason, reason, by_role["member"], slices)


def channel_extent(use: Use) -> int:
    """The size of the axis a use's channels sit in (the layer's input channels or features)."""
    op = use.op
    if use.role == "member" or op.name == CONVOLUTION:
        return op.operands[0].type.shape[1]
    if op.name == "graph.gemm" and op.param["trans_a"]:
        return op.operands[0].type.shape[0]
    return op.operands[0].type.shape[-1]


# -- one handler per kind of op: returns the layout of the op's (first) result ------------------


def _static(value) -> bool:
    return T.DYNAMIC not in value.type.shape[1:]


def _barrier(tracer, op, layouts, why="cannot trace channels through it"):
    tracer.barrier(op, layouts, why)
    return None


def _passthrough(tracer, op, layouts):
    if any(layouts[1:]):
        return _barrier(tracer, op, layouts)
    return layouts[0]


def is_depthwise(op) -> bool:
    """Whether a ``graph.conv2d`` has one filter per input channel (group = C_in = C_out > 1)."""
    channels = op.operands[0].type.shape[1]
    group = op.param["group"]
    return group > 1 and group == channels and op.operands[1].type.shape[:2] == (channels, 1)


def _constant_weights(op) -> bool:
    return all(is_constant(v) for v in op.operands[1:])


def _conv(tracer, op, layouts):
    x = layouts[0]
    if any(layouts[1:]) or not _constant_weights(op):
        return _barrier(tracer, op, layouts, "its weights are not constants")
    if op.param["group"] > 1:
        if is_depthwise(op) and x is not None:
            tracer.use(x, op, "member")
            return x
        if x is not None:
            return _barrier(tracer, op, layouts, f"a grouped convolution, group "
                                                 f"{op.param['group']}")
        return None  # a grouped or depthwise convolution of untraced channels starts no group
    if x is not None:
        tracer.use(x, op, "consumer")
    return _Layout(((tracer.new_group(op, op.results[0].type.shape[1]), op.results[0].type.shape[1]),))


def _dense(tracer, op, layouts):
    a = layouts[0]
    weight = op.operands[1]
    transposed = op.name == "graph.gemm" and op.param["trans_a"]
    if any(layouts[1:]) or not _constant_weights(op):
        return _barrier(tracer, op, layouts, "its weights are not constants")
    if op.operands[0].type.rank != 2 or weight.type.rank != 2 or transposed:
        return _barrier(tracer, op, layouts, "only 2-D products with features on axis 1")
    if a is not None:
        tracer.use(a, op, "consumer")
    features = op.results[0].type.shape[1]
    return _Layout(((tracer.new_group(op, features), features),))


def _batch_norm(tracer, op, layouts):
    if any(layouts[1:]) or not _constant_weights(op):
        return _barrier(tracer, op, layouts, "its statistics are not constants")
    tracer.use(layouts[0], op, "member")
    return layouts[0]


def channel_axis(operand_rank: int, result_rank: int):
    """The axis of an operand that broadcasts onto the result's channel axis (1), or None."""
    axis = 1 - (result_rank - operand_rank)
    return axis if axis >= 0 else None


def _channel_size(value, result_rank: int) -> int:
    axis = channel_axis(value.type.rank, result_rank)
    return 1 if axis is None else value.type.shape[axis]


def _prelu(tracer, op, layouts):
    x, slope = op.operands
    if layouts[1] is not None or not is_constant(slope):
        return _barrier(tracer, op, layouts, "its slope is not a constant")
    if _channel_size(slope, x.type.rank) == x.type.shape[1] != 1:
        tracer.use(layouts[0], op, "member")
    return layouts[0]


def _binary(tracer, op, layouts):
    out = op.results[0].type
    if out.rank < 2:
        return _barrier(tracer, op, layouts, "no channel axis")
    channels = out.shape[1]
    full = []
    for v, lay in zip(op.operands, layouts):
        if lay is None:
            continue
        if v.type.rank != out.rank:
            return _barrier(tracer, op, layouts, "it broadcasts across ranks")
        if v.type.shape[1] == channels:
            full.append(lay)
        else:
            tracer.block_groups(lay, f"reaches {op.name} '{node_name(op)}' (a broadcast along "
                                     f"channels)")
    if not full:
        return None
    for v, lay in zip(op.operands, layouts):
        if lay is None and channels > 1 and _channel_size(v, out.rank) == channels:
            if is_constant(v):
                tracer.use(full[0], op, "member")
            else:
                tracer.barrier(op, full, "its other operand is not traced")
    if len(full) == 2:
        _join(tracer, op, *full)
    return full[0]


def _join(tracer, op, a: _Layout, b: _Layout) -> None:
    """Two layouts that meet elementwise: the same groups, channel for channel."""
    if a.block != b.block or [c for _, c in a.segments] != [c for _, c in b.segments]:
        tracer.barrier(op, [a, b], "its operands split channels differently")
        return
    for (ga, _), (gb, _) in zip(a.segments, b.segments):
        if ga is not None and gb is not None:
            tracer.union(ga, gb)
        elif ga is not None or gb is not None:
            tracer.barrier(op, [a, b], "its other operand is not traced")


def _concat(tracer, op, layouts):
    out = op.results[0].type
    axis = _attr_int(op, "axis")
    axis = axis + out.rank if axis < 0 else axis
    if axis != 1:
        traced = [lay for lay in layouts if lay is not None]
        if len(traced) != len(layouts):
            return _barrier(tracer, op, layouts, "concatenates traced and untraced tensors")
        for lay in traced[1:]:
            _join(tracer, op, traced[0], lay)
        return traced[0]
    blocks = {lay.block for lay in layouts if lay is not None}
    if len(blocks) > 1:
        return _barrier(tracer, op, layouts, "its operands' blocks differ")
    block = blocks.pop()
    segments = []
    for v, lay in zip(op.operands, layouts):
        if lay is None:
            segments.append((None, v.type.shape[1] // block))
        else:
            segments.extend(lay.segments)
    return _Layout(tuple(segments), block)


def _attr_int(op, name: str) -> int:
    return int(op.all_attributes()[name].value)


def _flattened(tracer, op, layouts):
    """A flatten to (N, C·H·W): channel c becomes the block of H·W features after c·H·W."""
    x = op.operands[0].type
    lay = layouts[0]
    if x.rank == 2:
        return lay
    if lay.block != 1 or not _static(op.operands[0]):
        return _barrier(tracer, op, layouts, "flattens a dynamic or flattened tensor")
    return _Layout(lay.segments, math.prod(x.shape[2:]))


def is_flatten_reshape(op) -> bool:
    """Whether a ``graph.reshape`` turns (N, C, ...) into (N, C·...), like a flatten at axis 1."""
    x, y = op.operands[0].type, op.results[0].type
    return (y.rank == 2 and x.rank >= 2 and x.shape[0] == y.shape[0] and _static(op.operands[0])
            and y.shape[1] == math.prod(x.shape[1:]))


def _flatten(tracer, op, layouts):
    axis = _attr_int(op, "axis") if "axis" in op.all_attributes() else 1
    rank = op.operands[0].type.rank
    if (axis + rank if axis < 0 else axis) != 1:
        return _barrier(tracer, op, layouts, "flattens at an axis other than 1")
    return _flattened(tracer, op, layouts)


def _reshape(tracer, op, layouts):
    if not is_flatten_reshape(op):
        return _barrier(tracer, op, layouts, "a reshape other than a flatten")
    return _flattened(tracer, op, layouts)


def _axes_kept(tracer, op, layouts, axes):
    """A squeeze/unsqueeze/reduction/pad that leaves axes 0 and 1 alone passes channels on."""
    if axes is None or {0, 1} & set(axes):
        return _barrier(tracer, op, layouts, "it touches the batch or channel axis")
    return layouts[0]


def _normalized(axes, rank):
    return None if axes is None else [a + rank if a < 0 else a for a in axes]


def _squeeze(tracer, op, layouts):
    shape = op.operands[0].type.shape
    axes = _normalized(_ints(op, "axes"), len(shape))
    axes = axes if axes is not None else \
        [i for i, d in enumerate(shape) if d == 1]
    return _axes_kept(tracer, op, layouts, axes)


def _unsqueeze(tracer, op, layouts):
    return _axes_kept(tracer, op, layouts,
                      _normalized(_ints(op, "axes"), op.results[0].type.rank))


def _reduce_mean(tracer, op, layouts):
    return _axes_kept(tracer, op, layouts, _normalized(_ints(op, "axes"), op.operands[0].type.rank))


def _pad(tracer, op, layouts):
    pads, rank = _ints(op, "pads"), op.operands[0].type.rank
    touched = [a for a in range(rank) if pads[a] or pads[a + rank]]
    return _axes_kept(tracer, op, layouts, touched)


def _resize(tracer, op, layouts):
    scales = op.all_attributes().get("scales")
    if scales is None or [float(s.value) for s in scales][:2] != [1.0, 1.0]:
        return _barrier(tracer, op, layouts, "only resizes by scales are traced")
    return layouts[0]


def _softmax(tracer, op, layouts):
    rank = op.operands[0].type.rank
    axis = _attr_int(op, "axis") if "axis" in op.all_attributes() else -1
    if (axis + rank if axis < 0 else axis) == 1:
        return _barrier(tracer, op, layouts, "it mixes channels")
    return layouts[0]


def _ints(op, name: str):
    value = op.all_attributes().get(name)
    return None if value is None else [int(v.value) for v in value]


def _mixes(tracer, op, layouts):
    return _barrier(tracer, op, layouts, "it mixes neighbouring channels")


_HANDLERS = {
    **{name: _passthrough for name in PER_CHANNEL},
    **{name: _binary for name in BINARY},
    CONVOLUTION: _conv, "graph.gemm": _dense, "graph.matmul": _dense,
    "graph.batch_norm": _batch_norm, "graph.prelu": _prelu, "graph.concat": _concat,
    "graph.flatten": _flatten, "graph.reshape": _reshape, "graph.squeeze": _squeeze,
    "graph.unsqueeze": _unsqueeze, "graph.reduce_mean": _reduce_mean, "graph.pad": _pad,
    "graph.resize": _resize, "graph.softmax": _softmax, "graph.lrn": _mixes,
}
