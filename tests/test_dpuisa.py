"""The dpuisa dialect: the instruction tables, binary encoding and decoding (exact both ways),
the verifier's messages, the generic text form and the assembly listing (docs/dpuisa.md)."""

import pathlib

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xir.backend.targets import known_targets
from xir.diagnostics import XirError
from xir.dialect import lookup_op
from xir.dialects.dpuisa import (
    BY_MNEMONIC, INSTRUCTIONS, ProgramOp, assemble, decode, decode_program, decode_words,
    disassemble, encode, encode_words, listing, make_instruction, make_program,
)
from xir.dialects.dpuisa import isa
from xir.parser import parse
from xir.printer import print_ir
from xir.verifier import verify

DOCS = pathlib.Path(__file__).resolve().parents[1] / "docs" / "dpuisa.md"
IDS = [ins.mnemonic for ins in INSTRUCTIONS]


def message(excinfo) -> str:
    return excinfo.value.diagnostic.message


def values_of(ins, draw):
    return {f.name: draw(st.integers(f.low, f.high)) for f in ins.fields}


def instructions():
    """Any instruction with any field values within their widths."""
    return st.sampled_from(INSTRUCTIONS).flatmap(
        lambda ins: st.fixed_dictionaries(
            {f.name: st.integers(f.low, f.high) for f in ins.fields}).map(lambda v: (ins, v)))


# -- the tables --------------------------------------------------------------------------------


def test_opcodes_and_word_counts_are_the_public_ones():
    # reference/dpu.md §4
    public = {"LOAD": (0x0, 5), "SAVE": (0x4, 5), "CONVINIT": (0x9, 4), "CONV": (0x8, 5),
              "POOLINIT": (0x6, 2), "POOL": (0xC, 5), "ALUINIT": (0x1, 6), "ALU": (0x2, 5),
              "DWINIT": (0xB, 3), "DPTWISE": (0xA, 5), "ELEWINIT": (0xD, 3), "ELEW": (0xE, 3),
              "END": (0x7, 1)}
    assert {i.mnemonic: (i.opcode, i.words) for i in INSTRUCTIONS} == public
    for ins in INSTRUCTIONS:
        assert ins.field("dpdon").bits == "[27:24]" and ins.field("dpdby").bits == "[23:20]"


def test_fields_are_wide_enough_for_every_known_target():
    for target in known_targets():
        for group in target.bank_groups:
            assert group.bank_depth - 1 <= isa.LOAD.field("bank_addr").high, target.name
            assert group.bank_ids[-1] <= isa.LOAD.field("bank_id").high, target.name
    assert isa.LOAD.field("reg_id").high == 7 and isa.LOAD.field("ddr_addr").width == 32


def test_every_instruction_has_an_op_class_from_its_table():
    for ins in INSTRUCTIONS:
        cls = lookup_op(ins.op_name)
        assert cls is not None and cls.spec is ins
        declared = [f.name for f in cls.definition.of("attribute")]
        assert declared == [f.name for f in ins.fields]
    assert lookup_op("dpuisa.program") is ProgramOp


def test_docs_show_each_table_as_the_code_has_it():
    text = DOCS.read_text(encoding="utf-8")
    for ins in INSTRUCTIONS:
        assert isa.instruction_markdown(ins) in text, \
            f"docs/dpuisa.md: the {ins.mnemonic} section is stale (python -m xir.dialects.dpuisa)"


# -- encoding: hand-computed words -------------------------------------------------------------


def test_load_words_by_hand():
    op = make_instruction("LOAD", dpdby=0b0100, bank_id=3, bank_addr=100, length=7, channel=32,
                          pad_start=1, jump_read=64, pad_end=2, reg_id=5, jump_write=2,
                          ddr_addr=0x12345678)
    assert encode_words([op]) == [
        0x0 << 28 | 0 << 24 | 0b0100 << 20 | 3 << 14 | 100,
        7 | 32 << 14 | 1 << 28,
        64 | 2 << 20 | 5 << 24,
        2,
        0x12345678,
    ]


def test_convinit_words_by_hand_with_a_negative_shift():
    op = make_instruction("CONVINIT", dpdon=0b0001, shift_cut=7, shift_bias=-2, act_type=1,
                          kernel_h=3, kernel_w=3, stride_h=2, stride_w=1, jump_read=10,
                          jump_write=20, shift_hsigmoid=3, shift_hswish=5)
    assert encode_words([op]) == [
        0x9 << 28 | 0b0001 << 24 | 7 | (64 - 2) << 5 | 1 << 11,
        3 | 3 << 5 | 2 << 10 | 1 << 14,
        10 | 20 << 14,
        3 | 5 << 5,
    ]


def test_elew_and_end_bytes_by_hand():
    elew = make_instruction("ELEW", dpdon=0b0010, bank_id_out=8, bank_addr_out=5, bank_id_in_0=1,
                            bank_addr_in_0=100, length=4, bank_id_in_1=2, bank_addr_in_1=200,
                            channel_group=3)
    assert encode_words([elew]) == [0xE << 28 | 0b0010 << 24 | 8 << 14 | 5,
                                    100 | 1 << 14 | 4 << 20, 200 | 2 << 14 | 3 << 20]
    assert encode([make_instruction("END")]) == bytes([0x00, 0x00, 0x00, 0x70])


# -- encoding: round trips ---------------------------------------------------------------------


@pytest.mark.parametrize("ins", INSTRUCTIONS, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_instruction_round_trips(ins, data):
    values = values_of(ins, data.draw)
    op = make_instruction(ins.mnemonic, **values)
    binary = encode([op])
    assert len(binary) == 4 * ins.words
    (back,) = decode(binary)
    assert type(back) is type(op) and back.field_values() == values
    assert encode([back]) == binary


@pytest.mark.parametrize("ins", INSTRUCTIONS, ids=IDS)
@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_every_legal_word_pattern_round_trips(ins, data):
    # From the bits' side: any words with the opcode and no reserved bit decode and re-encode
    # to themselves.
    words = [data.draw(st.integers(0, 2**32 - 1)) & ins.used_mask(k) for k in range(ins.words)]
    words[0] = words[0] & 0x0FFFFFFF | ins.opcode << 28
    assert encode_words(decode(words)) == words


@settings(max_examples=100, deadline=None)
@given(st.lists(instructions(), max_size=12))
def test_streams_round_trip_through_binary_and_listing(stream):
    ops = [make_instruction(ins.mnemonic, **values) for ins, values in stream]
    words = encode_words(ops)
    assert [(i.mnemonic, v) for _, i, v in decode_words(words)] == \
           [(i.mnemonic, v) for i, v in stream]
    text = disassemble(words)
    assert assemble(text) == words
    assert disassemble(assemble(text)) == text


# -- decoding errors -----------------------------------------------------------------------------


def _stream():
    return encode_words([make_instruction("LOAD", length=1, channel=16),
                         make_instruction("CONVINIT", kernel_h=1, kernel_w=1),
                         make_instruction("END")])


def test_decode_rejects_an_unknown_opcode_naming_the_word():
    words = _stream()
    words[5] = 0x30000000
    with pytest.raises(XirError) as e:
        decode(words)
    assert message(e) == "instruction stream: word 5: unknown opcode 0x3 in 0x30000000"


def test_decode_rejects_a_truncated_instruction():
    with pytest.raises(XirError) as e:
        decode(encode_words([make_instruction("LOAD")])[:3])
    assert message(e) == ("instruction stream: word 0: truncated LOAD: it has 5 words, but the "
                          "stream ends after 3")


def test_decode_rejects_set_reserved_bits():
    words = _stream()
    words[5 + 1] |= 1 << 31  # CONVINIT word 1 uses bits [17:0] only
    with pytest.raises(XirError) as e:
        decode(words)
    assert message(e) == "instruction stream: word 6: CONVINIT word 1 sets reserved bits 0x80000000"


def test_decode_rejects_a_partial_word():
    with pytest.raises(XirError) as e:
        decode(encode(decode(_stream())) + b"\x00")
    assert message(e) == "instruction stream: 41 bytes is not a whole number of 32-bit words"


def test_a_corrupted_bank_address_names_the_instruction():
    words = _stream()
    words[0] |= 2047  # LOAD's bank_addr: 2047 plus a 1-row, 1-word access fits VB0
    decode_program(words, "DPUCZDX8G_ISA1_B4096")
    words[0] = words[0] & ~0x3FFF | 5000
    with pytest.raises(XirError) as e:
        decode_program(words, "DPUCZDX8G_ISA1_B4096")
    assert message(e) == ("'dpuisa.load' op bank_addr = 5000 is beyond bank group VB0's depth "
                          "2048 (words 0-2047) (at 'instruction 0 at word 0')")
    decode_program(words, "DPUCAHX8H_ISA2")  # 8192 deep


# -- the verifier ----------------------------------------------------------------------------------


def _program(*ops, target="DPUCZDX8G_ISA1_B4096"):
    return make_program([*ops, make_instruction("END")], target)


def _verify_error(*ops, target="DPUCZDX8G_ISA1_B4096") -> str:
    with pytest.raises(XirError) as e:
        verify(_program(*ops, target=target))
    return message(e)


def test_verifier_field_too_wide():
    assert _verify_error(make_instruction("CONV", channel_group=512, bank_id_out=8,
                                          bank_id_weights=16, bank_id_bias=33)) == \
        "'dpuisa.conv' op channel_group = 512 does not fit its 9 bits: range [0, 511]"
    assert _verify_error(make_instruction("ELEWINIT", shift_write=-17)) == \
        "'dpuisa.elewinit' op shift_write = -17 does not fit its 5 signed bits: range [-16, 15]"


def test_encoder_refuses_a_field_too_wide():
    with pytest.raises(XirError) as e:
        encode([make_instruction("END"), make_instruction("LOAD", reg_id=8)])
    assert message(e) == ("instruction 1 (word 1): LOAD: reg_id = 8 does not fit its 3 bits: "
                          "range [0, 7]")


def test_verifier_bank_address_beyond_depth():
    assert _verify_error(make_instruction("SAVE", bank_id=8, bank_addr=2048, channel=16)) == \
        "'dpuisa.save' op bank_addr = 2048 is beyond bank group VB1's depth 2048 (words 0-2047)"
    # LOAD: 3 pixels of 32 bytes (2 words of 16) at 2040 go to banks 0, 1, 2 (words 2040-2041).
    load = dict(bank_id=0, bank_addr=2040, length=3, channel=32, jump_write=2)
    verify(_program(make_instruction("LOAD", **load)))
    # 21 pixels go round VB0's 8 banks 3 times (slots 0-20): the last at word 2040 + 2·4 + 1.
    assert _verify_error(make_instruction("LOAD", **{**load, "length": 20, "pad_end": 1,
                                                     "jump_write": 4})) == (
        "'dpuisa.load' op bank_addr = 2040 with bank_id = 0, pad_start = 0, length = 20, "
        "pad_end = 1, jump_write = 4, channel = 32 reaches word 2049, beyond bank group VB0's "
        "depth 2048 (words 0-2047)")
    verify(_program(make_instruction("LOAD", **{**load, "length": 20, "pad_end": 1,
                                                "jump_write": 3})))  # ... 2047 fits
    # Starting at bank 5: 4 pixels take slots 5-8, so the fourth wraps to bank 0, one jump on.
    wrap = dict(bank_id=5, bank_addr=2045, length=4, channel=16, jump_write=3)
    verify(_program(make_instruction("LOAD", **{**wrap, "length": 3})))
    assert _verify_error(make_instruction("LOAD", **wrap)).endswith("reaches word 2048, beyond "
                                                                    "bank group VB0's depth 2048 "
                                                                    "(words 0-2047)")
    # Pixels sharing a bank must not overlap: jump below the words of a pixel.
    assert _verify_error(make_instruction("SAVE", bank_id=8, length=9, channel=32,
                                          jump_read=1)) == (
        "'dpuisa.save' op jump_read = 1 is less than the 2 words a pixel of channel = 32 bytes "
        "takes in bank group VB1 (16-byte words): pixels sharing a bank would overlap")
    verify(_program(make_instruction("SAVE", bank_id=8, length=8, channel=32, jump_read=1)))


def test_verifier_unknown_bank_id_and_wrong_group():
    assert _verify_error(make_instruction("ELEW", bank_id_out=0, bank_id_in_0=4, bank_id_in_1=34),
                         target="B512") == (
        "'dpuisa.elew' op bank_id_in_1 = 34 is not a bank of DPUCZDX8G_ISA1_B512 "
        "(VB0 0-3, VB1 4-7, CONVW 8-15, DWCONVW 16, BIAS 17)")
    assert _verify_error(make_instruction("ALU", bank_id_in=0, bank_id_out=8,
                                          bank_id_weights=16, bank_id_bias=33)) == (
        "'dpuisa.alu' op bank_id_weights = 16 is in bank group CONVW, but the alu engine's "
        "weight bank is DWCONVW")


def test_verifier_without_a_target_checks_fields_only():
    verify(_program(make_instruction("LOAD", bank_id=63, bank_addr=16383), target=None))


def test_verifier_dependency_flags():
    assert _verify_error(make_instruction("SAVE", dpdby=0b0010, bank_id=8)) == \
        "'dpuisa.save' op dpdby = 0b0010 names SAVE, the queue SAVE itself runs on"
    with pytest.raises(XirError) as e:
        verify(make_program([make_instruction("END", dpdon=1)]))
    assert message(e) == "'dpuisa.end' op dpdon = 0b0001: END runs on no queue, its flags must be 0"
    # CONV signals SAVE twice, SAVE waits once.
    conv = dict(bank_id_out=8, bank_id_weights=16, bank_id_bias=33, dpdby=0b0010)
    save = dict(bank_id=8, dpdon=0b0100)
    verify(_program(make_instruction("CONV", **conv), make_instruction("SAVE", **save)))
    assert _verify_error(make_instruction("CONV", **conv), make_instruction("CONV", **conv),
                         make_instruction("SAVE", **save)) == (
        "'dpuisa.program' op dependency tokens CONV -> SAVE do not balance: 2 signalled (dpdby), "
        "1 awaited (dpdon)")


# -- text forms ------------------------------------------------------------------------------------


def _sample_program() -> ProgramOp:
    return _program(
        make_instruction("LOAD", dpdby=0b0100, bank_id=0, length=4, channel=16, jump_read=16,
                         jump_write=1, reg_id=1, ddr_addr=0x1000),
        make_instruction("CONVINIT", shift_cut=7, shift_bias=-2, act_type=1, kernel_h=1,
                         kernel_w=1, stride_h=1, stride_w=1, jump_read=4, jump_write=4),
        make_instruction("CONV", dpdon=0b0001, dpdby=0b0010, bank_id_out=8, length=4,
                         bank_id_weights=16, channel_group=1, bank_id_bias=33),
        make_instruction("SAVE", dpdon=0b0100, bank_id=8, length=4, channel=16, jump_read=1,
                         jump_write=16, reg_id=2))


def test_generic_text_round_trip():
    program = _sample_program()
    verify(program)
    text = print_ir(program)
    module = parse(text, "program.mlir")
    verify(module)
    (back,) = [op for op in module.walk() if isinstance(op, ProgramOp)]
    assert print_ir(back) == text
    assert encode(back) == encode(program)


def test_listing_reads_like_assembly_and_round_trips():
    program = _sample_program()
    text = listing(program)
    lines = text.splitlines()
    assert lines[0] == ("LOAD     dpdon=0b0000 dpdby=0b0100 bank_id=0 bank_addr=0 length=4 "
                        "channel=16 pad_start=0 jump_read=16 pad_end=0 reg_id=1 jump_write=1 "
                        "ddr_addr=4096")
    assert lines[1].startswith("CONVINIT dpdon=0b0000 dpdby=0b0000 shift_cut=7 shift_bias=-2 "
                               "act_type=relu ")
    assert lines[-1] == "END      dpdon=0b0000 dpdby=0b0000"
    assert assemble(text) == encode_words(program)
    assert listing(decode_program(assemble(text), "B4096")) == text


def test_assemble_accepts_short_hand_and_reports_line_numbers():
    words = assemble("; a comment\n\nload bank_id=0x3 length=0b11 channel=16  ; trailing\n"
                     "CONVINIT act_type=4 kernel_h=3\nEND\n")
    assert [(i.mnemonic, v.get("bank_id"), v.get("act_type")) for _, i, v in decode_words(words)] \
        == [("LOAD", 3, None), ("CONVINIT", None, BY_MNEMONIC["CONVINIT"].field("act_type")
                                .choices.index("relu_six")), ("END", None, None)]
    cases = {
        "END\nLOD bank_id=0": "line 2: unknown DPU instruction 'LOD'",
        "LOAD bank=0": "line 1: LOAD has no field 'bank'",
        "LOAD length=1 length=2": "line 1: LOAD sets 'length' twice",
        "LOAD length": "line 1: expected name=value, but got 'length'",
        "CONVINIT act_type=swish": ("line 1: act_type=swish: expected an integer or one of none, "
                                    "relu, prelu, leaky_relu, relu_six, hsigmoid, hswish"),
        "\nSAVE reg_id=9": "line 2: SAVE: reg_id = 9 does not fit its 3 bits: range [0, 7]",
    }
    for text, expected in cases.items():
        with pytest.raises(XirError) as e:
            assemble(text)
        assert message(e) == expected
