"""Large resources in a weights file beside the ``.xir`` text: the format, the round trip, lazy
mapping, moving the pair, every error, atomic writing, and the tools that write and read it."""

from __future__ import annotations

import os
import re
import shutil
import struct
from pathlib import Path

import numpy as np
import onnx
import pytest

from test_cli_models import small_model, xir
from xir import weights as W
from xir.diagnostics import XirError
from xir.files import write_files_atomically
from xir.parser import parse
from xir.printer import print_ir

BIG = np.arange(32 * 16, dtype=np.float32).reshape(32, 16)  # 2048 bytes: goes to the weights file
WIDE = np.linspace(-1, 1, 300, dtype=np.float32)  # 1200 bytes, alignment 64
SMALL = np.array([1.5, -2.0, 3.25], dtype=np.float32)  # 12 bytes: stays inline


def _hex(array: np.ndarray, alignment: int) -> str:
    return "0x" + (alignment.to_bytes(4, "little") + array.tobytes()).hex().upper()


MODULE_TEXT = f"""\
builtin.module {{
  "test.use"() {{big = dense_resource<big> : tensor<32x16xf32>, small = dense_resource<small> : tensor<3xf32>, wide = dense_resource<"wide-w"> : tensor<300xf32>}} : () -> ()
}}

{{-#
  dialect_resources: {{
    builtin: {{
      big: "{_hex(BIG, 4)}",
      small: "{_hex(SMALL, 4)}",
      "wide-w": "{_hex(WIDE, 64)}"
    }}
  }}
#-}}
"""

SECTION = """\
{-#
  dialect_resources: {
    builtin: {
      small: "0x040000000000C03F000000C000005040"
    }
  },
  external_resources: {
    xir_weights: {
      file: "m.xir.weights",
      id: "ID",
      big: "offset=64 size=2048 align=4",
      "wide-w": "offset=2112 size=1200 align=64"
    }
  }
#-}
"""


def load(path: Path):
    return parse(path.read_text(), str(path), allow_unregistered=True)


def arrays(module) -> dict:
    attrs = next(iter(module.body.ops)).attributes
    return {key: attr.to_numpy() for key, attr in attrs.items()}


def body(text: str) -> str:
    """The text without its resource section."""
    return text[:text.index("{-#")]


@pytest.fixture
def saved(tmp_path: Path) -> Path:
    """``m.xir`` and ``m.xir.weights`` in ``tmp_path``, saved from MODULE_TEXT."""
    path = tmp_path / "m.xir"
    W.save_module(parse(MODULE_TEXT, allow_unregistered=True), str(path))
    return path


def entry_position(path: Path, needle: str) -> tuple[int, int]:
    """The line and column (1-based) of the first occurrence of ``needle`` in ``path``."""
    for number, line in enumerate(path.read_text().split("\n"), start=1):
        if needle in line:
            return number, line.index(needle) + 1
    raise AssertionError(needle)


def parse_error(path: Path) -> str:
    with pytest.raises(XirError) as e:
        load(path)
    return e.value.diagnostic.header()


# -- format and round trip -------------------------------------------------------------------------


def test_text_indexes_large_resources_and_keeps_small_ones_inline(saved):
    text = saved.read_text()
    file_id = re.search(r'id: "([0-9a-f]{32})"', text).group(1)
    assert body(text) == body(MODULE_TEXT)
    assert text[text.index("{-#"):].replace(file_id, "ID") == SECTION
    data = (saved.parent / "m.xir.weights").read_bytes()
    assert data[:12] == b"XIRWGHT\0" + struct.pack("<I", 1)
    assert data[12:28] == bytes.fromhex(file_id)
    assert data[28:64] == b"\0" * 36
    assert data[64:64 + 2048] == BIG.tobytes() and data[2112:] == WIDE.tobytes()
    assert sorted(os.listdir(saved.parent)) == ["m.xir", "m.xir.weights"]


def test_round_trip_through_the_pair(saved):
    module = load(saved)
    got = arrays(module)
    assert np.array_equal(got["big"], BIG) and np.array_equal(got["small"], SMALL)
    assert np.array_equal(got["wide"], WIDE)
    assert {n: h.alignment for n, h in module.resources.items()} == {"small": 4, "big": 4, "wide-w": 64}
    assert body(print_ir(module)) == body(MODULE_TEXT)
    again = saved.parent / "again.xir"
    W.save_module(module, str(again))  # resources read from one weights file, written to another
    assert body(again.read_text()) == body(MODULE_TEXT)
    assert np.array_equal(arrays(load(again))["big"], BIG)


def test_saving_over_its_own_weights_file(saved):
    module = load(saved)
    W.save_module(module, str(saved))  # replaces the file that the module's data is mapped from
    assert np.array_equal(arrays(load(saved))["wide"], WIDE)
    assert np.array_equal(arrays(module)["big"], BIG)  # the old mapping stays readable


def test_the_pair_moves_together(saved, tmp_path, monkeypatch):
    elsewhere = tmp_path / "a" / "b"
    elsewhere.mkdir(parents=True)
    for name in ("m.xir", "m.xir.weights"):
        shutil.move(tmp_path / name, elsewhere / name)
    monkeypatch.chdir(tmp_path)
    assert np.array_equal(arrays(load(Path("a/b/m.xir")))["big"], BIG)


def test_a_symbolic_link_to_the_text_finds_the_weights_beside_the_target(saved, tmp_path):
    link_dir = tmp_path / "links"
    link_dir.mkdir()
    (link_dir / "m.xir").symlink_to(saved)
    assert np.array_equal(arrays(load(link_dir / "m.xir"))["wide"], WIDE)


def test_data_is_mapped_only_when_used(saved, monkeypatch):
    maps = []
    real_mmap = W.mmap.mmap
    monkeypatch.setattr(W.mmap, "mmap", lambda *a, **k: maps.append(a) or real_mmap(*a, **k))
    module = load(saved)
    big, wide = module.resources["big"], module.resources["wide-w"]
    assert (big.loaded, wide.loaded, module.resources["small"].loaded) == (False, False, True)
    assert (big.name, big.alignment, wide.alignment, maps) == ("big", 4, 64, [])
    array = arrays(module)["wide"]
    assert len(maps) == 1 and big.loaded and wide.loaded  # one mapping serves every resource
    assert isinstance(wide.data, memoryview) and not array.flags.writeable and not array.flags.owndata
    assert array.ctypes.data % 64 == 0


def test_a_deferred_handle_pickles_as_bytes(saved):
    import pickle

    handle = pickle.loads(pickle.dumps(load(saved).resources["big"]))
    assert (handle.name, handle.alignment, handle.data) == ("big", 4, BIG.tobytes())


def test_small_resources_only_write_no_weights_file_and_remove_none(tmp_path):
    stale = tmp_path / "m.xir.weights"
    stale.write_bytes(b"old")
    module = parse(MODULE_TEXT.replace("tensor<32x16xf32>", "tensor<3xf32>")
                   .replace(_hex(BIG, 4), _hex(SMALL, 4))
                   .replace("tensor<300xf32>", "tensor<3xf32>").replace(_hex(WIDE, 64), _hex(SMALL, 64)),
                   allow_unregistered=True)
    W.save_module(module, str(tmp_path / "m.xir"))
    assert "external_resources" not in (tmp_path / "m.xir").read_text()
    assert stale.read_bytes() == b"old"


def test_inline_keeps_one_self_contained_file(tmp_path):
    path = tmp_path / "m.xir"
    W.save_module(parse(MODULE_TEXT, allow_unregistered=True), str(path), inline=True)
    assert path.read_text() == MODULE_TEXT
    assert os.listdir(tmp_path) == ["m.xir"]


def test_resources_named_like_index_keys_stay_inline(tmp_path):
    text = MODULE_TEXT.replace("dense_resource<big>", "dense_resource<file>").replace("big: ", "file: ")
    path = tmp_path / "m.xir"
    W.save_module(parse(text, allow_unregistered=True), str(path))
    assert f'file: "{_hex(BIG, 4)}"' in path.read_text()
    assert np.array_equal(arrays(load(path))["big"], BIG)


# -- errors ----------------------------------------------------------------------------------------


def test_missing_weights_file(saved):
    os.unlink(saved.parent / "m.xir.weights")
    line, col = entry_position(saved, '"m.xir.weights"')
    assert parse_error(saved) == (f"{saved}:{line}:{col}: error: weights file 'm.xir.weights' "
                                  f"not found next to '{saved}'")


def test_weights_file_of_another_model(saved, tmp_path):
    W.save_module(parse(MODULE_TEXT, allow_unregistered=True), str(tmp_path / "other.xir"))
    os.replace(tmp_path / "other.xir.weights", tmp_path / "m.xir.weights")
    line, col = entry_position(saved, 'id: "')
    assert parse_error(saved) == (f"{saved}:{line}:{col + 4}: error: weights file 'm.xir.weights' "
                                  f"does not belong to this IR file (id mismatch)")


def test_resource_beyond_the_end_of_the_file(saved):
    weights = saved.parent / "m.xir.weights"
    weights.write_bytes(weights.read_bytes()[:3000])
    line, col = entry_position(saved, '"offset=2112')
    assert parse_error(saved) == (f"{saved}:{line}:{col}: error: resource 'wide-w' (offset 2112, "
                                  f"size 1200) lies outside weights file 'm.xir.weights' (3000 bytes)")


def test_malformed_entry(saved):
    saved.write_text(saved.read_text().replace("offset=64 size=2048", "offset=64 bytes=2048"))
    line, col = entry_position(saved, '"offset=64')
    assert parse_error(saved) == (f"{saved}:{line}:{col}: error: resource 'big' must be "
                                  f"\"offset=N size=N align=N\", not \"offset=64 bytes=2048 align=4\"")


def test_not_a_weights_file(saved):
    (saved.parent / "m.xir.weights").write_bytes(b"\x89PNG" + bytes(4000))
    line, col = entry_position(saved, '"m.xir.weights"')
    assert parse_error(saved) == f"{saved}:{line}:{col}: error: 'm.xir.weights' is not an xir weights file"


def test_newer_format_version(saved):
    weights = saved.parent / "m.xir.weights"
    data = bytearray(weights.read_bytes())
    data[8:12] = struct.pack("<I", 2)
    weights.write_bytes(bytes(data))
    line, col = entry_position(saved, '"m.xir.weights"')
    assert parse_error(saved) == (f"{saved}:{line}:{col}: error: 'm.xir.weights' has format "
                                  f"version 2; this xir reads version 1")


def test_weights_file_must_sit_beside_the_text(saved):
    saved.write_text(saved.read_text().replace('"m.xir.weights"', '"../m.xir.weights"'))
    line, col = entry_position(saved, '"../m.xir.weights"')
    assert parse_error(saved) == (f"{saved}:{line}:{col}: error: weights file '../m.xir.weights' "
                                  f"must be a plain file name (it sits beside the IR file)")


def test_index_without_its_id(saved):
    text = saved.read_text()
    saved.write_text(re.sub(r'\n +id: "[0-9a-f]+",', "", text))
    line, col = entry_position(saved, "xir_weights")
    assert parse_error(saved) == f"{saved}:{line}:{col}: error: 'xir_weights' lacks its 'id' entry"


def test_weights_file_changed_after_parsing(saved):
    module = load(saved)
    weights = saved.parent / "m.xir.weights"
    weights.write_bytes(weights.read_bytes() + b"more")
    with pytest.raises(XirError) as e:
        arrays(module)
    assert e.value.diagnostic.header() == (f"error: weights file '{weights.resolve()}' changed "
                                           f"after its IR was read")


def test_other_external_resources_and_booleans_are_ignored():
    text = ('builtin.module {\n}\n{-#\n  external_resources: { other: { flag: true, n: 3 } },\n'
            '  dialect_resources: { builtin: { }, other: { } }\n#-}\n')
    assert parse(text).resources == {}


def test_a_boolean_inline_resource_is_an_error_not_a_crash():
    with pytest.raises(XirError) as e:
        parse('builtin.module {\n}\n{-#\n  dialect_resources: { builtin: { a: true } }\n#-}\n')
    assert e.value.diagnostic.header() == '<stdin>:4:38: error: resource \'a\' must be a hex string "0x..."'


# -- atomic writing --------------------------------------------------------------------------------


def test_a_failure_while_writing_weights_leaves_no_file(tmp_path, monkeypatch):
    def fail(self, f):
        f.write(b"partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(W.WeightsIndex, "write", fail)
    with pytest.raises(OSError, match="No space left"):
        W.save_module(parse(MODULE_TEXT, allow_unregistered=True), str(tmp_path / "m.xir"))
    assert os.listdir(tmp_path) == []


def test_a_failure_replaces_neither_existing_file(saved, monkeypatch):
    before = {p.name: p.read_bytes() for p in saved.parent.iterdir()}
    monkeypatch.setattr(W.WeightsIndex, "write", lambda self, f: 1 / 0)
    with pytest.raises(ZeroDivisionError):
        W.save_module(parse(MODULE_TEXT, allow_unregistered=True), str(saved))
    assert {p.name: p.read_bytes() for p in saved.parent.iterdir()} == before


def test_a_failure_on_a_later_file_leaves_the_earlier_one_unwritten(tmp_path):
    def fail(f):
        f.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        write_files_atomically([(str(tmp_path / "a"), b"whole"), (str(tmp_path / "b"), fail)])
    assert os.listdir(tmp_path) == []
    write_files_atomically([(str(tmp_path / "a"), b"whole"), (str(tmp_path / "b"), "text")])
    assert (tmp_path / "a").read_bytes() == b"whole" and (tmp_path / "b").read_text() == "text"


# -- the tools -------------------------------------------------------------------------------------


@pytest.fixture
def model(tmp_path: Path) -> Path:
    path = tmp_path / "model.onnx"
    onnx.save(small_model(), path)
    np.savez(tmp_path / "in.npz", x=np.random.default_rng(3).standard_normal((1, 3, 8, 8)).astype(np.float32))
    return path


def test_import_writes_the_pair_and_run_and_export_work_from_elsewhere(model, tmp_path, monkeypatch):
    out = tmp_path / "out" / "out.xir"
    out.parent.mkdir()
    assert xir("import", model, "-o", out) == (0, "", "")
    assert sorted(os.listdir(out.parent)) == ["out.xir", "out.xir.weights"]
    assert 'file: "out.xir.weights"' in out.read_text()
    assert xir("run", model, "--input", tmp_path / "in.npz", "-o", tmp_path / "expected.npz")[0] == 0
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    assert xir("run", "../out/out.xir", "--input", "../in.npz", "-o", "got.npz") == (0, "", "")
    with np.load(tmp_path / "expected.npz") as expected, np.load("got.npz") as got:
        assert all(np.array_equal(expected[k], got[k]) for k in expected.files)
    assert xir("export", "../out/out.xir", "-o", "back.onnx") == (0, "", "")
    assert len(onnx.load("back.onnx").graph.initializer) == len(small_model().graph.initializer)


def test_import_inline_weights_and_stdout_write_no_weights_file(model, tmp_path):
    assert xir("import", model, "-o", tmp_path / "one.xir", "--inline-weights") == (0, "", "")
    code, out, _ = xir("import", model)
    assert code == 0 and "external_resources" not in out
    assert (tmp_path / "one.xir").read_text() == out
    assert xir("import", model, "-o", os.devnull) == (0, "", "")
    assert sorted(p.name for p in tmp_path.glob("*.xir*")) == ["one.xir"]


def test_xir_opt_writes_the_pair_and_reports_a_missing_weights_file(model, tmp_path):
    from xir.tools.opt import main as opt_main

    src, out = tmp_path / "m.xir", tmp_path / "o.xir"
    assert xir("import", model, "-o", src)[0] == 0
    assert opt_main([str(src), "-p", "canonicalize", "-o", str(out)]) == 0
    assert (tmp_path / "o.xir.weights").exists() and 'file: "o.xir.weights"' in out.read_text()
    assert opt_main([str(src), "-o", str(tmp_path / "i.xir"), "--inline-weights"]) == 0
    assert not (tmp_path / "i.xir.weights").exists()
    os.unlink(tmp_path / "m.xir.weights")
    code, _, err = xir("run", src, "--input", tmp_path / "in.npz", "-o", tmp_path / "x.npz")
    line, col = entry_position(src, '"m.xir.weights"')
    assert (code, err) == (1, f"{src}:{line}:{col}: error: weights file 'm.xir.weights' not found "
                              f"next to '{src}'\n")
