"""The depthwise-convolution engine of ISA0 targets: DWINIT and DPTWISE (docs/simulator.md)."""

from __future__ import annotations

from .datamove import BankMap


def dwconv_engines(banks: BankMap) -> tuple:
    """The engines of this unit of one machine; none yet (not simulated)."""
    return ()
