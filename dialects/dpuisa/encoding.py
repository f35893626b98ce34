"""Binary form of a DPU instruction stream: 32-bit little-endian words, exactly as the tables of
:mod:`.isa` lay them out, and back.

``encode(program)`` packs every field into its bits (the opcode into word 0's ``[31:28]``);
``decode(data)`` reads the stream back into instruction ops, equal field for field, and
rejects what no encoder writes: a length that is not whole words, an unknown opcode, an
instruction cut off by the end of the stream, or a set reserved bit, each in one line naming
the word index. Decoding checks bits only; the verifier (``decode_program(data, target)``)
checks what the fields mean against a target.
"""

from __future__ import annotations

import functools
import struct
from typing import Iterable, Iterator, Sequence

import numpy as np

from xir import attributes as A
from xir.diagnostics import XirError

from . import isa
from .ops import ProgramOp, make_instruction, make_program

STREAM = "instruction stream"


def pack(spec: isa.Instruction, values: dict, where: str = "") -> list[int]:
    """The words of instruction ``spec`` with field ``values`` (missing fields 0); XirError
    naming ``where``, the instruction and the field if a value does not fit its width."""
    words = [0] * spec.words
    words[0] = spec.opcode << isa.OPCODE_LSB
    for f in spec.fields:
        value = values.get(f.name, 0)
        if not f.fits(value):
            raise XirError(f"{where}{spec.mnemonic}: {f.problem(value)}")
        words[f.word] |= f.put(value)
    return words


def encode_items(items: Iterable) -> np.ndarray:
    """The uint32 words of ``[mnemonic, field values]`` items (missing fields 0), packed
    straight from the table without building ops: the same words as :func:`encode` of their
    instruction ops, for streams of 10^5 instructions. XirError naming the instruction, its
    word and the field if a value does not fit, or an item names no field of its
    instruction. The inverse of :func:`decode_items`."""
    out: list[int] = []
    for n, (mnemonic, values) in enumerate(items):
        spec, fields = _packers(mnemonic)
        words = [0] * spec.words
        words[0] = spec.opcode << isa.OPCODE_LSB
        for name, value in values.items():
            f = fields.get(name)
            if f is None or not f[2] <= value <= f[3]:
                where = f"instruction {n} (word {len(out)}): "
                if f is None:
                    raise XirError(f"{where}{mnemonic}: has no field '{name}'")
                pack(spec, values, where)  # raises, naming the field
            words[f[0]] |= (value & f[4]) << f[1]
        out += words
    return np.asarray(out, dtype=np.uint32)


@functools.cache
def _packers(mnemonic: str) -> tuple:
    """(instruction, {field: (word, lsb, low, high, mask)}) of ``mnemonic``."""
    spec = isa.BY_MNEMONIC[mnemonic]
    return spec, {f.name: (f.word, f.lsb, f.low, f.high, (1 << f.width) - 1)
                  for f in spec.fields}


def unpack(spec: isa.Instruction, words: Sequence[int]) -> dict[str, int]:
    """``{field: value}`` of instruction ``spec`` from its ``words`` (not checked)."""
    return {f.name: f.get(words[f.word]) for f in spec.fields}


def encode_words(program: ProgramOp | Iterable) -> list[int]:
    """The words of a ``dpuisa.program`` (or of instruction ops in order)."""
    ops = program.instructions if isinstance(program, ProgramOp) else program
    words: list[int] = []
    for n, op in enumerate(ops):
        spec = getattr(op, "spec", None)
        if spec is None:
            raise XirError(f"instruction {n}: '{op.name}' is not a DPU instruction")
        words += pack(spec, op.field_values(), f"instruction {n} (word {len(words)}): ")
    return words


def words_to_bytes(words: Sequence[int]) -> bytes:
    """32-bit little-endian bytes of ``words``."""
    return struct.pack(f"<{len(words)}I", *words)


def bytes_to_words(data: bytes) -> list[int]:
    """The 32-bit little-endian words of ``data``; XirError unless it is whole words."""
    if len(data) % 4:
        raise XirError(f"{STREAM}: {len(data)} bytes is not a whole number of 32-bit words")
    return list(struct.unpack(f"<{len(data) // 4}I", data))


def encode(program: ProgramOp | Iterable) -> bytes:
    """The binary stream of a ``dpuisa.program`` (or of instruction ops in order)."""
    return words_to_bytes(encode_words(program))


def decode_words(data: bytes | Sequence[int]) -> Iterator[tuple[int, isa.Instruction, dict]]:
    """``(word index, instruction, field values)`` for each instruction of a stream (bytes or
    words), in order; XirError naming the word index for an unknown opcode, a truncated
    instruction or a set reserved bit."""
    words = bytes_to_words(data) if isinstance(data, (bytes, bytearray)) else list(data)
    i = 0
    while i < len(words):
        word = words[i]
        if not 0 <= word < 1 << isa.WORD_BITS:
            raise XirError(f"{STREAM}: word {i}: {word} is not a 32-bit word")
        opcode = word >> isa.OPCODE_LSB
        spec = isa.BY_OPCODE.get(opcode)
        if spec is None:
            raise XirError(f"{STREAM}: word {i}: unknown opcode {opcode:#x} in {word:#010x}")
        if i + spec.words > len(words):
            raise XirError(f"{STREAM}: word {i}: truncated {spec.mnemonic}: it has {spec.words} "
                           f"words, but the stream ends after {len(words) - i}")
        body = words[i:i + spec.words]
        for k, w in enumerate(body):
            reserved = w & ~spec.used_mask(k) & 0xFFFFFFFF
            if reserved:
                raise XirError(f"{STREAM}: word {i + k}: {spec.mnemonic} word {k} sets reserved "
                               f"bits {reserved:#010x}")
        yield i, spec, unpack(spec, body)
        i += spec.words


def decode(data: bytes | Sequence[int]) -> list:
    """The instruction ops of a stream, in order; each op's location names its place,
    ``loc("instruction 3 at word 10")``, so later errors point into the stream."""
    return [make_instruction(spec.mnemonic, A.NameLoc(f"instruction {n} at word {i}"), **values)
            for n, (i, spec, values) in enumerate(decode_words(data))]


def decode_program(data: bytes | Sequence[int], target: str | None = None) -> ProgramOp:
    """A verified ``dpuisa.program`` of the stream's instructions, checked against ``target``
    when given (an out-of-bank address is an XirError naming the instruction and its word)."""
    from xir.verifier import verify

    program = make_program(decode(data), target)
    verify(program)
    return program


def decode_columns(data: bytes | Sequence[int], scan=None):
    """The stream decoded at once with numpy (for streams of 10^5 instructions, where
    :func:`decode_words` costs tens of µs each): ``(starts, opcodes, columns)``, the word
    index and opcode of each instruction (int64 arrays) and per mnemonic present an int64
    array (its instructions × its fields, in table order). The same checks as
    :func:`decode_words`, whose error is raised for the first bad word. ``scan(step)``, if
    given, replaces the Python loop finding the instructions' first words: from the words
    each word would span if an instruction started there (0: unknown opcode), the starts up to
    the end or to the first unknown opcode, and the index it stopped at."""

    if isinstance(data, (bytes, bytearray, memoryview)):
        if len(data) % 4:
            bytes_to_words(bytes(data))  # raises the message
        words = np.frombuffer(bytes(data), dtype="<u4").astype(np.int64)
    else:
        words = np.asarray(list(data) if not hasattr(data, "__len__") else data, dtype=object)
        try:
            words = words.astype(np.int64)
        except OverflowError:
            words = None
        if words is None or ((words < 0) | (words >= 1 << isa.WORD_BITS)).any():
            list(decode_words(data))
    count = np.zeros(16, np.int64)  # words per opcode, 0: unknown
    for spec in isa.INSTRUCTIONS:
        count[spec.opcode] = spec.words
    step = count[words >> isa.OPCODE_LSB]
    n = len(step)
    if scan is not None:
        starts, i = scan(step)
    else:
        step, starts, i = step.tolist(), [], 0
        while i < n:
            starts.append(i)
            if step[i] == 0:
                break
            i += step[i]
    starts = np.asarray(starts, np.int64)
    opcodes = words[starts] >> isa.OPCODE_LSB if len(starts) else np.zeros(0, np.int64)
    if len(starts) and (count[opcodes] == 0).any() or i > n:
        list(decode_words(data))
    columns = {}
    for spec in isa.INSTRUCTIONS:
        at = starts[opcodes == spec.opcode]
        if not len(at):
            continue
        body = words[at[:, None] + np.arange(spec.words)]
        used = np.array([spec.used_mask(k) for k in range(spec.words)], np.int64)
        if (body & ~used & 0xFFFFFFFF).any():
            list(decode_words(data))
        word, lsb, width = (np.array([getattr(f, a) for f in spec.fields], np.int64)
                            for a in ("word", "lsb", "width"))
        cols = (body[:, word] >> lsb) & ((1 << width) - 1)  # every field at once
        for j, f in enumerate(spec.fields):
            if f.signed:
                cols[:, j] = np.where(cols[:, j] > f.high, cols[:, j] - (1 << f.width),
                                      cols[:, j])
        columns[spec.mnemonic] = cols
    return starts, opcodes, columns


def decode_items(data: bytes | Sequence[int]) -> list:
    """``[mnemonic, field values]`` of each instruction of a stream, in order, decoded
    column-wise (:func:`decode_columns`: a ResNet-50 stream of 10^5 instructions in about a
    second, not op by op). The inverse of :func:`encode_items`; the cycle model reads it."""
    _, opcodes, columns = decode_columns(data)
    rows = {}
    for mnemonic, table in columns.items():
        spec = isa.BY_MNEMONIC[mnemonic]
        names = [f.name for f in spec.fields]
        rows[spec.opcode] = iter([[mnemonic, dict(zip(names, values))]
                                  for values in table.tolist()])
    return [next(rows[op]) for op in opcodes.tolist()]
