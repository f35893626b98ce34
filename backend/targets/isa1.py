"""The DPUCZDX8G ISA1 family, generated from its feature code (reference/dpu.md §1).

One function, :func:`dpuczdx8g_isa1`, decodes a feature code into the whole description: ARCH
(``fc & 0xF``) picks PP / ICP / OCP, ``(fc >> 8) & 0xF`` is the ALU and eltwise PP,
``(fc >> 24) & 3`` the number of image bank groups, and bits 26–30 the feature flags. The eight
named configurations B512 … B4096 are the feature codes of :data:`ISA1_FEATURE_CODES`; any other
feature code (a board's fingerprint, say) decodes the same way under a derived name.
"""

from __future__ import annotations

from xir.backend.targets.description import (
    AluEngine, BankGroup, ConvEngine, EltwiseEngine, LoadEngine, PadLimit, SaveEngine, Target,
)
from xir.backend.targets.ranges import RangeSet
from xir.diagnostics import XirError

FAMILY = "DPUCZDX8G"
ISA_VERSION = 1
#: ARCH index -> (name, PP, ICP = OCP)
ARCHS = (("B512", 4, 8), ("B800", 4, 10), ("B1024", 8, 8), ("B1152", 4, 12),
         ("B1600", 8, 10), ("B2304", 8, 12), ("B3136", 8, 14), ("B4096", 8, 16))
#: The feature codes of the named configurations (reference/dpu.md §1 table).
ISA1_FEATURE_CODES = {"B512": 0x56010200, "B800": 0x56010201, "B1024": 0x56010402,
                      "B1152": 0x56010203, "B1600": 0x56010404, "B2304": 0x56010405,
                      "B3136": 0x56010406, "B4096": 0x56010407}

BANK_DEPTH = 2048
# Feature-code bits (reference/dpu.md §1).
LOAD_CHANNEL_AUGMENTATION = 1 << 26
LOAD_MEAN = 1 << 27
CONV_LEAKY_RELU = 1 << 28
ALU_LEAKY_RELU = 1 << 29
SAVE_ARGMAX = 1 << 30

CLOCK_MHZ = 300.0
DDR_BYTES_PER_CYCLE = 32.0
DDR_PEAK_GBYTES_PER_S = 17.07
NOTES = (
    "Generated from the feature code by the DPUCZDX8G ISA1 decoding of reference/dpu.md §1.",
    "Assumption: clock_mhz 300 (dpu.md §5: B4096 runs at 300 MHz on ZCU104, 281 MHz on ZCU102; "
    "use Target.evolve(clock_mhz=...) for another board). The same clock is assumed for every size.",
    "Assumption: ddr_bytes_per_cycle 32 (two 128-bit AXI data ports at the DPU clock, per "
    "direction: AXI reads and writes have separate channels); dpu.md states no DDR figure.",
    "Assumption: ddr_peak_gbytes_per_s 17.07 (the ZCU102/ZCU104 PS DDR4: 64 bits at 2133 MT/s, "
    "reads and writes together); dpu.md states no memory figure.",
    "Assumption: limits not stated in dpu.md (ALU stride_out, conv pads) are left out; "
    "conv pads follow pad <= (kernel - 1) * dilation (dpu.md §2).",
    "Assumption: with load mean on, the mean values live in the first image bank group.",
)


def isa1_name(feature_code: int) -> str:
    """The target's name: ``DPUCZDX8G_ISA1_B4096`` for a table feature code, else the size
    and the 16-digit fingerprint (``DPUCZDX8G_ISA1_B4096_0101000016010407``, as Vitis AI names
    a fingerprint it has no named target for)."""
    size = ARCHS[feature_code & 0xF][0]
    if ISA1_FEATURE_CODES.get(size) == feature_code:
        return f"{FAMILY}_ISA1_{size}"
    fingerprint = 1 << 56 | ISA_VERSION << 48 | feature_code
    return f"{FAMILY}_ISA1_{size}_{fingerprint:016X}"


def dpuczdx8g_isa1(feature_code: int) -> Target:
    """The DPUCZDX8G ISA1 target of ``feature_code`` (XirError if it does not decode)."""
    fc = feature_code
    arch = fc & 0xF
    if arch >= len(ARCHS):
        raise XirError(f"feature code {fc:#x} of DPUCZDX8G ISA1 has ARCH {arch}; known: "
                       + ", ".join(f"{i} {name}" for i, (name, _, _) in enumerate(ARCHS)))
    _, pp, cp = ARCHS[arch]
    alu_pp = (fc >> 8) & 0xF
    image_groups = (fc >> 24) & 3
    if image_groups == 0 or alu_pp == 0:
        raise XirError(f"feature code {fc:#x} of DPUCZDX8G ISA1 has {image_groups} image bank "
                       f"groups and ALU PP {alu_pp}; both must be at least 1")

    vbs = [f"VB{i}" for i in range(image_groups)]
    groups = [BankGroup(vb, "Virtual", i * pp, pp, cp, BANK_DEPTH) for i, vb in enumerate(vbs)]
    base = image_groups * pp
    groups += [BankGroup("CONVW", "Param", base, cp, cp, BANK_DEPTH),
               BankGroup("DWCONVW", "Param", base + cp, 1, cp, BANK_DEPTH),
               BankGroup("BIAS", "Param", base + cp + 1, 1, cp, BANK_DEPTH)]

    conv_nonlinear = ["relu"] + (["leaky_relu"] if fc & CONV_LEAKY_RELU else []) + ["relu_six"]
    alu_nonlinear = ["relu"] + (["leaky_relu"] if fc & ALU_LEAKY_RELU else []) + ["relu_six"]
    return Target(
        name=isa1_name(fc), type=FAMILY, isa_version=ISA_VERSION, feature_code=fc,
        bank_groups=groups,
        load=LoadEngine(cp, vbs, vbs[0] if fc & LOAD_MEAN else None),
        save=SaveEngine(cp, vbs, bool(fc & SAVE_ARGMAX)),
        conv=ConvEngine(cp, cp, pp, vbs, vbs, "CONVW", "BIAS", conv_nonlinear,
                        kernel=RangeSet.parse("1-16"), stride=RangeSet.parse("1-8"),
                        channel_augmentation=2 * cp if fc & LOAD_CHANNEL_AUGMENTATION else None),
        eltwise=EltwiseEngine(cp, alu_pp, vbs, vbs, ["relu"], ["add", "mult"]),
        alu=AluEngine(cp, alu_pp, vbs, vbs, "DWCONVW", "BIAS",
                      ["dwconv", "prelu", "avg_pool", "max_pool", "leaky_relu", "max_reduce",
                       "dwconv_no_bias", "hsigmoid"],
                      alu_nonlinear, kernel=RangeSet.parse("1-256"), stride=RangeSet.parse("1-256"),
                      pad=PadLimit(left=RangeSet.parse("0-15"), right=RangeSet.parse("0-255"),
                                   top=RangeSet.parse("0-15"), bottom=RangeSet.parse("0-255"))),
        batch=1, clock_mhz=CLOCK_MHZ, ddr_bytes_per_cycle=DDR_BYTES_PER_CYCLE,
        ddr_peak_gbytes_per_s=DDR_PEAK_GBYTES_PER_S, notes=NOTES,
    )


def isa1_family() -> list[Target]:
    """B512 … B4096, in the order of the table."""
    return [dpuczdx8g_isa1(ISA1_FEATURE_CODES[name]) for name, _, _ in ARCHS]
