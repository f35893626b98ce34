"""Profiling a compiled model: the cycle model (:mod:`xir.backend.sim.cycles`) run over the
instruction stream of every DPU subgraph of an ``.xmodel``, summed into one model report.

DPU subgraphs run one after the other (batch 1, one DPU core), so the model's DPU latency is the
sum of its subgraphs' latencies; host work between them (CPU subgraphs, quantize/dequantize,
layout changes) is not modelled and is not counted. :meth:`ModelProfile.as_json` is what ``xir
profile --json`` writes: the required keys of issue 7 (``target``, ``clock_mhz``, ``cycles``,
``latency_ms``, ``fps``, ``mac_utilization``, ``layers``) for the whole model, and each
subgraph's own report under ``subgraphs``.
"""

from __future__ import annotations

import attrs

from xir.diagnostics import XirError


@attrs.define
class ModelProfile:
    """The cycle reports of a model's DPU subgraphs (``reports``: subgraph name → report of
    :func:`xir.backend.sim.cycles.estimate`), in the order they run, and the totals."""

    path: str
    target: object
    clock_mhz: float
    reports: dict

    @property
    def cycles(self) -> int:
        """Cycles of all DPU subgraphs, one after the other."""
        return sum(r.cycles for r in self.reports.values())

    @property
    def latency_ms(self) -> float:
        """Milliseconds at :attr:`clock_mhz`."""
        return self.cycles / (self.clock_mhz * 1e3)

    @property
    def fps(self) -> float:
        """Images per second, one after the other on one core."""
        return 1e3 / self.latency_ms if self.cycles else 0.0

    @property
    def macs(self) -> int:
        """Multiply-accumulates of every DPU layer."""
        return sum(r.macs or 0 for r in self.reports.values())

    @property
    def mac_utilization(self) -> float:
        """MACs over what the MAC array could do in :attr:`cycles`."""
        peak = self.target.peak_ops_per_cycle // 2
        return self.macs / (self.cycles * peak) if self.cycles else 0.0

    def as_json(self) -> dict:
        """The ``xir profile --json`` document."""
        layers = []
        subgraphs = []
        for name, report in self.reports.items():
            doc = report.as_json()
            subgraphs.append({"name": name, **doc})
            layers += [{"subgraph": name, **layer} for layer in doc["layers"]]
        return {"model": self.path, "target": self.target.name,
                "fingerprint": self.target.fingerprint_hex, "clock_mhz": self.clock_mhz,
                "cycles": self.cycles, "latency_ms": self.latency_ms, "fps": self.fps,
                "macs": self.macs, "mac_utilization": self.mac_utilization, "layers": layers,
                "subgraphs": subgraphs}


def profile_xmodel(xmodel, target=None, clock_mhz: float | None = None) -> ModelProfile:
    """The :class:`ModelProfile` of ``xmodel`` (an open :class:`~xir.backend.xmodel.XModel`);
    ``target`` (optional) must be the target it was compiled for; ``clock_mhz`` overrides the
    target's clock. XirError if no DPU subgraph has an instruction stream."""
    from xir.backend.dpu_program import DpuProgram
    from xir.backend.runner import check_target
    from xir.backend.sim.cycles import estimate
    from xir.dialects.dpuisa.encoding import decode_items

    compiled = check_target(xmodel, target)
    if compiled is None:
        raise XirError(f"'{xmodel.path}' names no target: nothing to profile against")
    if clock_mhz is not None:
        if not clock_mhz > 0:
            raise XirError(f"the clock must be positive, got {clock_mhz:g} MHz")
        compiled = compiled.evolve(clock_mhz=float(clock_mhz))
    reports = {}
    for record in xmodel.subgraphs:
        if record["device"] != "DPU" or "isa" not in record:
            continue
        program = DpuProgram.from_xmodel(xmodel, record)
        reports[record["name"]] = estimate(decode_items(program.words.tobytes()), compiled,
                                           layers=program.layers)
    if not reports:
        raise XirError(f"'{xmodel.path}' has no DPU subgraph with an instruction stream")
    return ModelProfile(xmodel.path, compiled, compiled.clock_mhz, reports)
