"""The docs' Python examples run as written, so the docs cannot rot."""

import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _examples():
    for path in sorted(DOCS.glob("*.md")):
        for i, code in enumerate(_BLOCK.findall(path.read_text())):
            yield pytest.param(path, code, id=f"{path.name}#{i}")


@pytest.mark.parametrize("path, code", list(_examples()))
def test_doc_example_runs(path, code):
    exec(compile(code, str(path), "exec"), {"__name__": f"docs_{path.stem}"})
