"""DPU target descriptions: the ISA1 family against reference/dpu.md §1, the other targets'
stated facts, fingerprints, arch.json, range strings, every error message, and ``xir targets``.

Expected values are written out from dpu.md, never computed by the code under test."""

from __future__ import annotations

import io
import json
from contextlib import redirect_stderr, redirect_stdout

import pytest
from hypothesis import given
from hypothesis import strategies as st

from xir.backend.targets import (
    RangeSet, Target, dpuczdx8g_isa1, known_targets, load_target, target_by_fingerprint,
)
from xir.diagnostics import XirError
from xir.tools import main as xir_main

# reference/dpu.md §1: target, feature_code, PP, ICP = OCP, ALU / eltwise PP, channel augmentation,
# peak ops / cycle (2 · PP · ICP · OCP, written out).
ISA1_TABLE = [
    ("B512", 0x56010200, 4, 8, 2, 16, 512),
    ("B800", 0x56010201, 4, 10, 2, 20, 800),
    ("B1024", 0x56010402, 8, 8, 4, 16, 1024),
    ("B1152", 0x56010203, 4, 12, 2, 24, 1152),
    ("B1600", 0x56010404, 8, 10, 4, 20, 1600),
    ("B2304", 0x56010405, 8, 12, 4, 24, 2304),
    ("B3136", 0x56010406, 8, 14, 4, 28, 3136),
    ("B4096", 0x56010407, 8, 16, 4, 32, 4096),
]


def message(excinfo) -> str:
    """The one-line message of a raised XirError."""
    return excinfo.value.diagnostic.message


def xir(*argv):
    """Run ``xir argv...`` in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = xir_main.main([str(a) for a in argv])
    return code, out.getvalue(), err.getvalue()


# -- the ISA1 family ------------------------------------------------------------------------------


@pytest.mark.parametrize("size, fc, pp, cp, alu_pp, augmentation, peak", ISA1_TABLE)
def test_isa1_row_matches_dpu_md(size, fc, pp, cp, alu_pp, augmentation, peak):
    t = load_target(f"DPUCZDX8G_ISA1_{size}")
    assert t.name == f"DPUCZDX8G_ISA1_{size}"
    assert (t.type, t.isa_version, t.feature_code) == ("DPUCZDX8G", 1, fc)
    assert (t.conv.pixel_parallel, t.conv.input_channel_parallel,
            t.conv.output_channel_parallel) == (pp, cp, cp)
    assert t.alu.pixel_parallel == alu_pp and t.eltwise.pixel_parallel == alu_pp
    assert t.alu.channel_parallel == cp and t.eltwise.channel_parallel == cp
    assert t.conv.channel_augmentation == augmentation
    assert t.peak_ops_per_cycle == peak
    assert t.fingerprint == 1 << 56 | 1 << 48 | fc
    # all banks 2048 deep; VB0, VB1 of PP banks x ICP bytes; CONVW OCP x ICP; DWCONVW, BIAS one bank
    shapes = {g.name: (g.type, g.bank_num, g.bank_width, g.bank_depth) for g in t.bank_groups}
    assert shapes == {"VB0": ("Virtual", pp, cp, 2048), "VB1": ("Virtual", pp, cp, 2048),
                      "CONVW": ("Param", cp, cp, 2048), "DWCONVW": ("Param", 1, cp, 2048),
                      "BIAS": ("Param", 1, cp, 2048)}
    assert t.pool is None and t.dwconv is None  # ISA1: the ALU does both
    assert load_target(size) == t  # the short form


def test_isa1_family_is_the_eight_sizes_in_table_order():
    names = [t.name for t in known_targets() if (t.type, t.isa_version) == ("DPUCZDX8G", 1)]
    assert names == [f"DPUCZDX8G_ISA1_{row[0]}" for row in ISA1_TABLE]


def test_b4096_bank_groups_and_engines():
    t = load_target("DPUCZDX8G_ISA1_B4096")
    assert [(g.name, g.type, g.base_id, g.bank_num, g.bank_width, g.bank_depth)
            for g in t.bank_groups] == [
        ("VB0", "Virtual", 0, 8, 16, 2048), ("VB1", "Virtual", 8, 8, 16, 2048),
        ("CONVW", "Param", 16, 16, 16, 2048), ("DWCONVW", "Param", 32, 1, 16, 2048),
        ("BIAS", "Param", 33, 1, 16, 2048)]
    assert t.bank_group("CONVW").size_bytes == 16 * 16 * 2048
    assert list(t.bank_group("VB1").bank_ids) == list(range(8, 16))
    assert set(t.conv.nonlinear) == {"relu", "leaky_relu", "relu_six"}
    assert str(t.conv.kernel) == "1-16" and str(t.conv.stride) == "1-8"
    assert t.eltwise.elew_type == ("add", "mult") and t.eltwise.nonlinear == ("relu",)
    assert {"dwconv", "max_pool", "avg_pool", "leaky_relu", "hsigmoid"} <= set(t.alu.alu_type)
    assert str(t.alu.kernel) == "1-256" and str(t.alu.stride) == "1-256"
    assert (str(t.alu.pad.left), str(t.alu.pad.top)) == ("0-15", "0-15")
    assert (str(t.alu.pad.right), str(t.alu.pad.bottom)) == ("0-255", "0-255")
    # 0x56010407: bits 26 and 28 and 30 set, 27 and 29 clear
    assert (t.load_channel_augmentation, t.load_mean, t.conv_leaky_relu, t.alu_leaky_relu,
            t.save_argmax) == (True, False, True, False, True)
    assert t.conv.kernel.contains(16) and not t.conv.kernel.contains(17)


def test_feature_flags_decode_bit_by_bit():
    base = 0x02010407  # B4096, two image bank groups, ALU PP 4, no flag

    def flags(t):
        return (t.load_channel_augmentation, t.load_mean, t.conv_leaky_relu, t.alu_leaky_relu,
                t.save_argmax)

    assert flags(dpuczdx8g_isa1(base)) == (False,) * 5
    for bit, expected in [(26, (True, False, False, False, False)),
                          (27, (False, True, False, False, False)),
                          (28, (False, False, True, False, False)),
                          (29, (False, False, False, True, False)),
                          (30, (False, False, False, False, True))]:
        assert flags(dpuczdx8g_isa1(base | 1 << bit)) == expected, bit


def test_image_bank_groups_follow_img_bg():
    t = dpuczdx8g_isa1(0x03010407)  # IMG_BG = 3
    assert [(g.name, g.base_id) for g in t.bank_groups] == [
        ("VB0", 0), ("VB1", 8), ("VB2", 16), ("CONVW", 24), ("DWCONVW", 40), ("BIAS", 41)]
    assert t.conv.input_bank == ("VB0", "VB1", "VB2")


# -- the other families ---------------------------------------------------------------------------


def test_isa0_b4096_has_separate_pool_and_dwconv_engines():
    t = load_target("DPUCZDX8G_ISA0_B4096")
    assert (t.type, t.isa_version, t.peak_ops_per_cycle) == ("DPUCZDX8G", 0, 4096)
    assert t.alu is None
    assert str(t.pool.max_kernel) == "1-8" and str(t.pool.avg_kernel) == "2-8"
    assert set(t.pool.pool_type) == {"max", "avg"}
    assert str(t.dwconv.kernel) == "1-16" and str(t.dwconv.stride) == "1-8"
    assert t.eltwise.elew_type == ("add",)


def test_dpucahx8h_isa2_matches_dpu_md():
    t = load_target("DPUCAHX8H_ISA2")
    assert [(g.bank_num, g.bank_width, g.bank_depth) for g in t.bank_groups_of_type("Virtual")] \
        == [(8, 16, 8192), (8, 16, 8192)]
    c = t.conv
    assert (c.input_channel_parallel, c.output_channel_parallel, c.pixel_parallel) == (16, 16, 8)
    assert (str(c.kernel), str(c.stride)) == ("1-16", "1-4")
    assert t.eltwise.elew_type == ("add",) and t.eltwise.pixel_parallel == 1
    assert set(t.pool.pool_type) == {"max", "avg"}
    for limit in (t.pool.max_kernel, t.pool.max_stride, t.pool.avg_kernel, t.pool.avg_stride):
        assert str(limit) == "1-8"
    assert t.alu is None and t.dwconv is None
    assert load_target("dpucahx8h") == t  # the family alone, any case


def test_dpucvdx8g_isa3_c32b3_matches_dpu_md():
    t = load_target("DPUCVDX8G_ISA3_C32B3")
    assert {g.bank_depth for g in t.bank_groups} == {8192}
    c = t.conv
    assert (c.input_channel_parallel, c.output_channel_parallel, c.pixel_parallel) == (16, 32, 8)
    assert {"hsigmoid", "hswish"} <= set(c.nonlinear)
    assert t.batch == 3
    assert t.peak_ops_per_cycle == 24576  # 2 · 8 · 16 · 32 per lane, three lanes
    assert load_target("C32B3") == t


def test_every_target_states_its_assumptions_and_cycle_model_figures():
    for t in known_targets():
        assert t.clock_mhz > 0 and t.ddr_bytes_per_cycle > 0 and t.batch >= 1
        assert any(note.startswith("Assumption") for note in t.notes), t.name
    assert load_target("B4096").peak_gops == pytest.approx(4096 * 300 / 1000)


# -- fingerprints and JSON ------------------------------------------------------------------------


@pytest.mark.parametrize("target", known_targets(), ids=lambda t: t.name)
def test_fingerprint_and_json_round_trip(target):
    assert load_target(target.fingerprint_hex) == target
    assert load_target(target.fingerprint) == target
    assert Target.from_json(target.to_json()) == target
    assert Target.from_json(json.loads(json.dumps(target.to_json()))) == target


def test_known_fingerprints():
    assert load_target("0x101000056010407").name == "DPUCZDX8G_ISA1_B4096"
    assert load_target("0x101000056010200").name == "DPUCZDX8G_ISA1_B512"


def test_zcu102_fingerprint_is_b4096_without_save_argmax():
    t = load_target("0x101000016010407")
    b4096 = load_target("B4096")
    assert t.name == "DPUCZDX8G_ISA1_B4096_0101000016010407"
    assert t.save_argmax is False and b4096.save_argmax is True
    assert t.feature_code == 0x16010407
    assert t.evolve(name=b4096.name, feature_code=b4096.feature_code,
                    save=b4096.save) == b4096  # nothing else differs
    assert t.fingerprint_hex == "0x101000016010407"
    assert load_target(t.fingerprint_hex) == t
    assert Target.from_json(t.to_json()) == t


def test_json_data_files_are_shaped_after_target_proto():
    data = load_target("DPUCZDX8G_ISA0_B4096").to_json()
    for key in ("name", "type", "isa_version", "feature_code", "bank_group", "load_engine",
                "save_engine", "conv_engine", "eltwise_engine", "pool_engine", "dwconv_engine",
                "batch", "clock_mhz", "ddr_bytes_per_cycle", "notes"):
        assert key in data
    assert data["conv_engine"]["conv_limit"] == {"kernel_size": "1-16", "stride": "1-8"}
    assert data["pool_engine"]["avg_limit"]["kernel_size"] == "2-8"
    isa1 = load_target("B4096").to_json()
    assert isa1["feature_code"] == "0x56010407"
    assert isa1["alu_engine"]["pad_limit"]["pad_right"] == "0-255"
    assert isa1["conv_engine"]["channel_augmentation"] == {"channel_num": 32}


# -- arch.json ---------------------------------------------------------------------------------------


def test_arch_json_both_forms(tmp_path):
    by_name = tmp_path / "name.json"
    by_name.write_text('{"target": "DPUCZDX8G_ISA1_B4096"}')
    by_fingerprint = tmp_path / "fp.json"
    by_fingerprint.write_text('{"fingerprint": "0x101000016010407"}')
    assert load_target(str(by_name)) == load_target("B4096")
    assert load_target(by_fingerprint).name == "DPUCZDX8G_ISA1_B4096_0101000016010407"
    full = tmp_path / "mine.json"
    full.write_text(json.dumps(load_target("B1024").evolve(name="MY_B1024").to_json()))
    assert load_target(str(full)).name == "MY_B1024"


@pytest.mark.parametrize("text, expected", [
    ("{", "not JSON (Expecting property name enclosed in double quotes: line 1 column 2 (char 1))"),
    ("[]", 'needs one of "target" and "fingerprint"'),
    ('{"other": 1}', 'needs one of "target" and "fingerprint"'),
    ('{"target": "B4096", "fingerprint": "0x101000056010407"}',
     'has both "target" and "fingerprint"'),
    ('{"target": 4096}', '"target" must be a string, got 4096'),
])
def test_malformed_arch_json(tmp_path, text, expected):
    path = tmp_path / "arch.json"
    path.write_text(text)
    with pytest.raises(XirError) as e:
        load_target(str(path))
    assert message(e) == f"cannot read arch.json '{path}': {expected}"


def test_missing_arch_json(tmp_path):
    path = tmp_path / "nope.json"
    with pytest.raises(XirError) as e:
        load_target(str(path))
    assert message(e) == f"cannot read arch.json '{path}': No such file or directory"


# -- errors ------------------------------------------------------------------------------------------


@pytest.mark.parametrize("spec, expected", [
    ("B4069", "unknown target 'B4069' (did you mean 'B4096'?)"),
    ("DPUCZDX8G_ISA1_B4069", "unknown target 'DPUCZDX8G_ISA1_B4069' "
                             "(did you mean 'DPUCZDX8G_ISA1_B4096'?)"),
    ("DPUCAHX8H_ISA3", "unknown target 'DPUCAHX8H_ISA3' (did you mean 'DPUCAHX8H_ISA2'?)"),
    ("resnet", "unknown target 'resnet' (run 'xir targets' for the list)"),
    ("0x901000016010407", "fingerprint 0x901000016010407 is of an unknown DPU family (type code 9; "
                          "known: 1 DPUCZDX8G, 2 DPUCAHX8H, 3 DPUCAHX8L, 4 DPUCZDI4G, 5 DPUCVDX8H, "
                          "6 DPUCVDX8G, 7 DPUCADF8H)"),
    ("0x20200000000002b", "fingerprint 0x20200000000002b is a DPUCAHX8H ISA2 with no known "
                          "description (known DPUCAHX8H targets: DPUCAHX8H_ISA2 0x20200000000002a)"),
    ("0x300000000000001", "fingerprint 0x300000000000001 is a DPUCAHX8L ISA0 with no known "
                          "description (known DPUCAHX8L targets: none)"),
    ("0x101000016010408", "fingerprint 0x101000016010408: feature code 0x16010408 of DPUCZDX8G "
                          "ISA1 has ARCH 8; known: 0 B512, 1 B800, 2 B1024, 3 B1152, 4 B1600, "
                          "5 B2304, 6 B3136, 7 B4096"),
    ("0xZZ", "bad fingerprint '0xZZ': expected a hexadecimal number like 0x101000056010407"),
])
def test_error_messages(spec, expected):
    with pytest.raises(XirError) as e:
        load_target(spec)
    assert message(e) == expected
    assert "\n" not in message(e)


def test_bad_description_names_the_field():
    data = load_target("B4096").to_json()
    data["conv_engine"]["conv_limit"]["kernel_size"] = "16-1"
    with pytest.raises(XirError) as e:
        Target.from_json(data, "mine.json")
    assert message(e) == ("bad target description in mine.json: field 'conv_engine.conv_limit."
                          "kernel_size' bad range string '16-1': span '16-1' runs backwards")
    data = load_target("B4096").to_json()
    data["eltwise_engine"]["input_bank"] = ["VB7"]
    with pytest.raises(XirError) as e:
        Target.from_json(data, "mine.json")
    assert message(e) == ("bad target description in mine.json: field 'eltwise_engine.input_bank' "
                          "names bank group 'VB7', which the target does not have "
                          "(it has BIAS, CONVW, DWCONVW, VB0, VB1)")
    data["eltwise_engine"]["input_bank"] = ["VB0"]
    data["feature_code"] = "0xfffffffffffffff"
    with pytest.raises(XirError) as e:
        Target.from_json(data, "mine.json")
    assert message(e) == ("bad target description in mine.json: field 'feature_code' expected a "
                          "hex string of at most 48 bits, got '0xfffffffffffffff'")
    data["feature_code"] = "0x56010407"
    del data["conv_engine"]
    with pytest.raises(XirError) as e:
        Target.from_json(data, "mine.json")
    assert message(e) == "bad target description in mine.json: field 'conv_engine' is missing"


@given(arch=st.integers(0, 7), alu_pp=st.integers(1, 15), image_groups=st.integers(1, 3),
       flags=st.integers(0, 31), high=st.integers(0, 0xFFFF))
def test_any_isa1_fingerprint_round_trips(arch, alu_pp, image_groups, flags, high):
    fc = high << 32 | flags << 26 | image_groups << 24 | alu_pp << 8 | arch
    t = target_by_fingerprint(1 << 56 | 1 << 48 | fc)
    assert t.feature_code == fc and len(t.bank_groups_of_type("Virtual")) == image_groups
    assert target_by_fingerprint(t.fingerprint_hex) == t == Target.from_json(t.to_json())


# -- range strings -----------------------------------------------------------------------------------


@pytest.mark.parametrize("text, members, non_members, described", [
    ("1-16", [1, 8, 16], [0, 17], "[1, 16]"),
    ("2,3,5,7,8", [2, 3, 5, 7, 8], [1, 4, 6, 9], "[2, 3, 5, 7, 8]"),
    ("0-15", [0, 15], [16], "[0, 15]"),
    ("1-4,8", [1, 4, 8], [5, 9], "[1, 4], 8"),
    ("3", [3], [2, 4], "[3]"),
])
def test_range_strings(text, members, non_members, described):
    r = RangeSet.parse(text)
    assert str(r) == text
    assert all(r.contains(v) and v in r for v in members)
    assert not any(r.contains(v) for v in non_members)
    assert r.describe() == described


@given(st.lists(st.tuples(st.integers(0, 300), st.integers(0, 20)), min_size=1, max_size=6))
def test_range_strings_round_trip(parts):
    text = ",".join(str(low) if width == 0 else f"{low}-{low + width}" for low, width in parts)
    r = RangeSet.parse(text)
    assert str(r) == text and RangeSet.parse(str(r)) == r
    assert all(r.contains(low) and r.contains(low + width) for low, width in parts)


def test_range_string_spaces_and_bounds():
    r = RangeSet.parse(" 1 - 16 ")
    assert str(r) == "1-16" and (r.low, r.high) == (1, 16)
    assert RangeSet.parse("2,3,5,7,8").values() == [2, 3, 5, 7, 8]
    kernel = load_target("B4096").conv.kernel
    assert (f"'kernel'(17 x 17) is not in DPU supported range({kernel.describe()})"
            == "'kernel'(17 x 17) is not in DPU supported range([1, 16])")


@pytest.mark.parametrize("text, expected", [
    ("", "bad range string '': part '' is not N or N-M (expected e.g. \"1-16\" or \"2,3,5,7,8\")"),
    ("1-", "bad range string '1-': part '1-' is not N or N-M (expected e.g. \"1-16\" or \"2,3,5,7,8\")"),
    ("a-b", "bad range string 'a-b': part 'a-b' is not N or N-M (expected e.g. \"1-16\" or \"2,3,5,7,8\")"),
    ("1,,2", "bad range string '1,,2': part '' is not N or N-M (expected e.g. \"1-16\" or \"2,3,5,7,8\")"),
    ("-1", "bad range string '-1': part '-1' is not N or N-M (expected e.g. \"1-16\" or \"2,3,5,7,8\")"),
    ("8-2", "bad range string '8-2': span '8-2' runs backwards"),
])
def test_bad_range_strings(text, expected):
    with pytest.raises(XirError) as e:
        RangeSet.parse(text)
    assert message(e) == expected


# -- xir targets ---------------------------------------------------------------------------------------


def test_cli_table_lists_every_target_with_its_peak():
    code, out, err = xir("targets")
    assert (code, err) == (0, "")
    for size, fc, pp, cp, _, _, peak in ISA1_TABLE:
        row = next(line for line in out.splitlines() if f"DPUCZDX8G_ISA1_{size} " in line)
        cells = [c.strip() for c in row.strip("│ ").split("│")]
        assert cells[:8] == [f"DPUCZDX8G_ISA1_{size}", "DPUCZDX8G ISA1",
                             f"0x1010000{fc:08x}", str(pp), str(cp), str(cp), "1", str(peak)]
    for name in ("DPUCZDX8G_ISA0_B4096", "DPUCAHX8H_ISA2", "DPUCVDX8G_ISA3_C32B3"):
        assert name in out
    assert "1228.8" in out  # B4096: 4096 ops x 300 MHz


def test_cli_describes_one_target():
    code, out, err = xir("targets", "b4096")
    assert (code, err) == (0, "")
    assert "DPUCZDX8G_ISA1_B4096" in out and "0x101000056010407" in out
    for text in ("VB0", "VB1", "CONVW", "DWCONVW", "BIAS", "kernel 1-16, stride 1-8",
                 "kernel 1-256, stride 1-256", "save argmax on", "Assumption"):
        assert text in out


def test_cli_json():
    code, out, _ = xir("targets", "--json")
    assert code == 0
    data = json.loads(out)
    assert [d["name"] for d in data] == [t.name for t in known_targets()]
    code, out, _ = xir("targets", "0x101000016010407", "--json")
    assert code == 0 and json.loads(out)["save_engine"]["argmax"] is False


def test_cli_errors_are_one_line():
    code, out, err = xir("targets", "B4069")
    assert (code, out) == (1, "")
    assert err == "xir targets: error: unknown target 'B4069' (did you mean 'B4096'?)\n"
    code, _, err = xir("targets", "0x901000016010407")
    assert code == 1 and err.startswith("xir targets: error: fingerprint 0x901000016010407 is of "
                                        "an unknown DPU family (type code 9;")
    code, _, err = xir("targets", "--bogus")
    assert code == 1 and err.count("\n") == 1


def test_fingerprint_lookup_by_integer():
    assert target_by_fingerprint(0x101000056010407).name == "DPUCZDX8G_ISA1_B4096"
