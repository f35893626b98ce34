"""Compiling a float model for a DPU target: the whole flow, phase by phase.

:func:`compile_model` takes a float (graph-dialect) module, a target and calibration samples and
runs, in order:

1. **inspect**: every op checked against the target (:mod:`xir.passes.inspect`); the ``inspect``
   pass marks each op with ``xir.device``, which follows each layer through quantization;
2. **quantize**: fold-bn, CLE, calibration, lowering to the quant dialect, bias correction
   (:func:`xir.passes.quantize.quantize_module`, with the caller's options);
3. **fuse**: each quant op marked for the DPU becomes its NHWC dpu-dialect op
   (:mod:`xir.passes.fuse`);
4. **partition**: maximal acyclic DPU regions and CPU regions outlined into functions called
   from ``@main`` (:mod:`xir.passes.partition`);
5. **verify**, and the per-subgraph metadata (device, target, workload);
6. **codegen**: each DPU subgraph planned, tiled and emitted as an instruction stream
   (:class:`~xir.backend.dpu_program.DpuProgram`); a subgraph code generation cannot handle
   yet keeps no stream (one warning naming it and the reason; ``xir run`` then runs it on the
   dpu dialect's integer executor).

The result is a :class:`CompiledModel`; :meth:`CompiledModel.write` serializes it as an
``.xmodel`` (:mod:`xir.backend.xmodel`). Each phase runs under the ``phase`` callback (a
context-manager factory, as the tools' timers are), so ``xir compile --timing`` and
``bench/compile.py`` see the same phases; ``CompiledModel.seconds`` has them too, with the
quantizer's steps as ``quantize/<step>``.
"""

from __future__ import annotations

import contextlib
import time

import attrs
import numpy as np


@attrs.define
class CompiledModel:
    """A compiled model: the partitioned module, its target, what each phase found and took."""

    module: object
    target: object
    inspection: object  # xir.passes.inspection.InspectionReport of the float model
    quantization: object  # xir.passes.quantize.QuantReport
    partition: object  # xir.passes.partition.PartitionSummary
    subgraphs: list  # one metadata record per subgraph (see :func:`subgraph_records`)
    seconds: dict = attrs.Factory(dict)  # phase -> wall-clock seconds
    programs: dict = attrs.Factory(dict)  # DPU subgraph name -> DpuProgram

    def metadata(self) -> dict:
        """The ``.xmodel`` metadata: target and subgraph records."""
        from .xmodel import target_record

        return {"target": target_record(self.target), "subgraphs": self.subgraphs,
                "summary": self.partition.line()}

    def write(self, path: str) -> None:
        """Serialize as an ``.xmodel`` at ``path`` (atomically)."""
        from .xmodel import write_xmodel

        sections = {}
        for name, program in self.programs.items():
            sections.update(program.sections(name))
        write_xmodel(path, self.module, self.metadata(), sections)


def compile_model(module, target, calibration: dict, phase=None, **quantize_options
                  ) -> CompiledModel:
    """Compile float ``module`` (not changed) for ``target`` (a Target or anything
    ``load_target`` takes) on ``calibration`` (arrays by input name); ``quantize_options`` go to
    :func:`~xir.passes.quantize.quantize_module`. ``phase(name)`` returns a context manager
    around each phase (default: timing only)."""
    from xir.backend.targets import load_target
    from xir.passes.fuse import Fuse
    from xir.passes.inspect import Inspect, inspect_module
    from xir.passes.partition import partition_module
    from xir.passes.quantize import quantize_module
    from xir.verifier import verify

    target = load_target(target)
    seconds: dict = {}
    timed = _timed(phase, seconds)
    with timed("inspect"):
        marked = module.clone()
        inspection = inspect_module(marked, target)
        Inspect(target=target.name).run(marked)
    with timed("quantize"):
        quantized, quantization = quantize_module(
            marked, calibration, phase=lambda step: timed(f"quantize/{step}", announce=False),
            **quantize_options)
    with timed("fuse"):
        Fuse().run(quantized)
    with timed("partition"):
        partition = partition_module(quantized)
    with timed("verify"):
        verify(quantized)
        records = subgraph_records(quantized, partition, target)
    with timed("codegen"):
        programs = generate_programs(quantized, records, target)
    return CompiledModel(quantized, target, inspection, quantization, partition, records, seconds,
                         programs)


def generate_programs(module, records: list, target) -> dict:
    """The :class:`~xir.backend.dpu_program.DpuProgram` of each DPU subgraph of ``module``
    whose code generation succeeds, by name; its ``records`` entry gains the program's keys
    (or ``isa_error``, the reason, with a warning, when code generation fails)."""
    import warnings

    from xir.backend.dpu_program import DpuProgram
    from xir.diagnostics import XirError
    from xir.symbols import SymbolTable

    functions = SymbolTable(module)
    programs = {}
    for record in records:
        if record["device"] != "DPU":
            continue
        name = record["name"]
        try:
            program = DpuProgram.build(functions.lookup(name), target)
        except XirError as e:
            record["isa_error"] = e.diagnostic.message
            warnings.warn(f"DPU subgraph '{name}' has no instruction stream: "
                          f"{e.diagnostic.message}", stacklevel=2)
            continue
        programs[name] = program
        record.update(program.record(name))
    return programs


def _timed(phase, seconds: dict):
    """``timed(name)``: a context manager recording the seconds of ``name`` in ``seconds``,
    under ``phase(name)`` unless ``announce`` is false (the steps inside a phase)."""
    def timed(name: str, announce: bool = True):
        @contextlib.contextmanager
        def measure():
            start = time.perf_counter()
            outer = phase(name) if phase is not None and announce else contextlib.nullcontext()
            with outer:
                yield
            seconds[name] = time.perf_counter() - start
        return measure()
    return timed


# -- subgraph metadata ---------------------------------------------------------------------------


def subgraph_records(module, partition, target) -> list[dict]:
    """One record per subgraph of ``partition`` (a PartitionSummary of ``module``): ``{"name",
    "device", "workload_ops", "ops"}`` (and the target for a DPU subgraph), USER first for the
    model's inputs, then the outlined functions in the order ``@main`` calls them."""
    from xir.backend.xmodel import target_record
    from xir.symbols import SymbolTable

    records = [{"name": "input", "device": "USER", "workload_ops": 0, "ops": 0}
               ] if partition.user else []
    functions = SymbolTable(module)
    for subgraph in partition.subgraphs:
        func = functions.lookup(subgraph.name)
        record = {"name": subgraph.name, "device": subgraph.device,
                  "workload_ops": sum(workload_ops(op) for op in func.walk() if op is not func),
                  "ops": subgraph.ops}
        if subgraph.device == "DPU":
            record["target"] = target_record(target)
        records.append(record)
    return records


def workload_ops(op) -> int:
    """Arithmetic operations of one op, as DPU tools count them: 2 per multiply-accumulate of a
    convolution or dense (its weight is its second operand: per output element, the product of
    the weight's dimensions but the output channels', a depthwise one's kernel area; a
    transposed convolution: per input element, all of them), one per output element and kernel tap of a pooling, one per output
    element and input of an eltwise op; data movement counts 0. Batch 1: a dynamic dimension
    counts as 1."""
    name = op.name.split(".", 1)[1] if "." in op.name else op.name
    if not op.results or not hasattr(op.results[0].type, "shape"):
        return 0
    out = _elements(op.results[0])
    if len(op.operands) >= 2 and _is_weight(op.operands[1]):
        w = op.operands[1].type.shape
        if "transpose" in name:
            return 2 * _elements(op.operands[0]) * int(np.prod(w)) // w[-1]
        if name.startswith("depthwise"):  # weight (1, kh, kw, C): one channel per output
            return 2 * out * int(np.prod(w[1:3]))
        return 2 * out * int(np.prod(w[1:]))
    if "pool" in name:
        kernel = op.attributes.get("kernel") or op.attributes.get("kernel_shape")
        taps = int(np.prod([k.value for k in kernel])) if kernel is not None else \
            _elements(op.operands[0]) // max(out, 1)
        return out * taps
    if name.startswith(("eltwise", "add", "mul")):
        return out * len(op.operands)
    return 0


def _elements(value) -> int:
    """Elements of ``value`` at batch 1 (a dynamic dimension counts as 1)."""
    return int(np.prod([max(d, 1) for d in value.type.shape]))


def _is_weight(value) -> bool:
    from xir.ir import OpResult

    return isinstance(value, OpResult) and value.owner.name.endswith(".constant") \
        and len(value.type.shape) >= 2
