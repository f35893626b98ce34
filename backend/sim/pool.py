"""The pool engine (ISA0, ISA2): POOLINIT and POOL (docs/simulator.md)."""

from __future__ import annotations

from .datamove import BankMap


def pool_engines(banks: BankMap) -> tuple:
    """The engines of this unit of one machine; none yet (not simulated)."""
    return ()
