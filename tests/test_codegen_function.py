"""A whole DPU subgraph as one instruction stream (passes/codegen/emit.py emit_function) and
its run on the simulator (backend/sim/function.py simulate_function): the layer table, the
fast encoder, concat inputs written in place, the copy fallback, upsampling, reshapes, ISA0's
dwconv engine, and the one-line errors. Outputs are compared with the dpu dialect's integer
executor (the runner's ReferenceExecutor)."""

from __future__ import annotations

import numpy as np
import pytest

from xir.backend.runner import ReferenceExecutor
from xir.backend.sim.function import function_image, simulate_function
from xir.backend.sim.machine import Machine
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.dialects.dpuisa import encode
from xir.parser import parse
from xir.passes.codegen import plan_layout
from xir.passes.codegen.emit import Emission, emit_function, emit_program
from xir.verifier import verify

from random_dpu_graphs import GraphBuilder, make_case, ttype

B512 = load_target("DPUCZDX8G_ISA1_B512")
B4096 = load_target("DPUCZDX8G_ISA1_B4096")
ISA0 = load_target("DPUCZDX8G_ISA0_B4096")
COMPUTE = {"conv": {"CONVINIT", "CONV"}, "depthwise": {"ALUINIT", "ALU"},
           "pool": {"ALUINIT", "ALU"}, "eltwise": {"ELEWINIT", "ELEW"}}


def build(make, inputs=((1, 6, 7, 5),), fp=3, seed=0):
    """A function built by ``make(g, *args)`` (a GraphBuilder), returning what ``make``
    returns; (func, input arrays, expected outputs)."""
    g = GraphBuilder(np.random.default_rng(seed))
    args = [g.arg(shape, fp) for shape in inputs]
    results = make(g, *args)
    results = results if isinstance(results, list) else [results]
    outs = ", ".join(ttype(t.shape) for t in results)
    ret = f'"func.return"({", ".join("%" + t.name for t in results)}) : ({outs}) -> ()'
    body = "\n    ".join(g.lines + [ret])
    arg_text = ", ".join(f"%{t.name}: {ttype(t.shape)}" for t in g.args)
    module = parse(f"builtin.module {{\n  func.func @f({arg_text}) -> ({outs}) {{\n    {body}\n"
                   f"  }}\n}}")
    verify(module)
    func = next(op for op in module.walk() if op.name == "func.func")
    rng = np.random.default_rng(seed + 1)
    xs = [rng.integers(-128, 128, t.shape).astype(np.int8) for t in g.args]
    return func, xs, ReferenceExecutor(func)(xs)


def ops_named(func, name):
    return [op for op in func.walk() if op.name == name]


def assert_runs_exactly(func, xs, expected, target=B512, seeds=(None, 1, 2)):
    for seed in seeds:
        outputs, _ = simulate_function(func, target, xs, seed=seed)
        for got, want in zip(outputs, expected):
            assert np.array_equal(got, want)


# -- the layer table and the encoder -------------------------------------------------------------


def test_layer_table_partitions_the_stream_by_op():
    """One record per op that emits instructions, in op order, covering disjoint slices of
    ``items`` that hold that op's compute instructions; END last; macs from the shapes."""
    def make(g, x):
        a = g.conv(x, cout=9, same=True)
        b = g.conv(a, depthwise=True, same=True)
        c = g.pool(b)
        return g.eltwise(c, g.conv(c, cout=c.shape[3], same=True))

    func, xs, expected = build(make)
    layout = plan_layout(func, B512)
    emission = emit_function(func, layout, B512)
    assert isinstance(emission, Emission) and emission.items[-1] == ["END", {}]
    compute_ops = [op for op in func.walk() if op.name.startswith("dpu.")]
    assert [r.name for r in emission.layers] == [op.results[0].name_hint for op in compute_ops]
    assert [r.kind for r in emission.layers] == ["conv", "depthwise", "pool", "conv", "eltwise"]
    assert [r.engine for r in emission.layers] == ["conv", "alu", "alu", "conv", "eltwise"]
    stop = 0
    for record, op in zip(emission.layers, compute_ops):
        assert stop <= record.first < record.stop
        stop = record.stop
        mnemonics = {m for m, _ in emission.items[record.first:record.stop]}
        assert mnemonics - {"LOAD", "SAVE"} == COMPUTE[record.kind]
        y = op.results[0].type.shape
        if record.kind == "conv":
            co, kh, kw, ci = op.operands[1].type.shape
            assert record.macs == y[1] * y[2] * co * kh * kw * ci
        elif record.kind == "depthwise":
            _, kh, kw, c = op.operands[1].type.shape
            assert record.macs == y[1] * y[2] * c * kh * kw
        else:
            assert record.macs == 0
    assert stop < len(emission.items)
    assert_runs_exactly(func, xs, expected)


@pytest.mark.parametrize("seed", range(8))
def test_words_equal_the_encoded_program(seed):
    """words() packs the items straight from the instruction table, to the same bytes as
    encoding the program op; emit_program is the same program."""
    case = make_case(500 + seed)
    layout = plan_layout(case.func, B4096)
    emission = emit_function(case.func, layout, B4096)
    program = emission.program()
    verify(program)
    assert emission.words().dtype == np.uint32
    assert emission.words().tobytes() == encode(program)
    assert encode(emit_program(case.func, layout, B4096)) == encode(program)


# -- concat, upsample, reshape -------------------------------------------------------------------


def test_concat_inputs_are_written_in_place():
    """Two convs of x concatenated: each conv's SAVEs write its channels of the concat
    directly (a view at its channel offset, the concat's pixel stride), the concat emits
    nothing, and a third op reading one view directly (it loads whole padded pixels past the
    view's channels) still computes its real channels right."""
    def make(g, x):
        a = g.conv(x, cout=5, out_fp=x.fp, same=True)
        b = g.conv(x, cout=11, out_fp=x.fp, same=True)
        c = g.concat([a, b])
        return [g.conv(c, cout=4, same=True), g.conv(b, depthwise=True, same=True)]

    func, xs, expected = build(make)
    layout = plan_layout(func, B512)
    (concat,) = ops_named(func, "dpu.concat")
    out = layout.of(concat.results[0])
    a, b = (layout.of(v) for v in concat.operands)
    assert (a.alias_of, a.channel_offset, b.alias_of, b.channel_offset) == \
        (out.name, 0, out.name, 5)
    assert a.pixel_bytes == b.pixel_bytes == out.pixel_bytes == 16
    emission = emit_function(func, layout, B512)
    assert [r.kind for r in emission.layers] == ["conv", "conv", "conv", "depthwise"]
    second = emission.layers[1]
    saves = [v for m, v in emission.items[second.first:second.stop] if m == "SAVE"]
    assert [s["ddr_addr"] for s in saves] == [out.address(0, r, 0, 5) for r in range(6)]
    assert {(s["channel"], s["jump_write"]) for s in saves} == {(11, 16)}
    # A reader of a view may read up to channel_align bytes past the concat: slack is left.
    last = b.address(0, 5, 6, 0) + 16
    assert last <= layout.regions["DATA"].size
    assert_runs_exactly(func, xs, expected)


def test_concat_inputs_that_cannot_be_views_are_copied():
    """A function argument, a value read by two concats and a function output are copied
    row by row (LOAD → bank → SAVE at the channel offset); the other inputs stay in place."""
    def make(g, x, y):
        a = g.conv(x, cout=6, out_fp=x.fp, same=True)
        b = g.conv(x, cout=7, out_fp=x.fp, same=True)
        c1 = g.concat([y, a, b])
        c2 = g.concat([b, b])
        return [c1, c2, a]

    func, xs, expected = build(make, inputs=((1, 4, 5, 3), (1, 4, 5, 9)))
    layout = plan_layout(func, B4096)
    emission = emit_function(func, layout, B4096)
    copies = [r for r in emission.layers if r.kind == "concat"]
    assert len(copies) == 2 and all(r.engine == "datamove" for r in copies)
    first = emission.items[copies[0].first:copies[0].stop]
    assert {m for m, _ in first} == {"LOAD", "SAVE"}
    # c1 copies y and a (an output) — 4 rows each; b is read by two concats: copied into both.
    assert sum(1 for m, _ in first if m == "SAVE") == 3 * 4
    assert_runs_exactly(func, xs, expected, B4096)


def test_a_concat_of_a_concat_nests_its_views():
    def make(g, x):
        a = g.conv(x, cout=3, out_fp=x.fp, same=True)
        b = g.conv(x, cout=10, out_fp=x.fp, same=True)
        inner = g.concat([a, b])
        c = g.conv(x, cout=2, out_fp=x.fp, same=True)
        return g.concat([c, inner])

    func, xs, expected = build(make)
    layout = plan_layout(func, B512)
    outer, inner = (layout.of(op.results[0]) for op in reversed(ops_named(func, "dpu.concat")))
    b = layout.of(ops_named(func, "dpu.concat")[0].operands[1])
    assert inner.alias_of == outer.name and inner.channel_offset == 2
    assert b.alias_of == outer.name and b.channel_offset == 5
    emission = emit_function(func, layout, B512)
    assert all(r.kind == "conv" for r in emission.layers)
    assert_runs_exactly(func, xs, expected)


def test_upsample_saves_each_row_scale_times():
    def make(g, x):
        y = g.conv(x, cout=6, same=True)
        out = g._new((1, 12, 21, 6), y.fp)
        return g._emit(out, "dpu.upsample_fix", [y], {"scale": (2, 3), "fix_point": y.fp})

    func, xs, expected = build(make)
    layout = plan_layout(func, B512)
    emission = emit_function(func, layout, B512)
    record = emission.layers[-1]
    assert (record.kind, record.engine) == ("upsample", "datamove")
    part = emission.items[record.first:record.stop]
    loads = [v for m, v in part if m == "LOAD"]
    saves = [v for m, v in part if m == "SAVE"]
    y = layout.of(ops_named(func, "dpu.upsample_fix")[0].results[0])
    assert len(loads) == 6 and len(saves) == 6 * 2 * 3
    assert {s["jump_write"] for s in saves} == {3 * y.pixel_bytes}
    assert sorted(s["ddr_addr"] for s in saves) == sorted(
        y.address(0, r, c) for r in range(12) for c in range(3))
    assert_runs_exactly(func, xs, expected)


def test_reshapes_alias_or_copy():
    """N×1×1×C ↔ N×C moves nothing; 1×H×W×C → 1×H×1×(W·C) and 1×(H·W)×1×C are copied
    run by run."""
    def make(g, x):
        p = g._emit(g._new((1, 1, 1, 5), x.fp), "dpu.pool_fix", [x], {
            "type": "max", "kernel": (6, 7), "stride": (1, 1), "pad": [0, 0, 0, 0],
            "fix_point": x.fp})
        flat = g.reshape(p, (1, 5))
        back = g.reshape(flat, (1, 1, 1, 5))
        wide = g.reshape(x, (1, 6, 1, 35))
        rows = g.reshape(x, (1, 42, 1, 5))
        return [g.conv(back, cout=3, same=True), wide, rows]

    func, xs, expected = build(make)
    layout = plan_layout(func, B512)
    emission = emit_function(func, layout, B512)
    assert [r.kind for r in emission.layers] == ["pool", "reshape", "reshape", "conv"]
    assert_runs_exactly(func, xs, expected)


# -- ISA0's dwconv engine ------------------------------------------------------------------------


def test_isa0_depthwise_runs_on_the_dwconv_engine():
    """DWINIT / DPTWISE on the MISC queue, with the dwconv engine's banks; the verifier accepts
    the stream, and the run is bit-exact."""
    def make(g, x):
        y = g.conv(x, cout=20, same=True)
        d = None
        while d is None:
            d = g.conv(y, depthwise=True)
        return d

    ran = 0
    for seed in range(8):
        func, xs, expected = build(make, seed=seed)
        (dw,) = ops_named(func, "dpu.depthwise_conv2d_fix")
        layout = plan_layout(func, ISA0)
        if dw.param["nonlinear"] not in ("none", "relu", "leaky_relu"):
            with pytest.raises(XirError, match="DWINIT does not have"):
                emit_function(func, layout, ISA0)
            continue
        emission = emit_function(func, layout, ISA0)
        verify(emission.program())
        record = emission.layers[-1]
        assert record.engine == "dwconv"
        part = emission.items[record.first:record.stop]
        assert {m for m, _ in part} == {"LOAD", "DWINIT", "DPTWISE", "SAVE"}
        assert {v["bank_id_weights"] for m, v in part if m == "DPTWISE"} == \
            {ISA0.bank_group("DWCONVW").base_id}
        assert_runs_exactly(func, xs, expected, ISA0)
        ran += 1
    assert ran >= 2


# -- errors and the driver -----------------------------------------------------------------------


def test_an_op_the_emitter_cannot_handle_is_a_one_line_error_naming_the_layer():
    text = """builtin.module {
  func.func @f(%x: tensor<1x2x2x2xi8>) -> tensor<1x4x4x2xi8> {
    %tw = "quant.constant"() {value = dense<-1> : tensor<2x2x2x2xi8>, fix_point = 2} : () -> tensor<2x2x2x2xi8>
    %up = "dpu.transposed_conv2d_fix"(%x, %tw) {kernel = [2, 2], stride = [2, 2], nonlinear = "relu", input_fp = 4, weight_fp = 2, output_fp = 4, shift_cut = 2} : (tensor<1x2x2x2xi8>, tensor<2x2x2x2xi8>) -> tensor<1x4x4x2xi8> loc("deconv1")
    "func.return"(%up) : (tensor<1x4x4x2xi8>) -> ()
  }
}"""
    func = next(op for op in parse(text).walk() if op.name == "func.func")
    with pytest.raises(XirError) as e:
        emit_function(func, plan_layout(func, B512), B512)
    message = str(e.value)
    assert "\n" not in message
    assert "'deconv1'" in message and "dpu.transposed_conv2d_fix is not emitted" in message


def test_simulate_function_checks_its_inputs_in_one_line():
    func, xs, _ = build(lambda g, x: g.conv(x, cout=4, same=True))
    for bad, what in ((xs[0].astype(np.int16), "int16"), (xs[0][:, :5], "1, 5, 7, 5"),
                      ([], None)):
        with pytest.raises(XirError) as e:
            simulate_function(func, B512, [bad] if what else bad)
        assert "\n" not in str(e.value)
        assert ("'x0'" in str(e.value)) if what else "expects 1 inputs" in str(e.value)


def test_function_image_is_what_simulate_function_runs():
    """The DDR image holds CONST at 0 and the input at its placement in DATA, zeros everywhere
    else (padded channels, or an augmented input's zero columns); running it by hand gives
    simulate_function's outputs, read back through the output's placement."""
    func, xs, expected = build(lambda g, x: g.conv(x, cout=4, same=True))
    program, ddr, registers = function_image(func, B512, {"x0": xs[0]})
    assert bytes(ddr[:len(program.const)]) == program.const
    assert registers[0] == 0 and registers[1] % 64 == 0 and registers[1] >= len(program.const)
    data = ddr[registers[1]:]
    assert np.array_equal(program.inputs[0].view(data), xs[0][0])
    rest = data.copy()
    program.inputs[0].view(rest)[...] = 0
    assert not rest.any()
    machine = Machine(B512, ddr.tobytes())
    machine.run(program.words.tobytes(), registers)
    got = program.outputs[0].view(machine.ddr.data[registers[1]:])
    assert np.array_equal(got, expected[0][0])
    assert np.array_equal(simulate_function(func, B512, xs)[0][0], expected[0])


def test_words_name_the_instruction_and_field_of_a_bad_value():
    items = [["LOAD", {"length": 5}], ["SAVE", {"length": 1 << 14}], ["END", {}]]
    emission = Emission("DPUCZDX8G_ISA1_B512", items)
    with pytest.raises(XirError, match=r"^error: instruction 1 \(word 5\): SAVE: length = 16384 does "
                                       r"not fit its 14 bits"):
        emission.words()
    with pytest.raises(XirError, match=r"^error: instruction 0 \(word 0\): LOAD: has no field 'lenght'"):
        Emission("DPUCZDX8G_ISA1_B512", [["LOAD", {"lenght": 5}]]).words()
