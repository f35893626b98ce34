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


def test_the_model_table_covers_every_bundled_model_and_shows_no_miss():
    from onnx_cases import pytorch_cases
    from test_onnx_import import LIGHT_MODELS

    table = (DOCS / "models.md").read_text()
    rows = {line.split("|")[1].strip() for line in table.splitlines() if line.startswith("| ")}
    expected = set(LIGHT_MODELS) | {c.replace("pytorch-", "") for c in pytorch_cases()}
    assert expected <= rows, "regenerate it: python bench/models.py --write docs/models.md"
    assert "✗ |" not in table and "| error:" not in table
