"""The IR files the round-trip and interop tests read: lit tests, the interop corpus, examples.

A file may hold several inputs separated by ``// -----`` lines (as for ``--split-input-file``); each
is one fixture. Files that are meant not to parse or verify (``expected-error``, ``RUN: not``) are
left out: their point is the error.
"""

from __future__ import annotations

import re
from pathlib import Path

TESTS = Path(__file__).resolve().parent
REPO = TESTS.parent

_SPLIT = re.compile(r"^// -----\s*$", re.M)


def fixture_files() -> list[Path]:
    """Every .mlir/.xir file under tests/lit and tests/interop, and the examples."""
    files = []
    for folder in (TESTS / "lit", TESTS / "interop", REPO / "examples"):
        if folder.is_dir():
            files += [p for p in folder.rglob("*") if p.suffix in (".mlir", ".xir") and p.is_file()
                      and "Output" not in p.relative_to(folder).parts]  # lit's scratch files
    return sorted(files)


def is_error_test(text: str) -> bool:
    return "expected-error" in text or "RUN: not" in text


def fixtures() -> list[tuple[str, str]]:
    """``(id, text)`` for every input of every fixture file that is expected to be valid IR."""
    out = []
    for path in fixture_files():
        text = path.read_text(encoding="utf-8", errors="surrogateescape")
        if is_error_test(text):
            continue
        chunks = _SPLIT.split(text)
        name = str(path.relative_to(REPO))
        for i, chunk in enumerate(chunks):
            if chunk.strip():
                out.append((name if len(chunks) == 1 else f"{name}#{i}", chunk))
    return out


def run_xir(argv: list[str]) -> tuple[int, str, str]:
    """``xir ARGV`` in this process: (exit status, stdout, stderr)."""
    import io
    from contextlib import redirect_stderr, redirect_stdout

    from xir.tools import main as xir_main

    out, err = io.StringIO(), io.StringIO()
    with redirect_stdout(out), redirect_stderr(err):
        code = xir_main.main(argv)
    return code, out.getvalue(), err.getvalue()


def reencoded(data: bytes) -> bytes:
    """An encoded DPU instruction stream decoded column-wise into field values and encoded back
    from them (:func:`~xir.dialects.dpuisa.encoding.decode_items`, ``encode_items``): equal to
    ``data`` when every field of every instruction round-trips. Fast enough for streams of
    10^5 instructions."""
    from xir.dialects.dpuisa.encoding import decode_items, encode_items

    return encode_items(decode_items(data)).astype("<u4").tobytes()
