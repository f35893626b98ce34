"""The DPU instruction set as data: one :class:`Instruction` table per instruction, listing each
field's name, word, bit offset and width.

Everything that knows a bit layout reads these tables and nothing else: the op classes
(:mod:`.ops`, one integer attribute per field), the encoder and decoder (:mod:`.encoding`), the
assembler and disassembler (:mod:`.asm`), the verifier, and ``docs/dpuisa.md``, whose
instruction sections are :func:`instruction_markdown`'s output (``python -m
xir.dialects.dpuisa`` prints them; ``tests/test_dpuisa.py`` compares).

Opcodes, word counts and the header (word 0: ``[31:28]`` opcode, ``[27:24]`` dpdon, ``[23:20]``
dpdby) are the public DPUCZDX8G ISA1 facts of ``reference/dpu.md`` §4; where no public source
gives a bit layout, the layout below is xir's own. Every field holds its value as is (no
minus-one encodings); a field marked signed is two's complement. Bits no field covers are
reserved: the encoder writes 0 there and the decoder rejects a word that sets them.
"""

from __future__ import annotations

import attrs

from xir.backend.targets.description import ALU_TYPES, ELEW_TYPES, NONLINEAR_TYPES, POOL_TYPES

WORD_BITS = 32
OPCODE_LSB = 28  # word 0 [31:28]

#: The four instruction queues, in the bit order of the dependency flags (bit 0 = LOAD).
QUEUES = ("LOAD", "SAVE", "CONV", "MISC")

#: Codes of the enumerated fields: value k means ``choices[k]``.
ACT_TYPES = ("none",) + NONLINEAR_TYPES


@attrs.frozen
class Field:
    """One field: ``width`` bits of word ``word`` starting at bit ``lsb``. ``choices`` names the
    codes of an enumerated field (value k is ``choices[k]``)."""

    name: str
    word: int
    lsb: int
    width: int
    doc: str = ""
    signed: bool = False
    choices: tuple[str, ...] = ()

    @property
    def low(self) -> int:
        """The smallest value the field holds."""
        return -(1 << (self.width - 1)) if self.signed else 0

    @property
    def high(self) -> int:
        """The largest value the field holds."""
        return (1 << (self.width - 1)) - 1 if self.signed else (1 << self.width) - 1

    @property
    def mask(self) -> int:
        """The field's bits in its word."""
        return ((1 << self.width) - 1) << self.lsb

    @property
    def bits(self) -> str:
        """``[13:0]``, as data sheets write it."""
        return f"[{self.lsb + self.width - 1}:{self.lsb}]" if self.width > 1 else f"[{self.lsb}]"

    def fits(self, value: int) -> bool:
        """Whether ``value`` is within the field's width."""
        return self.low <= value <= self.high

    def problem(self, value: int) -> str | None:
        """Why ``value`` cannot be this field's value (None if it can)."""
        if not self.fits(value):
            kind = "signed " if self.signed else ""
            return (f"{self.name} = {value} does not fit its {self.width} {kind}bits: "
                    f"range [{self.low}, {self.high}]")
        if self.choices and value >= len(self.choices):
            codes = ", ".join(f"{k} {c}" for k, c in enumerate(self.choices))
            return f"{self.name} = {value} is not a code of {self.name} ({codes})"
        return None

    def put(self, value: int) -> int:
        """``value`` placed in the field's bits of its word."""
        return (value & ((1 << self.width) - 1)) << self.lsb

    def get(self, word: int) -> int:
        """The field's value in ``word``."""
        raw = (word >> self.lsb) & ((1 << self.width) - 1)
        return raw - (1 << self.width) if self.signed and raw > self.high else raw


@attrs.frozen
class BankAccess:
    """A bank the instruction reads or writes: its bank id and address fields, the engine's bank
    list that must hold it (``engine_bank``, an attribute of the target's engine, or None for any
    group), and its extent: ``rows`` fields summed give a pixel count, dealt round the group's
    banks from the bank id, a bank's pixels ``jump`` words apart, each ceil(``size`` /
    bank_width) words (no rows: one word; docs/simulator.md has the rule)."""

    id_field: str
    addr_field: str
    engine_bank: str | None = None
    rows: tuple[str, ...] = ()
    jump: str | None = None
    size: str | None = None


@attrs.frozen
class Instruction:
    """One instruction: mnemonic, opcode, word count, the queue that runs it (None for END),
    the engine of the target it needs (a :class:`~xir.backend.targets.Target` attribute), its
    fields (the header's dpdon and dpdby first) and its bank accesses."""

    mnemonic: str
    opcode: int
    words: int
    queue: str | None
    engine: str | None
    fields: tuple[Field, ...]
    banks: tuple[BankAccess, ...] = ()
    doc: str = ""

    @property
    def op_name(self) -> str:
        """The name of its op: ``dpuisa.load``."""
        return "dpuisa." + self.mnemonic.lower()

    def field(self, name: str) -> Field:
        """The field called ``name`` (KeyError if none)."""
        for f in self.fields:
            if f.name == name:
                return f
        raise KeyError(f"{self.mnemonic} has no field {name!r}")

    def used_mask(self, word: int) -> int:
        """The bits of word ``word`` that the opcode and the fields cover."""
        mask = (0xF << OPCODE_LSB) if word == 0 else 0
        for f in self.fields:
            if f.word == word:
                mask |= f.mask
        return mask


# -- building blocks of the tables ----------------------------------------------------------------

HEADER = (
    Field("dpdon", 0, 24, 4, "wait on: one token from each flagged queue before starting"),
    Field("dpdby", 0, 20, 4, "signal: one token to each flagged queue when done"),
)
ADDR_BITS, ID_BITS = 14, 6  # addresses up to 16383 (deepest bank: 8192), ids up to 63 (max: 34)


_ROLE_WORDS = {"": "", "in": " of the input", "out": " of the output", "weights": " of the weights",
               "bias": " of the bias", "in_0": " of input 0", "in_1": " of input 1"}


def _bank(word: int, role: str, lsb: int = 0) -> tuple[Field, Field]:
    """The bank id (6 bits) and word address (14 bits) of one access, from bit ``lsb`` up."""
    suffix = f"_{role}" if role else ""
    where = _ROLE_WORDS[role]
    return (Field(f"bank_id{suffix}", word, lsb + ADDR_BITS, ID_BITS, f"bank id{where}"),
            Field(f"bank_addr{suffix}", word, lsb, ADDR_BITS, f"bank word address{where}"))


def _pads(word: int, side_bits=(4, 4, 4, 4)) -> tuple[Field, ...]:
    out, lsb = [], 0
    for side, bits in zip(("left", "top", "right", "bottom"), side_bits):
        out.append(Field(f"pad_{side}", word, lsb, bits, f"zero {side} padding (pixels)"))
        lsb += bits
    return tuple(out)


def _window(word: int, kernel_bits: int, stride_bits: int) -> tuple[Field, ...]:
    """kernel_h, kernel_w, stride_h, stride_w side by side from bit 0 of ``word``."""
    k, s = kernel_bits, stride_bits
    return (Field("kernel_h", word, 0, k, "kernel height"),
            Field("kernel_w", word, k, k, "kernel width"),
            Field("stride_h", word, 2 * k, s, "vertical stride"),
            Field("stride_w", word, 2 * k + s, s, "horizontal stride"))


def _jumps(word: int) -> tuple[Field, Field]:
    return (Field("jump_read", word, 0, ADDR_BITS, "bank words between input rows"),
            Field("jump_write", word, ADDR_BITS, ADDR_BITS,
                  "bank words between a bank's output pixels"))


def _shifts(word: int, lsb: int) -> tuple[Field, ...]:
    return (Field("shift_cut", word, lsb, 5, "right shift of the accumulator to the output"),
            Field("shift_bias", word, lsb + 5, 6, "shift aligning the bias (signed)", signed=True),
            Field("act_type", word, lsb + 11, 4, "fused nonlinear", choices=ACT_TYPES))


def _compute_banks(engine_weights: bool) -> tuple[BankAccess, ...]:
    banks = [BankAccess("bank_id_in", "bank_addr_in", "input_bank"),
             BankAccess("bank_id_out", "bank_addr_out", "output_bank")]
    if engine_weights:
        banks += [BankAccess("bank_id_weights", "bank_addr_weights", "weight_bank"),
                  BankAccess("bank_id_bias", "bank_addr_bias", "bias_bank")]
    return tuple(banks)


LENGTH = 12  # output pixels of one compute instruction
CHANNEL_GROUP = 9  # ceil(channels / ICP), up to 256 (reference/dpu.md §2: ic <= 256 * ICP)


def _conv_like(mnemonic, opcode, queue, engine, doc) -> Instruction:
    return Instruction(mnemonic, opcode, 5, queue, engine, HEADER + _pads(0) + (
        *_bank(1, "in"),
        *_bank(2, "out"), Field("length", 2, 20, LENGTH, "output pixels along the row"),
        *_bank(3, "weights"),
        Field("channel_group", 3, 20, CHANNEL_GROUP, "input channel groups of ICP channels"),
        *_bank(4, "bias"),
    ), _compute_banks(True), doc)


def _init(mnemonic, opcode, words, queue, engine, fields, doc) -> Instruction:
    return Instruction(mnemonic, opcode, words, queue, engine, HEADER + fields, (), doc)


# -- the instruction set ------------------------------------------------------------------------

LOAD = Instruction("LOAD", 0x0, 5, "LOAD", "load", HEADER + (
    *_bank(0, ""),
    Field("length", 1, 0, 14, "pixels moved"),
    Field("channel", 1, 14, 14, "bytes per pixel"),
    Field("pad_start", 1, 28, 4, "zero pixels written before the data"),
    Field("jump_read", 2, 0, 20, "DDR bytes between pixels"),
    Field("pad_end", 2, 20, 4, "zero pixels written after the data"),
    Field("reg_id", 2, 24, 3, "DDR base register (0-7)"),
    Field("jump_write", 3, 0, ADDR_BITS, "bank words between a bank's pixels"),
    Field("ddr_addr", 4, 0, 32, "byte offset from the base register"),
), (BankAccess("bank_id", "bank_addr", None, ("pad_start", "length", "pad_end"),
               "jump_write", "channel"),),
    "DDR → bank: ``length`` pixels of ``channel`` bytes from reg[reg_id] + ddr_addr + "
    "k·jump_read, after ``pad_start`` and before ``pad_end`` zero pixels, dealt round the "
    "group's banks from bank_id, ``jump_write`` words apart in each bank (docs/simulator.md).")

SAVE = Instruction("SAVE", 0x4, 5, "SAVE", "save", HEADER + (
    *_bank(0, ""),
    Field("length", 1, 0, 14, "pixels moved"),
    Field("channel", 1, 14, 14, "bytes per pixel"),
    Field("jump_read", 3, 0, ADDR_BITS, "bank words between a bank's pixels"),
    Field("jump_write", 2, 0, 20, "DDR bytes between pixels"),
    Field("reg_id", 2, 24, 3, "DDR base register (0-7)"),
    Field("ddr_addr", 4, 0, 32, "byte offset from the base register"),
), (BankAccess("bank_id", "bank_addr", "input_bank", ("length",), "jump_read", "channel"),),
    "bank → DDR, the mirror of LOAD (no pads): pixel k, read round the group's banks from "
    "bank_id, to reg[reg_id] + ddr_addr + k·jump_write (docs/simulator.md).")

CONVINIT = _init("CONVINIT", 0x9, 4, "CONV", "conv", (
    *_shifts(0, 0),
    *_window(1, 5, 4),
    *_jumps(2),
    Field("shift_hsigmoid", 3, 0, 5, "hard sigmoid's shift"),
    Field("shift_hswish", 3, 5, 4, "hard swish's shift"),
), "sets the convolution's shifts, nonlinear, window and row jumps for the CONVs after it.")

CONV = _conv_like("CONV", 0x8, "CONV", "conv",
                  "one convolution tile: ``length`` output pixels × OCP channels.")

POOLINIT = _init("POOLINIT", 0x6, 2, "MISC", "pool", (
    Field("pool_type", 0, 0, 2, "pooling kind", choices=POOL_TYPES),
    Field("kernel_h", 0, 2, 4, "kernel height"),
    Field("kernel_w", 0, 6, 4, "kernel width"),
    Field("stride_h", 0, 10, 4, "vertical stride"),
    Field("stride_w", 0, 14, 4, "horizontal stride"),
    *_jumps(1),
    Field("shift_cut", 1, 28, 4, "right shift of the average"),
), "sets the pool engine's kind, window, shift and row jumps (ISA0, ISA2).")

POOL = Instruction("POOL", 0xC, 5, "MISC", "pool", HEADER + _pads(0) + (
    *_bank(1, "in"),
    *_bank(2, "out"), Field("length", 2, 20, LENGTH, "output pixels along the row"),
    Field("channel_group", 3, 0, CHANNEL_GROUP, "channel groups of CP channels"),
), _compute_banks(False), "one pooling tile; word 4 is reserved.")

ALUINIT = _init("ALUINIT", 0x1, 6, "MISC", "alu", (
    Field("exec_type", 0, 0, 4, "what the ALU computes", choices=ALU_TYPES),
    Field("act_type", 0, 4, 4, "fused nonlinear", choices=ACT_TYPES),
    Field("shift_cut", 0, 8, 5, "right shift of the accumulator to the output"),
    Field("shift_bias", 0, 13, 6, "shift aligning the bias (signed)", signed=True),
    Field("kernel_h", 1, 0, 9, "kernel height"),
    Field("kernel_w", 1, 9, 9, "kernel width"),
    Field("stride_h", 2, 0, 9, "vertical stride"),
    Field("stride_w", 2, 9, 9, "horizontal stride"),
    Field("multi_factor", 3, 0, 8, "avg pool: m of m / 2^s"),
    Field("shift_factor", 3, 8, 5, "avg pool: s of m / 2^s"),
    Field("shift_hsigmoid", 3, 13, 5, "hard sigmoid's shift"),
    Field("shift_hswish", 3, 18, 4, "hard swish's shift"),
    *_jumps(4),
), "sets the ALU's operation, shifts, window and row jumps (ISA1); word 5 is reserved.")

ALU = Instruction("ALU", 0x2, 5, "MISC", "alu", HEADER + _pads(0, (4, 4, 8)) + (
    *_bank(1, "in"), Field("pad_bottom", 1, 20, 8, "zero bottom padding (pixels)"),
    *_bank(2, "out"), Field("length", 2, 20, LENGTH, "output pixels along the row"),
    *_bank(3, "weights"),
    Field("channel_group", 3, 20, CHANNEL_GROUP, "channel groups of CP channels"),
    *_bank(4, "bias"),
), _compute_banks(True), "one ALU tile (depthwise conv, pooling, prelu …).")

DWINIT = _init("DWINIT", 0xB, 3, "MISC", "dwconv", (
    *_shifts(0, 0),
    *_window(1, 5, 4),
    *_jumps(2),
), "sets the depthwise engine's shifts, nonlinear, window and row jumps (ISA0).")

DPTWISE = _conv_like("DPTWISE", 0xA, "MISC", "dwconv",
                     "one depthwise-convolution tile (ISA0's dwconv engine).")

ELEWINIT = _init("ELEWINIT", 0xD, 3, "MISC", "eltwise", (
    Field("elew_type", 0, 0, 2, "element-wise operation", choices=ELEW_TYPES),
    Field("act_type", 0, 2, 4, "fused nonlinear", choices=ACT_TYPES),
    Field("shift_write", 0, 6, 5, "right shift of the result (signed)", signed=True),
    Field("shift_read_0", 0, 11, 4, "add: input 0 read as (q << 2) >> shift_read_0 (2 guard "
          "bits, then a floor right shift); mult: 0"),
    Field("shift_read_1", 0, 15, 4, "add: input 1 read as (q << 2) >> shift_read_1; mult: 0"),
    Field("jump_read_0", 1, 0, ADDR_BITS, "bank words between a bank's pixels of input 0"),
    Field("jump_read_1", 1, ADDR_BITS, ADDR_BITS, "bank words between a bank's pixels of "
          "input 1"),
    Field("jump_write", 2, 0, ADDR_BITS, "bank words between a bank's output pixels"),
), "sets the element-wise operation, shifts and row jumps.")

ELEW = Instruction("ELEW", 0xE, 3, "MISC", "eltwise", HEADER + (
    *_bank(0, "out"),
    *_bank(1, "in_0"), Field("length", 1, 20, LENGTH, "output pixels along the row"),
    *_bank(2, "in_1"),
    Field("channel_group", 2, 20, CHANNEL_GROUP, "channel groups of CP channels"),
), (BankAccess("bank_id_out", "bank_addr_out", "output_bank"),
    BankAccess("bank_id_in_0", "bank_addr_in_0", "input_bank"),
    BankAccess("bank_id_in_1", "bank_addr_in_1", "input_bank")),
    "one element-wise tile of two inputs.")

END = Instruction("END", 0x7, 1, None, None, HEADER, (),
                  "end of the stream: runs once every queue has drained; its flags are 0.")

#: Every instruction, in the order of reference/dpu.md §4.
INSTRUCTIONS: tuple[Instruction, ...] = (LOAD, SAVE, CONVINIT, CONV, POOLINIT, POOL, ALUINIT,
                                         ALU, DWINIT, DPTWISE, ELEWINIT, ELEW, END)
BY_OPCODE: dict[int, Instruction] = {i.opcode: i for i in INSTRUCTIONS}
BY_MNEMONIC: dict[str, Instruction] = {i.mnemonic: i for i in INSTRUCTIONS}


def _check_table() -> None:
    """Every field lies inside its instruction's words and no two fields share a bit."""
    if len(BY_OPCODE) != len(INSTRUCTIONS):
        raise ValueError("two instructions share an opcode")
    for ins in INSTRUCTIONS:
        names = set()
        used = [(0xF << OPCODE_LSB) if w == 0 else 0 for w in range(ins.words)]
        for f in ins.fields:
            if f.name in names:
                raise ValueError(f"{ins.mnemonic}: field {f.name} declared twice")
            names.add(f.name)
            if not (0 <= f.word < ins.words and f.lsb >= 0 and f.lsb + f.width <= WORD_BITS):
                raise ValueError(f"{ins.mnemonic}.{f.name}: outside the instruction's words")
            if used[f.word] & f.mask:
                raise ValueError(f"{ins.mnemonic}.{f.name}: overlaps another field")
            used[f.word] |= f.mask
        for b in ins.banks:
            for name in (b.id_field, b.addr_field, *b.rows, b.jump, b.size):
                if name is not None and name not in names:
                    raise ValueError(f"{ins.mnemonic}: bank access names unknown field {name}")


_check_table()


def field_table_markdown(ins: Instruction) -> str:
    """The Markdown table of ``ins``'s fields (word, bits, name, range, meaning)."""
    rows = ["| word | bits | field | range | meaning |", "|---|---|---|---|---|",
            f"| 0 | [31:28] | opcode | {ins.opcode:#x} | {ins.mnemonic} |"]
    for f in sorted(ins.fields, key=lambda f: (f.word, -f.lsb)):
        meaning = f.doc
        if f.choices:
            meaning += ": " + ", ".join(f"{k} {c}" for k, c in enumerate(f.choices))
        rows.append(f"| {f.word} | {f.bits} | {f.name} | {f.low}–{f.high} | {meaning} |")
    return "\n".join(rows)


def instruction_markdown(ins: Instruction) -> str:
    """The section of docs/dpuisa.md on ``ins``: heading, role and field table."""
    words = f"{ins.words} word{'s' if ins.words > 1 else ''}"
    return (f"### {ins.mnemonic} ({ins.opcode:#x}, {words}, queue {ins.queue or 'none'}, "
            f"engine {ins.engine or 'none'})\n\n{ins.doc}\n\n{field_table_markdown(ins)}\n")

