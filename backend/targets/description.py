"""The target description as Python values: one frozen class per part of the public schema.

A :class:`Target` is a DPU configuration: its bank groups (the on-chip memories), its engines with
their parallelism, nonlinearities and limits, and the figures the cycle model needs (clock, DDR
bandwidth, batch). Every later stage (inspector, partitioner, tiler, simulator) reads these objects;
none keeps a DPU constant of its own. The JSON form (field names of the public ``target.proto``)
is in :mod:`xir.backend.targets.schema`.
"""

from __future__ import annotations

import attrs

from xir.backend.targets.ranges import RangeSet

#: The fingerprint's type code of each DPU family (reference/dpu.md §1).
FAMILIES: dict[int, str] = {
    1: "DPUCZDX8G", 2: "DPUCAHX8H", 3: "DPUCAHX8L", 4: "DPUCZDI4G",
    5: "DPUCVDX8H", 6: "DPUCVDX8G", 7: "DPUCADF8H",
}
#: The nonlinear types of the schema (``Target.Nonlinear.NonlinearType``).
NONLINEAR_TYPES = ("relu", "prelu", "leaky_relu", "relu_six", "hsigmoid", "hswish")
ELEW_TYPES = ("add", "mult")
POOL_TYPES = ("max", "avg", "max_reduce")
ALU_TYPES = ("dwconv", "prelu", "avg_pool", "max_pool", "leaky_relu", "max_reduce",
             "dwconv_no_bias", "hsigmoid")
BANK_TYPES = ("Virtual", "Param")


def _tuple(value) -> tuple:
    return tuple(value)


@attrs.frozen
class BankGroup:
    """A group of on-chip banks: ``bank_num`` banks, each ``bank_depth`` words of ``bank_width``
    bytes, numbered from ``base_id``. ``type`` is ``Virtual`` (activations) or ``Param``
    (weights, bias)."""

    name: str
    type: str
    base_id: int
    bank_num: int
    bank_width: int
    bank_depth: int

    @property
    def bank_ids(self) -> range:
        """The ids of the group's banks."""
        return range(self.base_id, self.base_id + self.bank_num)

    @property
    def size_bytes(self) -> int:
        """Bytes the whole group holds."""
        return self.bank_num * self.bank_width * self.bank_depth


@attrs.frozen
class PadLimit:
    """Allowed pads per side, each a :class:`RangeSet`."""

    left: RangeSet
    right: RangeSet
    top: RangeSet
    bottom: RangeSet


@attrs.frozen
class LoadEngine:
    """DDR → bank. ``meanvalue_bank`` is set when the load engine subtracts the mean (load mean)."""

    channel_parallel: int
    output_bank: tuple[str, ...] = attrs.field(converter=_tuple)
    meanvalue_bank: str | None = None


@attrs.frozen
class SaveEngine:
    """Bank → DDR. ``argmax`` is set when the save engine can reduce channels to their argmax."""

    channel_parallel: int
    input_bank: tuple[str, ...] = attrs.field(converter=_tuple)
    argmax: bool = False


@attrs.frozen
class ConvEngine:
    """The convolution engine: ``pixel_parallel`` (PP) output pixels × ``input_channel_parallel``
    (ICP) × ``output_channel_parallel`` (OCP) MACs a cycle.

    ``channel_augmentation`` is the channel count the load engine augments a thin input to (None
    when the feature is off). ``pad`` is None where the schema states no range: the rule is then
    ``pad <= (kernel - 1) * dilation`` (reference/dpu.md §2)."""

    input_channel_parallel: int
    output_channel_parallel: int
    pixel_parallel: int
    input_bank: tuple[str, ...] = attrs.field(converter=_tuple)
    output_bank: tuple[str, ...] = attrs.field(converter=_tuple)
    weight_bank: str
    bias_bank: str
    nonlinear: tuple[str, ...] = attrs.field(converter=_tuple)
    kernel: RangeSet
    stride: RangeSet
    channel_augmentation: int | None = None
    pad: PadLimit | None = None

    @property
    def macs_per_cycle(self) -> int:
        """PP · ICP · OCP."""
        return self.pixel_parallel * self.input_channel_parallel * self.output_channel_parallel

    @property
    def peak_ops_per_cycle(self) -> int:
        """2 · PP · ICP · OCP (a MAC is two ops)."""
        return 2 * self.macs_per_cycle


@attrs.frozen
class StreamEngine:
    """What the engines that stream feature maps bank to bank share: ``channel_parallel`` ×
    ``pixel_parallel`` lanes, reading ``input_bank`` groups and writing ``output_bank`` ones."""

    channel_parallel: int
    pixel_parallel: int
    input_bank: tuple[str, ...] = attrs.field(converter=_tuple)
    output_bank: tuple[str, ...] = attrs.field(converter=_tuple)


@attrs.frozen
class EltwiseEngine(StreamEngine):
    """Element-wise add / mult of two activations, ``channel_parallel`` × ``pixel_parallel``."""

    nonlinear: tuple[str, ...] = attrs.field(converter=_tuple)
    elew_type: tuple[str, ...] = attrs.field(converter=_tuple)


@attrs.frozen
class PoolEngine(StreamEngine):
    """A separate pooling engine (ISA0, ISA2); a limit is None for a pool type it lacks."""

    pool_type: tuple[str, ...] = attrs.field(converter=_tuple)
    nonlinear: tuple[str, ...] = attrs.field(converter=_tuple)
    max_kernel: RangeSet | None = None
    max_stride: RangeSet | None = None
    avg_kernel: RangeSet | None = None
    avg_stride: RangeSet | None = None


@attrs.frozen
class DwconvEngine(StreamEngine):
    """A separate depthwise-convolution engine (ISA0)."""

    weight_bank: str
    bias_bank: str
    nonlinear: tuple[str, ...] = attrs.field(converter=_tuple)
    kernel: RangeSet
    stride: RangeSet


@attrs.frozen
class AluEngine(StreamEngine):
    """The ALU (ISA1, ISA3): depthwise conv, pooling, prelu, leaky relu, hsigmoid… in one engine."""

    weight_bank: str
    bias_bank: str
    alu_type: tuple[str, ...] = attrs.field(converter=_tuple)
    nonlinear: tuple[str, ...] = attrs.field(converter=_tuple)
    kernel: RangeSet
    stride: RangeSet
    pad: PadLimit


@attrs.frozen
class Target:
    """One DPU configuration. Fields follow the public ``target.proto``; ``clock_mhz``,
    ``ddr_bytes_per_cycle`` (each direction of the data ports), ``ddr_peak_gbytes_per_s`` (the
    memory behind them, reads and writes together; None: no cap beyond the ports) and ``notes``
    (the assumptions behind figures no public source states) are ours, for the cycle model.

    Engines a family lacks are None (ISA1 has no ``pool`` or ``dwconv``: its ``alu`` does both).
    """

    name: str
    type: str
    isa_version: int
    feature_code: int
    bank_groups: tuple[BankGroup, ...] = attrs.field(converter=_tuple)
    load: LoadEngine
    save: SaveEngine
    conv: ConvEngine
    eltwise: EltwiseEngine
    pool: PoolEngine | None = None
    dwconv: DwconvEngine | None = None
    alu: AluEngine | None = None
    batch: int = 1
    clock_mhz: float = 300.0
    ddr_bytes_per_cycle: float = 16.0
    ddr_peak_gbytes_per_s: float | None = None
    notes: tuple[str, ...] = attrs.field(default=(), converter=_tuple)

    # -- identity ---------------------------------------------------------------------------

    @property
    def type_code(self) -> int:
        """The family's type code (1 for DPUCZDX8G …)."""
        for code, family in FAMILIES.items():
            if family == self.type:
                return code
        raise ValueError(f"target {self.name!r}: unknown DPU family {self.type!r}")

    @property
    def fingerprint(self) -> int:
        """``type << 56 | isa_version << 48 | feature_code``."""
        return self.type_code << 56 | self.isa_version << 48 | self.feature_code

    @property
    def fingerprint_hex(self) -> str:
        """The fingerprint as arch.json writes it: ``0x101000056010407``."""
        return f"{self.fingerprint:#x}"

    # -- performance --------------------------------------------------------------------------

    @property
    def peak_ops_per_cycle(self) -> int:
        """2 · PP · ICP · OCP of the conv engine, times ``batch`` (each batch lane has its own)."""
        return self.conv.peak_ops_per_cycle * self.batch

    @property
    def peak_gops(self) -> float:
        """Peak giga-ops per second at ``clock_mhz``."""
        return self.peak_ops_per_cycle * self.clock_mhz / 1000.0

    # -- feature flags --------------------------------------------------------------------------

    @property
    def load_channel_augmentation(self) -> bool:
        """Whether the load engine widens thin inputs (``conv.channel_augmentation`` channels)."""
        return self.conv.channel_augmentation is not None

    @property
    def load_mean(self) -> bool:
        """Whether the load engine subtracts a mean value on the way in."""
        return self.load.meanvalue_bank is not None

    @property
    def conv_leaky_relu(self) -> bool:
        """Whether conv can fuse a leaky relu."""
        return "leaky_relu" in self.conv.nonlinear

    @property
    def alu_leaky_relu(self) -> bool:
        """Whether the ALU can fuse a leaky relu (after depthwise conv, pooling)."""
        return self.alu is not None and "leaky_relu" in self.alu.nonlinear

    @property
    def save_argmax(self) -> bool:
        """Whether the save engine can write the channel argmax."""
        return self.save.argmax

    # -- banks --------------------------------------------------------------------------------

    def bank_group(self, name: str) -> BankGroup:
        """The bank group called ``name`` (KeyError if there is none)."""
        for group in self.bank_groups:
            if group.name == name:
                return group
        raise KeyError(f"target {self.name!r} has no bank group {name!r}")

    def bank_groups_of_type(self, type: str) -> tuple[BankGroup, ...]:
        """The groups of ``type`` (``Virtual`` or ``Param``), in order."""
        return tuple(g for g in self.bank_groups if g.type == type)

    # -- JSON ---------------------------------------------------------------------------------

    def to_json(self) -> dict:
        """The description as a JSON-ready dict shaped after ``target.proto`` (plus our extras)."""
        from xir.backend.targets.schema import target_to_json

        return target_to_json(self)

    @classmethod
    def from_json(cls, data: dict, source: str = "target description") -> Target:
        """The target of a dict of that shape; XirError naming ``source`` and the field if wrong."""
        from xir.backend.targets.schema import target_from_json

        return target_from_json(data, source)

    def evolve(self, **changes) -> Target:
        """A copy with ``changes`` (e.g. ``clock_mhz=281`` for a board clocked lower)."""
        return attrs.evolve(self, **changes)
