"""The HTML quantization report (xir/tools/quant_report_html.py, ``xir quantize --report R.html``):
a self-contained, well-formed page with every layer, its fix points, shifts and SQNR, names
escaped, and the SQNR plot inline as SVG; a missing matplotlib is one line."""

from __future__ import annotations

import math
import time
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pytest

from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.passes.quant_report import LayerReport, QuantReport
from xir.passes.quantize import quantize_module
from xir.tools.quant_report_html import format_sqnr, render_html, sqnr_class

pytest.importorskip("matplotlib")

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
VOID = {"meta", "br", "hr", "img", "input", "link", "col", "area", "base", "wbr", "source"}


class Page(HTMLParser):
    """Checks that every element is closed in order; collects tags, text and cell classes."""

    def __init__(self, text: str):
        super().__init__()
        self.stack: list[str] = []
        self.tags: list[str] = []
        self.attrs: list[tuple[str, dict]] = []
        self.text: list[str] = []
        self.feed(text)
        self.close()
        assert self.stack == [], self.stack

    def handle_starttag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))
        if tag not in VOID:
            self.stack.append(tag)

    def handle_startendtag(self, tag, attrs):
        self.tags.append(tag)
        self.attrs.append((tag, dict(attrs)))

    def handle_endtag(self, tag):
        assert self.stack and self.stack[-1] == tag, (tag, self.stack[-5:])
        self.stack.pop()

    def handle_data(self, data):
        self.text.append(data)


@pytest.fixture(scope="module")
def report() -> QuantReport:
    calib = np.load(DIGITS / "digits.npz")["x_train"][:200].astype(np.float32) / 16
    _, report = quantize_module(import_onnx(DIGITS / "digits_cnn.onnx"), {"input": calib})
    return report


def test_the_page_holds_every_layer_and_its_sqnr(report):
    html = render_html(report, "digits_cnn.onnx")
    page = Page(html)
    text = "".join(page.text)
    assert html.startswith("<!DOCTYPE html>")
    assert "digits_cnn.onnx" in text and "diffs" in text and "200" in text
    for layer in report.layers:
        assert layer.name in text
        assert format_sqnr(layer.sqnr_db) in text
        for name, value in layer.shifts.items():
            assert f"{name} {value}" in text
    assert f"output 0: {report.output_sqnr_db[0]:.2f} dB" in text
    assert page.tags.count("svg") == 1 and "<?xml" not in html
    # self-contained: no scripts, nothing fetched
    assert "script" not in page.tags and "link" not in page.tags
    assert not any(k in ("src", "href") and not v.startswith("#")
                   for _, a in page.attrs for k, v in a.items() if v)


def test_the_plot_names_every_layer_and_the_output_line(report):
    html = render_html(report, "m")
    svg = html[html.index("<svg"):html.index("</svg>")]
    for layer in report.layers:
        assert f">{layer.name}<" in svg
    assert f"output 0: {report.output_sqnr_db[0]:.2f} dB" in svg


def test_low_sqnr_is_colour_coded():
    assert [sqnr_class(v) for v in (None, math.inf, 5.0, 25.0, 40.0, -math.inf)] == [
        None, "exact", "low", "fair", "good", "low"]
    report = QuantReport("diffs", 100, layers=[
        LayerReport("noisy", "quant.conv2d", [4], 3, weight_fp=7, bias_fp=6,
                    shifts={"shift_cut": 8, "shift_bias": 5}, sqnr_db=12.5),
        LayerReport("exact", "quant.max_pool2d", [3], 3, sqnr_db=math.inf),
        LayerReport("unknown", "quant.reshape", [3], 3)], output_sqnr_db=[12.0])
    page = Page(render_html(report, "m"))
    cells = [a.get("class") for tag, a in page.attrs if tag == "td"]
    assert "num sqnr-low" in cells and "num sqnr-exact" in cells
    text = "".join(page.text)
    assert "12.50" in text and "exact" in text and "–" in text


def test_names_are_escaped_and_bias_errors_listed():
    evil = "<b>conv&1</b>"
    report = QuantReport("nonoverflow", 100, layers=[
        LayerReport(evil, "quant.conv2d", [4], 3, weight_fp=7, bias_fp=6, activation="relu",
                    shifts={"shift_cut": 8, "shift_bias": 5}, sqnr_db=31.0)],
        float_ops=["<softmax>"], requantized=["cat input 1: identity quant.conv2d"],
        output_sqnr_db=[float("inf")], bias_errors={evil: 0.0123})
    html = render_html(report, "<model>.onnx")
    assert "<b>" not in html.replace("<body>", "") and "<softmax>" not in html
    page = Page(html)
    text = "".join(page.text)
    assert evil in text and "<softmax>" in text and "<model>.onnx" in text
    assert "Bias correction" in text and "0.0123" in text
    assert "identity quant.conv2d" in text and "output 0: exact" in text


def test_an_empty_report_renders():
    Page(render_html(QuantReport("diffs", 0), "empty"))


def test_rendering_is_fast(report):
    render_html(report, "warm-up")  # the first call imports matplotlib
    start = time.perf_counter()
    render_html(report, "digits_cnn.onnx")
    assert time.perf_counter() - start < 1.0


def test_without_matplotlib_is_one_line(report, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "matplotlib.backends.backend_svg", None)
    with pytest.raises(XirError) as info:
        render_html(report, "m")
    message = str(info.value)
    assert "\n" not in message and "needs matplotlib" in message
    assert message.endswith("pip install 'xir[svg]'")
