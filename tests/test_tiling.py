"""Code-generation planning (xir.passes.codegen): DDR layout, weight packing, tiling.

Every property is checked against a brute-force model written here, not against the planner's
own formulas: the rows a strip loads against the receptive field of its output rows, bank
buffers against the bytes they must hold and the group's capacity, ping/pong buffers against
each other, packed weights against an order written out by hand, and the DDR allocator against
the live ranges of the tensors it places.
"""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.parser import parse
from xir.passes.codegen import (
    LayerShape, pack_bias, pack_depthwise_weights, pack_weights, plan_function, plan_layout,
    plan_op, plan_tiles, unpack_depthwise_weights, unpack_weights,
)
from xir.passes.codegen.tiling import depthwise_engine

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
TARGETS = {name: load_target(name) for name in ("B512", "B1152", "B4096")}


def one_image_group(target):
    """``target`` with every engine reading and writing VB0 only: inputs and outputs of a tile
    share one bank group."""
    changes = {}
    for name in ("conv", "eltwise", "alu", "pool", "dwconv"):
        engine = getattr(target, name)
        if engine is not None:
            changes[name] = attrs.evolve(engine, input_bank=("VB0",), output_bank=("VB0",))
    return target.evolve(name=target.name + "_one_group", **changes)


TILING_TARGETS = {**TARGETS, "B512_one_group": one_image_group(TARGETS["B512"])}
SETTINGS = settings(max_examples=150, deadline=None, derandomize=True, database=None)


def ceil(a, b):
    return -(-a // b)


# -- random layers ---------------------------------------------------------------------------------


@st.composite
def windows(draw, max_kernel=16, max_stride=8, max_dilation=3):
    """(kernel, stride, dilation, pad) along one axis, pad ≤ (k − 1) · d on each side."""
    k = draw(st.integers(1, max_kernel))
    s = draw(st.integers(1, max_stride))
    d = draw(st.integers(1, max_dilation)) if k > 1 else 1
    before = draw(st.integers(0, (k - 1) * d))
    after = draw(st.integers(0, (k - 1) * d))
    return k, s, d, before, after


@st.composite
def layers(draw, kinds=("conv", "depthwise", "pool", "eltwise")):
    """A random LayerShape: odd channel counts, sizes from tiny to wider than a bank row."""
    kind = draw(st.sampled_from(kinds))
    big = draw(st.booleans())
    c_in = draw(st.integers(1, 700 if big else 40))
    c_out = draw(st.integers(1, 700 if big else 40)) if kind == "conv" else c_in
    if kind == "eltwise":
        h, w = draw(st.integers(1, 300 if big else 20)), draw(st.integers(1, 300 if big else 20))
        return LayerShape(kind, "elt", ((h, w, c_in), (h, w, c_in)), (h, w, c_in))
    kh, sh, dh, pt, pb = draw(windows())
    kw, sw, dw, pl, pr = draw(windows())
    if kind == "pool":
        dh = dw = 1
        pt, pb, pl, pr = min(pt, kh - 1), min(pb, kh - 1), min(pl, kw - 1), min(pr, kw - 1)
    ext_h, ext_w = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    h = draw(st.integers(max(1, ext_h - pt - pb), ext_h + (200 if big else 30)))
    w = draw(st.integers(max(1, ext_w - pl - pr), ext_w + (300 if big else 30)))
    ho = (h + pt + pb - ext_h) // sh + 1
    wo = (w + pl + pr - ext_w) // sw + 1
    assume(ho >= 1 and wo >= 1)
    return LayerShape(kind, f"{kind}_layer", ((h, w, c_in),), (ho, wo, c_out), (kh, kw),
                      (sh, sw), (dh, dw), (pt, pl, pb, pr))


# -- the checks ------------------------------------------------------------------------------------


def receptive_rows(layer, o0, o1):
    """Input rows (inside the input) the windows of output rows [o0, o1) span, by brute force,
    and the rows their taps actually read."""
    h = layer.inputs[0][0]
    if layer.kind == "eltwise":
        rows = set(range(o0, o1))
        return rows, rows
    (kh, _), (sh, _), (dh, _), pt = layer.kernel, layer.stride, layer.dilation, layer.pad[0]
    span, taps = set(), set()
    for o in range(o0, o1):
        top = o * sh - pt
        span.update(r for r in range(top, top + (kh - 1) * dh + 1) if 0 <= r < h)
        taps.update(r for r in (top + j * dh for j in range(kh)) if 0 <= r < h)
    return span, taps


def group_of(target, name):
    return target.bank_group(name)


def check_plan(plan, layer, target):
    ho, wo, co = layer.output
    ocp = plan.output_parallel
    assert plan.channel_tile % ocp == 0
    # Channel tiles partition the output channels; strips partition the rows, once per tile.
    by_channel = {}
    for tile in plan.tiles:
        by_channel.setdefault(tile.out_channels, []).append(tile)
    starts = sorted(by_channel)
    assert starts[0][0] == 0 and starts[-1][1] == co
    for (a0, a1), (b0, b1) in zip(starts, starts[1:]):
        assert a1 == b0
    for (c0, c1), tiles in by_channel.items():
        assert c0 % plan.channel_tile == 0 and 0 < c1 - c0 <= plan.channel_tile
        covered = [o for t in tiles for o in range(*t.out_rows)]
        assert covered == list(range(ho)), "each output row exactly once per channel tile"
    # Pixel groups of PP along the output width.
    assert [c for g in plan.pixel_groups for c in range(*g)] == list(range(wo))
    assert all(w1 - w0 <= plan.pixel_parallel for w0, w1 in plan.pixel_groups)
    for tile in plan.tiles:
        o0, o1 = tile.out_rows
        span, taps = receptive_rows(layer, o0, o1)
        for (r0, r1) in tile.in_rows:
            assert span, "every window reaches the input"
            assert (r0, r1) == (min(span), max(span) + 1), "input rows = the receptive field"
            assert taps <= set(range(r0, r1))
            if layer.kind != "eltwise" and layer.stride[0] <= (layer.kernel[0] - 1) * \
                    layer.dilation[0] + 1:
                assert set(range(r0, r1)) == span  # contiguous: nothing extra is loaded
        if layer.kind != "eltwise":
            extent = (o1 - o0 - 1) * layer.stride[0] + (layer.kernel[0] - 1) * layer.dilation[0] + 1
            r0, r1 = tile.in_rows[0]
            assert tile.pad_top + (r1 - r0) + tile.pad_bottom == extent
            assert tile.pad_top == max(0, layer.pad[0] - o0 * layer.stride[0])
        # Every buffer inside its group, on the group's banks, big enough for its bytes.
        c0, c1 = tile.out_channels
        out_ch = ceil(c1 - c0, ocp) * ocp
        in_ch = out_ch if layer.kind != "conv" else ceil(layer.inputs[0][2], plan.input_parallel) \
            * plan.input_parallel
        needs = [(a, (r1 - r0) * w * in_ch) for a, (r0, r1), (_, w, _) in
                 zip(tile.inputs, tile.in_rows, layer.inputs)]
        needs.append((tile.output, (o1 - o0) * wo * out_ch))
        if tile.weights is not None:
            kh, kw = layer.kernel
            if layer.kind == "conv":
                wbytes = out_ch * kh * kw * in_ch
            else:
                wbytes = kh * kw * out_ch
            needs += [(tile.weights, wbytes), (tile.bias, out_ch)]
        for access, nbytes in needs:
            g = group_of(target, access.group)
            assert tuple(access.bank_ids) == tuple(g.bank_ids)
            assert 0 <= access.address and access.end <= g.bank_depth
            assert access.lines * g.bank_num * g.bank_width >= nbytes
        tagged = tile.accesses()
        for i, (ta, a) in enumerate(tagged):
            for tb, b in tagged[i + 1:]:
                assert not a.overlaps(b), f"{ta} and {tb} of one tile overlap"
    # Tiles alive together (a window of `buffers` consecutive tiles) use disjoint buffers,
    # except for the weights they share.
    for k, tile in enumerate(plan.tiles):
        for other in plan.tiles[k + 1:k + plan.buffers]:
            for ta, a in tile.accesses():
                for tb, b in other.accesses():
                    if ta == tb and ta[0] in "wb":
                        assert a == b  # the same weights, kept
                    else:
                        assert not a.overlaps(b), f"tiles {k} and {other.index}: {ta}, {tb}"


def check_too_big(layer, target, error):
    """A refusal is right: one output row of one channel block, single-buffered, does not fit."""
    message = str(error)
    assert layer.name in message and "bank group" in message
    group = target.bank_group(message.split("bank group ")[1].split(",")[0])
    if group.type == "Param":
        return  # the weights of one block
    # Brute force: the bytes of one output row and its input rows against the group(s).
    kind = layer.kind
    cp = target.conv.input_channel_parallel if kind == "conv" else \
        (depthwise_engine(target) if kind != "eltwise" else target.eltwise).channel_parallel
    rows_in = 1 if kind == "eltwise" else min(layer.inputs[0][0],
                                              (layer.kernel[0] - 1) * layer.dilation[0] + 1)
    c_in = ceil(layer.inputs[0][2], cp) * cp if kind == "conv" else cp
    words_in = sum(rows_in * ceil(w, group.bank_num) * ceil(c_in, group.bank_width)
                   for (_, w, _) in layer.inputs)
    ocp = target.conv.output_channel_parallel if kind == "conv" else cp
    words_out = ceil(layer.output[1], group.bank_num) * ceil(ocp, group.bank_width)
    if target.name.endswith("_one_group"):
        assert words_in + words_out > group.bank_depth
    else:
        assert words_in > group.bank_depth or words_out > group.bank_depth


@pytest.mark.parametrize("target_name", sorted(TILING_TARGETS))
@SETTINGS
@given(layer=layers(), buffers=st.sampled_from([1, 2, 3]))
def test_random_layers_tile_correctly(target_name, layer, buffers):
    target = TILING_TARGETS[target_name]
    try:
        plan = plan_tiles(layer, target, buffers)
    except XirError as error:
        check_too_big(layer, target, error)
        return
    assert plan.buffers in (buffers, 1)
    check_plan(plan, layer, target)


def test_big_layers_split_into_strips_and_channel_tiles():
    target = TARGETS["B512"]
    layer = LayerShape("conv", "wide", ((112, 112, 32),), (112, 112, 1000), (3, 3), (1, 1),
                       (1, 1), (1, 1, 1, 1))
    plan = plan_tiles(layer, target)
    assert plan.buffers == 2 and plan.weight_buffers == 2
    assert plan.strips > 1 and plan.channel_tile < 1000
    check_plan(plan, layer, target)
    assert plan.tiles[0].load_weights and not plan.tiles[1].load_weights
    # A 224-wide row of 64 channels: three input rows fill one buffer; double buffering is
    # given up (buffers = 1) rather than the layer.
    layer = LayerShape("conv", "wider", ((224, 224, 64),), (224, 224, 64), (3, 3), (1, 1),
                       (1, 1), (1, 1, 1, 1))
    plan = plan_tiles(layer, target)
    assert plan.buffers == 1
    check_plan(plan, layer, target)


@pytest.mark.parametrize("kind", ["conv", "depthwise"])
def test_each_channel_tile_loads_a_contiguous_slice_of_the_packed_weights(kind):
    target = TARGETS["B1152"]
    c_in, c_out = (200, 1000) if kind == "conv" else (3000, 3000)
    layer = LayerShape(kind, "many_channels", ((20, 20, c_in),), (20, 20, c_out), (3, 3),
                       pad=(1, 1, 1, 1))
    plan = plan_tiles(layer, target)
    assert len({t.channel_tile for t in plan.tiles}) > 1
    rng = np.random.default_rng(1)
    if kind == "conv":
        w = rng.integers(-128, 128, (c_out, 3, 3, c_in), dtype=np.int8)
        packed, pack = pack_weights(w, target), lambda c0, c1: pack_weights(w[c0:c1], target)
    else:
        w = rng.integers(-128, 128, (1, 3, 3, c_out), dtype=np.int8)
        packed = pack_depthwise_weights(w, target)
        pack = lambda c0, c1: pack_depthwise_weights(w[..., c0:c1], target)  # noqa: E731
    bias = rng.integers(-128, 128, c_out, dtype=np.int8)
    cp = plan.output_parallel
    for tile in plan.tiles:
        offset, size = plan.weight_slice(tile)
        assert packed[offset:offset + size] == pack(*tile.out_channels)
        offset, size = plan.bias_slice(tile)
        own = pack_bias(bias[slice(*tile.out_channels)], cp)
        assert pack_bias(bias, cp)[offset:offset + size] == own


def test_a_row_that_does_not_fit_names_the_op_and_the_bank_group():
    target = TARGETS["B512"]
    too_wide = LayerShape("conv", "huge_conv", ((3, 8192, 256),), (3, 8192, 8), (1, 1))
    with pytest.raises(XirError, match="huge_conv.*bank group VB0, which has 2048"):
        plan_tiles(too_wide, target)
    too_deep = LayerShape("conv", "deep_conv", ((16, 16, 2048),), (16, 16, 8), (16, 16),
                          pad=(15, 15, 15, 15))
    with pytest.raises(XirError, match="deep_conv.*weights of one channel block.*CONVW"):
        plan_tiles(too_deep, target)


# -- packing ---------------------------------------------------------------------------------------


def small_target():
    """B512 with the conv engine and ALU narrowed to 2 channels, so the order fits on a page."""
    t = TARGETS["B512"]
    return t.evolve(conv=attrs.evolve(t.conv, input_channel_parallel=2, output_channel_parallel=2),
                    alu=attrs.evolve(t.alu, channel_parallel=2))


def test_packed_weight_order_by_hand():
    w = np.zeros((3, 1, 2, 3), np.int8)  # OHWI; w[o, 0, x, c] = 10·o + 3·x + c
    for o in range(3):
        for x in range(2):
            for c in range(3):
                w[o, 0, x, c] = 10 * o + 3 * x + c
    expected = [
        # output tile 0 (o = 0, 1); kernel position (0, 0); input group 0 (c = 0, 1) then 1 (2, pad)
        0, 1, 10, 11, 2, 0, 12, 0,
        # kernel position (0, 1)
        3, 4, 13, 14, 5, 0, 15, 0,
        # output tile 1 (o = 2, pad)
        20, 21, 0, 0, 22, 0, 0, 0,
        23, 24, 0, 0, 25, 0, 0, 0,
    ]
    packed = pack_weights(w, small_target())
    assert list(np.frombuffer(packed, np.int8)) == expected
    assert np.array_equal(unpack_weights(packed, w.shape, small_target()), w)
    dw = np.array([[[[1, 2, 3], [4, 5, 6]]]], np.int8)  # (1, KH=1, KW=2, C=3)
    packed = pack_depthwise_weights(dw, small_target())
    # channel group 0 (c = 0, 1): positions 0, 1; group 1 (c = 2, pad)
    assert list(np.frombuffer(packed, np.int8)) == [1, 2, 4, 5, 3, 0, 6, 0]
    assert np.array_equal(unpack_depthwise_weights(packed, dw.shape, small_target()), dw)
    assert list(np.frombuffer(pack_bias([1, -2, 3], 2), np.int8)) == [1, -2, 3, 0]


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@settings(max_examples=60, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_packing_round_trips(target_name, data):
    target = TARGETS[target_name]
    icp, ocp = target.conv.input_channel_parallel, target.conv.output_channel_parallel
    m, kh, kw, c = (data.draw(st.integers(1, n)) for n in (40, 5, 5, 40))
    w = np.random.default_rng(m * 1000 + c).integers(-128, 128, (m, kh, kw, c), dtype=np.int8)
    packed = pack_weights(w, target)
    assert len(packed) == ceil(m, ocp) * ocp * kh * kw * ceil(c, icp) * icp
    assert np.array_equal(unpack_weights(packed, w.shape, target), w)
    dw = w[:1]
    assert np.array_equal(unpack_depthwise_weights(pack_depthwise_weights(dw, target),
                                                   dw.shape, target), dw)


# -- DDR layout ------------------------------------------------------------------------------------


def dpu_function(module):
    return next(op for op in module.regions[0].blocks[0].ops if op.name == "func.func"
                and "xir.device" in op.attributes and op.attributes["xir.device"].value == "DPU")


def check_layout(layout, func, target):
    align = layout.alignment
    assert layout.channel_align % target.conv.input_channel_parallel == 0
    assert layout.channel_align % target.conv.output_channel_parallel == 0
    data = layout.data_tensors()
    for t in layout.tensors.values():
        assert t.offset % align == 0
        if t.region == "DATA":
            assert t.padded_channels % layout.channel_align == 0 and t.padded_channels >= t.channels
            owner = layout.tensors[t.alias_of] if t.alias_of else t
            assert owner.size % align == 0
            assert owner.size >= np.prod(t.shape[:3]) * t.padded_channels
            assert owner.offset + owner.size <= layout.regions["DATA"].size
        else:
            assert t.offset + t.size <= len(layout.const_image)
    for i, a in enumerate(data):
        for b in data[i + 1:]:
            if a.live[0] <= b.live[1] and b.live[0] <= a.live[1]:
                assert a.offset + a.size <= b.offset or b.offset + b.size <= a.offset, \
                    f"{a.name} and {b.name} are alive together and overlap"
    assert layout.peak_data_bytes <= layout.regions["DATA"].size
    # The CONST image holds each weight in the engine's order.
    for op in func.regions[0].blocks[0].ops:
        if op.name == "quant.constant":
            t = layout.of(op.results[0])
            value = np.asarray(op.evaluate()[0])
            blob = layout.const_image[t.offset:t.offset + t.size]
            if t.packing == "conv":
                assert np.array_equal(unpack_weights(blob, value.shape, target), value)
            elif t.packing == "depthwise":
                assert np.array_equal(unpack_depthwise_weights(blob, value.shape, target), value)
            elif t.packing == "bias":
                assert np.array_equal(np.frombuffer(blob, np.int8)[:value.size], value)


@pytest.fixture(scope="module")
def digits_subgraphs():
    from xir.backend.compiler import compile_model
    from xir.frontends.onnx import import_onnx

    data = np.load(DIGITS / "digits.npz")
    calib = {"input": data["x_train"][:200].astype(np.float32) / 16}
    out = {}
    for name in ("digits_cnn", "digits_dwsep"):
        for target_name, target in TARGETS.items():
            compiled = compile_model(import_onnx(str(DIGITS / f"{name}.onnx")), target, calib)
            out[name, target_name] = compiled.module
    return out


@pytest.mark.parametrize("name", ["digits_cnn", "digits_dwsep"])
@pytest.mark.parametrize("target_name", sorted(TARGETS))
def test_digits_subgraphs_lay_out_and_tile(digits_subgraphs, name, target_name):
    target = TARGETS[target_name]
    func = dpu_function(digits_subgraphs[name, target_name])
    layout = plan_layout(func, target)
    check_layout(layout, func, target)
    print(f"{name} on {target.name}: peak DATA {layout.peak_data_bytes} bytes; {layout.summary()}")
    plans = plan_function(func, target)
    assert len(plans) == sum(1 for op in func.walk() if op.name in (
        "dpu.conv2d_fix", "dpu.depthwise_conv2d_fix", "dpu.pool_fix", "dpu.eltwise_fix"))
    for plan in plans:
        check_plan(plan, plan.layer, target)


def test_digits_conv2_on_b4096_as_documented(digits_subgraphs):
    target = TARGETS["B4096"]
    func = dpu_function(digits_subgraphs["digits_cnn", "B4096"])
    conv2 = next(p for p in plan_function(func, target) if p.layer.name == "conv2")
    assert conv2.layer.inputs == ((8, 8, 16),) and conv2.layer.output == (8, 8, 32)
    (tile,) = conv2.tiles
    assert (tile.in_rows, tile.out_rows, tile.pad_top, tile.pad_bottom) == (((0, 8),), (0, 8), 1, 1)
    assert (tile.inputs[0].group, tile.inputs[0].lines) == ("VB0", 8)
    assert (tile.output.group, tile.output.lines) == ("VB1", 16)
    assert (tile.weights.group, tile.weights.lines, tile.bias.lines) == ("CONVW", 18, 2)
    assert conv2.pixel_groups == ((0, 8),)


def test_a_layer_too_big_for_a_shrunken_target_is_an_error_at_the_op(digits_subgraphs):
    target = TARGETS["B4096"]
    tiny = target.evolve(bank_groups=[attrs.evolve(g, bank_depth=2) if g.type == "Virtual" else g
                                      for g in target.bank_groups])
    func = dpu_function(digits_subgraphs["digits_cnn", "B4096"])
    conv1 = next(op for op in func.walk() if op.name == "dpu.conv2d_fix")
    with pytest.raises(XirError, match=r"'dpu.conv2d_fix' op cannot tile 'conv1'.*bank group VB"):
        plan_op(conv1, tiny)


def chain_text(ops: list, channels: list, returned: list) -> str:
    """A function of 1×4×4×C tensors: %v0 the argument, then for each op ("conv", a) a 1×1 conv
    of %va, or ("add", a, b) an eltwise add of %va and %vb (same channel count)."""
    def t(c):
        return f"tensor<1x4x4x{c}xi8>"

    lines = []
    for k, op in enumerate(ops, start=1):
        if op[0] == "conv":
            a, cin, cout = op[1], channels[op[1]], channels[k]
            lines.append(f'%w{k} = "quant.constant"() {{value = dense<{k % 100}> : '
                         f'tensor<{cout}x1x1x{cin}xi8>, fix_point = 7}} : () -> '
                         f'tensor<{cout}x1x1x{cin}xi8>')
            lines.append(f'%v{k} = "dpu.conv2d_fix"(%v{a}, %w{k}) {{kernel = [1, 1], input_fp = 6, '
                         f'weight_fp = 7, output_fp = 6, shift_cut = 7}} : ({t(cin)}, '
                         f'tensor<{cout}x1x1x{cin}xi8>) -> {t(cout)}')
        else:
            a, b = op[1], op[2]
            c = channels[k]
            lines.append(f'%v{k} = "dpu.eltwise_fix"(%v{a}, %v{b}) {{type = "add", input_fps = '
                         f'[6, 6], output_fp = 6, shift_read = [0, 0], shift_write = 0}} : '
                         f'({t(c)}, {t(c)}) -> {t(c)}')
    results = ", ".join(f"%v{r}" for r in returned)
    types = ", ".join(t(channels[r]) for r in returned)
    lines.append(f'"func.return"({results}) : ({types}) -> ()')
    body = "\n    ".join(lines)
    return (f"builtin.module {{\n  func.func @f(%v0: {t(channels[0])}) -> ({types}) {{\n"
            f"    {body}\n  }}\n}}")


@st.composite
def chains(draw):
    channels = [draw(st.integers(1, 70))]
    ops = []
    for k in range(1, draw(st.integers(1, 12)) + 1):
        same = [j for j in range(k) if channels[j] == channels[-1]]
        if draw(st.booleans()) and len(same) >= 2:
            a, b = draw(st.sampled_from(same)), draw(st.sampled_from(same))
            ops.append(("add", a, b))
            channels.append(channels[a])
        else:
            ops.append(("conv", draw(st.integers(0, k - 1))))
            channels.append(draw(st.integers(1, 70)))
    n = len(ops)
    returned = sorted({n} | set(draw(st.lists(st.integers(1, n), max_size=2))))
    return ops, channels, returned


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@settings(max_examples=80, deadline=None, derandomize=True, database=None)
@given(chain=chains(), alignment=st.sampled_from([16, 64, 256]))
def test_random_functions_never_overlap_live_tensors(target_name, chain, alignment):
    target = TARGETS[target_name]
    module = parse(chain_text(*chain))
    func = next(op for op in module.walk() if op.name == "func.func")
    layout = plan_layout(func, target, alignment)
    check_layout(layout, func, target)
    ops = [op for op in func.regions[0].blocks[0].ops]
    for k, op in enumerate(ops):  # every value is alive from its definition to its last reader
        for v in op.operands:
            t = layout.of(v)
            if t.region == "DATA":
                assert t.live[0] <= k <= t.live[1]
    for r in ops[-1].operands:
        assert layout.of(r).live[1] == len(ops)


@settings(max_examples=200, deadline=None, derandomize=True, database=None)
@given(steps=st.lists(st.tuples(st.booleans(), st.integers(1, 6)), min_size=1, max_size=60))
def test_first_fit_never_hands_out_live_bytes(steps):
    from xir.passes.codegen.ddr_layout import _FirstFit

    heap, live = _FirstFit(), []
    for allocate, size in steps:
        if allocate or not live:
            offset = heap.allocate(size * 64)
            for o, s in live:
                assert offset + size * 64 <= o or o + s <= offset
            live.append((offset, size * 64))
        else:
            heap.release(*live.pop(size % len(live)))
        assert heap.live == sum(s for _, s in live) <= heap.end
        assert max((o + s for o, s in live), default=0) <= heap.end
    assert heap.peak <= heap.end


def test_intermediates_share_memory(digits_subgraphs):
    func = dpu_function(digits_subgraphs["digits_dwsep", "B4096"])
    layout = plan_layout(func, TARGETS["B4096"])
    total = sum(t.size for t in layout.data_tensors())
    assert layout.regions["DATA"].size < total
    offsets = [t.offset for t in layout.data_tensors() if t.kind == "intermediate"]
    assert len(set(offsets)) < len(offsets)  # some address is used twice, at different times
