"""``xir inspect`` end to end (a small ONNX model with a CPU fallback), its three report forms
(terminal table, JSON checked against docs/inspect.schema.json, SVG), every bad input as one
line with exit 1 and no output file, and the renderers on hand-built reports."""

from __future__ import annotations

import io
import json
import xml.etree.ElementTree as ET
from pathlib import Path

import onnx
import pytest
from rich.console import Console

from test_cli_models import xir
from test_onnx_import import LIGHT_MODELS, Graph, light_model
from xir.passes.inspection import CPU, DPU, USER, InspectionReport, NodeReport
from xir.tools.inspect_cmd import print_report, report_json
from xir.tools.inspect_svg import COLORS, render_svg

jsonschema = pytest.importorskip("jsonschema")

SCHEMA = json.loads((Path(__file__).resolve().parent.parent / "docs" / "inspect.schema.json")
                    .read_text())
SVG_NS = "{http://www.w3.org/2000/svg}"


def fallback_model():
    """conv1 -> bn1 -> relu1 -> pool1 -> sub1 (CPU on ISA1) -> conv2 -> relu2 -> softmax (CPU)."""
    g = Graph(seed=5)
    y = g.node("Conv", ["x", g.weight((4, 3, 3, 3)), g.weight((4,), 0.1)], pads=[1, 1, 1, 1],
               name="conv1")
    y = g.node("BatchNormalization", [y, g.weight((4,), positive=True), g.weight((4,), 0.1),
                                      g.weight((4,), 0.1), g.weight((4,), positive=True)],
               name="bn1")
    y = g.node("Relu", [y], name="relu1")
    y = g.node("MaxPool", [y], kernel_shape=[2, 2], strides=[2, 2], name="pool1")
    y = g.node("Sub", [y, g.weight((1, 4, 1, 1), 0.1)], name="sub1")
    y = g.node("Conv", [y, g.weight((6, 4, 1, 1)), g.weight((6,), 0.1)], name="conv2")
    y = g.node("Relu", [y], name="relu2")
    y = g.node("Softmax", [y], axis=1, name="softmax")
    return g.model({"x": [1, 3, 8, 8]}, [y])


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    onnx.save(fallback_model(), path)
    return path


def validate(data: dict) -> None:
    jsonschema.Draft202012Validator(SCHEMA).validate(data)


# -- the command ----------------------------------------------------------------------------------


def test_cpu_fallback_is_a_finding_and_the_table_shows_only_cpu_nodes(model):
    code, out, err = xir("inspect", model, "--target", "B4096")
    assert (code, err) == (0, "")
    assert "\x1b[" not in out  # no color codes when stdout is not a terminal
    assert "sub1" in out and "softmax" in out
    assert "conv1" not in out and "bn1" not in out
    assert "DPU nodes" in out and "hidden; -v shows every node." in out
    assert "subgraphs  DPU 2, CPU 2" in out and "DPU MACs" in out


def test_verbose_shows_every_node(model):
    code, out, err = xir("inspect", model, "--target", "B4096", "-v")
    assert (code, err) == (0, "")
    for node in fallback_model().graph.node:
        assert node.name in out
    assert "hidden" not in out and "notes" in out


def test_json_validates_against_the_schema_and_names_the_onnx_nodes(model, tmp_path):
    out_json = tmp_path / "report.json"
    code, out, err = xir("inspect", model, "--target", "B4096", "--json", out_json)
    assert (code, err) == (0, "") and "sub1" in out  # the table still goes to stdout
    data = json.loads(out_json.read_text())
    validate(data)
    assert data["target"] == "DPUCZDX8G_ISA1_B4096"
    nodes = {n["name"]: n for n in data["nodes"]}
    assert {n.name for n in fallback_model().graph.node} <= set(nodes)
    assert nodes["x"]["device"] == USER
    assert nodes["sub1"]["device"] == nodes["softmax"]["device"] == CPU
    assert nodes["sub1"]["reasons"] and nodes["softmax"]["reasons"]
    assert nodes["conv1"]["device"] == nodes["conv2"]["device"] == DPU
    assert nodes["bn1"]["fused_into"] == nodes["relu1"]["fused_into"] == "conv1"
    assert data["summary"]["ops"][CPU] == 2 and data["summary"]["subgraphs"] == {DPU: 2, CPU: 2}
    assert 0.99 < data["summary"]["dpu_mac_fraction"] <= 1


def test_json_to_stdout_is_the_only_output(model):
    code, out, err = xir("inspect", model, "--target", "b4096", "--json", "-")
    assert (code, err) == (0, "")
    validate(json.loads(out))


def label_colors(svg_text: str) -> dict[str, str]:
    """Each ``<text>`` of an SVG by its text: its fill color (SVG's default is black)."""
    root = ET.fromstring(svg_text)
    assert root.tag == f"{SVG_NS}svg"
    colors = {}
    for t in root.iter(f"{SVG_NS}text"):
        style = dict(map(str.strip, part.split(":", 1))
                     for part in t.get("style", "").split(";") if ":" in part)
        colors[t.text] = style.get("fill", "#000000").lower()
    return colors


def test_svg_is_well_formed_with_names_and_the_three_colors(model, tmp_path):
    svg = tmp_path / "graph.svg"
    code, _, err = xir("inspect", model, "--target", "B4096", "--svg", svg)
    assert (code, err) == (0, "")
    colors = label_colors(svg.read_text())
    by_name = {label.split(" (")[0]: color for label, color in colors.items()}
    for node in fallback_model().graph.node:
        assert node.name in by_name
    assert by_name["x"] == COLORS[USER] == "#000000"
    assert by_name["conv1"] == by_name["bn1"] == COLORS[DPU]
    assert by_name["sub1"] == by_name["softmax"] == COLORS[CPU]


def test_a_fingerprint_and_an_arch_json_name_the_target(model, tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text('{"fingerprint": "0x101000016010407"}')
    for spec in (arch, "0x101000016010407"):
        code, out, err = xir("inspect", model, "--target", spec, "--json", "-")
        assert (code, err) == (0, "")
        assert json.loads(out)["target"] == "DPUCZDX8G_ISA1_B4096_0101000016010407"


# -- bad input: one line, exit 1, no output file --------------------------------------------------


BAD_TARGETS = [
    ("B4069", "unknown target 'B4069' (did you mean 'B4096'?)"),
    ("0x901000016010407", "fingerprint 0x901000016010407 is of an unknown DPU family"),
]


def check_error(tmp_path, argv, expected_start):
    out_json, out_svg = tmp_path / "r.json", tmp_path / "r.svg"
    code, out, err = xir("inspect", *argv, "--json", out_json, "--svg", out_svg)
    assert (code, out) == (1, "")
    assert err.count("\n") == 1 and err.startswith(f"xir inspect: error: {expected_start}"), err
    assert not out_json.exists() and not out_svg.exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file


@pytest.mark.parametrize("spec, message", BAD_TARGETS)
def test_bad_target(model, tmp_path, spec, message):
    check_error(tmp_path, [model, "--target", spec], message)


def test_malformed_arch_json(model, tmp_path):
    arch = tmp_path / "arch.json"
    arch.write_text('{"target": ')
    check_error(tmp_path, [model, "--target", arch], f"cannot read arch.json '{arch}': not JSON")


def test_non_onnx_files(tmp_path):
    garbage = tmp_path / "garbage.onnx"
    garbage.write_text("hello")
    check_error(tmp_path, [garbage, "--target", "B4096"],
                f"cannot read ONNX model '{garbage}': not a valid ONNX file")
    picture = tmp_path / "photo.jpg"
    picture.write_bytes(b"\xff\xd8\xff")
    check_error(tmp_path, [picture, "--target", "B4096"], f"'{picture}' is not an ONNX model")


def test_missing_file(tmp_path):
    check_error(tmp_path, [tmp_path / "missing.onnx", "--target", "B4096"],
                f"cannot read ONNX model '{tmp_path / 'missing.onnx'}': no such file")
    check_error(tmp_path, [tmp_path / "missing.pt", "--target", "B4096"],
                f"cannot read model '{tmp_path / 'missing.pt'}': no such file")


def test_missing_target_option(model, tmp_path):
    check_error(tmp_path, [model], "the following arguments are required: --target")


def test_svg_without_its_libraries_is_one_line(model, tmp_path, monkeypatch):
    import sys

    monkeypatch.setitem(sys.modules, "networkx", None)
    check_error(tmp_path, [model, "--target", "B4096"], "--svg needs networkx and matplotlib")
    _, _, err = xir("inspect", model, "--target", "B4096", "--svg", tmp_path / "g.svg")
    assert "pip install 'xir[svg]'" in err


def test_unwritable_output_leaves_nothing(model, tmp_path):
    out_json = tmp_path / "r.json"
    code, out, err = xir("inspect", model, "--target", "B4096", "--json", out_json,
                         "--svg", tmp_path / "no" / "dir" / "g.svg")
    assert (code, out) == (1, "") and err.startswith("xir inspect: error: ")
    assert not out_json.exists()


# -- the renderers on hand-built reports ---------------------------------------------------------


def hand_report() -> InspectionReport:
    return InspectionReport("DPUCZDX8G_ISA1_B4096", [
        NodeReport("data", "input", USER),
        NodeReport("conv1", "Conv", DPU, macs=1000, inputs=["data"]),
        NodeReport("bn1", "BatchNormalization", DPU, fused_into="conv1", inputs=["conv1"]),
        NodeReport("relu1", "Relu", DPU, fused_into="conv1", inputs=["bn1"]),
        NodeReport("big", "Conv", CPU, ["'kernel'(17 x 17) is not in DPU supported range([1, 16])",
                                        "'stride'(9) is not in DPU supported range([1, 8])"],
                   macs=250, inputs=["relu1"]),
        NodeReport("leaky", "LeakyRelu", DPU, notes=["alpha 0.1 is run as 0.1015625"],
                   inputs=["big"]),
    ])


def rendered(report, verbose=False) -> str:
    out = io.StringIO()
    print_report(report, Console(file=out, width=100, color_system=None), verbose=verbose)
    return out.getvalue()


def test_table_text_default():
    assert rendered(hand_report()) == """\
CPU nodes
┏━━━━━━┳━━━━━━┳━━━━━━━━┳━━━━━━━━━━━━┳━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┓
┃ name ┃ op   ┃ device ┃ fused into ┃ reasons                                                  ┃
┡━━━━━━╇━━━━━━╇━━━━━━━━╇━━━━━━━━━━━━╇━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━━┩
│ big  │ Conv │ CPU    │            │ 'kernel'(17 x 17) is not in DPU supported range([1, 16]) │
│      │      │        │            │ 'stride'(9) is not in DPU supported range([1, 8])        │
└──────┴──────┴────────┴────────────┴──────────────────────────────────────────────────────────┘
4 DPU nodes and 1 USER node hidden; -v shows every node.

target     DPUCZDX8G_ISA1_B4096
ops        DPU 4, CPU 1, USER 1
subgraphs  DPU 2, CPU 1; total 4 with the USER (input) subgraph
DPU MACs   80.0% (1,000 of 1,250)
"""


def test_table_text_verbose():
    text = rendered(hand_report(), verbose=True)
    rows = [line.split("│")[1].strip() for line in text.splitlines() if line.startswith("│ ")]
    assert [r for r in rows if r] == ["data", "conv1", "bn1", "relu1", "big", "leaky"]
    assert "alpha 0.1 is run as" in text and "hidden" not in text
    assert "│ bn1   │ BatchNormalization │ DPU    │ conv1      │" in text


def test_no_cpu_nodes_says_so():
    report = InspectionReport("T", [NodeReport("a", "Conv", DPU, macs=5)])
    assert rendered(report).startswith("No CPU nodes: every op runs on the DPU.\n"
                                       "1 DPU node hidden; -v shows every node.\n")


def test_names_with_markup_are_printed_as_they_are():
    report = InspectionReport("T", [NodeReport("x[bold]y", "Sub", CPU, ["[red]why[/red]"])])
    text = rendered(report)
    assert "x[bold]y" in text and "[red]why[/red]" in text


def test_hand_built_report_json_and_svg():
    report = hand_report()
    validate(report.to_json())
    svg = render_svg(report)
    colors = label_colors(svg)
    assert colors["bn1 (BatchNormalization)"] == COLORS[DPU] and colors["big (Conv)"] == COLORS[CPU]
    assert colors["data (input)"] == COLORS[USER]
    root = ET.fromstring(svg)
    # the fused group conv1, bn1, relu1 is one dashed box
    boxes = [p for p in root.iter(f"{SVG_NS}path") if "stroke-dasharray" in p.get("style", "")]
    assert len(boxes) == 1


@pytest.mark.parametrize("name", [pytest.param(m, marks=[] if m == "squeezenet" else
                                                 [pytest.mark.slow]) for m in LIGHT_MODELS])
def test_light_model_report_validates_and_draws(name):
    from xir.backend.targets import load_target
    from xir.frontends.onnx import import_onnx
    from xir.passes.inspect import inspect_module

    loaded = light_model(name)
    if loaded is None:
        pytest.skip(f"the onnx package does not ship {name}")
    model = loaded[0]
    report = inspect_module(import_onnx(model), load_target("B4096"))
    data = json.loads(report_json(report))
    validate(data)
    names = [n["name"] for n in data["nodes"]]
    assert len(set(names)) == len(names)
    assert {n.name for n in model.graph.node if n.name} & set(names)
    assert all(n["fused_into"] in set(names) for n in data["nodes"] if n["fused_into"])
    colors = label_colors(render_svg(report))
    assert sum(1 for label in colors if label and " (" in label) >= len(report.nodes)
