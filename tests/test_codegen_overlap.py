"""Consecutive ops overlapping in one stream (passes/codegen/overlap.py): every emitted stream
is race-free by a static check independent of the emitter (tests/race_check.py: happens-before
from queue order and tokens, against the bank words and DDR bytes each instruction touches),
the check catches a missing cross-op token, the next op's loads do start before the previous
op's last SAVE, the cycle model gains from it, and relocated plans stay in their banks.
Bit-exactness in random queue orders is tests/test_sim_random_graphs.py's."""

from __future__ import annotations

import attrs
import pytest

from xir.backend.sim.cycles import estimate
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.dialects.dpuisa import isa
from xir.passes.codegen import plan_layout, plan_op
from xir.passes.codegen.emit import emit_function
from xir.passes.codegen.tiling import relocated

from race_check import clocks, first_race, operand_reads
from random_dpu_graphs import make_case
from test_codegen_function import build

TARGETS = [load_target(n) for n in ("DPUCZDX8G_ISA1_B512", "DPUCZDX8G_ISA1_B1152",
                                    "DPUCZDX8G_ISA1_B4096", "DPUCZDX8G_ISA0_B4096")]
LOAD, SAVE = isa.QUEUES.index("LOAD"), isa.QUEUES.index("SAVE")


def shrunk(target, image: int | None, param: int | None = None):
    """``target`` with image banks of ``image`` lines and weight / bias banks of ``param``
    (None: as they are)."""
    if image is None:
        return target
    return target.evolve(bank_groups=[
        attrs.evolve(g, bank_depth=image) if g.name in ("VB0", "VB1") else
        attrs.evolve(g, bank_depth=param) if param and g.type == "Param" else g
        for g in target.bank_groups])


BANKS = ((None, None), (24, 24), (96, 40), (24, 200), (2048, 24))  # image, weight lines


def _streams(k: int):
    """The streams of random graph ``k`` on every target, bank shrink and buffer count that
    emits: (func, layout, emission, target)."""
    for t, target in enumerate(TARGETS):
        case = make_case(60_000 + k, max_ops=8, isa0=t == 3)
        for image, param in BANKS:
            small = shrunk(target, image, param)
            for buffers in (1, 2):
                try:
                    layout = plan_layout(case.func, small)
                    emission = emit_function(case.func, layout, small, buffers)
                except XirError:
                    continue
                yield case.func, layout, emission, small


@pytest.mark.parametrize("k", [pytest.param(k, marks=() if k < 8 else (pytest.mark.slow,))
                               for k in range(24)])
def test_random_streams_are_race_free(k):
    """Every two accesses to the same bank word or DDR byte, one a write, from different
    queues are ordered by queue order and tokens: the stream computes the same in every
    queue order. Shrunk banks make many strips, channel tiles and slot reuses."""
    count = 0
    for func, layout, emission, target in _streams(k):
        race = first_race(emission.items, target, operand_reads(func, layout, emission))
        assert race is None, (k, target.name, race, [emission.items[i] for i in race])
        count += 1
    assert count


def _two_convs(seed=0):
    """conv → conv on one 12 × 9 map, single channel tile, many strips on 24-line banks."""
    return build(lambda g, x: g.conv(g.conv(x, 8, same=True), 12, same=True),
                 inputs=((1, 12, 9, 5),), seed=seed)


def test_the_race_check_finds_a_missing_cross_op_token():
    """Without its SAVE → LOAD tokens (the second conv reading rows the first saves), the
    stream races; with them it does not."""
    func, _, _ = _two_convs()
    target = shrunk(TARGETS[2], 24)
    layout = plan_layout(func, target)
    emission = emit_function(func, layout, target)
    assert first_race(emission.items, target, operand_reads(func, layout, emission)) is None
    cut = [[m, dict(f)] for m, f in emission.items]
    for m, f in cut:  # conv tiles pass no SAVE → LOAD token of their own: these are cross-op
        if m == "LOAD":
            f["dpdon"] = f.get("dpdon", 0) & ~(1 << SAVE)
        if m == "SAVE":
            f["dpdby"] = f.get("dpdby", 0) & ~(1 << LOAD)
    assert first_race(cut, target, operand_reads(func, layout, emission)) is not None


def test_the_next_op_loads_before_the_previous_op_saves_its_last_row():
    """The second conv's first LOADs (weights, then rows the first conv saved early) are not
    ordered after the first conv's last SAVE; and the cycle model says the overlap is
    faster than chaining whole ops."""
    func, _, _ = _two_convs()
    target = shrunk(TARGETS[2], 24)
    layout = plan_layout(func, target)
    emission = emit_function(func, layout, target)
    first, second = emission.layers
    queue, pos, clock = clocks(emission.items)
    last_save = max(i for i in range(first.first, first.stop) if emission.items[i][0] == "SAVE")
    first_load = next(i for i in range(second.first, second.stop)
                      if emission.items[i][0] == "LOAD")
    assert clock[first_load][SAVE] <= pos[last_save]  # may run before it
    chained = emit_function(func, layout, target, overlap=False)
    cycles = [estimate(e.items, target, [attrs.asdict(r) for r in e.layers]).cycles
              for e in (emission, chained)]
    assert cycles[0] < cycles[1]


@pytest.mark.parametrize("name", ["DPUCZDX8G_ISA1_B512", "DPUCZDX8G_ISA1_B4096"])
def test_relocated_plans_mirror_weights_and_rotate_slots(name):
    """Weights at the top: the same lines counted down from the bank's depth; a slot shift:
    tile k in slot (k + shift) mod buffers. Sizes and everything else unchanged."""
    func, _, _ = build(lambda g, x: g.conv(x, 40, same=True), inputs=((1, 20, 9, 30),))
    conv = next(op for op in func.walk() if op.name == "dpu.conv2d_fix")
    whole = plan_op(conv, load_target(name))  # one channel tile: lines per OCP block
    per_block = whole.tiles[0].weights.lines * whole.output_parallel // whole.channel_tile
    target = shrunk(load_target(name), 96, 2 * per_block)  # two slots of one block
    plan = plan_op(conv, target)
    assert len({t.channel_tile for t in plan.tiles}) > 1 and plan.buffers == 2
    moved = relocated(plan, target, weights_top=True, slot_shift=1)
    depth = target.bank_group(plan.tiles[0].weights.group).bank_depth
    size, wbuf = plan.tiles[0].weights.lines, plan.weight_buffers  # a full weight slot
    for a, b in zip(plan.tiles, moved.tiles):
        assert (a.out_rows, a.out_channels, a.in_rows) == (b.out_rows, b.out_channels, b.in_rows)
        slot = a.weights.slot
        assert a.weights.address == slot * size and b.weights.lines == a.weights.lines
        assert b.weights.address == depth - (slot + 1) * size
        assert b.inputs[0].slot == (a.index + 1) % 2
        assert b.inputs[0].address == plan.tiles[(a.index + 1) % 2].inputs[0].address
        assert b.output.address == plan.tiles[(a.index + 1) % 2].output.address
        assert b.inputs[0].end <= 96 and b.output.end <= 96
    assert wbuf == 2
