"""The assembly listing of a DPU instruction stream: one line per instruction, its mnemonic and
every field as ``name=value``, in table order::

    LOAD     dpdon=0b0000 dpdby=0b0100 bank_addr=0 bank_id=0 length=4 channel=16 ...
    CONVINIT dpdon=0b0000 dpdby=0b0000 shift_cut=7 shift_bias=-2 act_type=relu ...

Dependency flags print as 4-bit binary (bit 0, rightmost, is LOAD), enumerated fields by name,
the others in decimal. ``assemble`` reads that text back (also numbers for enumerated fields,
``0x``/``0b`` literals, fields in any order, missing fields as 0, comments after ``;``).
"""

from __future__ import annotations

from typing import Sequence

from xir.diagnostics import XirError

from . import isa
from .encoding import decode_words, encode_words, pack
from .ops import ProgramOp, flags_text

MNEMONIC_WIDTH = max(len(i.mnemonic) for i in isa.INSTRUCTIONS) + 1


def _value_text(f: isa.Field, value: int) -> str:
    if f.name in ("dpdon", "dpdby"):
        return flags_text(value)
    if f.choices and 0 <= value < len(f.choices):
        return f.choices[value]
    return str(value)


def format_instruction(spec: isa.Instruction, values: dict) -> str:
    """The listing line of one instruction."""
    fields = " ".join(f"{f.name}={_value_text(f, values[f.name])}" for f in spec.fields)
    return f"{spec.mnemonic:<{MNEMONIC_WIDTH}}{fields}".rstrip()


def disassemble(data: bytes | Sequence[int]) -> str:
    """The listing of a binary stream (bytes or 32-bit words), one line per instruction."""
    return "".join(format_instruction(spec, values) + "\n"
                   for _, spec, values in decode_words(data))


def listing(program: ProgramOp) -> str:
    """The listing of a ``dpuisa.program``."""
    return disassemble(encode_words(program))


def _parse_value(f: isa.Field, text: str, where: str) -> int:
    if f.choices and text in f.choices:
        return f.choices.index(text)
    try:
        return int(text, 0)
    except ValueError:
        names = f" or one of {', '.join(f.choices)}" if f.choices else ""
        raise XirError(f"{where}{f.name}={text}: expected an integer{names}") from None


def assemble(text: str) -> list[int]:
    """The 32-bit words of a listing; XirError ``line N: ...`` for an unknown instruction or
    field, a repeated field, a bad value or a value too wide for its field."""
    words: list[int] = []
    for n, line in enumerate(text.splitlines(), 1):
        tokens = line.split(";", 1)[0].split()
        if not tokens:
            continue
        where = f"line {n}: "
        spec = isa.BY_MNEMONIC.get(tokens[0].upper())
        if spec is None:
            raise XirError(f"{where}unknown DPU instruction '{tokens[0]}'")
        fields = {f.name: f for f in spec.fields}
        values: dict[str, int] = {}
        for token in tokens[1:]:
            name, eq, value = token.partition("=")
            if not eq or not value:
                raise XirError(f"{where}expected name=value, but got '{token}'")
            if name not in fields:
                raise XirError(f"{where}{spec.mnemonic} has no field '{name}'")
            if name in values:
                raise XirError(f"{where}{spec.mnemonic} sets '{name}' twice")
            values[name] = _parse_value(fields[name], value, where)
        words += pack(spec, values, where)
    return words
