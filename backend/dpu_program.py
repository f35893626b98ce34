"""A DPU subgraph compiled to instructions: what an ``.xmodel`` stores for it and what the
simulator runs.

:meth:`DpuProgram.build` plans the subgraph's DDR layout (:func:`~xir.passes.codegen.plan_layout`)
and emits its instruction stream (:func:`~xir.passes.codegen.emit.emit_function`); the result
holds everything a run needs without the IR: the encoded words, the CONST region's bytes (packed
weights and biases), the DATA region's size, where each argument and result lives in DATA, and
the layer table (which instructions belong to which layer, and its multiply-accumulates) that the
cycle model reports by.

In an ``.xmodel`` (:mod:`xir.backend.xmodel`) a program is two sections, ``isa/<subgraph>`` (the
32-bit little-endian words) and ``const/<subgraph>`` (the CONST image), and the subgraph's
metadata record gains ``isa``, ``const`` and ``program`` (registers, DATA size, placements,
layers): :meth:`DpuProgram.record` / :meth:`DpuProgram.from_xmodel`.

Running (:meth:`DpuProgram.run`): per image of the batch, a DDR image is made (CONST at 0,
DATA at the next 64-byte boundary, each input written NHWC at its placement with zeros in the
padded channels), the stream runs on a :class:`~xir.backend.sim.machine.Machine`, and the
results are read back from their placements. The stream is decoded and scheduled once per
program, target and queue order (:meth:`DpuProgram.plan`), not once per image.
"""

from __future__ import annotations

import attrs
import numpy as np

from xir.diagnostics import XirError

DDR_ALIGN = 64
REGISTERS = {"CONST": 0, "DATA": 1}


@attrs.frozen
class Placement:
    """Where one argument or result of the subgraph lives in the DATA region: its NHWC
    ``shape`` (batch 1), the byte ``offset`` of element (0, 0, 0, 0) and the byte ``strides``
    of (h, w, c) — a tensor laid out inside a bigger one (a concat's input) has the bigger
    one's pixel stride. ``dims`` is the IR type's shape (rank 2 for a dense's output)."""

    offset: int
    shape: tuple
    strides: tuple
    dims: tuple

    def to_json(self) -> dict:
        """The record of the ``.xmodel`` metadata."""
        return {"offset": self.offset, "shape": list(self.shape), "strides": list(self.strides),
                "dims": list(self.dims)}

    @classmethod
    def from_json(cls, record: dict) -> "Placement":
        """The inverse of :meth:`to_json`."""
        return cls(int(record["offset"]), tuple(record["shape"]), tuple(record["strides"]),
                   tuple(record["dims"]))

    @property
    def extent(self) -> int:
        """One past the last byte it touches (relative to the DATA base)."""
        h, w, c = self.shape[1:]
        return self.offset + (h - 1) * self.strides[0] + (w - 1) * self.strides[1] + c

    def view(self, data: np.ndarray) -> np.ndarray:
        """The (H, W, C) int8 view of this tensor in the DATA bytes ``data``."""
        h, w, c = self.shape[1:]
        base = data[self.offset:].view(np.int8)
        return np.lib.stride_tricks.as_strided(base, (h, w, c), (*self.strides[:2], 1),
                                               writeable=True)


def _placement(layout, value) -> Placement:
    """The placement of IR value ``value`` in ``layout`` (a DATA tensor, NHWC)."""
    tensor = layout.of(value)
    _, h, w, c = tensor.shape
    return Placement(tensor.address(), (1, h, w, c), (tensor.row_bytes, tensor.pixel_bytes, 1),
                     tuple(max(int(d), 1) for d in value.type.shape))


@attrs.frozen
class DpuProgram:
    """One DPU subgraph as instructions (see the module docstring). ``words``: the encoded
    stream (uint32); ``const``: the CONST region's bytes; ``data_size``: the DATA region's
    bytes; ``inputs`` / ``outputs``: one :class:`Placement` per argument / result; ``layers``:
    dicts ``{"name", "kind", "engine", "first", "stop", "macs"}``; ``instructions``: how many
    instructions ``words`` holds."""

    target: str
    words: np.ndarray = attrs.field(eq=False, repr=lambda w: f"<{len(w)} words>")
    const: bytes = attrs.field(eq=False, repr=lambda b: f"<{len(b)} bytes>")
    data_size: int = 0
    inputs: tuple = ()
    outputs: tuple = ()
    layers: tuple = ()
    instructions: int = 0
    # (target name, seed) -> the stream decoded and scheduled (sim.machine.Plan), made by run
    _plans: dict = attrs.field(factory=dict, init=False, eq=False, repr=False)

    @classmethod
    def build(cls, func, target, buffers: int = 2) -> "DpuProgram":
        """Plan, tile and emit DPU subgraph ``func`` for ``target``; XirError at the first op
        code generation cannot handle."""
        from xir.passes.codegen import plan_layout
        from xir.passes.codegen.emit import emit_function

        layout = plan_layout(func, target, augment=True)
        emission = emit_function(func, layout, target, buffers)
        block = func.regions[0].blocks[0]
        returned = block.last_op.operands
        for value in (*block.args, *returned):
            if str(value.type.element_type) != "i8":
                raise XirError(f"DPU subgraph has a {value.type} argument or result: the DPU "
                               f"reads and writes int8 only")
        layers = tuple({"name": r.name, "kind": r.kind, "engine": r.engine, "first": r.first,
                        "stop": r.stop, "macs": int(r.macs)} for r in emission.layers)
        return cls(target.name, np.asarray(emission.words(), dtype="<u4"), layout.const_image,
                   layout.regions["DATA"].size,
                   tuple(_placement(layout, a) for a in block.args),
                   tuple(_placement(layout, v) for v in returned), layers, len(emission.items))

    # -- running ---------------------------------------------------------------------------------

    @property
    def data_base(self) -> int:
        """The DDR address of the DATA region (after CONST, 64-byte aligned)."""
        return -(-len(self.const) // DDR_ALIGN) * DDR_ALIGN

    def ddr_image(self, inputs: list) -> np.ndarray:
        """The DDR bytes before a run on one image: CONST, then DATA with ``inputs`` (one
        (H, W, C) int8 array per argument) at their placements, zeros elsewhere."""
        end = max([self.data_size, *(p.extent for p in (*self.inputs, *self.outputs))])
        ddr = np.zeros(self.data_base + end + DDR_ALIGN, np.uint8)
        ddr[:len(self.const)] = np.frombuffer(self.const, np.uint8)
        data = ddr[self.data_base:]
        for placement, array in zip(self.inputs, inputs):
            placement.view(data)[...] = array
        return ddr

    @property
    def registers(self) -> dict:
        """The DDR base registers: CONST at 0, DATA at :attr:`data_base`."""
        return {REGISTERS["CONST"]: 0, REGISTERS["DATA"]: self.data_base}

    def run(self, arrays: list, seed: int | None = None, machine_target=None) -> tuple:
        """``(outputs, counters)``: the subgraph's results on ``arrays`` (its int8 arguments,
        each of the IR type's shape with any batch size), image by image on the simulator;
        ``counters`` are the last image's. ``seed``: the queue order (None: program order).
        ``machine_target``: the Target to simulate (default: load ``self.target``)."""
        from xir.backend.sim.machine import Machine
        from xir.backend.targets import load_target

        target = machine_target or load_target(self.target)
        if len(arrays) != len(self.inputs):
            raise XirError(f"the DPU program takes {len(self.inputs)} inputs, got {len(arrays)}")
        images = []
        batch = None
        for k, (placement, array) in enumerate(zip(self.inputs, arrays)):
            array = np.asarray(array)
            if array.dtype != np.int8:
                raise XirError(f"DPU program input {k} is {array.dtype}, expected int8")
            n = array.shape[0] if array.ndim else 1
            per_image = int(np.prod(placement.shape[1:]))
            if array.size != n * per_image or (batch is not None and n != batch):
                raise XirError(f"DPU program input {k} has shape {tuple(array.shape)}, expected "
                               f"{placement.dims} (any batch size)")
            batch = n
            images.append(array.reshape(n, *placement.shape[1:]))
        batch = batch or 1
        outputs = [np.empty((batch, *p.shape[1:]), np.int8) for p in self.outputs]
        counters = None
        machine = plan = None
        for i in range(batch):
            ddr = self.ddr_image([x[i] for x in images])
            if machine is None:
                machine = Machine(target, ddr)
                plan = self.plan(machine, seed)
            else:
                machine.reset(ddr)
            counters = machine.run(plan, self.registers)
            data = machine.ddr.data[self.data_base:]
            for out, placement in zip(outputs, self.outputs):
                out[i] = placement.view(data)
        return [out.reshape(batch, *p.dims[1:]) for out, p in zip(outputs, self.outputs)], \
            counters

    def plan(self, machine, seed: int | None = None):
        """The stream decoded, checked and scheduled for ``machine``'s target and queue order
        ``seed`` (a :class:`~xir.backend.sim.machine.Plan`), made once and kept: every image
        of every :meth:`run` reuses it."""
        key = (machine.target.name, seed)
        plan = self._plans.get(key)
        if plan is None:
            plan = self._plans[key] = machine.plan(self.words.tobytes(), seed)
        return plan

    # -- in an .xmodel ---------------------------------------------------------------------------

    def sections(self, subgraph: str) -> dict:
        """The ``.xmodel`` sections of this program: ``isa/<subgraph>`` and
        ``const/<subgraph>``."""
        return {f"isa/{subgraph}": self.words.astype("<u4").tobytes(),
                f"const/{subgraph}": self.const}

    def record(self, subgraph: str) -> dict:
        """The keys this program adds to its subgraph's metadata record."""
        return {"isa": f"isa/{subgraph}", "const": f"const/{subgraph}",
                "program": {"target": self.target, "instructions": self.instructions,
                            "words": int(len(self.words)), "registers": REGISTERS,
                            "data_size": self.data_size,
                            "inputs": [p.to_json() for p in self.inputs],
                            "outputs": [p.to_json() for p in self.outputs],
                            "layers": list(self.layers)}}

    @classmethod
    def from_xmodel(cls, xmodel, record: dict) -> "DpuProgram":
        """The program of subgraph ``record`` (a metadata record with ``isa``) of ``xmodel``;
        XirError naming the file if its metadata is incomplete."""
        try:
            p = record["program"]
            words = np.frombuffer(xmodel.section(record["isa"]), dtype="<u4")
            const = bytes(xmodel.section(record["const"]))
            return cls(p["target"], words, const, int(p["data_size"]),
                       tuple(Placement.from_json(r) for r in p["inputs"]),
                       tuple(Placement.from_json(r) for r in p["outputs"]),
                       tuple(p["layers"]), int(p["instructions"]))
        except (KeyError, TypeError, ValueError) as e:
            raise XirError(f"'{xmodel.path}': the DPU program of subgraph "
                           f"'{record.get('name')}' is incomplete ({type(e).__name__}: {e})"
                           ) from None
