"""The onnx package's bundled pytorch test cases, and how to compare against their outputs.

Each case is a directory ``pytorch-converted/test_X`` or ``pytorch-operator/test_X`` holding
``model.onnx`` and ``test_data_set_0/{input,output}_*.pb``. Used by the parametrized tests and by
``bench/model_table.py``, which writes the table in ``docs/models.md``.
"""

from __future__ import annotations

import glob
import os

import numpy as np
import onnx
import onnxruntime as ort
from onnx import numpy_helper

from xir.diagnostics import first_line

DATA = os.path.join(os.path.dirname(onnx.__file__), "backend", "test", "data")
KINDS = ("pytorch-converted", "pytorch-operator")


def pytorch_cases() -> list[str]:
    """Every bundled pytorch case, as ``kind/test_name``."""
    return sorted(os.path.relpath(d, DATA) for kind in KINDS
                  for d in glob.glob(os.path.join(DATA, kind, "test_*")))


def load_case(case: str):
    """``(model, inputs, expected outputs)`` of one case (arrays in input/output order)."""
    root = os.path.join(DATA, case)
    model = onnx.load(os.path.join(root, "model.onnx"))

    def tensors(kind):
        files = sorted(glob.glob(os.path.join(root, "test_data_set_0", f"{kind}_*.pb")),
                       key=lambda f: int(f.rsplit("_", 1)[1].split(".")[0]))
        return [numpy_helper.to_array(onnx.load_tensor(f)) for f in files]

    return model, tensors("input"), tensors("output")


def relative_error(ours, reference) -> float:
    """‖ours − reference‖₂ / ‖reference‖₂ over the finite entries; infinity if the two disagree
    on which entries are NaN or infinite (or on the shape)."""
    ours, reference = np.asarray(ours, np.float64), np.asarray(reference, np.float64)
    if ours.shape != reference.shape:
        return float("inf")
    finite = np.isfinite(reference)
    if not np.array_equal(finite, np.isfinite(ours)) or \
            not np.array_equal(ours[~finite], reference[~finite], equal_nan=True):
        return float("inf")
    diff, ref = ours[finite] - reference[finite], reference[finite]
    unit = max(float(np.abs(ref).max(initial=0.0)), float(np.abs(diff).max(initial=0.0))) or 1.0
    scale = np.linalg.norm(ref / unit)  # in units of the largest entry: no overflow on huge data
    return float(np.linalg.norm(diff / unit) / scale) if scale else float(np.linalg.norm(diff))


def worst_error(ours: list, reference: list) -> float:
    """The largest :func:`relative_error` over paired outputs (infinity if the counts differ)."""
    if len(ours) != len(reference):
        return float("inf")
    return max((relative_error(o, r) for o, r in zip(ours, reference)), default=0.0)


def ort_run(model, inputs: list) -> list:
    """onnxruntime's outputs of ``model`` on one thread, inputs given in order."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(None, {i.name: x for i, x in zip(session.get_inputs(), inputs)})


def ort_reference(model, inputs: list):
    """``(outputs, how)``: onnxruntime on the model as stamped, else on the model upgraded to
    opset 7 (ORT's oldest supported opset); ``(None, reason)`` if it runs neither."""
    try:
        return ort_run(model, inputs), "as stamped"
    except Exception:
        pass
    try:
        upgraded = onnx.version_converter.convert_version(model, 7)
        return ort_run(upgraded, inputs), "upgraded to opset 7"
    except Exception as e:
        return None, first_line(e)
