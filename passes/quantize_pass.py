"""quantize (pass): post-training INT8 quantization as a step of a pipeline, graph dialect → quant.

``xir-opt model.xir -p 'fold-bn,quantize{calib=calib.npz}'`` gives the module that ``xir quantize
model.xir --calib calib.npz`` writes: the pass reads the calibration archive named by ``calib``,
hands the module to :func:`.quantize.quantize_module`, and puts the quantized module's body ops,
attributes and resources in place of the module's own (a pass changes the module it is given).
The options other than ``calib`` are ``quantize_module``'s keyword arguments under their pipeline
names, and their defaults are read from its signature, so the pass and the function cannot
disagree. The per-layer report is not kept; ``xir quantize --report`` writes it.
"""

from __future__ import annotations

import inspect

import attrs

from xir.diagnostics import XirError
from xir.ir import Operation
from xir.pass_manager import Pass, option, register_pass

from .quantize import METHODS, quantize_module

_DEFAULTS = {name: p.default for name, p in inspect.signature(quantize_module).parameters.items()
             if p.default is not inspect.Parameter.empty}


def _calib_given(instance, attribute, value) -> None:
    if not value:
        raise ValueError("option 'calib' is required: the calibration .npz archive, as in "
                         "quantize{calib=calib.npz}")


def _known_method(instance, attribute, value) -> None:
    if value not in METHODS:
        raise ValueError(f"unknown calibration method '{value}' (expects one of "
                         f"{', '.join(METHODS)})")


def _positive(instance, attribute, value) -> None:
    if value < 1:
        raise ValueError(f"option 'batch-size' must be at least 1, not {value}")


@register_pass
@attrs.frozen
class Quantize(Pass):
    """Quantize the float model to INT8 with power-of-two scales (graph dialect → quant)."""

    name = "quantize"
    calib: str = option("", "calibration samples (.npz): one array per model input, keyed by its "
                            "name, the first axis indexing samples (required)", _calib_given)
    method: str = option(_DEFAULTS["method"], "how activation fix points are chosen: "
                         + ", ".join(METHODS), _known_method)
    cle: bool = option(_DEFAULTS["cle"], "equalize weight ranges across layers first")
    bias_correction: bool = option(_DEFAULTS["bias_correction"],
                                   "subtract each channel's mean quantization error from biases")
    fast_finetune: bool = option(_DEFAULTS["fast_finetune"],
                                 "tune each layer's int8 weights and bias against float")
    batch_size: int = option(_DEFAULTS["batch_size"], "calibration batch size (a model with a "
                             "fixed batch size uses that instead)", _positive)

    def run(self, module: Operation) -> None:
        """Quantize ``module`` in place on the samples of ``calib``."""
        from xir.files import read_npz

        data = read_npz(self.calib, "calibration data")
        quantized, _ = quantize_module(module, data, method=self.method, cle=self.cle,
                                       batch_size=self.batch_size,
                                       bias_correction=self.bias_correction,
                                       fast_finetune=self.fast_finetune)
        replace_contents(module, quantized)


def replace_contents(module: Operation, new: Operation) -> None:
    """Make ``module`` hold what ``new`` holds (``new``'s ops move; ``new`` is left empty):
    its body ops, attributes, properties and resources. Both are ``builtin.module`` ops."""
    if len(module.regions) != 1 or len(new.regions) != 1:
        raise XirError(f"cannot replace the contents of '{module.name}' by those of '{new.name}'")
    body, source = module.regions[0].blocks[0], new.regions[0].blocks[0]
    for op in list(body.ops_reversed()):  # users before what they use
        op.erase()
    for op in list(source.ops):
        body.append(op.detach())
    module.attributes = dict(new.attributes)
    module.properties = dict(new.properties)
    module.resources = dict(getattr(new, "resources", None) or {})
