"""The simulator's machine (docs/simulator.md): LOAD and SAVE against the bank contract, the
dependency tokens in any queue order, deadlocks, bounds-checked accesses with one-line faults,
the binary form, and the dpuisa verifier agreeing with what the machine accepts."""

from __future__ import annotations

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from xir.backend.sim.machine import Counters, Machine, simulate
from xir.backend.targets import load_target
from xir.diagnostics import XirError
from xir.dialects.dpuisa import decode_program, encode, encode_words, make_instruction as mi
from xir.dialects.dpuisa import isa, make_program
from xir.verifier import verify

B4096 = "DPUCZDX8G_ISA1_B4096"
LOAD, SAVE, CONV, MISC = 0b0001, 0b0010, 0b0100, 0b1000  # dependency-flag bits


def message(excinfo) -> str:
    return excinfo.value.diagnostic.message


def ramp(size: int) -> bytes:
    """DDR whose byte at address a is a mod 251 (a prime: no period of a power of two)."""
    return (np.arange(size) % 251).astype(np.uint8).tobytes()


def program(*ops, target=B4096):
    return make_program([*ops, mi("END")], target)


def fault(ops, ddr=4096, registers=None, target=B4096) -> str:
    with pytest.raises(XirError) as e:
        Machine(target, ddr).run(program(*ops, target=None), registers or {0: 0, 1: 0})
    return message(e)


# -- the bank contract, by hand ------------------------------------------------------------------


def test_load_places_pixels_round_the_group_by_hand():
    # VB0 of B4096: 8 banks (ids 0-7) of 16-byte words. 2 pad pixels, 9 loaded pixels of 20
    # bytes (2 words each, the second 4 bytes + 12 zeros) 24 bytes apart in DDR from byte 100,
    # 1 pad pixel; the run starts at bank 3, word 10, so pixel p sits in ring slot q = 3 + p,
    # bank q mod 8, words 10 + (q div 8)·2 and one more.
    m = Machine(B4096, ramp(4096))
    m.run(program(mi("LOAD", bank_id=3, bank_addr=10, pad_start=2, length=9, pad_end=1,
                     channel=20, jump_read=24, jump_write=2, reg_id=1, ddr_addr=60)),
          {0: 0, 1: 40})
    vb0 = m.bank("VB0").data
    expect = lambda a, n: (np.arange(a, a + n) % 251).astype(np.uint8)  # noqa: E731
    # pixel 2 = loaded pixel 0 (DDR 100-119): slot 5 → bank 5, words 10-11
    assert (vb0[5, 10] == expect(100, 16)).all()
    assert (vb0[5, 11, :4] == expect(116, 4)).all() and not vb0[5, 11, 4:].any()
    # pixel 7 = loaded pixel 5 (DDR 100 + 5·24 = 220): slot 10 → bank 2, words 12-13
    assert (vb0[2, 12] == expect(220, 16)).all() and (vb0[2, 13, :4] == expect(236, 4)).all()
    # pixel 9 = loaded pixel 7 (DDR 268): slot 12 → bank 4, word 12
    assert (vb0[4, 12] == expect(268, 16)).all()
    # pixel 8 = loaded pixel 6 (DDR 244): slot 11 → bank 3, words 12-13
    assert (vb0[3, 12] == expect(244, 16)).all() and (vb0[3, 13, :4] == expect(260, 4)).all()
    # pixel 10 = loaded pixel 8 (DDR 292): slot 13 → bank 5, words 12-13
    assert (vb0[5, 12] == expect(292, 16)).all()
    # Again over banks full of 0xEE: the pads (pixels 0, 1, 11: slots 3, 4, 14) are zeros, and
    # the slots around the run (2: bank 2 words 10-11; 15: bank 7 words 12-13) are untouched.
    m.bank("VB0").data[...] = 0xEE
    counters = m.run(program(mi("LOAD", bank_id=3, bank_addr=10, pad_start=2, length=9,
                                pad_end=1, channel=20, jump_read=24, jump_write=2, reg_id=1,
                                ddr_addr=60)), {1: 40})
    assert not vb0[3, 10:12].any() and not vb0[4, 10:12].any() and not vb0[6, 12:14].any()
    assert (vb0[2, 10:12] == 0xEE).all() and (vb0[7, 12:14] == 0xEE).all()
    assert not vb0[5, 11, 4:].any()  # a pixel's last word: its tail is zeros
    assert (vb0[:, 14:] == 0xEE).all() and (vb0[:, :10] == 0xEE).all()
    assert counters.bytes_loaded("DATA") == counters.bytes_loaded(1) == 9 * 20
    assert counters.bytes_loaded("CONST") == 0 and counters.bytes_saved() == 0
    assert counters.bank_written == {"VB0": 12 * 32} and counters.pad_bytes == 3 * 32


def reference_load(group, bank_id, bank_addr, pad_start, rows: np.ndarray, pad_end, jump):
    """The bank contract written as plain loops: {(bank index, word): 16-byte word}."""
    width = group.bank_width
    words = -(-rows.shape[1] // width)
    pixels = [None] * pad_start + list(rows) + [None] * pad_end
    out = {}
    for p, pixel in enumerate(pixels):
        q = bank_id - group.base_id + p
        lane = np.zeros(words * width, np.uint8)
        if pixel is not None:
            lane[:len(pixel)] = pixel
        for j in range(words):
            out[q % group.bank_num, bank_addr + q // group.bank_num * jump + j] = \
                lane[j * width:(j + 1) * width]
    return out


# -- LOAD then SAVE round trips -------------------------------------------------------------------


def nhwc_program(rng, target, h, w, c, src, dst, pads=True, ring=True, tokens=True):
    """LOAD each row of an h×w×c NHWC tensor at DATA offset ``src`` into VB0 slot r mod 2 (with
    random pads and a random first bank), SAVE it to offset ``dst``; LOAD → SAVE tokens, and
    SAVE → LOAD tokens before a slot is reused (``tokens``)."""
    vb0 = target.bank_group("VB0")
    words = -(-c // vb0.bank_width)
    slot_lines = (-(-(w + 30) // vb0.bank_num) + 1) * words
    ops, rows = [], []
    for r in range(h):
        ps, pe = (int(rng.integers(0, 16)), int(rng.integers(0, 16))) if pads else (0, 0)
        off = int(rng.integers(0, vb0.bank_num)) if ring else 0
        addr = (r % 2) * slot_lines
        reuse = tokens and r >= 2
        ops.append(mi("LOAD", dpdon=SAVE if reuse else 0, dpdby=SAVE, bank_id=vb0.base_id + off,
                      bank_addr=addr, pad_start=ps, length=w, pad_end=pe, channel=c,
                      jump_read=c, jump_write=words, reg_id=1, ddr_addr=src + r * w * c))
        q0 = off + ps  # the first loaded pixel's ring slot
        ops.append(mi("SAVE", dpdon=LOAD, dpdby=LOAD if tokens and r + 2 < h else 0,
                      bank_id=vb0.base_id + q0 % vb0.bank_num,
                      bank_addr=addr + q0 // vb0.bank_num * words, length=w, channel=c,
                      jump_read=words, jump_write=c, reg_id=1, ddr_addr=dst + r * w * c))
        rows.append((off, addr, ps, pe))
    return program(*ops, target=target.name), rows


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1),
       name=st.sampled_from([B4096, "DPUCZDX8G_ISA1_B800", "DPUCZDX8G_ISA1_B1152",
                             "DPUCVDX8G_ISA3_C32B3"]))
def test_load_save_round_trips_random_nhwc_rows(seed, name):
    rng = np.random.default_rng(seed)
    target = load_target(name)
    vb0 = target.bank_group("VB0")
    h, w = int(rng.integers(1, 5)), int(rng.integers(1, 40))
    c = int(rng.integers(1, 4 * vb0.bank_width))
    c += c % vb0.bank_width == 0  # never a whole number of words
    x = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
    src, dst = 64, 64 + x.size + int(rng.integers(0, 100))
    ddr = np.zeros(dst + x.size + 64, np.uint8)
    ddr[src:src + x.size] = x.ravel()
    prog, rows = nhwc_program(rng, target, h, w, c, src, dst)
    verify(prog)
    m = Machine(target, ddr.tobytes())
    counters = m.run(prog, {0: 0, 1: 0})
    assert (m.ddr.data[dst:dst + x.size] == x.ravel()).all()
    assert (m.ddr.data[src:src + x.size] == x.ravel()).all()
    assert not m.ddr.data[dst + x.size:].any() and not m.ddr.data[src + x.size:dst].any()
    # The last row's bytes sit in VB0 exactly as the contract's loops put them.
    off, addr, ps, pe = rows[-1]
    for (bank, word), lane in reference_load(vb0, vb0.base_id + off, addr, ps, x[-1], pe,
                                             -(-c // vb0.bank_width)).items():
        assert (m.bank("VB0").data[bank, word] == lane).all(), (bank, word)
    assert counters.bytes_loaded("DATA") == counters.bytes_saved("DATA") == x.size
    assert counters.instructions == {"LOAD": h, "SAVE": h, "CONV": 0, "MISC": 0}
    assert counters.tokens["LOAD->SAVE"] == h and counters.tokens["SAVE->LOAD"] == max(h - 2, 0)


def _run_in_order(prog, ddr, seed):
    m = Machine(B4096, ddr)
    counters = m.run(prog, {0: 0, 1: 0}, seed=seed)
    return m.ddr.data.copy(), m.bank("VB0").data.copy(), counters


def test_fifty_random_queue_orders_give_identical_results():
    rng = np.random.default_rng(7)
    h, w, c = 9, 21, 37
    x = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
    ddr = np.zeros(2 * x.size + 128, np.uint8)
    ddr[:x.size] = x.ravel()
    prog, _ = nhwc_program(rng, load_target(B4096), h, w, c, 0, x.size + 64)
    verify(prog)
    ddr0, banks0, counters0 = _run_in_order(prog, ddr.tobytes(), None)
    assert (ddr0[x.size + 64:2 * x.size + 64] == x.ravel()).all()
    for seed in range(50):
        ddr1, banks1, counters1 = _run_in_order(prog, ddr.tobytes(), seed)
        assert (ddr1 == ddr0).all() and (banks1 == banks0).all(), seed
        assert counters1 == counters0, seed
        assert counters1.as_dict() == counters0.as_dict()


def test_random_orders_expose_a_missing_token():
    # Without the SAVE → LOAD tokens a LOAD may overwrite a slot before its SAVE: program order
    # still works, but some random order saves the wrong row. That is what the orders are for.
    rng = np.random.default_rng(3)
    h, w, c = 6, 16, 16
    x = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
    ddr = np.zeros(2 * x.size + 64, np.uint8)
    ddr[:x.size] = x.ravel()
    prog, _ = nhwc_program(rng, load_target(B4096), h, w, c, 0, x.size + 64, tokens=False)
    verify(prog)
    outs = [_run_in_order(prog, ddr.tobytes(), s)[0] for s in [None, *range(50)]]
    assert (outs[0][x.size + 64:] == x.ravel()).all()
    assert any((o != outs[0]).any() for o in outs[1:])


# -- deadlocks ------------------------------------------------------------------------------------


def test_a_token_cycle_is_a_deadlock_naming_the_blocked_instructions():
    ops = [mi("LOAD", bank_id=0, length=1, channel=16, jump_read=16, jump_write=1, reg_id=1),
           mi("LOAD", dpdon=SAVE, dpdby=SAVE, bank_id=0, length=1, channel=16, jump_read=16,
              jump_write=1, reg_id=1),
           mi("SAVE", dpdon=LOAD, dpdby=LOAD, bank_id=0, length=1, channel=16, jump_read=1,
              jump_write=16, reg_id=1)]
    verify(program(*ops))  # the tokens balance: only running finds the cycle
    expected = ("dependency deadlock: no queue can step and 2 instructions remain: LOAD waits "
                "at instruction 1 (LOAD at word 5) for a token from SAVE (FIFO SAVE->LOAD is "
                "empty); SAVE waits at instruction 2 (SAVE at word 10) for a token from LOAD "
                "(FIFO LOAD->SAVE is empty)")
    for seed in (None, 1, 2):
        with pytest.raises(XirError) as e:
            Machine(B4096, 4096).run(program(*ops), {1: 0}, seed=seed)
        assert message(e) == expected


def test_tokens_left_at_end_are_an_error():
    with pytest.raises(XirError) as e:
        Machine(B4096, 64).run([mi("LOAD", dpdby=SAVE), mi("END")])
    assert message(e) == ("END with tokens left in their FIFOs (LOAD->SAVE 1): the program "
                          "signals more tokens (dpdby) than it awaits (dpdon)")


# -- faults: one line naming the instruction and the field ----------------------------------------


ROW = dict(bank_id=0, length=4, channel=16, jump_read=16, jump_write=1, reg_id=1)


def test_bank_address_past_the_depth():
    assert fault([mi("LOAD", **ROW), mi("LOAD", **{**ROW, "bank_addr": 2048})]) == (
        "instruction 1 (LOAD at word 5): field 'bank_addr' = 2048 exceeds bank group VB0's "
        "depth 2048 (words 0-2047)")
    # 20 pixels of 32 bytes from bank 6 at word 2040, 3 words apart: slots 6-25, so the last
    # pixel is in bank 1 at 2040 + 3·3 and 2040 + 3·3 + 1 = 2050.
    assert fault([mi("LOAD", **{**ROW, "bank_id": 6, "bank_addr": 2040, "length": 20,
                                "channel": 32, "jump_read": 32, "jump_write": 3})]) == (
        "instruction 0 (LOAD at word 0): field 'bank_addr' = 2040 with bank_id = 6, pad_start = "
        "0, length = 20, pad_end = 0, jump_write = 3, channel = 32 reaches word 2050, which "
        "exceeds bank group VB0's depth 2048 (words 0-2047)")
    edge = dict(ROW, bank_id=6, length=20, channel=32, jump_read=32, jump_write=3)
    Machine(B4096, 4096).run(program(mi("LOAD", **edge, bank_addr=2037)), {1: 0})  # ... 2047
    assert "reaches word 2048, which exceeds" in fault([mi("LOAD", **edge, bank_addr=2038)])
    assert fault([mi("SAVE", **{**ROW, "bank_id": 8, "bank_addr": 2047, "length": 9,
                                "jump_write": 16})]) == (
        "instruction 0 (SAVE at word 0): field 'bank_addr' = 2047 with bank_id = 8, length = 9, "
        "jump_read = 16, channel = 16 reaches word 2063, which exceeds bank group VB1's depth "
        "2048 (words 0-2047)")


def test_bank_outside_every_group_and_group_the_engine_may_not_use():
    assert fault([mi("LOAD", **{**ROW, "bank_id": 40})]) == (
        "instruction 0 (LOAD at word 0): field 'bank_id' = 40 is not a bank of "
        "DPUCZDX8G_ISA1_B4096 (VB0 0-7, VB1 8-15, CONVW 16-31, DWCONVW 32, BIAS 33)")
    assert fault([mi("SAVE", **{**ROW, "bank_id": 16, "jump_write": 16})]) == (
        "instruction 0 (SAVE at word 0): field 'bank_id' = 16 is in bank group CONVW, but the "
        "save engine's input bank is VB0 or VB1")


def test_overlapping_pixels():
    assert fault([mi("LOAD", **{**ROW, "length": 9, "channel": 17})]) == (
        "instruction 0 (LOAD at word 0): field 'jump_write' = 1 is less than the 2 words a "
        "pixel of channel = 17 bytes takes in bank group VB0 (16-byte words): pixels sharing a "
        "bank would overlap")
    assert fault([mi("SAVE", **{**ROW, "jump_write": 8})]) == (
        "instruction 0 (SAVE at word 0): field 'jump_write' = 8 is less than channel = 16: the "
        "saved pixels would overlap in DDR")


def test_ddr_past_the_end_and_unset_register():
    assert fault([mi("LOAD", **{**ROW, "ddr_addr": 4000})], ddr=4096, registers={1: 64}) == (
        "instruction 0 (LOAD at word 0): field 'ddr_addr' = 4000 with reg 1 = 0x40, length = "
        "4, jump_read = 16, channel = 16 reaches DDR byte 4127, which exceeds the DDR's 4096 "
        "bytes")
    assert fault([mi("SAVE", **{**ROW, "jump_write": 16, "reg_id": 3})]) == (
        "instruction 0 (SAVE at word 0): field 'reg_id' = 3 names a DDR base register this run "
        "did not set (set: 0, 1)")


def test_a_fault_changes_nothing():
    m = Machine(B4096, ramp(256))
    with pytest.raises(XirError):
        m.run(program(mi("LOAD", **{**ROW, "length": 20})), {1: 0})  # DDR: 20·16 > 256
    assert not m.bank("VB0").data.any()


def per_instruction(machine):
    """``machine`` with its batch paths off: every instruction through ``execute``."""
    for engine in machine.engines.values():
        engine.execute_batch = None
    return machine


CONV_OK = dict(bank_id_in=0, bank_addr_in=0, bank_id_out=8, length=4, bank_id_weights=16,
               channel_group=1, bank_id_bias=33)
ELEW_OK = dict(bank_id_in_0=0, bank_id_in_1=1, bank_id_out=8, bank_addr_out=100, length=4,
               channel_group=1)
# each a run of instructions of one kind in which one (not the first, not the last) faults
FAULTY_RUNS = {
    "LOAD bank_addr": [mi("LOAD", **ROW, bank_addr=k * 4) for k in range(3)] +
    [mi("LOAD", **{**ROW, "bank_addr": 2048})] + [mi("LOAD", **ROW, bank_addr=40)],
    "LOAD ddr": [mi("LOAD", **ROW, ddr_addr=16 * k) for k in range(3)] +
    [mi("LOAD", **{**ROW, "ddr_addr": 4090})] + [mi("LOAD", **ROW)],
    "LOAD register": [mi("LOAD", **ROW), mi("LOAD", **{**ROW, "reg_id": 5}), mi("LOAD", **ROW)],
    "SAVE overlap": [mi("LOAD", **ROW, dpdby=SAVE)] + [
        mi("SAVE", **{**ROW, "bank_id": 0, "jump_write": 16, "ddr_addr": 256 + 64 * k},
           dpdon=LOAD if k == 0 else 0) for k in range(3)] +
    [mi("SAVE", **{**ROW, "bank_id": 0, "jump_write": 8})],
    "CONV input": [mi("LOAD", **ROW, dpdby=CONV),
                   mi("CONVINIT", kernel_h=1, kernel_w=1, stride_h=1, stride_w=1, jump_read=1,
                      jump_write=1, dpdon=LOAD)] +
    [mi("CONV", **{**CONV_OK, "bank_addr_out": k}) for k in range(3)] +
    [mi("CONV", **{**CONV_OK, "bank_addr_in": 2047, "length": 9})] + [mi("CONV", **CONV_OK)],
    "CONV weights group": [mi("CONVINIT", kernel_h=1, kernel_w=1, stride_h=1, stride_w=1,
                              jump_read=1, jump_write=1),
                           mi("CONV", **CONV_OK),
                           mi("CONV", **{**CONV_OK, "bank_id_weights": 0})],
    "ELEW output": [mi("ELEWINIT", jump_read_0=1, jump_read_1=1, jump_write=1)] +
    [mi("ELEW", **{**ELEW_OK, "bank_addr_out": 4 * k}) for k in range(3)] +
    [mi("ELEW", **{**ELEW_OK, "bank_addr_out": 2047, "length": 12})] + [mi("ELEW", **ELEW_OK)],
    "ELEW bank group": [mi("ELEWINIT", jump_read_0=1, jump_read_1=1, jump_write=1),
                        mi("ELEW", **ELEW_OK), mi("ELEW", **{**ELEW_OK, "bank_id_in_1": 16}),
                        mi("ELEW", **ELEW_OK)],
}


@pytest.mark.parametrize("name", sorted(FAULTY_RUNS))
def test_a_fault_inside_a_batch_is_the_fault_of_that_instruction_alone(name):
    """A run the machine executes as one batch, holding a faulting instruction: the same
    one-line fault as instruction by instruction, after the same instructions before it ran
    (banks, DDR equal)."""
    results = []
    for m in (Machine(B4096, ramp(4096)), per_instruction(Machine(B4096, ramp(4096)))):
        with pytest.raises(XirError) as e:
            m.run(program(*FAULTY_RUNS[name], target=None), {0: 0, 1: 0})
        results.append((message(e), m.ddr.data.copy(),
                        [g.data.copy() for g in m.banks.groups.values()]))
    (text, ddr, banks), (ref_text, ref_ddr, ref_banks) = results
    assert text == ref_text and "field" in text
    assert np.array_equal(ddr, ref_ddr)
    assert all(np.array_equal(a, b) for a, b in zip(banks, ref_banks))
    assert any(b.any() for b in banks) or name.startswith(("CONV weights", "ELEW"))


def test_instructions_without_an_engine_are_not_simulated_yet():
    # a machine whose eltwise engine is taken out (whatever the engines simulate by now)
    m = Machine(B4096, 4096)
    for name in ("ELEWINIT", "ELEW"):
        m.engines.pop(name, None)
    with pytest.raises(XirError) as e:
        m.run(program(mi("LOAD", **ROW, dpdby=MISC), mi("ELEWINIT", dpdon=LOAD), target=None),
              {0: 0, 1: 0})
    assert message(e) == (
        "instruction 1 (ELEWINIT at word 5): ELEWINIT is not simulated yet: the machine runs "
        f"{', '.join(m.engines)}; the eltwise engine (MISC queue) comes next")


def test_program_shape():
    with pytest.raises(XirError) as e:
        Machine(B4096).run([mi("LOAD", length=0)])
    assert message(e) == "the program has no END"
    with pytest.raises(XirError) as e:
        Machine(B4096).run([mi("END"), mi("SAVE")])
    assert message(e) == "instruction 1 (SAVE at word 1): comes after END, which ends the program"
    with pytest.raises(XirError) as e:
        Machine(B4096).run(encode_words([mi("SAVE", dpdby=SAVE), mi("END")]))
    assert message(e) == ("instruction 0 (SAVE at word 0): field 'dpdby' = 2 names SAVE, the "
                          "queue SAVE itself runs on")
    with pytest.raises(XirError) as e:
        Machine(B4096).run(program(target="B512"))
    assert message(e) == "the program is for DPUCZDX8G_ISA1_B512, the machine is " + B4096


# -- the binary form -----------------------------------------------------------------------------


def test_encoded_bytes_run_through_decode_program_and_directly():
    rng = np.random.default_rng(11)
    h, w, c = 3, 11, 21
    x = rng.integers(0, 256, size=(h, w, c), dtype=np.uint8)
    ddr = np.zeros(2 * x.size + 64, np.uint8)
    ddr[:x.size] = x.ravel()
    prog, _ = nhwc_program(rng, load_target(B4096), h, w, c, 0, x.size + 64)
    binary = encode(prog)
    results = []
    for form in (prog, decode_program(binary, B4096), binary, encode_words(prog)):
        m, counters = simulate(form, B4096, ddr.tobytes(), {1: 0})
        assert (m.ddr.data[x.size + 64:] == x.ravel()).all()
        results.append(counters)
    assert all(r == results[0] for r in results)


def test_weights_and_bias_load_with_the_same_rule():
    # Packed conv weights (OCP × ICP blocks, output channel major) as pixels of ICP bytes: bank k
    # of CONVW holds output channel k, one block per word, as the tiler assumes.
    t = load_target(B4096)
    icp = ocp = 16
    blocks = 3
    packed = (np.arange(blocks * ocp * icp) % 251).astype(np.uint8)
    m = Machine(t, packed.tobytes())
    m.run(program(mi("LOAD", bank_id=16, bank_addr=5, length=blocks * ocp, channel=icp,
                     jump_read=icp, jump_write=1, reg_id=0),
                  mi("LOAD", bank_id=33, bank_addr=7, length=2, channel=16, jump_read=16,
                     jump_write=1, reg_id=0)), {0: 0})
    convw = m.bank("CONVW").data
    for b in range(blocks):
        for o in range(ocp):
            start = (b * ocp + o) * icp
            assert (convw[o, 5 + b] == packed[start:start + icp]).all()
    assert (m.bank("BIAS").data[0, 7:9].ravel() == packed[:32]).all()


# -- the verifier agrees with the machine ----------------------------------------------------------


def _field(text: str) -> str:
    found = re.search(r"field '(\w+)'", text) or re.search(r"op (\w+) = ", text)
    return found.group(1)


@settings(max_examples=300, deadline=None)
@given(data=st.data(), name=st.sampled_from([B4096, "DPUCZDX8G_ISA1_B512"]),
       kind=st.sampled_from(["LOAD", "SAVE"]))
def test_the_verifier_accepts_exactly_what_the_machine_runs(data, name, kind):
    target = load_target(name)
    image = target.bank_group("VB1")
    last_bank = target.bank_groups[-1].bank_ids[-1]
    depth = image.bank_depth
    d = data.draw
    channel = d(st.integers(0, 70))
    words = -(-channel // image.bank_width)
    jump = d(st.one_of(st.integers(0, 6), st.integers(words, words + 2),
                       st.integers(words, words + 2)))
    values = dict(bank_id=d(st.one_of(st.integers(0, image.bank_ids[-1]),
                                      st.integers(0, last_bank + 2))),
                  bank_addr=d(st.one_of(st.integers(0, 40), st.integers(depth - 25, depth + 2))),
                  length=d(st.integers(0, 40)), channel=channel, reg_id=1)
    if kind == "LOAD":
        values.update(pad_start=d(st.integers(0, 15)), pad_end=d(st.integers(0, 15)),
                      jump_read=channel, jump_write=jump)
    else:
        values.update(jump_write=channel, jump_read=jump)
    prog = program(mi(kind, **values), target=name)
    try:
        verify(prog)
        verifier = None
    except XirError as e:
        verifier = e.diagnostic.message
    try:
        Machine(target, 64 * 1024).run(prog, {1: 0})
        machine = None
    except XirError as e:
        machine = e.diagnostic.message
    assert (verifier is None) == (machine is None), (verifier, machine)
    if verifier is not None:
        assert _field(verifier) == _field(machine), (verifier, machine)


def random_banks(m, seed):
    rng = np.random.default_rng(seed)
    for mem in m.banks.groups.values():
        mem.data[:] = rng.integers(0, 256, mem.data.shape, dtype=np.uint8)
    return m


ACT_CODES = [isa.ACT_TYPES.index(a) for a in ("none", "relu", "leaky_relu")]


def conv_run(rng, count: int, hazard: bool):
    """CONVINIT and ``count`` random CONVs (window, pads, channel groups, banks and addresses
    varying from one to the next; outputs in both groups, with ``hazard`` on words that inputs
    are read from), then END."""
    kh, kw = int(rng.integers(1, 4)), int(rng.integers(1, 4))
    ops = [mi("CONVINIT", kernel_h=kh, kernel_w=kw, stride_h=1, stride_w=int(rng.integers(1, 3)),
              jump_read=int(rng.integers(1, 40)), jump_write=int(rng.integers(1, 3)),
              shift_cut=int(rng.integers(0, 12)), shift_bias=int(rng.integers(-4, 5)),
              act_type=ACT_CODES[int(rng.integers(0, 3))])]
    for _ in range(count):
        ops.append(mi("CONV", pad_top=int(rng.integers(0, kh)), pad_left=int(rng.integers(0, kw)),
                      pad_right=int(rng.integers(0, kw)), length=int(rng.integers(1, 12)),
                      channel_group=int(rng.integers(1, 3)),
                      bank_id_in=int(rng.integers(0, 16 if hazard else 8)),
                      bank_addr_in=int(rng.integers(0, 200)),
                      bank_id_out=int(rng.integers(0, 8 if hazard else 16)),
                      bank_addr_out=int(rng.integers(0, 200)) + (0 if hazard else 1000),
                      bank_id_weights=16 + int(rng.integers(0, 2)),
                      bank_addr_weights=int(rng.integers(0, 4)) * 36,
                      bank_id_bias=33, bank_addr_bias=int(rng.integers(0, 4))))
    return program(*ops, target=None)


@pytest.mark.parametrize("seed", range(8))
def test_a_conv_batch_equals_its_conv_instructions_one_by_one(seed):
    """Runs of CONVs that share neither inputs nor blocks (some inputs meet some weight blocks
    only), mix channel-group counts, and (odd seeds) write where later CONVs read: banks and
    counters equal to the per-instruction engine's."""
    rng = np.random.default_rng(seed)
    assert_batched_equals_per_instruction(conv_run(rng, 40, hazard=bool(seed % 2)), seed)


def assert_batched_equals_per_instruction(prog, seed: int) -> None:
    """``prog`` run on random banks by the batched machine and by one running every
    instruction alone: the same banks and counters (and some bank bytes written)."""
    results = []
    for m in (random_banks(Machine(B4096, 64), seed),
              per_instruction(random_banks(Machine(B4096, 64), seed))):
        counters = m.run(prog, {})
        results.append(([g.data.copy() for g in m.banks.groups.values()], counters.as_dict()))
    (banks, counts), (ref_banks, ref_counts) = results
    assert counts == ref_counts and counts["bank_written"]
    assert all(np.array_equal(a, b) for a, b in zip(banks, ref_banks))


@pytest.mark.parametrize("seed", range(20))
def test_the_column_decoder_reads_what_decode_words_reads(seed):
    """Table.of (numpy over the whole stream) against decode_words (one instruction at a time)
    on random streams: valid ones give the same instructions, fields and words; corrupted ones
    (a flipped bit, a cut) the same one-line error."""
    from xir.backend.sim.table import Table
    from xir.dialects.dpuisa.encoding import decode_words

    rng = np.random.default_rng(seed)
    specs = [s for s in isa.INSTRUCTIONS]
    ops = []
    for _ in range(int(rng.integers(1, 30))):
        spec = specs[int(rng.integers(len(specs)))]
        ops.append(mi(spec.mnemonic, **{f.name: int(rng.integers(f.low, f.high + 1))
                                         for f in spec.fields if not f.choices}))
    words = encode_words(make_program(ops))
    if seed % 2:
        k = int(rng.integers(len(words)))
        words[k] ^= 1 << int(rng.integers(32))
        if seed % 4 == 3:
            words = words[:int(rng.integers(1, len(words) + 1))]
    try:
        want = [(w, spec.mnemonic, values) for w, spec, values in decode_words(words)]
    except XirError as e:
        with pytest.raises(XirError) as got:
            Table.of(words)
        assert message(got) == e.diagnostic.message
        return
    table = Table.of(words)
    got = [(ins.word, ins.mnemonic, dict(ins.values))
           for ins in (table.instr(n) for n in range(len(table)))]
    assert got == want


def test_the_column_decoder_rejects_an_unknown_opcode_and_a_partial_word_as_decode_words():
    from xir.backend.sim.table import Table
    from xir.dialects.dpuisa.encoding import decode_words

    good = encode_words(program(mi("LOAD", **ROW)))
    for stream in (good[:5] + [0x3 << 28] + good[5:], encode(program(mi("LOAD", **ROW)))[:-2],
                   good[:5] + [1 << 32]):
        with pytest.raises(XirError) as want:
            list(decode_words(stream))
        with pytest.raises(XirError) as got:
            Table.of(stream)
        assert message(got) == message(want)


# -- empty and fully blocked programs; plans ------------------------------------------------------


def test_a_program_of_only_end_runs_and_counts_nothing():
    for prog in (program(), encode(program()), [mi("END")]):
        counters = Machine(B4096, 64).run(prog)
        assert counters.as_dict() == Counters().as_dict()
        assert sum(counters.instructions.values()) == 0 == counters.tokens_passed


def test_a_program_where_no_instruction_can_run_is_a_deadlock():
    ops = [mi("SAVE", dpdon=LOAD, dpdby=LOAD, bank_id=0, length=1, channel=16, jump_read=1,
              jump_write=16, reg_id=1),
           mi("LOAD", dpdon=SAVE, dpdby=SAVE, bank_id=0, length=1, channel=16, jump_read=16,
              jump_write=1, reg_id=1)]
    for seed in (None, 3):
        m = Machine(B4096, ramp(256))
        with pytest.raises(XirError) as e:
            m.run(encode(program(*ops)), {1: 0}, seed=seed)
        assert message(e) == (
            "dependency deadlock: no queue can step and 2 instructions remain: LOAD waits at "
            "instruction 1 (LOAD at word 5) for a token from SAVE (FIFO SAVE->LOAD is empty); "
            "SAVE waits at instruction 0 (SAVE at word 0) for a token from LOAD (FIFO LOAD->SAVE "
            "is empty)")
        assert np.array_equal(m.ddr.data, np.frombuffer(ramp(256), np.uint8))
