"""Whole DPU subgraphs on the simulator, bit-exact against the dpu dialect's integer executor:
random small graphs (tests/random_dpu_graphs.py: conv, depthwise, pool, eltwise, concat,
upsample, reshape in chains and DAGs) emitted by emit_function and run by simulate_function on
DPUCZDX8G_ISA1_B512, _B1152 and _B4096 — 510 graphs in program order, 60 of them also in three
random queue orders; and 30 graphs of up to 8 ops on shrunk image and weight banks (overlapping
ops, many hazards) in five random orders each. The default run takes the first 80 graphs of each target (16 of them in
random orders); the rest, bigger graphs, is marked slow. Plus 30 graphs on
DPUCZDX8G_ISA0_B4096 (its dwconv and pool engines), 10 of them in the default run."""

from __future__ import annotations

import attrs
import numpy as np
import pytest

from xir.backend.sim.function import simulate_function
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.passes.codegen import plan_layout
from xir.passes.codegen.emit import emit_function

from random_dpu_graphs import make_case

TARGETS = ("DPUCZDX8G_ISA1_B512", "DPUCZDX8G_ISA1_B1152", "DPUCZDX8G_ISA1_B4096")
GRAPHS = 170  # per target: 510 in all
FAST = 80  # per target, in the default run (up to 5 op patterns; the slow ones up to 8)
ORDERED = 20  # per target, also in random queue orders (FAST // 5 of them in the default run)
_targets: dict = {}


def _target(name):
    if name not in _targets:
        _targets[name] = load_target(name)
    return _targets[name]


def _cases():
    for t, name in enumerate(TARGETS):
        for k in range(GRAPHS):
            marks = () if k < FAST else (pytest.mark.slow,)
            yield pytest.param(name, 10_000 * (t + 1) + k, k, marks=marks,
                               id=f"{name.rsplit('_', 1)[1]}-{k}")


def _shrunk(target, func, depths=(24, 96), params=(None,)):
    """``target`` with image banks of the first of ``depths`` lines (and weight and bias banks
    of the first of ``params``, None: as they are) where the whole function still emits (ops
    split into row strips and channel tiles, copies into several chunks), else ``target``."""
    for depth, param in ((d, p) for p in params for d in depths):
        small = target.evolve(bank_groups=[
            attrs.evolve(g, bank_depth=depth) if g.name in ("VB0", "VB1") else
            attrs.evolve(g, bank_depth=param) if param and g.type == "Param" else g
            for g in target.bank_groups])
        try:
            emit_function(func, plan_layout(func, small), small)
            return small
        except XirError:
            pass
    return target


def _check(case, target, seed, buffers=2):
    outputs, counters = simulate_function(case.func, target, case.inputs, seed=seed,
                                          buffers=buffers)
    assert len(outputs) == len(case.expected)
    for k, (got, want) in enumerate(zip(outputs, case.expected)):
        assert got.shape == want.shape and got.dtype == want.dtype
        assert np.array_equal(got, want), f"output {k} differs (seed {seed}):\n{case.text}"
    return counters


@pytest.mark.parametrize("target_name, graph, k", list(_cases()))
def test_random_graph_is_bit_exact(target_name, graph, k):
    """Program order; every fifth graph (the first ORDERED of them) also in three random queue
    orders, whose counters equal program order's (a race-free program). Every third graph runs
    on image banks shrunk to 24 or 96 lines (when it still emits: row strips with ping/pong),
    every seventh with one buffer instead of two."""
    target = _target(target_name)
    case = make_case(graph, max_ops=5 if k < FAST else 8)
    buffers = 1 if k % 7 == 3 else 2
    if k % 3 == 1:
        target = _shrunk(target, case.func)
    counters = _check(case, target, None, buffers)
    if k % 5 == 0 and k // 5 < ORDERED:
        for seed in (1, 2, 3):
            again = _check(case, target, seed, buffers)
            assert again.instructions == counters.instructions
            assert again.saved == counters.saved


@pytest.mark.parametrize("k", range(30))
def test_overlapping_ops_are_bit_exact_in_random_orders(k):
    """Graphs of up to 8 ops on shrunk image and weight banks (many strips and channel tiles:
    consecutive ops overlap across slot, weight-line and row hazards, docs/codegen.md), in
    program order and five random queue orders, all with the same counters."""
    target = _target(TARGETS[k % 3])
    case = make_case(70_000 + k, max_ops=8)
    target = _shrunk(target, case.func, params=(24, 60, None))
    counters = _check(case, target, None, 1 if k % 4 == 3 else 2)
    for seed in range(1, 6):
        again = _check(case, target, 100 * k + seed, 1 if k % 4 == 3 else 2)
        assert again.instructions == counters.instructions and again.saved == counters.saved


def test_the_generator_covers_every_op_kind():
    """The first graphs of the default run hold every op kind the generator knows, and concats
    both laid out in place and copied."""
    target = _target(TARGETS[0])
    seen, concat_layers, concats = set(), 0, 0
    for k in range(FAST):
        case = make_case(10_000 + k)
        seen |= {op.name for op in case.func.walk()}
        concats += sum(1 for op in case.func.walk() if op.name == "dpu.concat")
        emission = emit_function(case.func, plan_layout(case.func, target), target)
        concat_layers += sum(1 for r in emission.layers if r.kind == "concat")
    assert {"dpu.conv2d_fix", "dpu.depthwise_conv2d_fix", "dpu.pool_fix", "dpu.eltwise_fix",
            "dpu.concat", "dpu.upsample_fix", "dpu.reshape"} <= seen
    assert 0 < concat_layers < concats  # some concats copy, some move nothing


@pytest.mark.parametrize("k", [pytest.param(k, marks=() if k < 10 else (pytest.mark.slow,))
                               for k in range(30)])
def test_random_graph_on_isa0_is_bit_exact(k):
    """DPUCZDX8G_ISA0_B4096 (depthwise on the dwconv engine, pooling on the pool engine):
    graphs of what ISA0 expresses, in program order and one random queue order."""
    target = _target("DPUCZDX8G_ISA0_B4096")
    case = make_case(90_000 + k, isa0=True)
    for seed in (None, k):
        _check(case, target, seed)
