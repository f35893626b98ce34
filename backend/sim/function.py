"""Simulating a whole DPU subgraph: what ``xir run --dpu sim`` runs for each DPU function.

:func:`simulate_function` compiles a ``func.func`` of ``dpu.*`` ops for a target (DDR layout by
:func:`~xir.passes.codegen.plan_layout`, one instruction stream by
:func:`~xir.passes.codegen.emit.emit_function`, both held by
:class:`~xir.backend.dpu_program.DpuProgram`), writes the inputs into a DDR image (CONST at
0, DATA at the next 64-byte boundary, each input NHWC int8 with zeros in its padded
channels), runs the :class:`~.machine.Machine` and reads the results back (their real
channels). :func:`function_image` stops before the run and hands out the program, the DDR
bytes and the base registers, for a caller that runs the machine itself.

Inputs are checked against the function's argument types first: a wrong count, shape or dtype
is a one-line XirError naming the argument.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np

from xir.backend.dpu_program import DpuProgram
from xir.interpreter import _bind_inputs

from .machine import Counters


def compile_function(func, target, buffers: int = 2) -> DpuProgram:
    """DPU subgraph ``func`` planned and emitted for ``target`` (XirError at the first op code
    generation cannot handle, naming the layer)."""
    return DpuProgram.build(func, target, buffers)


def function_image(func, target, inputs: Sequence | Mapping, buffers: int = 2,
                   program: DpuProgram | None = None) -> tuple:
    """``(program, ddr, registers)`` for one run of ``func`` on ``inputs`` (arrays in argument
    order, or by argument name; batch 1): the compiled :class:`DpuProgram` (``program`` if
    given), the DDR image (uint8 array) and the base registers ``{0: CONST base, 1: DATA
    base}`` to pass to :meth:`Machine.run <.machine.Machine.run>` with ``program.words``."""
    arrays = _bind_inputs(func, inputs)
    program = program or compile_function(func, target, buffers)
    images = [np.asarray(a).reshape(p.shape[1:]) for a, p in zip(arrays, program.inputs)]
    return program, program.ddr_image(images), program.registers


def simulate_function(func, target, inputs: Sequence | Mapping, seed: int | None = None,
                      buffers: int = 2) -> tuple[list, Counters]:
    """``(outputs, counters)``: DPU subgraph ``func`` run on the simulator for ``target`` on
    ``inputs`` (int8 arrays of the argument types, in order or by name). ``outputs`` are the
    returned values (int8, the result types' shapes); ``counters`` the machine's
    :class:`~.machine.Counters`. ``seed``: None runs the queues in program order, an integer
    in a random (seeded) order. XirError (one line) for inputs that do not fit the
    arguments, an op code generation cannot handle, or a fault of the run."""
    arrays = _bind_inputs(func, inputs)
    return compile_function(func, target, buffers).run(arrays, seed, target)


__all__ = ["compile_function", "function_image", "simulate_function"]
