"""How far a compute instruction reaches in the banks: the rows, pixels and words its input
runs, weights, bias and output pixels take, given the INIT before it (docs/simulator.md, "The
conv engine" and the sections after it, has the rules; the simulator's engines read and write
exactly these words).

:func:`compute_extents` gives, for one CONV, ALU, DPTWISE, POOL or ELEW, its accesses in the
order the simulator makes them, each an :class:`Extent` (its bank group and highest word, and
the field a fault names); :meth:`Extent.fault` is the simulator's fault for it, if any. A
window whose pads leave no rows or pixels is an :class:`ExtentProblem`. The verifier
(:mod:`.ops`) reports the first fault of a program statically.
"""

from __future__ import annotations

import attrs

from . import isa

#: compute mnemonic → the INIT whose fields it reads.
INIT_OF = {"CONV": "CONVINIT", "ALU": "ALUINIT", "DPTWISE": "DWINIT", "POOL": "POOLINIT",
           "ELEW": "ELEWINIT"}
#: ALUINIT exec_type codes that pool (the others run as a depthwise convolution).
ALU_POOLS = tuple(k for k, c in enumerate(isa.ALUINIT.field("exec_type").choices)
                  if c in ("max_pool", "avg_pool"))


class ExtentProblem(Exception):
    """A compute instruction whose fields give no extent (pads leaving fewer than 0 rows or
    pixels): ``field`` and the ``text`` after ``field 'name' = value``."""

    def __init__(self, field: str, text: str):
        super().__init__(f"{field} {text}")
        self.field, self.text = field, text


def ceil_div(a: int, b: int) -> int:
    """⌈a / b⌉ for b > 0."""
    return -(-a // b)


@attrs.frozen
class Extent:
    """One bank access of a compute instruction: ``rows`` runs, row k from word ``addr + k ·
    row_jump``, each ``pixels`` pixels of ``words`` words from ring slot ``bank_id`` of
    ``group`` (pixel p in slot q = bank_id − base_id + p, bank q mod bank_num, words from
    (q div bank_num) · ``jump``). ``id_field`` / ``addr_field`` name it; ``what`` labels it in
    a fault (``{k}`` is the row)."""

    id_field: str
    addr_field: str
    group: object  # a targets BankGroup
    bank_id: int
    addr: int
    pixels: int
    words: int
    jump: int
    what: str
    rows: int = 1
    row_jump: int = 0

    @property
    def turns(self) -> int:
        """How many times the run goes round the ring after its first slot's turn."""
        return (self.bank_id - self.group.base_id + self.pixels - 1) // self.group.bank_num

    @property
    def empty(self) -> bool:
        """Whether the access touches no word."""
        return not (self.rows and self.pixels and self.words)

    def last(self, row: int | None = None) -> int:
        """The highest word of row ``row`` (default: of the last row); −1 if empty."""
        if self.empty:
            return -1
        row = self.rows - 1 if row is None else row
        return self.addr + row * self.row_jump + self.turns * self.jump + self.words - 1

    def fault(self) -> str | None:
        """The text after ``field 'addr_field' = value`` of the simulator's fault on this
        access (pixels sharing a bank overlap, or a row passes the group's depth), or None."""
        if self.empty:
            return None
        g = self.group
        if self.turns > 0 and self.jump < self.words:
            return (f"{self.what.format(k=0)}: pixels {self.jump} word(s) apart in a bank "
                    f"overlap (a pixel takes {self.words} word(s) of bank group {g.name})")
        over = self.last(0) - (g.bank_depth - 1)  # words row 0 passes the depth by
        # the first row past the depth (rows climb by row_jump), as the engine reads them
        row = 0 if over > 0 else (ceil_div(1 - over, self.row_jump) if self.row_jump else None)
        if row is None or row >= self.rows:
            return None
        return (f"{self.what.format(k=row)}: {self.pixels} pixel(s) of {self.words} word(s), "
                f"{self.jump} word(s) apart in a bank, reach word {self.last(row)}, which "
                f"exceeds bank group {g.name}'s depth {g.bank_depth} "
                f"(words 0-{g.bank_depth - 1})")


def _window_rows(values: dict, kernel_h: int) -> int:
    """Input rows a windowed instruction reads: kernel_h − pad_top − pad_bottom."""
    rows = kernel_h - values["pad_top"] - values["pad_bottom"]
    if rows < 0:
        raise ExtentProblem("pad_top", f"with pad_bottom = {values['pad_bottom']} leaves "
                                       f"{rows} of the kernel_h = {kernel_h} rows")
    return rows


def _window_pixels(values: dict, kernel_w: int, stride_w: int) -> int:
    """Input pixels of each row: (length − 1) · stride_w + kernel_w − pad_left − pad_right."""
    n_in = (values["length"] - 1) * stride_w + kernel_w - values["pad_left"] - \
        values["pad_right"]
    if n_in < 0:
        raise ExtentProblem("pad_left", f"with pad_right = {values['pad_right']} leaves "
                                        f"{n_in} input pixels")
    return n_in


def _run(values: dict, groups: dict, role: str, pixels: int, channels: int, jump: int | None,
         what: str, rows: int = 1, row_jump: int = 0) -> Extent:
    """The access of fields ``bank_id_<role>`` / ``bank_addr_<role>``: pixels of
    ``channels`` bytes, a bank's pixels ``jump`` words apart (None: one pixel's words)."""
    id_field, addr_field = f"bank_id_{role}", f"bank_addr_{role}"
    group = groups[id_field]
    words = ceil_div(channels, group.bank_width)
    return Extent(id_field, addr_field, group, values[id_field], values[addr_field], pixels,
                  words, words if jump is None else jump, what, rows, row_jump)


def _input_rows(init: dict, values: dict, groups: dict, rows: int, pixels: int,
                channels: int) -> Extent:
    jump_read = init["jump_read"]
    return _run(values, groups, "in", pixels, channels, None,
                f"input row {{k}} (jump_read = {jump_read})", rows, jump_read)


def _output(init: dict, values: dict, groups: dict, channels: int) -> Extent:
    jump = init["jump_write"]
    return _run(values, groups, "out", values["length"], channels, jump,
                f"output (jump_write = {jump})")


def conv_extents(init: dict, values: dict, groups: dict, icp: int, ocp: int,
                 depthwise: bool = False) -> list[Extent]:
    """A CONV's accesses (``depthwise``: an ALU dwconv or DPTWISE, ``icp`` = ``ocp`` = CP):
    the input rows, the weights (kh · kw · channel_group · OCP pixels of ICP bytes; depthwise
    channel_group · kh · kw), the bias (one pixel of OCP bytes; depthwise channel_group) and
    the output pixels (OCP bytes; depthwise channel_group · CP). ``groups``: id field → the
    bank group its bank id is in."""
    kh, kw = init["kernel_h"], init["kernel_w"]
    rows = _window_rows(values, kh)
    if values["length"] == 0:
        return []
    pixels = _window_pixels(values, kw, init["stride_w"])
    cg = values["channel_group"]
    blocks = cg * kh * kw if depthwise else kh * kw * cg * ocp
    return [_input_rows(init, values, groups, rows, pixels, cg * icp),
            _run(values, groups, "weights", blocks, icp, None, "weights"),
            _run(values, groups, "bias", cg if depthwise else 1, ocp, None, "bias"),
            _output(init, values, groups, cg * icp if depthwise else ocp)]


def pool_extents(init: dict, values: dict, groups: dict, cp: int) -> list[Extent]:
    """A pooling's accesses (POOL, or ALU after a max_pool / avg_pool ALUINIT): the input rows
    and the output pixels, channel_group · CP bytes each."""
    rows = _window_rows(values, init["kernel_h"])
    if values["length"] == 0:
        return []
    pixels = _window_pixels(values, init["kernel_w"], init["stride_w"])
    channels = values["channel_group"] * cp
    return [_input_rows(init, values, groups, rows, pixels, channels),
            _output(init, values, groups, channels)]


def elew_extents(init: dict, values: dict, groups: dict, cp: int) -> list[Extent]:
    """An ELEW's accesses: input 0, input 1 (``length`` pixels, ``jump_read_k`` apart) and
    the output (``jump_write`` apart), channel_group · CP bytes a pixel."""
    length, channels = values["length"], values["channel_group"] * cp
    if length == 0:
        return []
    ins = [_run(values, groups, f"in_{k}", length, channels, init[f"jump_read_{k}"],
                f"input {k} (jump_read_{k} = {init[f'jump_read_{k}']})") for k in (0, 1)]
    return ins + [_output(init, values, groups, channels)]


def compute_extents(mnemonic: str, init: dict, values: dict, target, groups: dict
                    ) -> list[Extent]:
    """The accesses of compute instruction ``mnemonic`` (a key of :data:`INIT_OF`) with field
    ``values`` after the INIT with field values ``init``, on ``target`` (its engines'
    parallelism), in the order the simulator's engine makes them; ``groups`` maps each bank id
    field to its bank group. ExtentProblem when the pads leave no window."""
    if mnemonic == "CONV":
        conv = target.conv
        return conv_extents(init, values, groups, conv.input_channel_parallel,
                            conv.output_channel_parallel)
    if mnemonic == "POOL":
        return pool_extents(init, values, groups, target.pool.channel_parallel)
    if mnemonic == "ELEW":
        return elew_extents(init, values, groups, target.eltwise.channel_parallel)
    engine = target.alu if mnemonic == "ALU" else target.dwconv
    cp = engine.channel_parallel
    if mnemonic == "ALU" and init["exec_type"] in ALU_POOLS:
        return pool_extents(init, values, groups, cp)
    return conv_extents(init, values, groups, cp, cp, depthwise=True)


def first_fault(extents: list[Extent]) -> tuple[str, str] | None:
    """(field, text) of the first access in ``extents`` that faults, or None."""
    for e in extents:
        text = e.fault()
        if text is not None:
            return e.addr_field, text
    return None
