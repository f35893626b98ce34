"""Malformed inputs: each must give exactly one ``file:line:col: error: ...`` diagnostic and exit 1,
within a second, and never a Python traceback.

The hand-written corpus lives in ``tests/bad_inputs/``; a file may say what it expects in header
comments, ``// ERROR: <part of the message>`` and ``// ARGS: <xir-opt options>`` (default
``--allow-unregistered-dialect``). Larger inputs (a 10 MB line, random bytes, 10k-deep nesting,
every truncation of a valid file) are generated here. The corpus runs in-process through
``xir.tools.opt.main``; a handful also run through the real ``xir-opt`` executable.
"""

from __future__ import annotations

import io
import os
import random
import re
import shlex
import subprocess
import sys
import time
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from xir.tools import opt

HERE = Path(__file__).parent
CORPUS = HERE / "bad_inputs"
FIXTURES = HERE / "lit" / "ir"
XIR_OPT = Path(sys.executable).parent / "xir-opt"
TIME_LIMIT = 1.0  # seconds per input, as the issue asks
# a new process adds its start-up (0.1-0.3 s, more on a busy machine): the executable checks
# guard against a hang or quadratic blow-up, not against noise
EXECUTABLE_TIME_LIMIT = 3.0

DIAGNOSTIC = re.compile(r"^[^:\n]+:\d+:\d+: error: .+")
# The header line of any diagnostic (with or without a position); quoted source lines do not match.
ERROR_HEADER = re.compile(r"^\S[^\n]*?: error: ", re.M)
DEFAULT_ARGS = ["--allow-unregistered-dialect"]


def run_in_process(argv: list[str]) -> tuple[int, str, str, float]:
    """``xir-opt argv`` in this process: (exit status, stdout, stderr, wall seconds)."""
    out, err = io.StringIO(), io.StringIO()
    start = time.perf_counter()
    with redirect_stdout(out), redirect_stderr(err):
        code = opt.main(argv)
    return code, out.getvalue(), err.getvalue(), time.perf_counter() - start


def run_executable(argv: list[str], stdin: bytes | None = None) -> tuple[int, str, str, float]:
    """The real ``xir-opt`` executable, with a 10 s timeout."""
    start = time.perf_counter()
    result = subprocess.run([str(XIR_OPT), *argv], input=stdin, capture_output=True, timeout=10)
    return (result.returncode, result.stdout.decode("utf-8", "replace"),
            result.stderr.decode("utf-8", "replace"), time.perf_counter() - start)


def assert_one_diagnostic(code: int, stderr: str, seconds: float, expected: str = "",
                          limit: float = TIME_LIMIT) -> None:
    """Exit 1, one error with file:line:col (containing ``expected``), no traceback, in time."""
    assert "Traceback" not in stderr, stderr
    assert code == 1, f"exit status {code}, stderr:\n{stderr}"
    first = stderr.splitlines()[0] if stderr else ""
    assert DIAGNOSTIC.match(first), f"first line is not 'file:line:col: error: ...':\n{stderr[:2000]}"
    headers = ERROR_HEADER.findall(stderr)
    assert len(headers) == 1, f"expected one error, got {len(headers)}:\n{stderr[:2000]}"
    assert expected in first, f"expected {expected!r} in:\n{first}"
    assert seconds < limit, f"took {seconds:.2f} s (limit {limit} s)"


# -- the hand-written corpus ----------------------------------------------------------------------


def _header(data: bytes) -> tuple[str, list[str]]:
    text = data.decode("utf-16") if data.startswith(b"\xff\xfe") else data.decode("utf-8", "replace")
    expected = re.search(r"^// ERROR: ?(.*)$", text, re.M)
    args = re.search(r"^// ARGS:(.*)$", text, re.M)
    return (expected.group(1).rstrip("\r") if expected else "",
            shlex.split(args.group(1)) if args else list(DEFAULT_ARGS))


CORPUS_FILES = sorted(CORPUS.glob("*.mlir"))


def test_corpus_is_large_enough():
    assert len(CORPUS_FILES) >= 50


@pytest.mark.parametrize("path", CORPUS_FILES, ids=[p.stem for p in CORPUS_FILES])
def test_corpus_file(path: Path):
    expected, args = _header(path.read_bytes())
    code, _, stderr, seconds = run_in_process([*args, str(path)])
    assert_one_diagnostic(code, stderr, seconds, expected)
    assert stderr.startswith(("<pipeline>:", str(path) + ":")), stderr


def test_every_corpus_file_states_its_error():
    missing = [p.name for p in CORPUS_FILES if not _header(p.read_bytes())[0]]
    assert not missing, f"add '// ERROR: <message>' to {missing}"


# -- generated inputs -----------------------------------------------------------------------------

TEN_MB = 10 * 1024 * 1024


def _deep(open_: str, close: str, inner: str, n: int = 10_000) -> str:
    return open_ * n + inner + close * n


GENERATED = {
    # name: (text or bytes, expected part of the message)
    "ten-mb-string-then-garbage": ('"test.op"() {s = "' + "a" * TEN_MB + '"} : () -> () $\n',
                                   "unexpected character '$'"),
    "ten-mb-unterminated-string": ('"test.op"() {s = "' + "a" * TEN_MB + "} : () -> ()\n",
                                   "unterminated string literal"),
    "ten-mb-unclosed-dialect-type": ('"test.op"() : () -> !d.t<' + "a" * TEN_MB + "\n", "found '<'"),
    "ten-mb-unclosed-location": ('"test.op"() : () -> () loc("a"(' + "b" * TEN_MB + "\n", ""),
    "ten-mb-comment-then-error": ("// " + "x" * TEN_MB + '\n"test.use"(%x) : (i32) -> ()\n',
                                  "use of undeclared SSA value name '%x'"),
    "ten-mb-dialect-attr-then-error": ('"test.op"() {a = #d.x<' + "y" * TEN_MB + '>} : () -> ()\n%x\n',
                                       "found '%x'"),
    "random-bytes": (random.Random(7).randbytes(100_000), "input is not valid UTF-8"),
    "random-ascii": ("".join(random.Random(8).choices("abc%^{}()<>[]\"':=,@#! \n0123456789", k=100_000)),
                     ""),
    "random-unicode": ("".join(map(chr, random.Random(9).choices(range(32, 0x2FFF), k=10_000))), ""),
    "random-tokens": (" ".join(random.Random(10).choices(
        ['"test.op"', "(", ")", "{", "}", "[", "]", "<", ">", ":", "->", "=", ",", "%a", "%b#1", "^bb0",
         "i32", "tensor<2xf32>", "dense<1>", "loc(", '"s"', "@f", "#d.a<1>", "!d.t", "1.5", "\n"],
        k=50_000)), ""),
    "deep-regions": (_deep('"test.op"() ({\n', "}) : () -> ()\n", ""), "nested too deeply"),
    "deep-arrays": ('"test.op"() {a = ' + _deep("[", "]", "1") + "} : () -> ()\n", "nested too deeply"),
    "deep-dicts": ('"test.op"() {a = ' + _deep("{b = ", "}", "1") + "} : () -> ()\n", "nested too deeply"),
    "deep-dialect-type": ('"test.op"() : () -> !d.t' + _deep("<", ">", "") + "\n", ""),
    "deep-dialect-attr": ('"test.op"() {a = #d.a' + _deep("<", ">", "") + "} : () -> ()\n", ""),
    "deep-tensor-type": ('"test.op"() : () -> ' + _deep("tensor<", ">", "f32") + "\n", ""),
    "deep-fused-locations": ('"test.op"() : () -> () loc(' + _deep("fused[", "]", '"a"') + ")\n",
                             "nested too deeply"),
    "deep-parens-in-type": ('"test.op"() : ' + _deep("(", ")", "") + " -> ()\n", ""),
    "deep-regions-in-func": ("func.func @f() {\n" + _deep('"test.op"() ({\n', "}) : () -> ()\n", "")
                             + '"func.return"() : () -> ()\n}\n', "nested too deeply"),
    "many-unclosed-braces": ("{" * 100_000, ""),
    "many-quotes": ('"' * 100_001, ""),
    "long-whitespace-run": ('"test.op"(' + " " * TEN_MB, "unexpected end of input"),
}


@pytest.mark.parametrize("name", list(GENERATED))
def test_generated_input(name: str, tmp_path: Path):
    content, expected = GENERATED[name]
    path = tmp_path / f"{name}.mlir"
    if isinstance(content, str):
        path.write_text(content, encoding="utf-8")
    else:
        path.write_bytes(content)
    code, _, stderr, seconds = run_in_process([*DEFAULT_ARGS, str(path)])
    assert_one_diagnostic(code, stderr, seconds, expected)


def _truncations(path: Path, step: int = 7):
    data = path.read_bytes()
    return [data[:n] for n in range(0, len(data), step)]


@pytest.mark.parametrize("fixture", ["attributes.mlir", "operations.mlir", "func.mlir", "locations.mlir"])
def test_every_truncation_of_a_valid_file(fixture: str, tmp_path: Path):
    """Cut a valid file at every 7th byte: each prefix is valid or gets one positioned error."""
    failures = 0
    for i, prefix in enumerate(_truncations(FIXTURES / fixture)):
        path = tmp_path / f"prefix{i}.mlir"
        path.write_bytes(prefix)
        code, _, stderr, seconds = run_in_process([*DEFAULT_ARGS, str(path)])
        if code == 0:
            assert not stderr and seconds < TIME_LIMIT, (prefix[-80:], stderr)
            continue
        failures += 1
        try:
            assert_one_diagnostic(code, stderr, seconds)
        except AssertionError as e:
            raise AssertionError(f"prefix of {len(prefix)} bytes ending in {prefix[-60:]!r}: {e}") from None
    assert failures > 0


# -- through the real executable -------------------------------------------------------------------


@pytest.mark.parametrize("name", ["undefined-value", "invalid-utf8", "nul-byte", "unregistered-dialect",
                                  "pipeline-empty-element"])
def test_executable_on_corpus(name: str):
    path = CORPUS / f"{name}.mlir"
    expected, args = _header(path.read_bytes())
    code, _, stderr, seconds = run_executable([*args, str(path)])
    assert_one_diagnostic(code, stderr, seconds, expected, limit=EXECUTABLE_TIME_LIMIT)


def test_executable_on_deep_nesting_and_a_long_line(tmp_path: Path):
    for name in ("deep-regions", "deep-arrays", "ten-mb-string-then-garbage"):
        content, expected = GENERATED[name]
        path = tmp_path / f"{name}.mlir"
        path.write_text(content, encoding="utf-8")
        code, _, stderr, seconds = run_executable([*DEFAULT_ARGS, str(path)])
        assert_one_diagnostic(code, stderr, seconds, expected, limit=EXECUTABLE_TIME_LIMIT)


def test_executable_on_garbage_from_stdin():
    code, _, stderr, seconds = run_executable(["-"], stdin=random.Random(3).randbytes(4096))
    assert_one_diagnostic(code, stderr, seconds, "input is not valid UTF-8",
                          limit=EXECUTABLE_TIME_LIMIT)
    assert stderr.startswith("<stdin>:")


def test_exact_messages():
    """A few messages, word for word (they are part of the interface users see)."""
    cases = {
        "undefined-value": "undefined-value.mlir:2:12: error: use of undeclared SSA value name '%x'",
        "int-out-of-range-i8": "int-out-of-range-i8.mlir:2:18: error: integer constant 300 out of range for type i8",
        "redefinition": "redefinition.mlir:3:1: error: redefinition of SSA value '%a'",
        "unterminated-string": "unterminated-string.mlir:2:18: error: unterminated string literal",
    }
    for name, first_line in cases.items():
        path = CORPUS / f"{name}.mlir"
        _, args = _header(path.read_bytes())
        code, _, stderr, _ = run_in_process([*args, os.path.relpath(path)])
        assert code == 1
        assert stderr.splitlines()[0].endswith(first_line), stderr
