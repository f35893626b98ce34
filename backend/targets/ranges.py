"""Range strings: the limits of a target description (``"1-16"``, ``"2,3,5,7,8"``, ``"0-15"``).

The public target schema writes every limit (kernel size, stride, pads) as a string of
comma-separated parts, each a number ``N`` or an inclusive span ``N-M``. :class:`RangeSet` holds
one parsed, answers membership, prints back exactly the canonical text, and describes itself for
the inspector's messages (``'kernel'(17 x 17) is not in DPU supported range([1, 16])``).
"""

from __future__ import annotations

import re

import attrs

from xir.diagnostics import XirError

_PART = re.compile(r"(\d+)(?:-(\d+))?\Z")


@attrs.frozen
class RangeSet:
    """A set of non-negative integers written as inclusive spans, in the order they were written.

    ``spans`` is a tuple of ``(low, high)`` pairs (``low == high`` for a single number). The order
    and grouping are kept, so ``str(RangeSet.parse(text))`` gives back ``text`` (without spaces).
    """

    spans: tuple[tuple[int, int], ...]

    @classmethod
    def parse(cls, text: str) -> RangeSet:
        """The range set of ``text`` (``"1-16"``, ``"2,3,5,7,8"``); XirError if it is malformed."""
        if not isinstance(text, str):
            raise XirError(f"bad range string {text!r}: expected a string like \"1-16\" or \"2,3,5\"")
        spans = []
        for part in text.replace(" ", "").split(","):
            m = _PART.match(part)
            if m is None:
                raise XirError(f"bad range string {text!r}: part {part!r} is not N or N-M "
                               f"(expected e.g. \"1-16\" or \"2,3,5,7,8\")")
            low = int(m.group(1))
            high = low if m.group(2) is None else int(m.group(2))
            if high < low:
                raise XirError(f"bad range string {text!r}: span {part!r} runs backwards")
            spans.append((low, high))
        return cls(tuple(spans))

    @classmethod
    def span(cls, low: int, high: int) -> RangeSet:
        """The one span ``[low, high]``."""
        return cls(((low, high),))

    def contains(self, value: int) -> bool:
        """Whether ``value`` lies in one of the spans."""
        return any(low <= value <= high for low, high in self.spans)

    __contains__ = contains

    @property
    def low(self) -> int:
        """The smallest member."""
        return min(low for low, _ in self.spans)

    @property
    def high(self) -> int:
        """The largest member."""
        return max(high for _, high in self.spans)

    def values(self) -> list[int]:
        """Every member, ascending (mind ``"0-255"``: 256 of them)."""
        return sorted({v for low, high in self.spans for v in range(low, high + 1)})

    def __str__(self) -> str:
        return ",".join(str(low) if low == high else f"{low}-{high}" for low, high in self.spans)

    def describe(self) -> str:
        """The set for messages: ``[1, 16]`` for a span, ``[2, 3, 5, 7, 8]`` for numbers,
        ``[1, 4], 8`` for a mix."""
        if len(self.spans) == 1 and self.spans[0][0] != self.spans[0][1]:
            return f"[{self.spans[0][0]}, {self.spans[0][1]}]"
        if all(low == high for low, high in self.spans):
            return "[" + ", ".join(str(low) for low, _ in self.spans) + "]"
        return ", ".join(str(low) if low == high else f"[{low}, {high}]" for low, high in self.spans)
