"""Channel augmentation (passes/codegen/augment.py): a conv over a thin input (C · kw within
the target's augmentation size) laid out unpadded between zero columns, loaded as one
augmented pixel of kw·C channels per output column and computed as a (kh × 1) conv; bit-exact
against the op's evaluate through the whole path (plan_layout, emit_function, DpuProgram's
placements, the simulator) in program order and random queue orders, on B4096 and B512."""

from __future__ import annotations

import functools

import attrs
import numpy as np
import pytest

import xir.passes.codegen as codegen
from xir.backend.dpu_program import DpuProgram
from xir.backend.sim.function import simulate_function
from xir.backend.targets import load_target
from xir.parser import parse
from xir.passes.codegen import plan_layout, plan_op, unpack_weights
from xir.passes.codegen.augment import augment_weights, augmentation, augmentation_size
from xir.passes.codegen.emit import emit_function
from xir.verifier import verify

from test_codegen_conv import ACTS, conv_lines, conv_module, module_text, shrunk, the_func, ttype

TARGETS = {"B4096": load_target("DPUCZDX8G_ISA1_B4096"),
           "B512": load_target("DPUCZDX8G_ISA1_B512")}


@pytest.fixture(autouse=True)
def augmenting(monkeypatch):
    """DpuProgram.build (hence simulate_function) plans layouts with augmentation on."""
    monkeypatch.setattr(codegen, "plan_layout", functools.partial(plan_layout, augment=True))


def constants(func) -> dict:
    return {o.results[0]: np.asarray(o.evaluate()[0]) for o in func.walk()
            if o.name == "quant.constant"}


def expected_of(func, x) -> np.ndarray:
    """The function's ops evaluated in order on ``x`` (a chain of convs)."""
    consts = constants(func)
    for op in func.walk():
        if op.name in ("dpu.conv2d_fix", "dpu.pool_fix"):
            x = op.evaluate(x, *[consts[v] for v in op.operands[1:]])[0]
    return x


def random_shape(rng, target) -> dict:
    """A conv that qualifies: C 1–4, kw 2–8 with kw·C within the augmentation size (kw = 1
    gains nothing and is not augmented), any kh, strides 1–4, pads, dilation_h 1–3."""
    size = augmentation_size(target)
    c = int(rng.integers(1, 5))
    kw = int(rng.integers(2, min(8, size // c) + 1))
    kh = int(rng.integers(1, 8))
    dh = int(rng.integers(1, 4)) if rng.random() < 0.3 else 1
    pad = [int(rng.integers(0, k)) if rng.random() < 0.7 else 0 for k in (kh, kw, kh, kw)]
    low = max(1, dh * (kh - 1) + 1 - pad[0] - pad[2])
    h = int(rng.integers(low, low + 12))
    w = int(rng.integers(max(1, kw - pad[1] - pad[3]), 24))
    return dict(h=h, w=w, cin=c, cout=int(rng.integers(1, 40)), kernel=(kh, kw),
                stride=(int(rng.integers(1, 5)), int(rng.integers(1, 5))), dilation=(dh, 1),
                pad=pad, act=ACTS[int(rng.integers(len(ACTS)))], bias=bool(rng.random() < 0.7))


def small_image_banks(func, target):
    """``target`` with image banks shrunk so that the augmented conv splits into strips, when
    it still qualifies there (else ``target``)."""
    op = next(o for o in func.walk() if o.name == "dpu.conv2d_fix")
    for depth in (12, 40):
        small = shrunk(target, VB0=depth, VB1=depth)
        if augmentation(op, small) is not None:
            return small
    return target


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("case", range(24))
def test_random_augmented_conv_is_bit_exact(target_name, case):
    """Random qualifying convs (every nonlinear, with and without bias; every other case on
    shrunk image banks: row strips with ping/pong), augmented, in program order and three
    random queue orders."""
    target = TARGETS[target_name]
    rng = np.random.default_rng(300 + 1000 * case + len(target_name))
    shape = random_shape(rng, target)
    module = parse(conv_module(rng, **shape))
    verify(module)
    func = the_func(module)
    if case % 2:
        target = small_image_banks(func, target)
    layout = plan_layout(func, target, augment=True)
    xt = layout.of(func.regions[0].blocks[0].args[0])
    assert xt.augment == (shape["pad"][1], shape["pad"][3]), shape
    x = rng.integers(-128, 128, (1, shape["h"], shape["w"], shape["cin"])).astype(np.int8)
    want = expected_of(func, x)
    for seed in (None, 1, 2, 3):
        (got,), _ = simulate_function(func, target, [x], seed=seed)
        assert np.array_equal(got, want), (shape, seed)


@pytest.mark.parametrize("target_name", sorted(TARGETS))
def test_each_conv_walks_kernel_h_taps_of_the_augmented_channel_groups(target_name):
    """A k × k stride-2 conv over 3 channels (ResNet's conv1, smaller; k = 7 on B4096, 5 on
    B512 whose augmentation size is 16): CONVINIT kernel k × 1, stride_w 1; every CONV walks
    ⌈3k / ICP⌉ channel groups, no left / right pad; the input LOADs move one window (3k
    bytes) per output column, 2 · 3 bytes apart; as many CONVs as unaugmented, each
    k · ⌈3k / ICP⌉ steps instead of k · k."""
    target = TARGETS[target_name]
    icp = target.conv.input_channel_parallel
    k = 7 if augmentation_size(target) >= 21 else 5
    groups = -(-3 * k // icp)
    rng = np.random.default_rng(1)
    func = the_func(parse(conv_module(rng, h=20, w=21, cin=3, cout=20, kernel=(k, k),
                                      stride=(2, 2), dilation=(1, 1), pad=[3, 3, 3, 3],
                                      act="relu", bias=True)))
    wide = emit_function(func, plan_layout(func, target, augment=True), target).items
    plain = emit_function(func, plan_layout(func, target), target).items
    (init,) = [v for m, v in wide if m == "CONVINIT"]
    assert (init["kernel_h"], init["kernel_w"], init["stride_h"], init["stride_w"]) == (k, 1, 2, 1)
    convs = [v for m, v in wide if m == "CONV"]
    assert {v["channel_group"] for v in convs} == {groups}
    assert {(v["pad_left"], v["pad_right"]) for v in convs} == {(0, 0)}
    assert len(convs) == sum(1 for m, _ in plain if m == "CONV")
    (plain_init,) = [v for m, v in plain if m == "CONVINIT"]
    assert plain_init["kernel_h"] * plain_init["kernel_w"] == k * k > k * groups
    width = (21 + 6 - k) // 2 + 1
    rows = [v for m, v in wide if m == "LOAD" and v.get("reg_id") == 1 and v.get("length")]
    assert {(v["length"], v["channel"], v["jump_read"]) for v in rows} == {(width, 3 * k, 6)}


def test_weights_are_packed_augmented_and_the_input_unpadded_between_zero_columns():
    """The layout: the input's pixels C bytes apart, rows (W + pad_l + pad_r) · C, element
    (0, 0, 0, 0) pad_l · C into the tensor; the weights packed as (M, kh, 1, kw·C); the
    program's placement of the argument has those strides, and its DDR image zero columns."""
    target = TARGETS["B4096"]
    rng = np.random.default_rng(2)
    func = the_func(parse(conv_module(rng, h=9, w=10, cin=3, cout=5, kernel=(3, 5),
                                      stride=(1, 2), dilation=(1, 1), pad=[1, 2, 1, 1],
                                      act="none", bias=False)))
    layout = plan_layout(func, target, augment=True)
    arg = func.regions[0].blocks[0].args[0]
    xt = layout.of(arg)
    assert (xt.pixel_bytes, xt.row_bytes, xt.address() - xt.offset) == (3, 13 * 3, 2 * 3)
    (wv, w), = constants(func).items()
    wt = layout.of(wv)
    assert wt.packing == "augmented" and wt.shape == (5, 3, 1, 15)
    blob = layout.const_image[wt.offset:wt.offset + wt.size]
    assert np.array_equal(unpack_weights(blob, wt.shape, target).reshape(w.shape), w)
    assert np.array_equal(augment_weights(w)[:, :, 0, 3:6], w[:, :, 1, :])
    program = DpuProgram.build(func, target)
    (placement,) = program.inputs
    assert (placement.offset, placement.strides) == (xt.address(), (39, 3, 1))
    x = rng.integers(1, 128, (9, 10, 3)).astype(np.int8)
    data = program.ddr_image([x])[program.data_base:]
    rows = data[xt.offset:xt.offset + 9 * 39].reshape(9, 13, 3)
    assert not rows[:, :2].any() and not rows[:, 12:].any()
    assert np.array_equal(rows[:, 2:12].view(np.int8), x)


def test_a_batch_runs_image_by_image():
    """DpuProgram.run on a batch of 3 images of an augmented input."""
    target = TARGETS["B512"]
    rng = np.random.default_rng(3)
    func = the_func(parse(conv_module(rng, h=8, w=9, cin=2, cout=9, kernel=(3, 3),
                                      stride=(2, 1), dilation=(2, 1), pad=[2, 1, 2, 1],
                                      act="relu6", bias=True)))
    program = DpuProgram.build(func, target)
    assert plan_layout(func, target, augment=True).of(func.regions[0].blocks[0].args[0]).augment
    x = rng.integers(-128, 128, (3, 8, 9, 2)).astype(np.int8)
    (got,), _ = program.run([x], seed=4)
    for i in range(3):
        assert np.array_equal(got[i:i + 1], expected_of(func, x[i:i + 1]))


def chain(rng, cin: int, second_reads_input: bool = False):
    """Two convs: %v0 = 5 × 5 / 2 conv of %x (C = ``cin``), %v1 = 3 × 3 conv of %v0 (or, with
    ``second_reads_input``, of %x too, concatenated away: a second reader of %x)."""
    lines, out0, fp = conv_lines(rng, "x", "v0", 12, 13, cin, 10, (5, 5), (2, 2), (1, 1),
                                 [2, 2, 2, 2], "relu", True, 4)
    source, (h, w, c) = ("x", (12, 13, cin)) if second_reads_input else ("v0", (6, 7, 10))
    more, out1, _ = conv_lines(rng, source, "v1", h, w, c, 7, (3, 3), (1, 1), (1, 1),
                               [1, 1, 1, 1], "leaky_relu", True, 4 if second_reads_input else fp)
    lines += more
    if second_reads_input:
        text = module_text(lines, ttype((1, 12, 13, cin)), "%v0, %v1", f"{out0}, {out1}")
        return text.replace(f"-> {out0}, {out1} {{", f"-> ({out0}, {out1}) {{", 1)
    return module_text(lines, ttype((1, 12, 13, cin)), "%v1", out1)


@pytest.mark.parametrize("target_name", sorted(TARGETS))
def test_a_chain_augments_the_first_conv_only(target_name):
    """The first conv (on the argument) is augmented, the second (on an intermediate) is
    not; the whole program is bit-exact in two queue orders."""
    target = TARGETS[target_name]
    rng = np.random.default_rng(4)
    func = the_func(parse(chain(rng, 3)))
    layout = plan_layout(func, target, augment=True)
    convs = [o for o in func.walk() if o.name == "dpu.conv2d_fix"]
    assert layout.of(convs[0].operands[0]).augment == (2, 2)
    assert layout.of(convs[1].operands[0]).augment is None
    x = rng.integers(-128, 128, (1, 12, 13, 3)).astype(np.int8)
    for seed in (None, 5):
        (got,), _ = simulate_function(func, target, [x], seed=seed)
        assert np.array_equal(got, expected_of(func, x))


def test_what_is_not_augmented_stays_as_it_was():
    """No augmentation for an input with two readers, an intermediate, a target without the
    feature, dilation_w 2, kw = 1 or kw·C above the size; and plan_layout without ``augment``
    lays out nothing augmented (the default)."""
    target = TARGETS["B4096"]
    rng = np.random.default_rng(5)
    two = the_func(parse(chain(rng, 3, second_reads_input=True)))
    layout = plan_layout(two, target, augment=True)
    assert layout.of(two.regions[0].blocks[0].args[0]).augment is None
    x = rng.integers(-128, 128, (1, 12, 13, 3)).astype(np.int8)
    consts = constants(two)
    outs, _ = simulate_function(two, target, [x], seed=1)
    for got, op in zip(outs, [o for o in two.walk() if o.name == "dpu.conv2d_fix"]):
        assert np.array_equal(got, op.evaluate(x, *[consts[v] for v in op.operands[1:]])[0])

    def conv(**kw):
        shape = dict(h=9, w=11, cin=3, cout=4, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                     pad=[1, 1, 1, 1], act="none", bias=True) | kw
        func = the_func(parse(conv_module(rng, **shape)))
        return func, next(o for o in func.walk() if o.name == "dpu.conv2d_fix")

    func, op = conv()
    assert augmentation(op, target) is not None
    assert plan_layout(func, target).of(op.operands[0]).augment is None
    without = target.evolve(conv=attrs.evolve(target.conv, channel_augmentation=None))
    assert augmentation(op, without) is None
    assert plan_layout(func, without, augment=True).of(op.operands[0]).augment is None
    assert augmentation(conv(dilation=(1, 2))[1], target) is None
    assert augmentation(conv(kernel=(3, 1), pad=[1, 0, 1, 0])[1], target) is None
    assert augmentation(conv(cin=5, kernel=(7, 7), pad=[3, 3, 3, 3])[1], target) is None
    assert augmentation(conv(cin=4, kernel=(7, 8), pad=[3, 3, 3, 3])[1], target) is not None
    assert plan_op(op, target).layer.kernel == (3, 3)  # plan_op itself is unchanged


def test_resnet_conv1_at_full_size_is_bit_exact():
    """ResNet-50's conv1 (224 × 224 × 3 → 112 × 112 × 64, 7 × 7 stride 2, pad 3) on B4096,
    augmented, in program order and one random queue order."""
    target = TARGETS["B4096"]
    rng = np.random.default_rng(6)
    func = the_func(parse(conv_module(rng, h=224, w=224, cin=3, cout=64, kernel=(7, 7),
                                      stride=(2, 2), dilation=(1, 1), pad=[3, 3, 3, 3],
                                      act="relu", bias=True)))
    assert plan_layout(func, target, augment=True).of(func.regions[0].blocks[0].args[0]).augment
    x = rng.integers(-128, 128, (1, 224, 224, 3)).astype(np.int8)
    want = expected_of(func, x)
    for seed in (None, 1):
        (got,), _ = simulate_function(func, target, [x], seed=seed)
        assert np.array_equal(got, want)
