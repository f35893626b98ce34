"""Rewrite patterns and the greedy driver that applies them to a fixed point.

A :class:`RewritePattern` is a small class with one ``match_and_rewrite(op, rewriter)``, typed on the
op it matches; it changes the IR only through the :class:`PatternRewriter` it is handed, so the driver
hears of every change. :func:`apply_patterns_greedily` keeps a worklist of ops: it erases dead pure
ops, folds ops that have a ``fold()`` hook, and tries the patterns for each op's name in order of
``benefit``; ops touched by a rewrite go back on the worklist. One *iteration* empties the worklist;
the driver sweeps the IR again until an iteration changes nothing, at most ``max_iterations`` times.
"""

from __future__ import annotations

import inspect
import typing
from typing import ClassVar, Sequence

from xir.attributes import Attribute
from xir.ir import OpResult, Operation, Value
from xir.traits import ConstantLike, IsTerminator, Pure


class RewritePattern:
    """One rewrite: subclass, set what it matches and implement :meth:`match_and_rewrite`.

    The pattern matches ops named ``op_name``, or ops of class ``op_class``, or, when neither is
    set, ops of the class (or union of classes) that ``match_and_rewrite``'s ``op`` parameter is
    annotated with; any op without an annotation. Patterns with a higher ``benefit`` go first.
    """

    op_name: ClassVar[str | None] = None
    op_class: ClassVar[type | None] = None
    benefit: ClassVar[int] = 1

    def match_and_rewrite(self, op: Operation, rewriter: "PatternRewriter") -> bool:
        """Rewrite ``op`` through ``rewriter`` and return True, or return False and change nothing."""
        raise NotImplementedError

    def root(self) -> tuple[str | None, type | tuple | None]:
        """``(name, class or classes)`` of the ops this pattern matches; None where any will do."""
        cls = self.op_class or _annotated_op_class(type(self))
        if cls is Operation:
            cls = None
        name = self.op_name
        if name is None and isinstance(cls, type) and isinstance(getattr(cls, "name", None), str):
            name = cls.name
        return name, cls


def _annotated_op_class(pattern_class) -> type | tuple | None:
    method = pattern_class.match_and_rewrite
    if method is RewritePattern.match_and_rewrite:
        return None
    first = next(iter(list(inspect.signature(method).parameters)[1:]), None)
    try:
        hint = typing.get_type_hints(method).get(first)
    except Exception as e:  # an annotation that does not resolve is a bug in the pattern
        raise TypeError(f"{pattern_class.__name__}.match_and_rewrite: cannot resolve the type "
                        f"of '{first}': {e}") from None
    classes = typing.get_args(hint) or (hint,)  # a union is a tuple of classes for isinstance
    if all(isinstance(c, type) and issubclass(c, Operation) for c in classes):
        return classes if len(classes) > 1 else classes[0]
    return None


# -- what is dead, what is pure ---------------------------------------------------------------

_PURE: dict[type, bool] = {}


def is_pure(op: Operation) -> bool:
    """Whether ``op`` is registered with the Pure trait (unregistered ops never are)."""
    cls = type(op)
    pure = _PURE.get(cls)
    if pure is None:
        d = op.definition
        pure = _PURE[cls] = d is not None and d.has_trait(Pure) and not d.has_trait(IsTerminator)
    return pure


def is_trivially_dead(op: Operation) -> bool:
    """A pure op none of whose results is used, holding only pure ops and terminators."""
    if not is_pure(op):
        return False
    for result in op.results:
        if result.uses:
            return False
    for region in op.regions:
        for block in region.blocks:
            for inner in block.ops:
                for nested in inner.walk():
                    d = nested.definition
                    if not is_pure(nested) and not (d is not None and d.has_trait(IsTerminator)):
                        return False
    return True


# -- the rewriter ------------------------------------------------------------------------------


class PatternRewriter:
    """The way patterns change IR: every change is reported to ``listener`` (the driver).

    A listener has ``notify_op_inserted``, ``notify_op_modified`` and ``notify_op_erased``, each
    taking one op; all are optional.
    """

    def __init__(self, listener=None):
        self.listener = listener
        self.has_changed = False

    def _notify(self, event: str, op: Operation) -> None:
        self.has_changed = True
        callback = getattr(self.listener, event, None)
        if callback is not None:
            callback(op)

    def insert_op_before(self, op: Operation, anchor: Operation) -> Operation:
        """Insert the new ``op`` just before ``anchor``."""
        anchor.parent.insert_before(op, anchor)
        self._notify("notify_op_inserted", op)
        return op

    def insert_op_after(self, op: Operation, anchor: Operation) -> Operation:
        """Insert the new ``op`` just after ``anchor``."""
        anchor.parent.insert_after(op, anchor)
        self._notify("notify_op_inserted", op)
        return op

    def create_op_before(self, anchor: Operation, name: str, operands=(), result_types=(),
                         **kwargs) -> Operation:
        """Build an op with :meth:`Operation.create` and insert it just before ``anchor``."""
        kwargs.setdefault("location", anchor.location)
        return self.insert_op_before(Operation.create(name, operands, result_types, **kwargs), anchor)

    def notify_op_modified(self, op: Operation) -> None:
        """Say that ``op`` was changed in place (operands, attributes, properties)."""
        self._notify("notify_op_modified", op)

    def set_operand(self, op: Operation, index: int, value: Value) -> None:
        """Make ``op`` use ``value`` as operand ``index``."""
        op.set_operand(index, value)
        self.notify_op_modified(op)

    def replace_all_uses_with(self, old: Value, new: Value) -> None:
        """Make every user of ``old`` use ``new``; the users are revisited."""
        if old is new:
            return
        users = old.users
        old.replace_all_uses_with(new)
        for user in users:
            self.notify_op_modified(user)

    def replace_op(self, op: Operation, new: Operation | Sequence[Value]) -> None:
        """Replace ``op``'s results with ``new`` (an op, inserted before ``op`` if it is in no
        block, or one value per result), then erase ``op``."""
        if isinstance(new, Operation):
            if new.parent is None:
                self.insert_op_before(new, op)
            new = new.results
        if len(new) != len(op.results):
            raise ValueError(f"replacing '{op.name}' ({len(op.results)} results) "
                             f"with {len(new)} values")
        for old, value in zip(op.results, new):
            self.replace_all_uses_with(old, value)
        self.erase_op(op)

    def erase_op(self, op: Operation) -> None:
        """Erase ``op`` and everything in it; its results must be unused."""
        self._notify("notify_op_erased", op)
        op.erase()


# -- the greedy driver -------------------------------------------------------------------------


class GreedyRewriteDriver:
    """Applies patterns and folders to the ops inside a root op until nothing changes.

    After :meth:`run`: ``changed`` (the IR changed), ``converged`` (an iteration changed nothing),
    ``iterations`` (sweeps made). ``max_rewrites`` bounds the rewrites of one iteration (default
    8 per op plus 64), so patterns that undo each other stop instead of looping forever.
    """

    def __init__(self, patterns, max_iterations: int = 10, fold: bool = True,
                 max_rewrites: int | None = None):
        self.fold = fold
        self.max_iterations = max_iterations
        self.max_rewrites = max_rewrites
        self.rewriter = PatternRewriter(self)
        self.by_name: dict[str, list[tuple[type | None, RewritePattern]]] = {}
        self.by_class: list[tuple[type | None, RewritePattern]] = []  # no name: any op of a class
        for pattern in patterns:
            name, cls = pattern.root()
            if name is None:
                self.by_class.append((cls, pattern))
            else:
                self.by_name.setdefault(name, []).append((cls, pattern))
        self._dispatch: dict[str, list[RewritePattern]] = {}
        self.changed = self.converged = False
        self.iterations = 0
        self._stack: list[Operation] = []
        self._pending: set[Operation] = set()

    def patterns_for(self, op: Operation) -> list[RewritePattern]:
        """The patterns that may match ``op``, highest benefit first (cached per op name)."""
        found = self._dispatch.get(op.name)
        if found is None:
            candidates = self.by_name.get(op.name, []) + self.by_class
            found = [p for cls, p in candidates if cls is None or isinstance(op, cls)]
            found.sort(key=lambda p: -p.benefit)  # stable: equal benefits keep their order
            self._dispatch[op.name] = found
        return found

    # The listener interface the rewriter calls.

    def notify_op_inserted(self, op: Operation) -> None:
        for nested in op.walk():
            self._add(nested)

    def notify_op_modified(self, op: Operation) -> None:
        self._add(op)

    def notify_op_erased(self, op: Operation) -> None:
        for value in op.operands:  # their definitions may be dead now
            if isinstance(value, OpResult):
                self._add(value.owner)
        for nested in op.walk():
            self._pending.discard(nested)

    def _add(self, op: Operation) -> None:
        if op not in self._pending:
            self._pending.add(op)
            self._stack.append(op)

    def run(self, root: Operation) -> bool:
        """Rewrite the ops nested in ``root``; return whether a fixed point was reached."""
        self.changed = self.converged = False
        for self.iterations in range(1, self.max_iterations + 1):
            if not self._iterate(root):
                self.converged = True
                break
            self.changed = True
        return self.converged

    def _iterate(self, root: Operation) -> bool:
        ops = list(root.walk())
        ops.pop()  # root itself
        ops.reverse()  # a stack: the first op in the IR comes off first
        self._stack, self._pending = ops, set(ops)
        budget = self.max_rewrites if self.max_rewrites is not None else 8 * len(ops) + 64
        rewriter, stack, pending = self.rewriter, self._stack, self._pending
        rewriter.has_changed = False
        rewrites = 0
        while stack:
            op = stack.pop()
            if op not in pending:
                continue
            pending.discard(op)
            if self._process(op):
                rewriter.has_changed = True
                rewrites += 1
                if rewrites > budget:
                    break
        return rewriter.has_changed

    def _process(self, op: Operation) -> bool:
        if is_trivially_dead(op):
            self.rewriter.erase_op(op)
            return True
        if self.fold and self._fold(op):
            return True
        for pattern in self.patterns_for(op):
            if pattern.match_and_rewrite(op, self.rewriter):
                return True
        return False

    def _fold(self, op: Operation) -> bool:
        folder = getattr(op, "fold", None)
        if folder is None or op.definition is None or op.definition.has_trait(ConstantLike):
            return False
        values = folder()
        if values is None:
            return False
        values = list(values)
        if len(values) != len(op.results):
            raise ValueError(f"fold() of '{op.name}' gave {len(values)} values for "
                             f"{len(op.results)} results")
        if all(v is r for v, r in zip(values, op.results)):  # folded in place
            self.rewriter.notify_op_modified(op)
            return True
        constants = []
        for i, value in enumerate(values):
            if isinstance(value, Attribute):
                constant = materialize_constant(op, value, op.results[i].type)
                if constant is None:
                    return False
                constants.append(constant)
                values[i] = constant.results[0]
        for constant in constants:
            self.rewriter.insert_op_before(constant, op)
        self.rewriter.replace_op(op, values)
        return True


def materialize_constant(op: Operation, value: Attribute, result_type) -> Operation | None:
    """A new constant op holding ``value`` of ``result_type``, built by the hook
    ``materialize_constant(value, type, location)`` of ``op``'s class or else of its dialect;
    None if neither has the hook (or it declines)."""
    hook = getattr(type(op), "materialize_constant", None)
    if hook is None:
        from xir.dialect import lookup_dialect

        hook = getattr(lookup_dialect(op.dialect_name), "materialize_constant", None)
    return None if hook is None else hook(value, result_type, op.location)


def apply_patterns_greedily(root_op: Operation, patterns, max_iterations: int = 10,
                            fold: bool = True, max_rewrites: int | None = None) -> bool:
    """Apply ``patterns`` (and folders, if ``fold``) inside ``root_op`` to a fixed point.

    Returns whether the fixed point was reached within ``max_iterations`` sweeps.
    """
    driver = GreedyRewriteDriver(patterns, max_iterations, fold, max_rewrites)
    return driver.run(root_op)
