"""DPU target descriptions: what a DPU configuration has and can do, as data every stage reads.

``load_target(spec)`` finds one by name (``"DPUCZDX8G_ISA1_B4096"``, ``"b4096"``), by fingerprint
(``"0x101000056010407"``) or from an ``arch.json``; ``known_targets()`` lists them. A
:class:`Target` holds bank groups and engines whose limits are :class:`RangeSet` values. The
DPUCZDX8G ISA1 family is generated from its feature code (:mod:`.isa1`); the other targets are
the JSON files of ``data/`` (see docs/targets.md).
"""

from xir.backend.targets.description import (
    FAMILIES, AluEngine, BankGroup, ConvEngine, DwconvEngine, EltwiseEngine, LoadEngine, PadLimit,
    PoolEngine, SaveEngine, Target,
)
from xir.backend.targets.isa1 import dpuczdx8g_isa1
from xir.backend.targets.ranges import RangeSet
from xir.backend.targets.registry import (
    known_targets, load_arch_json, load_target, parse_fingerprint, target_by_fingerprint,
    target_by_name,
)

__all__ = [
    "FAMILIES", "AluEngine", "BankGroup", "ConvEngine", "DwconvEngine", "EltwiseEngine",
    "LoadEngine", "PadLimit", "PoolEngine", "RangeSet", "SaveEngine", "Target", "dpuczdx8g_isa1",
    "known_targets", "load_arch_json", "load_target", "parse_fingerprint", "target_by_fingerprint",
    "target_by_name",
]
