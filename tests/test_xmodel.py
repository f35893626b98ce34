"""The .xmodel file: its byte layout, the round trip of a module with big and small resources,
loading from anywhere, every refusal (wrong magic, other version, truncation, a flipped byte in
each part, bad metadata, missing sections), and writing all of the file or none of it."""

from __future__ import annotations

import json
import os
import shutil
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest

from test_onnx_import import Graph
from xir import weights as W
from xir.backend import xmodel as X
from xir.diagnostics import XirError
from xir.frontends.onnx import import_onnx
from xir.interpreter import run_module
from xir.printer import print_ir

ISA = bytes(range(256)) * 3  # an instruction stream stands in as arbitrary bytes
METADATA = {
    "target": {"name": "DPUCZDX8G_ISA1_B4096", "fingerprint": "0x101000056010407"},
    "subgraphs": [
        {"name": "subgraph_conv", "device": "DPU", "workload_ops": 82944, "isa": "isa/subgraph_conv"},
        {"name": "subgraph_fc", "device": "CPU", "workload_ops": 115200},
    ],
}
FEEDS = {"x": np.random.default_rng(5).standard_normal((1, 8, 6, 6)).astype(np.float32)}


def make_module():
    """Conv (4.6 kB of weights) -> Relu -> Flatten -> Gemm (230 kB of weights, a 400-byte bias):
    two resources for the weights section, one small enough to stay inline hex, and inline
    ``dense<>`` constants."""
    g = Graph(seed=11)
    y = g.node("Conv", ["x", g.weight((16, 8, 3, 3)), g.weight((16,), 0.1)], pads=[1, 1, 1, 1])
    y = g.node("Relu", [y])
    y = g.node("Flatten", [y])
    y = g.node("Gemm", [y, g.weight((100, 576)), g.weight((100,), 0.1)], transB=1, name="logits")
    module = import_onnx(g.model({"x": [1, 8, 6, 6]}, [y]))
    sizes = sorted(len(h.data) for h in module.resources.values())
    assert sizes[0] < W.INLINE_LIMIT <= sizes[1]  # both kinds of resource are there
    return module


def constants(module) -> dict:
    """Every ``graph.constant`` value of ``module``, as numpy, by result position."""
    return {i: op.attributes["value"].to_numpy()
            for i, op in enumerate(module.walk()) if op.name == "graph.constant"}


@pytest.fixture(scope="module")
def module():
    return make_module()


@pytest.fixture
def saved(tmp_path: Path, module) -> Path:
    path = tmp_path / "m.xmodel"
    X.write_xmodel(str(path), module, METADATA, {"isa/subgraph_conv": ISA})
    return path


def header(path: Path) -> tuple:
    """(magic, version, count, table offset, table size, file size, table crc, header crc)."""
    return X._HEADER.unpack(path.read_bytes()[:64])


def refusal(path) -> str:
    with pytest.raises(XirError) as e:
        X.read_xmodel(str(path))
    message = e.value.diagnostic.header()
    assert "\n" not in message
    return message.removeprefix("error: ")


def container(path: Path, parts: dict) -> None:
    """An .xmodel with exactly the sections ``parts`` (name -> bytes), correctly checksummed."""
    image = X._Image([X._Part(name, data) for name, data in parts.items()])
    with open(path, "wb") as f:
        image.write(f)


def valid_metadata(**changes) -> bytes:
    metadata = {"format": {"name": "xir.xmodel", "version": 1}, "producer": "xir 0.1.0",
                "target": METADATA["target"], "subgraphs": METADATA["subgraphs"][1:]}  # no isa
    metadata.update(changes)
    return json.dumps(metadata).encode()


# -- format and round trip -------------------------------------------------------------------------


def test_byte_layout(saved):
    data = saved.read_bytes()
    magic, version, count, table_offset, table_size, file_size, table_crc, header_crc = header(saved)
    assert (magic, version, count, table_offset, file_size) == (b"XIRXMOD\0", 1, 4, 64, len(data))
    assert data[44:60] == b"\0" * 16
    assert header_crc == zlib.crc32(data[:60]) and table_crc == zlib.crc32(data[64:64 + table_size])
    model = X.read_xmodel(str(saved))
    assert list(model.sections) == ["metadata", "module", "isa/subgraph_conv", "weights"]
    position = 64 + table_size
    for section in model.sections.values():
        assert section.offset % 64 == 0 and section.offset >= position
        assert data[position:section.offset] == b"\0" * (section.offset - position)
        assert section.crc32 == zlib.crc32(data[section.offset:section.offset + section.size])
        position = section.offset + section.size
    assert position == len(data)
    weights = model.sections["weights"]
    assert data[weights.offset:weights.offset + 12] == W.MAGIC + struct.pack("<I", W.VERSION)
    text = bytes(model.section("module")).decode()
    assert 'file: "weights"' in text and "dialect_resources" in text  # big indexed, small inline


def body(text: str) -> str:
    """IR text without its resource section."""
    return text[:text.index("{-#")]


def resources(module) -> dict:
    return {name: (bytes(h.data), h.alignment) for name, h in module.resources.items()}


def test_round_trip_keeps_the_text_and_the_numbers(saved, module, tmp_path):
    model = X.read_xmodel(str(saved))
    assert body(print_ir(model.module)) == body(print_ir(module))
    assert resources(model.module) == resources(module)  # (listed inline ones first, as from a .xir)
    again = tmp_path / "again.xmodel"
    X.write_xmodel(str(again), model.module, METADATA, {"isa/subgraph_conv": ISA})
    assert again.read_bytes() == saved.read_bytes()  # the same module text, the same weights
    got, expected = constants(model.module), constants(module)
    assert got.keys() == expected.keys()
    for key in expected:
        assert got[key].dtype == expected[key].dtype and np.array_equal(got[key], expected[key])
    for a, b in zip(run_module(model.module, FEEDS), run_module(module, FEEDS)):
        assert np.array_equal(a, b)
    assert bytes(model.section("isa/subgraph_conv")) == ISA
    assert model.metadata == {"format": {"name": "xir.xmodel", "version": 1},
                              "producer": "xir 0.1.0", **METADATA}
    assert model.subgraphs[0]["isa"] == "isa/subgraph_conv"


def test_big_resources_are_views_of_the_one_mapping(saved):
    model = X.read_xmodel(str(saved))
    weights = model.sections["weights"]
    big = [h for h in model.module.resources.values() if not h.loaded]
    assert len(big) == 2  # deferred until used
    for handle in big:
        data = handle.data
        assert isinstance(data, memoryview) and data.readonly
        assert bytes(data) in bytes(model.section("weights"))
    mapped = np.frombuffer(model.section("weights"), np.uint8)
    array = np.frombuffer(big[0].data, np.uint8)
    assert np.shares_memory(array, mapped)  # no copy
    assert weights.offset % 64 == 0


def test_blob_alignment_above_64_is_kept_in_the_file(tmp_path):
    module = make_module()
    name = max(module.resources, key=lambda n: len(module.resources[n].data))
    module.resources[name].alignment = 4096
    path = tmp_path / "m.xmodel"
    X.write_xmodel(str(path), module, METADATA, {"isa/subgraph_conv": ISA})
    model = X.read_xmodel(str(path))
    handle = model.module.resources[name]
    assert handle.alignment == 4096
    assert np.frombuffer(handle.data, np.uint8).ctypes.data % 4096 == 0
    assert model.sections["weights"].offset % 4096 == 0


def test_the_same_model_writes_the_same_bytes(saved, module, tmp_path):
    again = tmp_path / "again.xmodel"
    X.write_xmodel(str(again), module, METADATA, {"isa/subgraph_conv": ISA})
    assert again.read_bytes() == saved.read_bytes()


def test_a_module_without_large_resources_has_no_weights_section(tmp_path):
    g = Graph(seed=1)
    y = g.node("Relu", [g.node("Add", ["x", g.weight((4,))])])
    module = import_onnx(g.model({"x": [1, 4]}, [y]))
    path = tmp_path / "small.xmodel"
    X.write_xmodel(str(path), module, {"subgraphs": []})
    model = X.read_xmodel(str(path))
    assert list(model.sections) == ["metadata", "module"]
    assert print_ir(model.module) == print_ir(module)  # all inline: the very same text


def test_saving_a_loaded_model_over_its_own_file(saved, module):
    model = X.read_xmodel(str(saved))
    isa = model.section("isa/subgraph_conv")
    X.write_xmodel(str(saved), model.module, METADATA, {"isa/subgraph_conv": isa})
    assert resources(X.read_xmodel(str(saved)).module) == resources(module)
    old, expected = constants(model.module), constants(module)  # the old mapping is still readable
    assert all(np.array_equal(old[key], expected[key]) for key in expected)


def test_a_missing_section_is_an_error(saved):
    model = X.read_xmodel(str(saved))
    with pytest.raises(XirError, match=r"has no section 'isa/other'"):
        model.section("isa/other")


# -- loading from anywhere -------------------------------------------------------------------------


def test_loads_after_moving_and_from_another_directory(saved, module, tmp_path, monkeypatch):
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    shutil.move(saved, elsewhere / "renamed.xmodel")
    cwd = tmp_path / "c"
    cwd.mkdir()
    monkeypatch.chdir(cwd)
    for path in ("../a/b/renamed.xmodel", str(elsewhere / "renamed.xmodel")):
        model = X.read_xmodel(path)
        assert body(print_ir(model.module)) == body(print_ir(module))
        assert resources(model.module) == resources(module)
        for a, b in zip(run_module(model.module, FEEDS), run_module(module, FEEDS)):
            assert np.array_equal(a, b)


# -- refusals --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["metadata", "module", "isa/subgraph_conv", "weights"])
def test_a_flipped_byte_in_a_section_names_the_section(saved, name):
    section = X.read_xmodel(str(saved)).sections[name]
    for at in (section.offset, section.offset + section.size // 2, section.offset + section.size - 1):
        data = bytearray(saved.read_bytes())
        data[at] ^= 0x10
        saved.with_name("bad.xmodel").write_bytes(data)
        bad = saved.with_name("bad.xmodel")
        assert refusal(bad) == f"section '{name}' of '{bad}' is corrupted (checksum mismatch)"


@pytest.mark.parametrize("at, message", [
    (20, "header of '{}' is corrupted (checksum mismatch)"),
    (50, "header of '{}' is corrupted (checksum mismatch)"),
    (64 + 9, "section table of '{}' is corrupted (checksum mismatch)"),
    (64 + 26, "section table of '{}' is corrupted (checksum mismatch)"),
])
def test_a_flipped_byte_in_the_header_or_table(saved, at, message):
    data = bytearray(saved.read_bytes())
    data[at] ^= 0x01
    saved.write_bytes(data)
    assert refusal(saved) == message.format(saved)


def test_a_flipped_byte_in_the_padding_between_sections_is_harmless(saved):
    sections = list(X.read_xmodel(str(saved)).sections.values())
    gap = sections[0].offset + sections[0].size
    assert gap < sections[1].offset
    data = bytearray(saved.read_bytes())
    data[gap] ^= 0xFF
    saved.write_bytes(data)
    X.read_xmodel(str(saved))  # padding is not part of any section: nothing it holds is used


def test_truncation_anywhere_is_refused(saved):
    data = saved.read_bytes()
    sections = X.read_xmodel(str(saved)).sections
    cuts = [3, 8, 10, 40, 63, 64, 100, sections["module"].offset + 10,
            sections["weights"].offset + 1000, len(data) - 1]
    for cut in cuts:
        saved.write_bytes(data[:cut])
        message = refusal(saved)
        assert message.startswith(f"'{saved}' is truncated ("), (cut, message)
    saved.write_bytes(data[:len(data) - 1])
    assert refusal(saved) == f"'{saved}' is truncated ({len(data) - 1} of its {len(data)} bytes)"


def test_bytes_past_the_end_are_refused(saved):
    size = saved.stat().st_size
    with open(saved, "ab") as f:
        f.write(b"tail")
    assert refusal(saved) == f"'{saved}' is corrupted (4 bytes past its end at byte {size})"


def test_a_section_past_the_end_is_truncation(saved):
    # a table whose last section ends past the file (header and table checksums made to match)
    data = bytearray(saved.read_bytes())
    _, _, count, table_offset, table_size, file_size, _, _ = header(saved)
    table = bytearray(data[table_offset:table_offset + table_size])
    position = 0
    for _ in range(count - 1):
        position += X._ENTRY.size + X._padded(X._ENTRY.unpack_from(table, position)[3])
    offset, size, crc, name_size = X._ENTRY.unpack_from(table, position)
    X._ENTRY.pack_into(table, position, offset, size + 64, crc, name_size)
    data[table_offset:table_offset + table_size] = table
    head = X._HEADER.pack(X.MAGIC, 1, count, table_offset, table_size, file_size, zlib.crc32(table), 0)[:60]
    data[:64] = head + struct.pack("<I", zlib.crc32(head))
    saved.write_bytes(data)
    assert refusal(saved) == (f"'{saved}' is truncated: section 'weights' (bytes {offset} to "
                              f"{offset + size + 64}) lies past its end at byte {len(data)}")


def test_not_an_xmodel(tmp_path, saved):
    cases = {"x.bin": os.urandom(4096), "m.xir": b"builtin.module {\n}\n", "short": b"XIB",
             "weights": W.MAGIC + bytes(100)}
    for name, data in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        assert refusal(path) == f"'{path}' is not an xir .xmodel file"


def test_empty_and_missing_files(tmp_path):
    empty = tmp_path / "empty.xmodel"
    empty.write_bytes(b"")
    assert refusal(empty) == f"'{empty}' is empty, not an xir .xmodel file"
    missing = tmp_path / "missing.xmodel"
    assert refusal(missing) == f"cannot read '{missing}': no such file or directory"
    assert refusal(tmp_path).startswith(f"cannot read '{tmp_path}': ")


@pytest.mark.parametrize("version", [0, 2, 7])
def test_another_format_version(saved, version):
    data = bytearray(saved.read_bytes())
    data[8:12] = struct.pack("<I", version)
    saved.write_bytes(data)
    assert refusal(saved) == f"'{saved}' has format version {version}; this xir reads version 1"


def test_a_future_version_with_another_header_is_named_by_its_version(tmp_path):
    path = tmp_path / "future.xmodel"
    path.write_bytes(X.MAGIC + struct.pack("<I", 2))  # whatever version 2 puts after it
    assert refusal(path) == f"'{path}' has format version 2; this xir reads version 1"


def test_missing_required_sections(tmp_path, saved):
    text = bytes(X.read_xmodel(str(saved)).section("module"))
    path = tmp_path / "m.xmodel"
    container(path, {"metadata": valid_metadata()})
    assert refusal(path) == f"'{path}' lacks its 'module' section"
    container(path, {"module": text})
    assert refusal(path) == f"'{path}' lacks its 'metadata' section"
    # the module indexes section 'weights', which is not there: an error at its index entry
    container(path, {"metadata": valid_metadata(subgraphs=[]), "module": text})
    message = refusal(path)
    assert message.startswith(f"{path}#module:") and "has no section 'weights'" in message


@pytest.mark.parametrize("metadata, problem", [
    (b"{not json", "is not valid JSON: Expecting property name enclosed in double quotes: "
                   "line 1 column 2 (char 1)"),
    (b"\xff\xfe", "is not valid JSON: 'utf-8' codec can't decode byte 0xff in position 0: "
                  "invalid start byte"),
    (b"[1, 2]", "is invalid: it is not a JSON object"),
    (valid_metadata(subgraphs=None), "is invalid: 'subgraphs' is not a list"),
    (json.dumps({"format": {}, "subgraphs": []}).encode(), "is invalid: it lacks 'producer'"),
    (valid_metadata(format={"name": "xir.xmodel", "version": 2}),
     'is invalid: its format is {"name": "xir.xmodel", "version": 2}, not xir.xmodel version 1'),
    (valid_metadata(target={"name": "b4096"}),
     "is invalid: 'target' lacks a 'fingerprint' (\"0x...\")"),
    (valid_metadata(subgraphs=[{"name": "s", "device": "GPU", "workload_ops": 1}]),
     'is invalid: subgraph 0 has device "GPU", not one of DPU, CPU, USER'),
    (valid_metadata(subgraphs=[{"name": "s", "device": "DPU", "workload_ops": -1}]),
     "is invalid: subgraph 0 has workload_ops -1, not a count"),
    (valid_metadata(subgraphs=[{"name": "s", "device": "DPU"}]),
     "is invalid: subgraph 0 lacks 'workload_ops'"),
    (valid_metadata(subgraphs=[{"name": "s", "device": "DPU", "workload_ops": 1, "isa": "isa/s"}]),
     'is invalid: subgraph 0 names isa section "isa/s", which the file lacks'),
    (valid_metadata(subgraphs=[{"name": "s", "device": "CPU", "workload_ops": 1}] * 2),
     "is invalid: subgraph 's' appears twice"),
])
def test_bad_metadata(tmp_path, saved, metadata, problem):
    text = bytes(X.read_xmodel(str(saved)).section("module"))
    path = tmp_path / "m.xmodel"
    container(path, {"metadata": metadata, "module": text})
    assert refusal(path) == f"metadata of '{path}' {problem}"


def test_an_unparsable_module_is_placed_in_its_section(tmp_path):
    path = tmp_path / "m.xmodel"
    container(path, {"metadata": valid_metadata(subgraphs=[]), "module": b"builtin.module {\n  %0 = \n}\n"})
    assert refusal(path).startswith(f"{path}#module:3:1: error: ")


# -- writing ---------------------------------------------------------------------------------------


def test_a_missing_destination_directory_writes_nothing(tmp_path, module):
    path = tmp_path / "no" / "m.xmodel"
    with pytest.raises(XirError) as e:
        X.write_xmodel(str(path), module, METADATA, {"isa/subgraph_conv": ISA})
    assert str(e.value) == f"error: cannot write '{path}': no such file or directory"
    assert os.listdir(tmp_path) == []


def test_a_failure_while_writing_leaves_no_file_and_keeps_the_old_one(saved, module, monkeypatch):
    before = saved.read_bytes()
    real_write = W.WeightsIndex.write
    calls = []

    def disk_full_on_the_real_write(self, f):
        calls.append(f)
        if len(calls) == 1:
            return real_write(self, f)  # the checksum pass
        f.write(b"\0" * 100)
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(W.WeightsIndex, "write", disk_full_on_the_real_write)
    with pytest.raises(XirError) as e:
        X.write_xmodel(str(saved), module, METADATA, {"isa/subgraph_conv": ISA})
    assert str(e.value) == f"error: cannot write '{saved}': no space left on device"
    assert saved.read_bytes() == before and os.listdir(saved.parent) == ["m.xmodel"]
    new = saved.with_name("new.xmodel")
    calls.clear()
    with pytest.raises(XirError):
        X.write_xmodel(str(new), module, METADATA, {"isa/subgraph_conv": ISA})
    assert os.listdir(saved.parent) == ["m.xmodel"]


@pytest.mark.parametrize("metadata, extra, problem", [
    ({**METADATA, "format": 1}, {}, "metadata key 'format' is written by xir itself"),
    ({"subgraphs": [], "when": object()}, {},
     "metadata is not JSON: Object of type object is not JSON serializable"),
    ({"subgraphs": [], "scale": float("nan")}, {},
     "metadata is not JSON: Out of range float values are not JSON compliant"),
    ({}, {}, "metadata is invalid: it lacks 'subgraphs'"),
    (METADATA, {}, 'metadata is invalid: subgraph 0 names isa section "isa/subgraph_conv", '
                   'which the file lacks'),
    ({"subgraphs": []}, {"weights": b""}, "'weights' is not a name for an extra section"),
    ({"subgraphs": []}, {"": b""}, "'' is not a name for an extra section"),
    ({"subgraphs": []}, {"isa/a\nb": b""}, "'isa/a\\nb' is not a name for an extra section"),
    ({"subgraphs": []}, {"isa/a": "text"}, "section 'isa/a' is not bytes (str)"),
])
def test_what_cannot_be_written(tmp_path, module, metadata, extra, problem):
    path = tmp_path / "m.xmodel"
    with pytest.raises(XirError) as e:
        X.write_xmodel(str(path), module, metadata, extra)
    assert str(e.value).startswith(f"error: cannot write '{path}': {problem}")
    assert os.listdir(tmp_path) == []


def test_extra_sections_take_any_buffer(tmp_path, module):
    words = np.arange(10, dtype=np.uint32)
    path = tmp_path / "m.xmodel"
    X.write_xmodel(str(path), module, {"subgraphs": []}, {"isa/a": words, "isa/b": bytearray(b"xy")})
    model = X.read_xmodel(str(path))
    assert np.array_equal(np.frombuffer(model.section("isa/a"), np.uint32), words)
    assert bytes(model.section("isa/b")) == b"xy"


def test_target_record():
    from xir.backend.targets import load_target

    target = load_target("DPUCZDX8G_ISA1_B4096")
    assert X.target_record(target) == {"name": "DPUCZDX8G_ISA1_B4096", "fingerprint": "0x101000056010407"}
