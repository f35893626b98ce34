"""The runner: a partitioned module run whole, each subgraph on the executor of its device.

A partitioned module's ``@main`` holds host glue (``quant.quantize``, ``quant.dequantize``, layout
changes) and one ``func.call`` per subgraph; each subgraph is a private ``func.func`` whose
``xir.device`` attribute says where it runs::

    %q = "quant.quantize"(%input) {fix_point = 5} : ...
    %r = "func.call"(%q) <{callee = @subgraph_dpu_0}> : ...      xir.device = "DPU"
    %s = "func.call"(%r) <{callee = @subgraph_cpu_1}> : ...      xir.device = "CPU"

:class:`Runner` walks ``@main`` with the reference interpreter (:mod:`xir.interpreter`: input
checks, glue ops, value bookkeeping) and hands every ``func.call`` to the executor of its
callee's device:

- ``DPU``: an executor of :data:`DPU_EXECUTORS`: ``sim`` (the default: the subgraph's
  instruction stream from the ``.xmodel`` run on the DPU simulator, :class:`SimulatorExecutor`)
  or ``ref`` (the reference interpreter on the subgraph, i.e. the integer semantics of its ops);
- ``CPU``: an executor of :data:`CPU_EXECUTORS`: ``onnxruntime`` (the subgraph exported to ONNX,
  QDQ with DPU rounding when it holds quant ops, one cached session per subgraph) or ``numpy``
  (the reference interpreter). A subgraph onnxruntime cannot run falls back to ``numpy`` with
  one warning naming it;
- ``USER``, or no ``xir.device``: the reference interpreter.

An executor is made once per subgraph by a factory ``factory(func_op, runner)`` and then called
with the subgraph's argument arrays; it returns its result arrays, which the runner checks
against the call's result types.
"""

from __future__ import annotations

import os
import warnings
from typing import Callable

import numpy as np

from xir import attributes as A
from xir.diagnostics import XirError, first_line
from xir.interpreter import fits, run_function
from xir.ir import Operation
from xir.symbols import SymbolTable, entry_function, resolve_symbol, symbol_name

DEVICE_ATTR = "xir.device"
Executor = Callable[[list], list]
ExecutorFactory = Callable[[Operation, "Runner"], Executor]


# -- executors -------------------------------------------------------------------------------------


class ReferenceExecutor:
    """A subgraph run by the reference interpreter: the numpy semantics of its ops (the quant
    and dpu dialects' integer executor for their ops). Calls inside it go back to ``runner``."""

    def __init__(self, func_op: Operation, runner: "Runner | None" = None):
        self.func_op = func_op
        self.evaluators = {"func.call": runner._call} if runner is not None else None

    def __call__(self, arrays: list) -> list:
        return run_function(self.func_op, list(arrays), evaluators=self.evaluators)


class SimulatorExecutor:
    """A DPU subgraph run on the DPU simulator (:mod:`xir.backend.sim`): the instruction stream
    the runner's ``.xmodel`` holds for it (:class:`~xir.backend.dpu_program.DpuProgram`), run
    image by image in program order (``runner.seed``: a random queue order instead). A subgraph
    without a stream (code generation failed at compile time, or the module has no
    ``.xmodel``) runs on the reference interpreter, with one warning naming it and why.
    ``counters`` keeps the simulator's counters of the last call."""

    def __init__(self, func_op: Operation, runner: "Runner"):
        from xir.backend.dpu_program import DpuProgram

        self.name = symbol_name(func_op)
        self.seed = runner.seed
        self.counters = None
        self.program = self.fallback = None
        record = runner.record(self.name)
        if record is not None and "isa" in record:
            self.program = DpuProgram.from_xmodel(runner.xmodel, record)
            self.target = runner.target
            return
        if record is None:
            reason = "the module comes without an .xmodel"
        else:
            reason = record.get("isa_error", "its .xmodel record names no isa section")
        warnings.warn(f"DPU subgraph '{self.name}' runs on the reference executor: it has no "
                      f"instruction stream ({reason})", stacklevel=2)
        self.fallback = ReferenceExecutor(func_op, runner)

    def __call__(self, arrays: list) -> list:
        if self.fallback is not None:
            return self.fallback(arrays)
        try:
            outputs, self.counters = self.program.run(list(arrays), self.seed, self.target)
        except XirError as e:
            raise XirError(f"DPU subgraph '{self.name}': {e.diagnostic.message}") from None
        return outputs


class OnnxUnsupported(Exception):
    """A subgraph that onnxruntime cannot run (the exporter or onnxruntime refuses it)."""


class OnnxRuntimeExecutor:
    """A CPU subgraph run by onnxruntime on its ONNX export (:func:`subgraph_onnx`), one
    session per subgraph made when the executor is. Raises :class:`OnnxUnsupported` if the
    subgraph cannot be exported or loaded."""

    def __init__(self, func_op: Operation, runner: "Runner | None" = None):
        self.func_op = func_op
        model = subgraph_onnx(func_op)
        try:
            self.session = new_session(model.SerializeToString())
        except Exception as e:  # onnxruntime raises its own exception types
            raise OnnxUnsupported(f"onnxruntime cannot load its export: {first_line(e)}") from None
        self.input_names = [i.name for i in self.session.get_inputs()]

    def __call__(self, arrays: list) -> list:
        feeds = {name: np.asarray(array) for name, array in zip(self.input_names, arrays)}
        try:
            return self.session.run(None, feeds)
        except Exception as e:
            raise XirError(f"onnxruntime failed to run CPU subgraph '{symbol_name(self.func_op)}': "
                           f"{first_line(e)}") from None


def new_session(model_bytes: bytes):
    """An onnxruntime CPU session on one thread, errors-only logging (as xir's other uses of
    onnxruntime, :mod:`xir.dialects.graph.onnx_runner`)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    options.log_severity_level = 3
    return ort.InferenceSession(model_bytes, options, providers=["CPUExecutionProvider"])


DPU_EXECUTORS: dict[str, ExecutorFactory] = {"sim": SimulatorExecutor, "ref": ReferenceExecutor}
"""DPU executors by name: ``Runner(..., dpu=name)`` runs every DPU subgraph with
``DPU_EXECUTORS[name](func_op, runner)``."""

CPU_EXECUTORS: dict[str, ExecutorFactory] = {"onnxruntime": OnnxRuntimeExecutor,
                                             "numpy": ReferenceExecutor}
"""CPU executors by name (``Runner(..., cpu=name)``)."""


# -- a CPU subgraph as an ONNX model ----------------------------------------------------------------


def subgraph_onnx(func_op: Operation):
    """The ONNX model of subgraph function ``func_op``; raises :class:`OnnxUnsupported`.

    The function is cloned into a temporary module as ``@main`` and exported with
    :func:`~xir.frontends.onnx_qdq.export_qdq` (DPU rounding; int8 arguments stay int8 inputs)
    when quant ops are left, else with the graph exporter."""
    from xir.builtin import ModuleOp
    from xir.frontends.onnx_export import export_onnx
    from xir.frontends.onnx_qdq import export_qdq

    main = func_op.clone()
    main.properties["sym_name"] = A.StringAttr("main")
    main.properties.pop("sym_visibility", None)
    main.attributes.pop("xir.device", None)
    module = ModuleOp.build()
    module.body.append(main)
    quantized = any(op.name.startswith("quant.") for op in main.walk())
    try:
        return export_qdq(module, dpu_rounding=True) if quantized else export_onnx(module)
    except XirError as e:
        raise OnnxUnsupported(e.diagnostic.message) from None
    except Exception as e:  # an exporter that fails otherwise: still a reason to use numpy
        raise OnnxUnsupported(f"export failed: {type(e).__name__}: {first_line(e)}") from None


# -- the runner --------------------------------------------------------------------------------------


class Runner:
    """Runs a partitioned module: ``@entry`` by the reference interpreter, each ``func.call`` on
    the executor of its callee's ``xir.device`` (see the module docstring).

    ``cpu`` names a :data:`CPU_EXECUTORS` entry, ``dpu`` a :data:`DPU_EXECUTORS` one (default:
    ``sim`` for a module read from an ``.xmodel``, which holds the instruction streams, else
    ``ref``);
    ``xmodel`` is the :class:`~xir.backend.xmodel.XModel` the module was read from, if any (a
    DPU executor finds its subgraph's instruction stream there); ``target``, if given, must be
    the target the ``.xmodel`` was compiled for (:func:`check_target`); ``seed`` makes the
    simulator run its queues in a seeded random order. Executors are made on a subgraph's first
    call and kept: running many inputs pays for each session once."""

    def __init__(self, module, cpu: str = "onnxruntime", dpu: str | None = None,
                 entry: str = "main", xmodel=None, target=None, seed: int | None = None):
        dpu = dpu or ("sim" if xmodel is not None else "ref")
        for kind, name, table in (("CPU", cpu, CPU_EXECUTORS), ("DPU", dpu, DPU_EXECUTORS)):
            if name not in table:
                raise XirError(f"unknown {kind} executor '{name}' (expects one of "
                               f"{', '.join(table)})")
        self.module = module
        self.cpu, self.dpu = cpu, dpu
        self.xmodel = xmodel
        self.seed = seed
        self.target = check_target(xmodel, target) if xmodel is not None else None
        self.main = entry_function(module, entry)
        self.executors: dict[str, Executor] = {}  # subgraph name -> its executor
        self.devices: dict[str, str | None] = {}  # subgraph name -> its device
        self._boundary: dict | None = None
        self._calls: dict[str, int] = {}
        if xmodel is not None:
            check_metadata(module, xmodel)

    def run(self, inputs, boundary: dict | None = None) -> list[np.ndarray]:
        """The outputs of ``@entry`` on ``inputs`` (arrays keyed by the model's input names, or
        listed in order; a missing or ill-shaped input is an XirError in the interpreter's
        words). With ``boundary`` (a dict), every subgraph's arguments and results are added to
        it under :func:`boundary_name` keys, in the order they are computed."""
        self._boundary, self._calls = boundary, {}
        try:
            return run_function(self.main, inputs, evaluators={"func.call": self._call})
        finally:
            self._boundary = None

    def record(self, name: str) -> dict | None:
        """The ``.xmodel`` metadata record of subgraph ``name`` (None without one)."""
        if self.xmodel is None:
            return None
        return next((r for r in self.xmodel.subgraphs if r["name"] == name), None)

    def executor(self, name: str) -> Executor:
        """The executor of subgraph ``@name`` (made on first use)."""
        executor = self.executors.get(name)
        if executor is None:
            executor = self.executors[name] = self._make_executor(name)
        return executor

    def _make_executor(self, name: str) -> Executor:
        func_op = SymbolTable(self.module).lookup(name)
        if func_op is None or func_op.name != "func.func" or not func_op.regions[0].blocks:
            raise XirError(f"a call names @{name}, which is not a function of the module")
        device = func_op.get_attr(DEVICE_ATTR)
        device = device.value if isinstance(device, A.StringAttr) else None
        self.devices[name] = device
        if device == "DPU":
            return DPU_EXECUTORS[self.dpu](func_op, self)
        if device != "CPU":
            return ReferenceExecutor(func_op, self)
        try:
            return CPU_EXECUTORS[self.cpu](func_op, self)
        except (OnnxUnsupported, ImportError) as e:
            warnings.warn(f"CPU subgraph '{name}' runs with numpy: onnxruntime cannot run it "
                          f"({first_line(e)})", stacklevel=2)
            return ReferenceExecutor(func_op, self)

    def _call(self, op: Operation, operands: list) -> list:
        callee = op.get_attr("callee")
        if not isinstance(callee, A.SymbolRefAttr):
            raise op.error("has no callee")
        if callee.nested or resolve_symbol(self.module, callee) is None:
            raise op.error(f"calls {callee}, which the module does not define")
        name = callee.root
        outputs = [np.asarray(o) for o in self.executor(name)(operands)]
        if len(outputs) != len(op.results):
            raise XirError(f"subgraph '{name}' returned {len(outputs)} values, not "
                           f"{len(op.results)}")
        for i, (value, result) in enumerate(zip(outputs, op.results)):
            _check_result(name, i, result.type, value)
        if self._boundary is not None:
            count = self._calls[name] = self._calls.get(name, 0) + 1
            for kind, arrays in (("in", operands), ("out", outputs)):
                for k, array in enumerate(arrays):
                    self._boundary[boundary_name(name, kind, k, count)] = np.asarray(array)
        return outputs


def _check_result(name: str, index: int, expected, array: np.ndarray) -> None:
    if not fits(expected, array):
        raise XirError(f"subgraph '{name}' returned a {array.dtype} array of shape "
                       f"{tuple(array.shape)} as result {index}, expected {expected}")


def check_metadata(module, xmodel) -> None:
    """Each DPU and CPU subgraph record of ``xmodel``'s metadata must name a function of
    ``module`` whose ``xir.device`` is the record's device (XirError naming the file otherwise);
    the USER record stands for the model's inputs, which have no function."""
    table = SymbolTable(module)
    for record in xmodel.subgraphs:
        if record["device"] == "USER":
            continue
        func_op = table.lookup(record["name"])
        if func_op is None or func_op.name != "func.func":
            raise XirError(f"metadata of '{xmodel.path}' names subgraph '{record['name']}', "
                           "which its module does not define")
        device = func_op.get_attr(DEVICE_ATTR)
        device = device.value if isinstance(device, A.StringAttr) else None
        if device != record["device"]:
            raise XirError(f"metadata of '{xmodel.path}' puts subgraph '{record['name']}' on "
                           f"{record['device']}, its module on {device or 'no device'}")


def check_target(xmodel, target=None):
    """The :class:`~xir.backend.targets.Target` ``xmodel`` was compiled for (None if its
    metadata names none); with ``target`` (a Target or anything ``load_target`` takes), an
    XirError naming both unless it is the same DPU (same name or fingerprint)."""
    from xir.backend.targets import load_target

    record = xmodel.metadata.get("target")
    asked = load_target(target) if target is not None else None
    if record is None:
        if asked is not None:
            raise XirError(f"'{xmodel.path}' names no target, so it cannot be checked against "
                           f"{asked.name}")
        return None
    if asked is not None and record["name"] != asked.name and \
            record.get("fingerprint") != asked.fingerprint_hex:
        raise XirError(f"'{xmodel.path}' was compiled for {record['name']} "
                       f"({record.get('fingerprint')}), not for {asked.name} "
                       f"({asked.fingerprint_hex})")
    try:
        return load_target(record["name"])
    except XirError:
        return load_target(record["fingerprint"])


# -- the boundary dump -------------------------------------------------------------------------------


def boundary_name(subgraph: str, kind: str, index: int, call: int = 1) -> str:
    """The dump name of argument (``kind`` "in") or result ("out") ``index`` of the ``call``-th
    call of ``subgraph``: ``subgraph_dpu_0.in0``; a second call is ``subgraph_dpu_0.2.in0``."""
    return f"{subgraph}.{kind}{index}" if call == 1 else f"{subgraph}.{call}.{kind}{index}"


def boundary_files(directory: str, tensors: dict) -> list[tuple[str, bytes]]:
    """``(path, .npy bytes)`` of each of ``tensors`` as ``directory/<name>.npy``, for
    :func:`xir.files.write_files_atomically` (the directory is made here if needed)."""
    import io

    os.makedirs(directory, exist_ok=True)
    files = []
    for name, array in tensors.items():
        buffer = io.BytesIO()
        np.save(buffer, np.asarray(array), allow_pickle=False)
        files.append((os.path.join(directory, f"{name}.npy"), buffer.getvalue()))
    return files


def write_boundary(directory: str, tensors: dict) -> list[str]:
    """Write each of ``tensors`` as ``directory/<name>.npy``, all files or none; their paths."""
    from xir.files import write_files_atomically

    files = boundary_files(directory, tensors)
    write_files_atomically(files)
    return [path for path, _ in files]
