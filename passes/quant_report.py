"""The report of :func:`xir.passes.quantize.quantize_module`: per layer, the fix points it
chose, the DPU shifts they imply, and the SQNR of the layer's int8 output against the float one."""

from __future__ import annotations

import json
import math

import attrs


# -- the report ----------------------------------------------------------------------------------


@attrs.define
class LayerReport:
    """One quantized layer: its fix points, shifts and accuracy against the float model."""

    name: str
    op: str
    input_fps: list
    output_fp: int
    weight_fp: int | None = None
    bias_fp: int | None = None
    activation: str | None = None
    shifts: dict = attrs.Factory(dict)  # shift_cut, shift_bias, shift_read, shift_write, ...
    sqnr_db: float | None = None

    def to_dict(self) -> dict:
        d = attrs.asdict(self)
        if d["sqnr_db"] is not None and not math.isfinite(d["sqnr_db"]):
            d["sqnr_db"] = None  # no error at all (JSON has no infinity)
        return d


@attrs.define
class QuantReport:
    """What :func:`quantize_module` did: per layer fix points, shifts and SQNR; the ops kept in
    float; the requantizations it inserted; the SQNR of each model output."""

    method: str
    samples: int
    layers: list = attrs.Factory(list)
    float_ops: list = attrs.Factory(list)
    requantized: list = attrs.Factory(list)
    output_sqnr_db: list = attrs.Factory(list)
    bias_errors: dict = attrs.Factory(dict)  # layer -> mean |channel error| bias correction removed
    finetune_left: dict = attrs.Factory(dict)  # layer -> share of squared error fast-finetune left

    def layer(self, name: str) -> LayerReport:
        """The report of layer ``name`` (KeyError if there is none)."""
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise KeyError(name)

    def to_dict(self) -> dict:
        return {"method": self.method, "samples": self.samples,
                "output_sqnr_db": [None if s is None or not math.isfinite(s) else s
                                   for s in self.output_sqnr_db],
                "layers": [layer.to_dict() for layer in self.layers],
                "float_ops": list(self.float_ops), "requantized": list(self.requantized),
                "bias_correction": dict(self.bias_errors),
                "fast_finetune": dict(self.finetune_left)}

    def to_json(self) -> str:
        """The report as JSON (an SQNR of null means the layer is exact)."""
        return json.dumps(self.to_dict(), indent=2) + "\n"


def sqnr_db(signal_power: float, noise_power: float) -> float:
    """10 · log10(Σx² / Σ(x − x̂)²), +inf without noise."""
    if noise_power == 0:
        return math.inf
    if signal_power == 0:
        return -math.inf
    return 10.0 * math.log10(signal_power / noise_power)
