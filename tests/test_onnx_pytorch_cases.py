"""Every pytorch-converted and pytorch-operator case bundled with the onnx package: import,
round trip through text, run with the reference executor and compare with the stored outputs
and with onnxruntime; export and run the exported model in onnxruntime."""

from __future__ import annotations

import onnx
import pytest

from onnx_cases import load_case, ort_reference, ort_run, pytorch_cases, worst_error
from xir.frontends.onnx import export_onnx, import_onnx
from xir.interpreter import run_module
from xir.parser import parse
from xir.printer import print_ir
from xir.verifier import verify

RTOL = 1e-4
CASES = pytorch_cases()
# PyTorch's opset-6 PRelu with a per-channel slope: onnxruntime has no opset-6 kernel, and opset 7
# broadcasts the slope from the right, so it rejects the upgraded model too. xir reads the slope
# per channel, as opset 6 meant, and matches the stored outputs.
ORT_CANNOT_RUN = {f"pytorch-converted/test_PReLU_{d}_multiparam" for d in ("1d", "2d", "3d")}


def test_the_cases_are_installed():
    assert len(CASES) >= 100, CASES


@pytest.mark.parametrize("case", CASES, ids=[c.split("/")[1][5:] for c in CASES])
def test_pytorch_case(case):
    model, inputs, expected = load_case(case)
    module = import_onnx(model)
    verify(module)
    text = print_ir(module)
    module = parse(text, "case.xir")
    verify(module)
    assert print_ir(module) == text

    got = run_module(module, inputs)
    assert worst_error(got, expected) <= RTOL

    reference, how = ort_reference(model, inputs)
    if case in ORT_CANNOT_RUN:
        assert reference is None, how
    else:
        assert reference is not None, how
        assert worst_error(got, reference) <= RTOL

    exported = export_onnx(module)
    onnx.checker.check_model(exported, full_check=True)
    assert worst_error(ort_run(exported, inputs), expected) <= RTOL
