"""The eltwise engine: ELEWINIT and ELEW (docs/simulator.md)."""

from __future__ import annotations

from .datamove import BankMap


def elew_engines(banks: BankMap) -> tuple:
    """The engines of this unit of one machine; none yet (not simulated)."""
    return ()
