"""Compiled DPU programs end to end: xir compile stores each DPU subgraph's instruction stream in
the .xmodel; xir run executes it on the simulator (the default) bit for bit as the dpu dialect's
integer executor (--dpu ref); xir profile reports its cycles; a wrong target, a corrupted stream
or a deadlocking one is one error line naming the target or the instruction."""

from __future__ import annotations

import json
import warnings
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest

from fixtures import reencoded, run_xir
from xir.backend.compiler import compile_model
from xir.backend.dpu_program import DpuProgram
from xir.backend.runner import ReferenceExecutor
from xir.backend.xmodel import read_xmodel, write_xmodel
from xir.dialects.dpuisa import decode, encode
from xir.frontends.onnx import import_onnx
from xir.symbols import SymbolTable

DIGITS = Path(__file__).resolve().parent.parent / "examples" / "digits"
TARGETS = ("DPUCZDX8G_ISA1_B4096", "DPUCZDX8G_ISA1_B512", "DPUCZDX8G_ISA1_B1152")
xir = run_xir


@pytest.fixture(scope="module")
def calib():
    data = np.load(DIGITS / "digits.npz")
    return {"input": data["x_train"][:200].astype(np.float32) / 16}, \
        data["x_test"][:12].astype(np.float32) / 16


@pytest.fixture(scope="module")
def compiled(calib):
    out = {}
    for model in ("digits_cnn", "digits_dwsep"):
        for target in TARGETS:
            with warnings.catch_warnings():
                warnings.simplefilter("error")  # every DPU subgraph gets a stream
                out[model, target] = compile_model(
                    import_onnx(str(DIGITS / f"{model}.onnx")), target, calib[0])
    return out


@pytest.mark.parametrize("model", ["digits_cnn", "digits_dwsep"])
@pytest.mark.parametrize("target", TARGETS)
def test_every_dpu_subgraph_runs_bit_exactly_on_the_simulator(compiled, model, target):
    """Random int8 inputs (a batch of 3) through each DPU program, in program order and in two
    random queue orders, equal the reference executor on the subgraph."""
    result = compiled[model, target]
    functions = SymbolTable(result.module)
    dpu = [r for r in result.subgraphs if r["device"] == "DPU"]
    assert dpu and set(result.programs) == {r["name"] for r in dpu}
    rng = np.random.default_rng(3)
    for record in dpu:
        func = functions.lookup(record["name"])
        program = result.programs[record["name"]]
        args = [rng.integers(-128, 128, (3, *a.type.shape[1:])).astype(np.int8)
                for a in func.regions[0].blocks[0].args]
        expected = ReferenceExecutor(func)(args)
        for seed in (None, 1, 2):
            got, counters = program.run(args, seed=seed)
            for g, e in zip(got, expected):
                assert g.dtype == np.int8 and np.array_equal(g, e), (record["name"], seed)
        assert counters.instructions["CONV"] > 0
        assert record["program"]["layers"] and record["isa"] == f"isa/{record['name']}"
        data = program.words.tobytes()  # every instruction decodes and encodes back
        assert encode(decode(data)) == data == reencoded(data)


def test_the_program_round_trips_through_the_xmodel(compiled, tmp_path):
    result = compiled["digits_dwsep", "DPUCZDX8G_ISA1_B4096"]
    path = tmp_path / "m.xmodel"
    result.write(path)
    xmodel = read_xmodel(str(path))
    (record,) = [r for r in xmodel.subgraphs if r["device"] == "DPU"]
    loaded = DpuProgram.from_xmodel(xmodel, record)
    original = result.programs[record["name"]]
    assert np.array_equal(loaded.words, original.words) and loaded.const == original.const
    assert loaded == original  # placements, layers, sizes
    assert record["program"]["instructions"] == len(decode(original.words.tobytes())) > 10


@pytest.fixture(scope="module")
def files(compiled, calib, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("prog")
    compiled["digits_cnn", "DPUCZDX8G_ISA1_B4096"].write(tmp / "cnn.xmodel")
    np.savez(tmp / "in.npz", input=calib[1])
    return tmp


def test_xir_run_simulates_by_default_and_equals_the_reference(files):
    for dpu in ("sim", "ref"):
        code, out, err = xir(["run", str(files / "cnn.xmodel"), "--input", str(files / "in.npz"),
                              "-o", str(files / f"{dpu}.npz"), "--dpu", dpu])
        assert (code, out, err) == (0, "", "")
    code, _, err = xir(["run", str(files / "cnn.xmodel"), "--input", str(files / "in.npz"),
                        "-o", str(files / "default.npz"), "--seed", "5"])
    assert (code, err) == (0, "")
    ref = np.load(files / "ref.npz")["logits"]
    assert np.array_equal(np.load(files / "sim.npz")["logits"], ref)
    assert np.array_equal(np.load(files / "default.npz")["logits"], ref)


def test_an_xmodel_for_another_target_is_refused(files):
    for command in (["run", str(files / "cnn.xmodel"), "--input", str(files / "in.npz"), "-o",
                     str(files / "x.npz")], ["profile", str(files / "cnn.xmodel")]):
        code, out, err = xir(command + ["--target", "B512"])
        assert (code, out) == (1, "")
        assert err == (f"xir {command[0]}: error: '{files / 'cnn.xmodel'}' was compiled for "
                       f"DPUCZDX8G_ISA1_B4096 (0x101000056010407), not for DPUCZDX8G_ISA1_B512 "
                       f"(0x101000056010200)\n")
    assert not (files / "x.npz").exists()


def _rewrite(path_in, path_out, change):
    """The .xmodel ``path_in`` written again as ``path_out`` with its DPU stream's words passed
    through ``change`` (CRCs recomputed: the damage is in the content, not the file)."""
    xmodel = read_xmodel(str(path_in))
    (record,) = [r for r in xmodel.subgraphs if r["device"] == "DPU"]
    words = np.frombuffer(xmodel.section(record["isa"]), "<u4").copy()
    sections = {name: bytes(xmodel.section(name)) for name in xmodel.sections
                if name.startswith(("isa/", "const/"))}
    sections[record["isa"]] = change(words).astype("<u4").tobytes()
    metadata = {k: v for k, v in xmodel.metadata.items() if k not in ("format", "producer")}
    write_xmodel(str(path_out), xmodel.module, metadata, sections)
    return record["name"]


def test_a_corrupted_stream_is_one_error_line_naming_the_instruction(files):
    xmodel = read_xmodel(str(files / "cnn.xmodel"))
    (record,) = [r for r in xmodel.subgraphs if r["device"] == "DPU"]
    ops = decode(bytes(xmodel.section(record["isa"])))
    starts = np.cumsum([0] + [op.spec.words for op in ops])

    def unknown_opcode(words):
        words[starts[3]] = (words[starts[3]] & 0x0FFFFFFF) | (0xF << 28)
        return words

    first_load = next(k for k, op in enumerate(ops) if op.spec.mnemonic == "LOAD"
                      and op.field_values()["length"] > 1)

    def out_of_bank(words):  # bank_addr (word 0, bits [13:0]) near the end of the bank
        words[starts[first_load]] |= 0x3FFF
        return words

    cases = [(unknown_opcode, f"instruction stream: word {starts[3]}: unknown opcode 0xf"),
             (out_of_bank, f"instruction {first_load} (LOAD at word {starts[first_load]}): "
                           f"field 'bank_addr' = 16383")]
    for change, message in cases:
        name = _rewrite(files / "cnn.xmodel", files / "bad.xmodel", change)
        code, out, err = xir(["run", str(files / "bad.xmodel"), "--input",
                              str(files / "in.npz"), "-o", str(files / "bad.npz")])
        assert (code, out) == (1, "") and len(err.splitlines()) == 1, err
        assert err.startswith(f"xir run: error: DPU subgraph '{name}': {message}"), err
        assert not (files / "bad.npz").exists()


def test_a_deadlocking_stream_is_one_error_line(files):
    xmodel = read_xmodel(str(files / "cnn.xmodel"))
    (record,) = [r for r in xmodel.subgraphs if r["device"] == "DPU"]
    ops = decode(bytes(xmodel.section(record["isa"])))
    first_conv = next(k for k, op in enumerate(ops) if op.spec.queue == "CONV")
    start = sum(op.spec.words for op in ops[:first_conv])

    def wait_on_save(words):  # the first CONV-queue instruction also waits for a SAVE token
        words[start] |= 0b0010 << 24
        return words

    name = _rewrite(files / "cnn.xmodel", files / "dead.xmodel", wait_on_save)
    code, _, err = xir(["run", str(files / "dead.xmodel"), "--input", str(files / "in.npz"),
                        "-o", str(files / "dead.npz")])
    assert code == 1 and len(err.splitlines()) == 1, err
    assert err.startswith(f"xir run: error: DPU subgraph '{name}': dependency deadlock"), err


def test_xir_profile_reports_cycles_per_layer(files):
    path = files / "cnn.xmodel"
    code, out, err = xir(["profile", str(path), "--json", str(files / "p.json"), "--svg",
                          str(files / "p.svg"), "--clock", "281"])
    assert (code, err) == (0, ""), err
    doc = json.loads((files / "p.json").read_text())
    assert {"target", "clock_mhz", "cycles", "latency_ms", "fps", "mac_utilization",
            "layers"} <= set(doc)
    assert doc["target"] == "DPUCZDX8G_ISA1_B4096" and doc["clock_mhz"] == 281
    assert doc["cycles"] > 0 and 0 < doc["mac_utilization"] <= 1
    assert abs(doc["latency_ms"] - doc["cycles"] / 281e3) < 1e-9
    for layer in doc["layers"]:
        assert {"name", "cycles", "macs", "utilization"} <= set(layer)
    assert sum(layer["macs"] for layer in doc["layers"]) == doc["macs"] > 0
    assert "conv" in out and f"{doc['cycles']} cycles" in out
    ET.parse(files / "p.svg")  # well-formed SVG
    code, out, err = xir(["profile", str(path), "--json", "-"])  # the target's own clock
    assert code == 0 and json.loads(out)["clock_mhz"] == 300 and json.loads(out)["cycles"] > 0


def test_xir_profile_needs_an_xmodel(files, tmp_path):
    code, out, err = xir(["profile", str(DIGITS / "digits_cnn.onnx")])
    assert (code, out) == (1, "")
    assert err == (f"xir profile: error: '{DIGITS / 'digits_cnn.onnx'}' is not a compiled model "
                   f"(.xmodel): run xir compile first\n")
