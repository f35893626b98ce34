"""DDR layout of a DPU subgraph: every tensor gets a register region and an offset.

Two regions, each addressed through one of the DPU's DDR base registers (``reg_id``):

- **CONST** (reg 0): weights and biases, packed in the order the engines read them
  (:func:`pack_weights`, :func:`pack_depthwise_weights`, :func:`pack_bias`); its bytes are
  :attr:`Layout.const_image`;
- **DATA** (reg 1): activations (the subgraph's inputs, outputs and intermediates), NHWC with the
  channel dimension padded to :func:`feature_map_channel_align` (lcm of the conv engine's ICP and
  OCP: a feature map is written in OCP groups by one op and read in ICP groups by the next; on
  every DPUCZDX8G ISA1 target ICP = OCP). Intermediates reuse memory after their last use: a
  linear scan over the op order with a first-fit free list (:class:`_FirstFit`). A channel
  concat's inputs are, where they can be, views inside the concat's tensor
  (:func:`concat_views`): their producers write the concat in place. With ``augment``, the
  input of a channel-augmented conv (:mod:`.augment`) is stored unpadded between zero columns
  and its weights packed as (M, kh, 1, kw·C).

Every offset and size is a multiple of ``alignment`` (64 bytes by default). Batch: a dynamic
batch dimension counts as 1; images of a batch are ``image_bytes`` apart. The rules, with an
example, are in docs/codegen.md.
"""

from __future__ import annotations

import math

import attrs
import numpy as np

from xir.diagnostics import XirError

from .augment import augment_weights, augmented_inputs
from .tiling import CONV_OPS, DEPTHWISE_OPS, ceil_div, depthwise_engine, round_up

CONST, DATA = "CONST", "DATA"
REG_IDS = {CONST: 0, DATA: 1}


# -- packing ---------------------------------------------------------------------------------------


def _icp_ocp(target) -> tuple[int, int]:
    return target.conv.input_channel_parallel, target.conv.output_channel_parallel


def pack_weights(weight, target) -> bytes:
    """Conv weights OHWI (M, KH, KW, C) int8 in the conv engine's read order: for each
    output-channel tile of OCP channels, for each kernel position (kh, then kw), for each
    input-channel group of ICP channels, one OCP × ICP block, output channel major (the ICP
    bytes of the tile's first output channel, then the next's …). Channels are zero-padded to
    multiples of OCP and ICP. One block is one line of the weight bank group when that group is
    OCP banks × ICP bytes wide (every ISA1 target): bank k holds output channel k of the tile."""
    icp, ocp = _icp_ocp(target)
    w = np.asarray(weight, dtype=np.int8)
    m, kh, kw, c = w.shape
    padded = np.zeros((round_up(m, ocp), kh, kw, round_up(c, icp)), np.int8)
    padded[:m, :, :, :c] = w
    blocks = padded.reshape(-1, ocp, kh, kw, padded.shape[3] // icp, icp)
    return blocks.transpose(0, 2, 3, 4, 1, 5).tobytes()


def unpack_weights(data: bytes, shape, target) -> np.ndarray:
    """The inverse of :func:`pack_weights`: OHWI int8 of ``shape`` (M, KH, KW, C)."""
    icp, ocp = _icp_ocp(target)
    m, kh, kw, c = shape
    mp, cp = round_up(m, ocp), round_up(c, icp)
    blocks = np.frombuffer(data, np.int8).reshape(mp // ocp, kh, kw, cp // icp, ocp, icp)
    return blocks.transpose(0, 4, 1, 2, 3, 5).reshape(mp, kh, kw, cp)[:m, :, :, :c].copy()


def pack_depthwise_weights(weight, target) -> bytes:
    """Depthwise weights (1, KH, KW, C) int8 in the depthwise engine's read order (the ALU's, or
    the dwconv engine's): for each channel group of CP channels, for each kernel position (kh,
    then kw), CP int8 (one line of a CP-wide DWCONVW bank). C is zero-padded to a multiple of
    CP."""
    cp = depthwise_engine(target).channel_parallel
    w = np.asarray(weight, dtype=np.int8)
    _, kh, kw, c = w.shape
    padded = np.zeros((kh, kw, round_up(c, cp)), np.int8)
    padded[:, :, :c] = w[0]
    return padded.reshape(kh, kw, -1, cp).transpose(2, 0, 1, 3).tobytes()


def unpack_depthwise_weights(data: bytes, shape, target) -> np.ndarray:
    """The inverse of :func:`pack_depthwise_weights`: (1, KH, KW, C) int8."""
    cp = depthwise_engine(target).channel_parallel
    _, kh, kw, c = shape
    groups = np.frombuffer(data, np.int8).reshape(-1, kh, kw, cp)
    return groups.transpose(1, 2, 0, 3).reshape(1, kh, kw, -1)[:, :, :, :c].copy()


def pack_bias(bias, parallel: int) -> bytes:
    """A bias (M) int8, zero-padded to a multiple of ``parallel`` (OCP for conv, CP for the
    depthwise engine): one group of ``parallel`` bytes per output-channel tile, in channel order."""
    b = np.asarray(bias, dtype=np.int8).reshape(-1)
    padded = np.zeros(round_up(b.size, parallel), np.int8)
    padded[:b.size] = b
    return padded.tobytes()


# -- the layout ------------------------------------------------------------------------------------


def feature_map_channel_align(target) -> int:
    """The multiple a feature map's channels are padded to in DDR: lcm(conv ICP, conv OCP)."""
    return math.lcm(*_icp_ocp(target))


def nhwc_shape(type_) -> tuple[int, int, int, int]:
    """A tensor type as NHWC (N, H, W, C): rank 4 as is, rank 2 (N, K) as (N, 1, 1, K), other
    ranks (N, 1, 1, rest); a dynamic dimension counts as 1."""
    shape = [max(int(d), 1) for d in type_.shape]
    if len(shape) == 4:
        return tuple(shape)
    if not shape:
        return (1, 1, 1, 1)
    return (shape[0], 1, 1, int(np.prod(shape[1:], dtype=np.int64)))


@attrs.frozen
class Region:
    """A DDR region addressed through base register ``reg_id``: ``size`` bytes."""

    name: str
    reg_id: int
    size: int


@attrs.frozen
class TensorLayout:
    """Where one tensor lives. ``kind`` is ``input``, ``output``, ``intermediate`` (DATA) or
    ``weights``, ``bias``, ``constant`` (CONST). DATA tensors: ``shape`` is NHWC, stored with
    ``padded_channels`` per pixel (``pixel_bytes``), rows ``row_bytes`` and images
    ``image_bytes`` apart; ``live`` = (first, last): the op indices (in the function's op
    order) between which its bytes are reserved, both included: from the op defining it (-1
    for a function argument) to its last reader (``len(ops)`` for the subgraph's inputs and
    outputs, which are never freed). ``alias_of`` names the
    tensor whose bytes it shares: a ``dpu.reshape`` that moves no byte, or a **view**: an input
    of a channel concat laid out inside the concat's tensor, from channel ``channel_offset``,
    with the concat's pixel stride (its producer's SAVEs write straight into the concat;
    :func:`concat_views`). ``augment`` = (left, right): the input of a channel-augmented conv
    (:mod:`.augment`), stored unpadded (``padded_channels`` = C) with that many zero columns
    before and after each row. CONST tensors: ``shape`` is the constant's own (a
    channel-augmented conv's weights: (M, kh, 1, kw·C)), ``packing`` says which order
    (``conv``, ``augmented``, ``depthwise``, ``bias``, ``raw``)."""

    name: str
    region: str
    reg_id: int
    offset: int
    size: int
    kind: str
    shape: tuple
    channels: int = 0
    padded_channels: int = 0
    live: tuple = (0, 0)
    alias_of: str | None = None
    packing: str | None = None
    channel_offset: int = 0
    augment: tuple | None = None

    @property
    def pixel_bytes(self) -> int:
        """Bytes from one pixel to the next (DATA): the padded channels of the tensor that owns
        the bytes (a concat input's view strides over the whole concat's pixels)."""
        return self.padded_channels

    @property
    def row_bytes(self) -> int:
        """Bytes from one row to the next (DATA), zero columns included."""
        return (self.shape[2] + sum(self.augment or ())) * self.padded_channels

    @property
    def image_bytes(self) -> int:
        """Bytes from one image of the batch to the next (DATA)."""
        return self.shape[1] * self.row_bytes

    def address(self, n: int = 0, h: int = 0, w: int = 0, c: int = 0) -> int:
        """The region offset of element (n, h, w, c) of a DATA tensor (a view's channel c is
        channel ``channel_offset + c`` of the tensor that owns the bytes; an augmented input's
        column w is ``w + augment[0]`` of its stored row)."""
        w += self.augment[0] if self.augment else 0
        return (self.offset + n * self.image_bytes + h * self.row_bytes + w * self.pixel_bytes
                + self.channel_offset + c)


@attrs.define
class Layout:
    """The DDR plan of one subgraph: its regions, one :class:`TensorLayout` per tensor (by
    name, in op order), the CONST region's bytes, and the DATA allocator's figures:
    ``peak_data_bytes`` (the most activation bytes alive at once) and the DATA region's size
    (their high-water mark, which fragmentation may make larger)."""

    target: str
    alignment: int
    channel_align: int
    regions: dict
    tensors: dict
    const_image: bytes
    peak_data_bytes: int
    values: dict = attrs.field(factory=dict, repr=False)  # Value -> tensor name

    def of(self, value) -> TensorLayout:
        """The layout of IR value ``value``."""
        return self.tensors[self.values[value]]

    def data_tensors(self) -> list[TensorLayout]:
        """The DATA tensors that own their bytes (no aliases)."""
        return [t for t in self.tensors.values() if t.region == DATA and t.alias_of is None]

    def summary(self) -> str:
        """One line: the region sizes and the peak of live activations."""
        c, d = self.regions[CONST], self.regions[DATA]
        return (f"CONST reg {c.reg_id}: {c.size} bytes; DATA reg {d.reg_id}: {d.size} bytes "
                f"(peak live {self.peak_data_bytes}); channels padded to {self.channel_align}, "
                f"{self.alignment}-byte aligned")


class _FirstFit:
    """A first-fit allocator over one address space: free blocks kept sorted and coalesced."""

    def __init__(self):
        self.free: list[list[int]] = []  # [offset, size], sorted by offset
        self.end = 0  # high-water mark
        self.live = 0
        self.peak = 0

    def allocate(self, size: int) -> int:
        for k, (offset, room) in enumerate(self.free):
            if room >= size:
                if room == size:
                    del self.free[k]
                else:
                    self.free[k] = [offset + size, room - size]
                break
        else:
            offset = self.end
            if self.free and self.free[-1][0] + self.free[-1][1] == self.end:
                offset = self.free.pop()[0]  # grow the last free block
            self.end = max(self.end, offset + size)
        self.live += size
        self.peak = max(self.peak, self.live)
        return offset

    def release(self, offset: int, size: int) -> None:
        self.live -= size
        self.free.append([offset, size])
        self.free.sort()
        merged: list[list[int]] = []
        for block in self.free:
            if merged and merged[-1][0] + merged[-1][1] == block[0]:
                merged[-1][1] += block[1]
            else:
                merged.append(block)
        self.free = merged


def _function_body(func):
    block = func.regions[0].blocks[0]
    return list(block.args), [op for op in block.ops]


def _names(args, ops) -> dict:
    """A unique, readable name per value: its name hint, else ``arg<k>`` / ``v<k>``."""
    names, taken = {}, set()
    values = list(args) + [r for op in ops for r in op.results]
    for k, value in enumerate(values):
        base = value.name_hint or (f"arg{k}" if k < len(args) else f"v{k}")
        name, n = base, 1
        while name in taken:
            name, n = f"{base}_{n}", n + 1
        taken.add(name)
        names[value] = name
    return names


def _is_alias(op, target) -> bool:
    """A ``dpu.reshape`` whose input and result have the same padded NHWC bytes."""
    if op.name != "dpu.reshape":
        return False
    a, b = nhwc_shape(op.operands[0].type), nhwc_shape(op.results[0].type)
    return a == b or (a[0] == b[0] and a[1] * a[2] == 1 and b[1] * b[2] == 1 and a[3] == b[3])


def _constant_packing(value, ops) -> tuple[str, object]:
    """How a constant is packed: by its first reader's kind and the operand it is."""
    for op in ops:
        for k, operand in enumerate(op.operands):
            if operand is value:
                if op.name in CONV_OPS and k == 1:
                    return "conv", None
                if op.name in DEPTHWISE_OPS and k == 1:
                    return "depthwise", None
                if op.name in CONV_OPS + DEPTHWISE_OPS and k == 2:
                    return "bias", op.name in DEPTHWISE_OPS
    return "raw", None


def concat_views(ops, outputs=()) -> dict:
    """``{value: (concat result, channel offset)}``: the inputs of channel concats (axis 3)
    that are laid out inside the concat's tensor, so that their producers write the concat in
    place and the concat moves no byte. An input qualifies when an op of the function other
    than a constant or reshape produces it, it is not a function output, and it is read by
    that one concat, once; any other input is copied (:mod:`.emit_move`)."""
    concat_uses: dict = {}
    for op in ops:
        if op.name == "dpu.concat":
            for v in op.operands:
                concat_uses[v] = concat_uses.get(v, 0) + 1
    producers = {r: op for op in ops for r in op.results}
    views = {}
    for op in ops:
        if op.name != "dpu.concat" or op.param["axis"] != 3:
            continue
        offset = 0
        for v in op.operands:
            producer = producers.get(v)
            if producer is not None and not producer.name.endswith(".constant") and \
                    producer.name != "dpu.reshape" and v not in outputs and \
                    concat_uses[v] == 1 and len(v.type.shape) == 4:
                views[v] = (op.results[0], offset)
            offset += nhwc_shape(v.type)[3]
    return views


def plan_layout(func, target, alignment: int = 64, augment: bool = False) -> Layout:
    """The DDR layout of DPU subgraph ``func`` (a ``func.func`` of ``dpu.*`` ops and
    ``quant.constant`` weights) for ``target``: CONST region (reg 0) with the packed weights and
    biases, DATA region (reg 1) with every activation, intermediates sharing memory after their
    last use. ``augment``: lay out the convs :func:`~.augment.augmented_inputs` picks for
    channel augmentation (their input unpadded between zero columns, their weights packed
    augmented). XirError if ``alignment`` is not positive."""
    if alignment <= 0:
        raise XirError(f"DDR alignment must be positive, got {alignment}")
    align = feature_map_channel_align(target)
    args, ops = _function_body(func)
    names = _names(args, ops)
    returned = next((op for op in ops if op.name == "func.return"), None)
    outputs = set(returned.operands) if returned is not None else set()
    end = len(ops)

    # Aliases (reshapes that move no byte, concat inputs laid out inside the concat), and the
    # last use of each value's storage (an alias's uses count for the value that owns the bytes).
    root = {}
    for op in ops:
        if _is_alias(op, target):
            src = op.operands[0]
            root[op.results[0]] = root.get(src, src)
    views = concat_views(ops, outputs)
    wide_inputs, wide_weights = augmented_inputs(args, ops, outputs, target) if augment \
        else ({}, {})

    def storage(value):
        """(the value owning ``value``'s bytes, channel offset of ``value`` in it)."""
        offset = 0
        while True:
            if value in root:
                value = root[value]
            elif value in views:
                value, k = views[value]
                offset += k
            else:
                return value, offset

    last_use: dict = {}
    for i, op in enumerate(ops):
        for v in op.operands:
            r = storage(v)[0]
            last_use[r] = max(last_use.get(r, i), i)
    for v in outputs:
        last_use[storage(v)[0]] = end

    tensors: dict = {}
    values: dict = {}
    const = bytearray()

    def add_const(value, data: bytes, kind: str, packing: str, shape=None):
        offset = round_up(len(const), alignment)
        const.extend(b"\0" * (offset - len(const)))
        const.extend(data)
        const.extend(b"\0" * (round_up(len(const), alignment) - len(const)))
        name = names[value]
        tensors[name] = TensorLayout(name, CONST, REG_IDS[CONST], offset, len(data), kind,
                                     tuple(shape or value.type.shape), packing=packing)
        values[value] = name

    heap = _FirstFit()
    placed: dict = {}  # owning value -> (offset, size)

    def own(value, index: int, kind: str) -> TensorLayout:
        """The tensor owning ``value``'s bytes, allocated now if it is not yet (a concat's
        bytes are reserved when its first input view is produced)."""
        name = names[value]
        if name in tensors:
            return tensors[name]
        n, h, w, c = nhwc_shape(value.type)
        wide = wide_inputs.get(value)
        pads = (wide.pad_left, wide.pad_right) if wide else None
        padded = c if wide else round_up(c, align)
        size = round_up(n * h * (w + sum(pads or ())) * padded, alignment)
        offset = heap.allocate(size)
        placed[value] = (offset, size)
        last = end if kind == "input" else last_use.get(value, index)
        tensors[name] = TensorLayout(name, DATA, REG_IDS[DATA], offset, size, kind,
                                     (n, h, w, c), c, padded, (index, last), augment=pads)
        return tensors[name]

    def add_data(value, index: int, kind: str):
        name = names[value]
        values[value] = name
        owner, channel_offset = storage(value)
        if owner is value:
            own(value, index, kind)
            return
        b = own(owner, index, "output" if owner in outputs else "intermediate")
        n, h, w, c = nhwc_shape(value.type)
        tensors[name] = attrs.evolve(b, name=name, kind=kind, alias_of=b.name,
                                     live=(index, last_use.get(owner, index)),
                                     shape=(n, h, w, c), channels=c,
                                     channel_offset=channel_offset)

    for arg in args:
        add_data(arg, -1, "output" if arg in outputs else "input")
    for i, op in enumerate(ops):
        if op.name == "func.return":
            continue
        if op.name.endswith(".constant"):
            value = op.results[0]
            packing, depthwise = _constant_packing(value, ops)
            data = np.asarray(op.evaluate()[0])
            if value in wide_weights:
                data = augment_weights(data)
                add_const(value, pack_weights(data, target), "weights", "augmented", data.shape)
            elif packing == "conv":
                add_const(value, pack_weights(data, target), "weights", packing)
            elif packing == "depthwise":
                add_const(value, pack_depthwise_weights(data, target), "weights", packing)
            elif packing == "bias":
                parallel = depthwise_engine(target).channel_parallel if depthwise else \
                    target.conv.output_channel_parallel
                add_const(value, pack_bias(data, parallel), "bias", packing)
            else:
                add_const(value, data.tobytes(), "constant", packing)
            continue
        for r in op.results:
            kind = "output" if r in outputs or storage(r)[0] in outputs else "intermediate"
            add_data(r, i, kind)
        # Free what this op read last (after its results are placed: no op works in place).
        # Inputs and outputs of the subgraph are never freed.
        for v in {storage(v)[0] for v in op.operands}:
            if v in placed and last_use.get(v) == i and tensors[names[v]].kind == "intermediate":
                heap.release(*placed.pop(v))
        for r in op.results:  # a result nobody reads is dead at once (still written)
            if r in placed and r not in last_use:
                heap.release(*placed.pop(r))

    # A view's readers load whole padded pixels from its channel offset on: up to channel_align
    # bytes past the concat's last pixel, which must still be inside the DATA region.
    slack = round_up(align, alignment) if views else 0
    regions = {CONST: Region(CONST, REG_IDS[CONST], len(const)),
               DATA: Region(DATA, REG_IDS[DATA], heap.end + slack)}
    return Layout(target.name, alignment, align, regions, tensors, bytes(const), heap.peak,
                  values)


__all__ = ["CONST", "DATA", "Layout", "Region", "TensorLayout", "ceil_div", "concat_views",
           "feature_map_channel_align", "nhwc_shape", "pack_bias",
           "pack_depthwise_weights", "pack_weights", "plan_layout", "unpack_depthwise_weights",
           "unpack_weights"]
