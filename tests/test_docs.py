"""The docs' Python examples run as written, each on its own, so the docs cannot rot."""

import re
from pathlib import Path

import pytest

from xir import dialect as dialects
from xir import pass_manager

DOCS = Path(__file__).resolve().parent.parent / "docs"
_BLOCK = re.compile(r"```python\n(.*?)```", re.S)


def _examples():
    for path in sorted(DOCS.glob("*.md")):
        for i, code in enumerate(_BLOCK.findall(path.read_text())):
            yield pytest.param(path, code, id=f"{path.name}#{i}")


@pytest.fixture(autouse=True)
def clean_registries(monkeypatch):
    """Examples register dialects and passes; keep that from leaking into other tests."""
    monkeypatch.setattr(pass_manager, "_passes", dict(pass_manager._passes))
    monkeypatch.setattr(dialects, "_dialects", dict(dialects._dialects))


def test_every_how_to_page_has_an_example():
    pages = {p.name for p in DOCS.glob("*.md") if _BLOCK.search(p.read_text())}
    assert {"ir.md", "ops.md", "passes.md"} <= pages


@pytest.mark.parametrize("path, code", list(_examples()))
def test_doc_example_runs(path, code):
    exec(compile(code, str(path), "exec"), {"__name__": f"docs_{path.stem}"})
