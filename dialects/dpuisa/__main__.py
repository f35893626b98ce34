"""``python -m xir.dialects.dpuisa``: print the instruction sections of docs/dpuisa.md, made
from the tables of :mod:`.isa` (paste them after "## The instructions")."""

from xir.dialects.dpuisa.isa import INSTRUCTIONS, instruction_markdown

print("\n".join(instruction_markdown(ins) for ins in INSTRUCTIONS), end="")
