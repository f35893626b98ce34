"""One dpu.conv2d_fix (or dpu.depthwise_conv2d_fix, on the ALU) compiled to a dpuisa program
(passes/codegen/emit.py) and run by the simulator (backend/sim/compute.py): the output read
back from DDR equals the op's evaluate, bit for bit, in program order and in random queue
orders, on B4096 and B512."""

from __future__ import annotations

from pathlib import Path

import attrs
import numpy as np
import pytest

from xir.backend.sim.machine import Machine
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.dialects.dpuisa import decode, encode, make_instruction, make_program
from xir.parser import parse
from xir.passes.codegen import plan_layout, plan_op
from xir.passes.codegen.emit import KINDS, emit_conv, emit_program
from xir.verifier import verify

TARGETS = {"B4096": load_target("DPUCZDX8G_ISA1_B4096"),
           "B512": load_target("DPUCZDX8G_ISA1_B512")}
DIGITS = Path(__file__).resolve().parents[1] / "examples" / "digits"
ACTS = ("none", "relu", "relu6", "leaky_relu", "hard_sigmoid", "hard_swish")


def dense(a: np.ndarray) -> str:
    """An int8 ``dense<>`` payload: a list, or raw bytes in hex when large (fast to parse)."""
    a = np.asarray(a)
    if a.size > 64:
        return f'dense<"0x{a.astype(np.int8).tobytes().hex().upper()}">'
    return f"dense<{a.tolist()}>".replace("\n", "")


def ttype(shape) -> str:
    return "tensor<" + "x".join(str(d) for d in shape) + "xi8>"


def conv_module(rng, h, w, cin, cout, kernel, stride, dilation, pad, act, bias,
                depthwise=False):
    """The text of a module with one dpu.conv2d_fix (or depthwise_conv2d_fix, cout = cin) of
    random weights, consistent fix points."""
    lines, out, _ = conv_lines(rng, "x", "y", h, w, cin, cout, kernel, stride, dilation, pad, act,
                               bias, depthwise=depthwise)
    return module_text(lines, ttype((1, h, w, cin)), "%y", out)


def module_text(lines, in_type, result, out_type):
    lines = lines + [f'"func.return"({result}) : ({out_type}) -> ()']
    body = "\n    ".join(lines)
    return (f"builtin.module {{\n  func.func @f(%x: {in_type}) -> {out_type} {{\n"
            f"    {body}\n  }}\n}}")


def conv_lines(rng, x, y, h, w, cin, cout, kernel, stride, dilation, pad, act, bias,
               i_fp=None, depthwise=False):
    """The lines of ``%y = conv(%x)`` (weights ``%y_w``, bias ``%y_b``; %x read at fix point
    ``i_fp``, random if None) and %y's type."""
    kh, kw = kernel
    i_fp = int(rng.integers(2, 7)) if i_fp is None else i_fp
    w_fp = int(rng.integers(4, 8))
    attrs_ = {"kernel": list(kernel), "stride": list(stride), "dilation": list(dilation),
              "pad": list(pad), "nonlinear": f'"{act}"', "input_fp": i_fp, "weight_fp": w_fp}
    if act == "hard_sigmoid":
        o, hfp = int(rng.integers(7, 9)), int(rng.integers(1, 5))
        attrs_.update(output_fp=o, hsigmoid_in=hfp, shift_cut=i_fp + w_fp - hfp,
                      shift_hsigmoid=14 + hfp - o)
    elif act == "hard_swish":
        o = int(rng.integers(1, 6))
        hfp = int(rng.integers(o, min(o + 4, i_fp + w_fp + 1)))
        attrs_.update(output_fp=o, hsigmoid_in=hfp, shift_cut=i_fp + w_fp - hfp,
                      shift_hsigmoid=14 + hfp - 7, shift_hswish=hfp + 7 - o)
    else:
        o = int(rng.integers(0, 6))
        attrs_.update(output_fp=o, shift_cut=i_fp + w_fp - o)
    oh = (h + pad[0] + pad[2] - dilation[0] * (kh - 1) - 1) // stride[0] + 1
    ow = (w + pad[1] + pad[3] - dilation[1] * (kw - 1) - 1) // stride[1] + 1
    wshape = (1, kh, kw, cin) if depthwise else (cout, kh, kw, cin)
    lines = [f'%{y}_w = "quant.constant"() {{value = {dense(rng.integers(-128, 128, wshape))} : '
             f'{ttype(wshape)}, fix_point = {w_fp}}} : () -> {ttype(wshape)}']
    operands, types = f"%{x}, %{y}_w", f"{ttype((1, h, w, cin))}, {ttype(wshape)}"
    if bias:
        b_fp = int(rng.integers(i_fp + w_fp - 5, i_fp + w_fp + 3))
        attrs_.update(bias_fp=b_fp, shift_bias=i_fp + w_fp - b_fp)
        lines.append(f'%{y}_b = "quant.constant"() {{value = {dense(rng.integers(-128, 128, cout))}'
                     f' : {ttype((cout,))}, fix_point = {b_fp}}} : () -> {ttype((cout,))}')
        operands, types = operands + f", %{y}_b", types + f", {ttype((cout,))}"
    out = ttype((1, oh, ow, cout))
    text = ", ".join(f"{k} = {v}" for k, v in attrs_.items())
    name = "dpu.depthwise_conv2d_fix" if depthwise else "dpu.conv2d_fix"
    lines.append(f'%{y} = "{name}"({operands}) {{{text}}} : ({types}) -> {out}')
    return lines, out, o


def the_func(module):
    return next(op for op in module.walk() if op.name == "func.func")


def run_conv(func, target, x, seeds=(None,), buffers=2, transform=None, op=None):
    """Emit, check and simulate conv ``op`` of ``func`` (default: its only op, through
    emit_program) on input ``x`` (NHWC int8) written at its place in the DDR layout of the
    whole function; returns (program, [outputs per seed], expected)."""
    layout = plan_layout(func, target)
    if op is None:
        (op,) = [o for o in func.walk() if o.name in KINDS]
        program = emit_program(func, layout, target, buffers)
    else:
        program = make_program(emit_conv(op, layout, target, buffers) +
                               [make_instruction("END")], target=target.name)
    if transform is not None:
        program = transform(program)
    verify(program)
    data = encode(program)
    for a, b in zip(decode(data), program.instructions):  # every instruction round-trips
        assert a.spec is b.spec and a.field_values() == b.field_values()
    consts = {o.results[0]: np.asarray(o.evaluate()[0]) for o in func.walk()
              if o.name == "quant.constant"}
    expected = op.evaluate(x, *[consts[v] for v in op.operands[1:]])[0]
    ddr, data_base = ddr_image(layout, layout.of(op.operands[0]), x)
    yt = layout.of(op.results[0])
    outputs = []
    for seed in seeds:
        machine = Machine(target, ddr.tobytes())
        counters = machine.run(data, registers={0: 0, 1: data_base}, seed=seed)
        outputs.append(read_tensor(machine, data_base, yt))
        for queue in ("CONV", "MISC"):
            assert counters.instructions[queue] == sum(
                1 for i in program.instructions if i.spec.queue == queue)
    return program, outputs, expected


def ddr_image(layout, xt, x):
    """The DDR bytes: CONST at 0, DATA from the next 64-byte boundary with ``x`` (NHWC int8)
    at its TensorLayout ``xt`` (channels zero-padded); returns (bytes array, DATA base)."""
    const = layout.const_image
    base = -(-len(const) // 64) * 64
    ddr = np.zeros(base + layout.regions["DATA"].size, np.uint8)
    ddr[:len(const)] = np.frombuffer(const, np.uint8)
    _, h, w, c = xt.shape
    img = np.zeros((h, w, xt.padded_channels), np.int8)
    img[:, :, :c] = x[0]
    ddr[base + xt.offset:base + xt.offset + img.size] = img.reshape(-1).view(np.uint8)
    return ddr, base


def read_tensor(machine, base, t):
    """DATA tensor ``t`` read back from the machine's DDR (NHWC int8, real channels)."""
    _, h, w, c = t.shape
    got = machine.ddr.data[base + t.offset:][:h * w * t.padded_channels]
    return got.view(np.int8).reshape(1, h, w, -1)[..., :c]


def random_case(rng):
    kh, kw = int(rng.integers(1, 6)), int(rng.integers(1, 6))
    dh = int(rng.integers(1, 4)) if rng.random() < 0.3 else 1
    dw = int(rng.integers(1, 4)) if rng.random() < 0.3 else 1
    sh, sw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    pad = [int(rng.integers(0, k)) if rng.random() < 0.7 else 0 for k in (kh, kw, kh, kw)]
    h = int(rng.integers(max(1, dh * (kh - 1) + 1 - pad[0] - pad[2]), 14))
    w = int(rng.integers(max(1, dw * (kw - 1) + 1 - pad[1] - pad[3]), 20))
    return dict(h=h, w=w, cin=int(rng.integers(1, 40)), cout=int(rng.integers(1, 40)),
                kernel=(kh, kw), stride=(sh, sw), dilation=(dh, dw), pad=pad,
                act=ACTS[int(rng.integers(len(ACTS)))], bias=bool(rng.random() < 0.8))


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("case", range(40))
def test_random_conv_is_bit_exact(target_name, case):
    """Random shapes, windows, pads, nonlinears, with and without bias; every other case on
    banks shrunk so that the layer splits into strips (and channel tiles) with ping/pong."""
    target = TARGETS[target_name]
    rng = np.random.default_rng(1000 * case + len(target_name))
    shape = random_case(rng)
    module = parse(conv_module(rng, **shape))
    verify(module)
    func = the_func(module)
    if case % 2:
        target = small_banks(func, target)
    x = rng.integers(-128, 128, (1, shape["h"], shape["w"], shape["cin"])).astype(np.int8)
    _, outputs, expected = run_conv(func, target, x, seeds=(None, 1, 2, 3))
    for got in outputs:
        assert np.array_equal(got, expected), shape


@pytest.mark.parametrize("target_name", sorted(TARGETS))
@pytest.mark.parametrize("case", range(20))
def test_random_depthwise_conv_on_the_alu_is_bit_exact(target_name, case):
    """dpu.depthwise_conv2d_fix through ALUINIT / ALU (exec_type dwconv) on the MISC queue;
    every other case on shrunk banks (strips, channel tiles)."""
    target = TARGETS[target_name]
    rng = np.random.default_rng(5000 + 1000 * case + len(target_name))
    shape = random_case(rng)
    shape["cout"] = shape["cin"]
    module = parse(conv_module(rng, **shape, depthwise=True))
    verify(module)
    func = the_func(module)
    if case % 2:
        kh, kw = shape["kernel"]
        small = shrunk(target, VB0=24, VB1=24, DWCONVW=2 * kh * kw)
        try:
            plan_op(next(o for o in func.walk() if o.name in KINDS), small)
            target = small
        except XirError:
            pass
    x = rng.integers(-128, 128, (1, shape["h"], shape["w"], shape["cin"])).astype(np.int8)
    program, outputs, expected = run_conv(func, target, x, seeds=(None, 1, 2, 3))
    assert any(i.spec.mnemonic == "ALU" for i in program.instructions)
    for got in outputs:
        assert np.array_equal(got, expected), shape


def small_banks(func, target):
    """``target`` with image banks of 40 (else 200) lines and weight banks of two OCP blocks'
    weights, when the op still tiles so: strips, channel tiles and ping/pong in use."""
    op = next(o for o in func.walk() if o.name == "dpu.conv2d_fix")
    (m, kh, kw, c) = op.operands[1].type.shape
    block = kh * kw * -(-c // target.conv.input_channel_parallel)
    for depth in (40, 200):
        small = shrunk(target, VB0=depth, VB1=depth, CONVW=2 * block)
        try:
            plan_op(op, small)
            return small
        except XirError:
            pass
    return target


@pytest.mark.parametrize("target_name", sorted(TARGETS))
def test_a_chain_of_convs_runs_as_one_program(target_name):
    """Three convs and a depthwise conv, each reading the last one's output from DDR (SAVE →
    LOAD between ops)."""
    target = TARGETS[target_name]
    rng = np.random.default_rng(11)
    specs = [(5, 19, (3, 3), (1, 1), [1, 1, 1, 1], "relu", False),
             (19, 19, (3, 3), (1, 1), [1, 1, 1, 1], "relu6", True),
             (19, 23, (3, 2), (2, 1), [1, 0, 1, 1], "leaky_relu", False),
             (23, 7, (1, 1), (1, 1), [0, 0, 0, 0], "none", False)]
    h, w, lines, name, fp = 9, 11, [], "x", 4
    for k, (cin, cout, kernel, stride, pad, act, dw) in enumerate(specs):
        more, out, fp = conv_lines(rng, name, f"v{k}", h, w, cin, cout, kernel, stride, (1, 1),
                                   pad, act, True, fp, depthwise=dw)
        lines += more
        name = f"v{k}"
        h = (h + pad[0] + pad[2] - kernel[0]) // stride[0] + 1
        w = (w + pad[1] + pad[3] - kernel[1]) // stride[1] + 1
    module = parse(module_text(lines, ttype((1, 9, 11, 5)), f"%{name}", out))
    verify(module)
    func = the_func(module)
    x = rng.integers(-128, 128, (1, 9, 11, 5)).astype(np.int8)
    layout = plan_layout(func, target)
    program = emit_program(func, layout, target)
    verify(program)
    consts = {o.results[0]: np.asarray(o.evaluate()[0]) for o in func.walk()
              if o.name == "quant.constant"}
    expected = x
    for op in (o for o in func.walk() if o.name in KINDS):
        expected = op.evaluate(expected, *[consts[v] for v in op.operands[1:]])[0]
    last = layout.of(op.results[0])
    for seed in (None, 0, 1, 2, 3):
        ddr, base = ddr_image(layout, layout.of(func.regions[0].blocks[0].args[0]), x)
        machine = Machine(target, ddr.tobytes())
        machine.run(encode(program), registers={0: 0, 1: base}, seed=seed)
        assert np.array_equal(read_tensor(machine, base, last), expected)


@pytest.mark.parametrize("target_name", sorted(TARGETS))
def test_horizontal_dilation_runs_pixel_by_pixel_on_phase_ordered_rows(target_name):
    """dilation [2, 3]: each input row loaded phase by phase (LOAD jump_read = 3 pixels), one
    CONV per output pixel; bit-exact in several queue orders."""
    target = TARGETS[target_name]
    rng = np.random.default_rng(0)
    module = parse(conv_module(rng, h=9, w=13, cin=11, cout=9, kernel=(3, 3), stride=(1, 2),
                               dilation=(2, 3), pad=[2, 3, 1, 2], act="relu", bias=True))
    func = the_func(module)
    x = rng.integers(-128, 128, (1, 9, 13, 11)).astype(np.int8)
    program, outputs, expected = run_conv(func, target, x, seeds=(None, 1, 2, 3))
    assert all(i.field_values()["length"] == 1 for i in program.instructions
               if i.spec.mnemonic == "CONV")
    loads = [i.field_values() for i in program.instructions if i.spec.mnemonic == "LOAD"]
    assert {v["jump_read"] for v in loads if v["reg_id"] == 1} == {3 * 16}
    for got in outputs:
        assert np.array_equal(got, expected)


def shrunk(target, **depths):
    """``target`` with the bank groups named in ``depths`` cut to that depth."""
    return target.evolve(bank_groups=[attrs.evolve(g, bank_depth=depths[g.name])
                                      if g.name in depths else g for g in target.bank_groups])


@pytest.mark.parametrize("buffers", [2, 1])
def test_big_conv_splits_into_strips_and_channel_tiles(buffers):
    """A layer tiled into several strips and channel tiles (ping/pong buffers with 2), run in
    20 random queue orders."""
    tiny = shrunk(TARGETS["B512"], VB0=48, VB1=48, CONVW=40)
    rng = np.random.default_rng(7)
    shape = dict(h=12, w=9, cin=10, cout=37, kernel=(3, 3), stride=(1, 1), dilation=(1, 1),
                 pad=[1, 1, 1, 1], act="relu", bias=True)
    module = parse(conv_module(rng, **shape))
    func = the_func(module)
    plan = plan_op(next(o for o in func.walk() if o.name == "dpu.conv2d_fix"), tiny, buffers)
    assert plan.strips >= 2 and plan.channel_tile < 37
    assert plan.buffers == plan.weight_buffers == buffers
    x = rng.integers(-128, 128, (1, 12, 9, 10)).astype(np.int8)
    _, outputs, expected = run_conv(func, tiny, x, seeds=(None, *range(20)), buffers=buffers)
    for got in outputs:
        assert np.array_equal(got, expected)


def test_dropping_a_token_races():
    """Without the SAVE → CONV tokens a CONV overwrites an output buffer before its SAVE in
    some queue order: the tokens are what makes the program race-free."""
    tiny = shrunk(TARGETS["B4096"], VB0=6, VB1=6)
    rng = np.random.default_rng(3)
    module = parse(conv_module(rng, h=10, w=8, cin=8, cout=16, kernel=(3, 3), stride=(1, 1),
                               dilation=(1, 1), pad=[1, 1, 1, 1], act="none", bias=True))
    func = the_func(module)
    x = rng.integers(-128, 128, (1, 10, 8, 8)).astype(np.int8)

    def without_save_tokens(program):
        ops = []
        for o in program.instructions:
            v = o.field_values()
            if o.spec.mnemonic == "SAVE":
                v["dpdby"] &= ~0b0100
            if o.spec.mnemonic in ("CONV", "CONVINIT"):
                v["dpdon"] &= ~0b0010
            ops.append(make_instruction(o.spec.mnemonic, **v))
        return make_program(ops, target=tiny.name)

    program, good, expected = run_conv(func, tiny, x, seeds=range(10))
    assert len(program.instructions) > 20 and all(np.array_equal(g, expected) for g in good)
    _, bad, _ = run_conv(func, tiny, x, seeds=range(30), transform=without_save_tokens)
    assert any(not np.array_equal(g, expected) for g in bad)


def test_conv_faults_name_the_instruction_and_field():
    target = TARGETS["B4096"]
    m = Machine(target, 64)
    ops = [make_instruction("CONVINIT", kernel_h=3, kernel_w=3, stride_h=1, stride_w=1,
                            jump_read=2047, jump_write=1),
           make_instruction("CONV", bank_id_out=8, bank_id_weights=16, bank_id_bias=33,
                            length=4, channel_group=1, pad_left=1, pad_right=1),
           make_instruction("END")]
    with pytest.raises(XirError) as e:
        m.run(ops)
    assert str(e.value) == (
        "error: instruction 1 (CONV at word 4): field 'bank_addr_in' = 0 input row 2 (jump_read "
        "= 2047): 4 pixel(s) of 1 word(s), 1 word(s) apart in a bank, reach word 4094, which "
        "exceeds bank group VB0's depth 2048 (words 0-2047)")
    with pytest.raises(XirError, match=r"instruction 0 \(CONV at word 0\): comes before any "
                                       r"CONVINIT"):
        m2 = Machine(target, 64)
        m2.run(ops[1:])
    bad = [ops[0], make_instruction("CONV", bank_id_out=8, bank_id_weights=0, bank_id_bias=33,
                                    length=1, channel_group=1), ops[2]]
    with pytest.raises(XirError, match=r"instruction 1 \(CONV at word 4\): field "
                                       r"'bank_id_weights' = 0 is in bank group VB0, but the "
                                       r"conv engine's weight bank is CONVW"):
        m.run(bad)


@pytest.fixture(scope="module")
def digits_convs():
    from xir.backend.compiler import compile_model
    from xir.frontends.onnx import import_onnx

    data = np.load(DIGITS / "digits.npz")
    calib = {"input": data["x_train"][:200].astype(np.float32) / 16}
    out = {}
    for model in ("digits_cnn", "digits_dwsep"):
        for name, target in TARGETS.items():
            out[model, name] = compile_model(import_onnx(str(DIGITS / f"{model}.onnx")), target,
                                             calib).module
    return out


@pytest.mark.parametrize("model", ["digits_cnn", "digits_dwsep"])
@pytest.mark.parametrize("target_name", sorted(TARGETS))
def test_digits_convs_are_bit_exact(digits_convs, model, target_name):
    """Every conv and depthwise conv of the digits models (compiled from ONNX with calibration
    x_train[:200] / 16), emitted alone at its place in the subgraph's DDR layout, on random
    inputs."""
    target = TARGETS[target_name]
    module = digits_convs[model, target_name]
    convs = [o for o in module.walk() if o.name in KINDS]
    assert any(o.name == "dpu.conv2d_fix" for o in convs)
    if model == "digits_dwsep":
        assert any(o.name == "dpu.depthwise_conv2d_fix" for o in convs)
    rng = np.random.default_rng(5)
    func = next(o for o in module.walk() if o.name == "func.func"
                and o.attributes.get("xir.device") is not None
                and o.attributes["xir.device"].value == "DPU")
    for op in convs:
        (_, h, w, c) = op.operands[0].type.shape
        x = rng.integers(-128, 128, (1, h, w, c)).astype(np.int8)
        _, outputs, expected = run_conv(func, target, x, seeds=(None, 3), op=op)
        for got in outputs:
            assert np.array_equal(got, expected)


# -- the machine's batch paths against its per-instruction engines --------------------------------


def per_instruction(machine):
    """``machine`` with every batch path switched off: each instruction through its engine's
    ``execute`` (the reference the batches must equal, byte for byte and count for count)."""
    for engine in machine.engines.values():
        engine.execute_batch = None
    return machine


def state(machine, counters):
    return (machine.ddr.data.copy(), {n: m.data.copy() for n, m in machine.banks.groups.items()},
            counters.as_dict())


def same_state(a, b):
    assert np.array_equal(a[0], b[0])
    assert a[1].keys() == b[1].keys() and all(np.array_equal(a[1][k], b[1][k]) for k in a[1])
    assert a[2] == b[2]


def conv_setup(case: int, target=TARGETS["B4096"], small: bool = False):
    rng = np.random.default_rng(7000 + case)
    shape = random_case(rng)
    func = the_func(parse(conv_module(rng, **shape)))
    if small:
        target = small_banks(func, target)
    layout = plan_layout(func, target)
    op = next(o for o in func.walk() if o.name in KINDS)
    program = emit_program(func, layout, target)
    x = rng.integers(-128, 128, (1, shape["h"], shape["w"], shape["cin"])).astype(np.int8)
    ddr, base = ddr_image(layout, layout.of(op.operands[0]), x)
    return target, program, ddr, {0: 0, 1: base}, layout


@pytest.mark.parametrize("case", range(6))
def test_batches_equal_instruction_by_instruction_in_every_order(case):
    """DDR, every bank and the counters after a whole conv program: the batch paths in program
    order and in random queue orders equal the per-instruction engines."""
    target, program, ddr, regs, _ = conv_setup(case, small=bool(case % 2))
    data = encode(program)
    ref = per_instruction(Machine(target, ddr.tobytes()))
    want = state(ref, ref.run(data, regs))
    for seed in (None, 1, 2):
        m = Machine(target, ddr.tobytes())
        same_state(state(m, m.run(data, regs, seed=seed)), want)


def test_weights_reloaded_at_the_same_bank_address_are_not_served_from_the_cache():
    """The conv engine caches each weight block's GEMM matrix by its bank address; new bytes
    there must be used: within one program (shrunk weight banks: channel tiles reload one
    address) and in a second run after the weights in DDR changed."""
    target, program, ddr, regs, layout = conv_setup(3, small=True)
    convw = target.bank_group("CONVW").bank_ids
    addrs = [i.field_values()["bank_addr"] for i in program.instructions
             if i.spec.mnemonic == "LOAD" and i.field_values()["bank_id"] in convw]
    assert len(set(addrs)) < len(addrs)  # an address is reloaded
    data = encode(program)
    ddr2 = ddr.copy()
    const = len(layout.const_image)
    ddr2[:const] = np.random.default_rng(1).integers(0, 256, const, dtype=np.uint8)
    states = []
    for machine in (Machine(target, ddr.tobytes()),
                    per_instruction(Machine(target, ddr.tobytes()))):
        first = state(machine, machine.run(data, regs))
        machine.ddr.data[:] = ddr2
        states.append((first, state(machine, machine.run(data, regs))))
    (first, second), (ref_first, ref_second) = states
    same_state(first, ref_first)
    same_state(second, ref_second)
    assert not np.array_equal(ref_first[0][const:], ref_second[0][const:])  # new outputs
