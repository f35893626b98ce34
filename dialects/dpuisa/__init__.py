"""The dpuisa dialect: the DPU's instruction stream, one op per instruction (LOAD, SAVE,
CONVINIT, CONV, POOLINIT, POOL, ALUINIT, ALU, DWINIT, DPTWISE, ELEWINIT, ELEW, END) inside a
``dpuisa.program``.

The instruction set is data (:mod:`.isa`): one table per instruction with each field's word,
bit offset and width. The ops (:mod:`.ops`), the 32-bit little-endian encoder and decoder
(:mod:`.encoding`) and the assembly listing (:mod:`.asm`) all read those tables. See
``docs/dpuisa.md``.
"""

from xir.dialect import Dialect

from .asm import assemble, disassemble, listing
from .encoding import (decode, decode_items, decode_program, decode_words, encode, encode_items,
                       encode_words)
from .isa import BY_MNEMONIC, BY_OPCODE, INSTRUCTIONS, QUEUES, Field, Instruction
from .ops import INSTRUCTION_OPS, InstructionOp, ProgramOp, make_instruction, make_program

DPUISA = Dialect("dpuisa", [ProgramOp, *INSTRUCTION_OPS],
                 "The DPU's instructions, one op each, in a dpuisa.program region.")

__all__ = [
    "BY_MNEMONIC", "BY_OPCODE", "DPUISA", "INSTRUCTIONS", "INSTRUCTION_OPS", "QUEUES", "Field",
    "Instruction", "InstructionOp", "ProgramOp", "assemble", "decode", "decode_items",
    "decode_program", "decode_words", "disassemble", "encode", "encode_items", "encode_words", "listing", "make_instruction",
    "make_program",
]
