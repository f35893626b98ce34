"""canonicalize: fold ops and apply every op's canonicalization patterns to a fixed point.

An op class takes part by defining ``fold(self)`` (see :mod:`xir.rewrite`) and/or a classmethod
``canonicalization_patterns()`` returning :class:`~xir.rewrite.RewritePattern` instances. The patterns
of every op class of every dialect used in the module are collected, so an op created during the
rewrite is canonicalized too if its dialect was already present.
"""

from __future__ import annotations

import attrs

from xir.diagnostics import XirError
from xir.dialect import lookup_dialect
from xir.ir import Operation
from xir.pass_manager import Pass, option, register_pass
from xir.rewrite import RewritePattern, apply_patterns_greedily


def canonicalization_patterns(module: Operation) -> list[RewritePattern]:
    """The canonicalization patterns of the op classes of the dialects used in ``module``."""
    dialects = {op.dialect_name for op in module.walk() if op.definition is not None}
    patterns, seen = [], set()
    for dialect_name in sorted(dialects):
        dialect = lookup_dialect(dialect_name)
        for op_class in dialect.op_classes.values() if dialect is not None else ():
            collect = getattr(op_class, "canonicalization_patterns", None)
            for pattern in collect() if collect is not None else ():
                key = (type(pattern), pattern.root())
                if key not in seen:  # a base class's patterns are listed by each subclass
                    seen.add(key)
                    patterns.append(pattern)
    return patterns


@register_pass
@attrs.frozen
class Canonicalize(Pass):
    """Fold ops and apply their canonicalization patterns until nothing changes."""

    name = "canonicalize"
    max_iterations: int = option(10, "sweeps over the IR before giving up",
                                 attrs.validators.ge(1))
    fold: bool = option(True, "fold ops with their fold() hooks")
    strict: bool = option(False, "fail if there is no fixed point after max-iterations sweeps")

    def run(self, module: Operation) -> None:
        """Canonicalize ``module`` in place."""
        patterns = canonicalization_patterns(module)
        converged = apply_patterns_greedily(module, patterns, self.max_iterations, self.fold)
        if not converged and self.strict:
            n = self.max_iterations
            raise XirError(f"canonicalize did not converge after {n} iteration{'s' * (n != 1)}")
