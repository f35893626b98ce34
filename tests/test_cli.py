"""The command-line tools: ``xir-opt`` (exit codes, output files, stdin, printing options,
``--split-input-file``, ``--verify-diagnostics``, ``--help``) and the ``xir`` command."""

from __future__ import annotations

import io
import os
import subprocess
import sys
from contextlib import redirect_stderr, redirect_stdout
from pathlib import Path

import pytest

from xir.tools import main as xir_main
from xir.tools import opt

BIN = Path(sys.executable).parent
VALID = """\
func.func @f(%x: i32) -> i32 {
  %y = "func.call"(%x) <{callee = @f}> : (i32) -> i32 loc("call")
  "func.return"(%y) : (i32) -> ()
}
"""
INVALID = """\
func.func @f() {
  "func.return"(%nope) : (i32) -> ()
}
"""


def run(argv, stdin: str | None = None, tool=opt.main):
    """Run a tool in-process: (exit status, stdout, stderr)."""
    out, err = io.StringIO(), io.StringIO()
    old_stdin = sys.stdin
    if stdin is not None:
        sys.stdin = io.TextIOWrapper(io.BytesIO(stdin.encode()), encoding="utf-8")
    try:
        with redirect_stdout(out), redirect_stderr(err):
            code = tool(argv)
    finally:
        sys.stdin = old_stdin
    return code, out.getvalue(), err.getvalue()


@pytest.fixture
def valid(tmp_path: Path) -> Path:
    path = tmp_path / "valid.mlir"
    path.write_text(VALID)
    return path


@pytest.fixture
def invalid(tmp_path: Path) -> Path:
    path = tmp_path / "invalid.mlir"
    path.write_text(INVALID)
    return path


# -- exit codes and errors -------------------------------------------------------------------------


def test_valid_input_exits_0_and_prints_the_module(valid):
    code, out, err = run([str(valid)])
    assert (code, err) == (0, "")
    assert out.startswith("builtin.module {\n  func.func @f(%x: i32) -> i32 {\n")
    assert 'loc("call")' in out


def test_invalid_input_exits_1_with_one_positioned_diagnostic(invalid):
    code, out, err = run([str(invalid)])
    assert code == 1 and out == ""
    assert err == (f"{invalid}:2:17: error: use of undeclared SSA value name '%nope'\n"
                   '  "func.return"(%nope) : (i32) -> ()\n'
                   "                ^\n")


def test_verifier_errors_quote_the_source(tmp_path):
    path = tmp_path / "v.mlir"
    path.write_text('func.func @f(%x: i32) -> f32 {\n  "func.return"(%x) : (i32) -> ()\n}\n')
    code, _, err = run([str(path)])
    assert code == 1
    assert err.splitlines()[0].startswith(f"{path}:2:3: error: 'func.return' op type of return operand 0")
    assert err.splitlines()[1:] == ['  "func.return"(%x) : (i32) -> ()', "  ^"]


@pytest.mark.parametrize("argv, message", [
    (["--no-such-flag"], "xir-opt: error: unrecognized arguments: --no-such-flag"),
    (["a.mlir", "b.mlir"], "xir-opt: error: unrecognized arguments: b.mlir"),
])
def test_bad_command_lines_exit_1(argv, message):
    code, _, err = run(argv)
    assert code == 1
    assert err.strip() == message


def test_missing_file_and_directory(tmp_path):
    code, _, err = run([str(tmp_path / "nope.mlir")])
    assert code == 1 and err == f"{tmp_path / 'nope.mlir'}: error: cannot read input: no such file or directory\n"
    code, _, err = run([str(tmp_path)])
    assert code == 1 and err == f"{tmp_path}: error: cannot read input: it is a directory\n"


def test_invalid_utf8_names_line_column_and_byte_offset(tmp_path):
    path = tmp_path / "bad.mlir"
    path.write_bytes(b'// ok\n"test.op"() {s = "\xe9"} : () -> ()\n')
    code, _, err = run([str(path)])
    assert code == 1
    assert err.splitlines()[0] == (f"{path}:2:19: error: input is not valid UTF-8: "
                                   f"invalid byte 0xe9 at byte offset 24")


def test_a_utf8_byte_order_mark_is_skipped(tmp_path):
    path = tmp_path / "bom.mlir"
    path.write_bytes(b"\xef\xbb\xbf" + VALID.encode())
    assert run([str(path)])[0] == 0


def test_internal_errors_are_one_line_not_a_traceback(valid, monkeypatch):
    import xir.printer

    def broken(*args, **kwargs):
        raise KeyError("boom")

    monkeypatch.setattr(xir.printer, "print_ir", broken)
    monkeypatch.delenv("XIR_DEBUG", raising=False)
    code, _, err = run([str(valid)])
    assert code == 1
    assert "Traceback" not in err
    assert err.startswith(f"{valid}: error: internal error: KeyError: 'boom'")


# -- input and output ------------------------------------------------------------------------------


def test_stdin_is_read_for_dash_and_by_default():
    for argv in (["-"], []):
        code, out, err = run(argv, stdin=VALID)
        assert code == 0 and "func.func @f" in out
    code, _, err = run(["-"], stdin=INVALID)
    assert code == 1 and err.startswith("<stdin>:2:17: error: use of undeclared SSA value name")


def test_output_file_is_written_on_success(valid, tmp_path):
    out_path = tmp_path / "out.mlir"
    code, out, err = run([str(valid), "-o", str(out_path)])
    assert (code, out, err) == (0, "", "")
    assert out_path.read_text() == run([str(valid)])[1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.mlir", "valid.mlir"]  # no temp left


def test_output_file_is_untouched_on_error(invalid, tmp_path):
    out_path = tmp_path / "out.mlir"
    out_path.write_text("previous contents\n")
    code, _, _ = run([str(invalid), "-o", str(out_path)])
    assert code == 1
    assert out_path.read_text() == "previous contents\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["invalid.mlir", "out.mlir"]


def test_output_file_may_be_the_input(valid):
    assert run([str(valid), "-o", str(valid)])[0] == 0
    assert valid.read_text().startswith("builtin.module {")


def test_output_to_a_pipe_is_written_in_place_and_a_symlink_is_followed(valid, tmp_path):
    """Renaming over a FIFO or a device (-o /dev/null) would replace it with a regular file."""
    import stat
    import threading

    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    received = []
    reader = threading.Thread(target=lambda: received.append(fifo.read_text()))
    reader.start()
    code = run([str(valid), "-o", str(fifo)])[0]
    reader.join(timeout=10)
    assert code == 0 and received and received[0].startswith("builtin.module {")
    assert stat.S_ISFIFO(os.stat(fifo).st_mode)
    target, link = tmp_path / "target.mlir", tmp_path / "link.mlir"
    link.symlink_to(target.name)
    assert run([str(valid), "-o", str(link)])[0] == 0
    assert link.is_symlink() and target.read_text().startswith("builtin.module {")


def test_unwritable_output_is_one_error(valid, tmp_path):
    code, _, err = run([str(valid), "-o", str(tmp_path / "no" / "such" / "dir.mlir")])
    assert code == 1
    assert err.count("error:") == 1 and "cannot write output" in err


# -- printing options ------------------------------------------------------------------------------


def test_print_op_generic(valid):
    code, out, _ = run([str(valid), "--print-op-generic"])
    assert code == 0
    assert out.startswith('"builtin.module"() ({\n  "func.func"() <{sym_name = "f", function_type = (i32) -> i32}> ({\n')
    # the generic text reads back to the same module
    assert run(["-"], stdin=out)[1] == run([str(valid)])[1]


def test_no_locations(valid):
    code, out, _ = run([str(valid), "--no-locations"])
    assert code == 0 and "loc(" not in out and '"func.call"(%x)' in out


def test_unregistered_dialect_needs_the_flag(tmp_path):
    path = tmp_path / "u.mlir"
    path.write_text('%x = "torch.relu"() : () -> f32\n')
    code, _, err = run([str(path)])
    assert code == 1 and "use --allow-unregistered-dialect" in err
    code, out, _ = run([str(path), "--allow-unregistered-dialect"])
    assert code == 0 and '%x = "torch.relu"() : () -> f32' in out


# -- --split-input-file ----------------------------------------------------------------------------


SPLIT = """\
%a = "test.one"() : () -> i32
// -----
"test.use"(%undefined) : (i32) -> ()
// -----
%a = "test.three"() : () -> i32
"""


def test_split_input_file_processes_every_chunk(tmp_path):
    path = tmp_path / "split.mlir"
    path.write_text(SPLIT)
    code, out, err = run([str(path), "--split-input-file", "--allow-unregistered-dialect"])
    assert code == 1  # one chunk failed
    assert err.startswith(f"{path}:3:12: error: use of undeclared SSA value name '%undefined'")
    chunks = out.split("// -----\n")
    assert len(chunks) == 2
    assert '"test.one"' in chunks[0] and '"test.three"' in chunks[1]


def test_without_split_the_marker_is_a_comment(tmp_path):
    path = tmp_path / "split.mlir"
    path.write_text(SPLIT.replace("%undefined", "%a"))
    code, _, err = run([str(path), "--allow-unregistered-dialect"])
    assert code == 1 and "redefinition of SSA value '%a'" in err


def test_split_chunks_report_lines_of_the_whole_file():
    assert opt.split_chunks("a\n// -----\nb\nc\n  // -------  \nd") == [
        ("a\n", 1), ("b\nc\n", 3), ("d", 6)]
    assert opt.split_chunks("") == [("", 1)]


# -- --verify-diagnostics --------------------------------------------------------------------------


def test_verify_diagnostics_passes_when_annotations_match(tmp_path):
    path = tmp_path / "d.mlir"
    path.write_text('// expected-error @+1 {{undeclared SSA value name}}\n"func.return"(%x) : (i32) -> ()\n'
                    "// -----\n"
                    '"func.return"(%y) : (i32) -> () // expected-error {{%y}}\n'
                    "// -----\n"
                    "func.func private @ok()\n")
    code, out, err = run([str(path), "--split-input-file", "--verify-diagnostics"])
    assert (code, err) == (0, "")
    assert "func.func private @ok()" in out


def test_verify_diagnostics_fails_on_any_mismatch(tmp_path):
    path = tmp_path / "d.mlir"
    path.write_text('// expected-error @+1 {{something else}}\n"func.return"(%x) : (i32) -> ()\n')
    code, _, err = run([str(path), "--verify-diagnostics"])
    assert code == 1
    lines = [l for l in err.splitlines() if "error:" in l and not l.startswith("//")]
    assert lines == [f'{path}:1:4: error: expected error "something else" was not produced',
                     f"{path}:2:15: error: unexpected error: use of undeclared SSA value name '%x'"]


def test_verify_diagnostics_without_annotations_on_valid_input(valid):
    assert run([str(valid), "--verify-diagnostics"])[0] == 0


# -- passes, --help --------------------------------------------------------------------------------


def test_help_lists_passes_with_options_and_dialects():
    code, out, _ = run(["--help"])
    assert code == 0
    passes = out[out.index("available passes:"):]
    for name in ("canonicalize", "cse", "dce"):
        assert f"\n  {name}  " in passes
    assert "max-iterations=integer (default 10)" in passes
    assert "\n  func " in out[out.index("dialects:"):]
    for flag in ("--split-input-file", "--verify-diagnostics", "--print-ir-after-all", "--no-locations"):
        assert flag in out


def test_pipeline_runs_and_errors_point_into_it(tmp_path):
    path = tmp_path / "p.mlir"
    path.write_text('func.func @f() {\n  "func.return"() : () -> ()\n^dead:\n  "func.return"() : () -> ()\n}\n')
    code, out, _ = run([str(path), "-p", "dce"])
    assert code == 0 and "^dead" not in out
    code, _, err = run([str(path), "-p", "dce,,cse"])
    assert code == 1
    assert err.splitlines() == ["<pipeline>:1:5: error: expected a pass name, found ','", "dce,,cse", "    ^"]


def test_print_ir_after_all_and_timing_go_to_stderr(valid):
    code, out, err = run([str(valid), "-p", "cse,dce", "--print-ir-after-all", "--timing"])
    assert code == 0 and "IR Dump" not in out
    assert err.count("// -----// IR Dump After") == 2
    assert "Execution time report" in err and "  Parser" in err


# -- the xir command -------------------------------------------------------------------------------


def test_xir_help_lists_only_existing_commands():
    code, out, _ = run(["--help"], tool=xir_main.main)
    assert code == 0
    listed = [l.split()[0] for l in out[out.index("commands:"):].splitlines()[1:] if l.startswith("  ")]
    assert listed == list(xir_main.SUBCOMMANDS) == ["opt", "import", "export", "run", "quantize", "compile", "profile", "prune",
                                                "inspect",
                                                "targets", "version"]


def test_xir_version_and_unknown_command():
    code, out, _ = run(["version"], tool=xir_main.main)
    assert code == 0 and out.startswith("xir 0.1.0")
    code, _, err = run(["frobnicate"], tool=xir_main.main)
    assert code == 1 and err.startswith("xir: error: unknown command 'frobnicate'")


def test_xir_opt_is_xir_dash_opt(valid, invalid):
    assert run(["opt", str(valid)], tool=xir_main.main)[1] == run([str(valid)])[1]
    code, _, err = run(["opt", "--bogus"], tool=xir_main.main)
    assert code == 1 and err.startswith("xir opt: error:")


# -- the installed executables ---------------------------------------------------------------------


def test_executables_exit_codes_and_streams(valid, invalid):
    ok = subprocess.run([str(BIN / "xir-opt"), str(valid)], capture_output=True, text=True, timeout=30)
    assert ok.returncode == 0 and ok.stdout.startswith("builtin.module {") and ok.stderr == ""
    bad = subprocess.run([str(BIN / "xir-opt"), str(invalid)], capture_output=True, text=True, timeout=30)
    assert bad.returncode == 1 and bad.stdout == "" and "Traceback" not in bad.stderr
    version = subprocess.run([str(BIN / "xir"), "version"], capture_output=True, text=True, timeout=30)
    assert version.returncode == 0 and version.stdout.startswith("xir ")


def test_start_up_imports_nothing_heavy(tmp_path):
    """Reading and printing an empty module must not import numpy, and the tool's own module
    must not import Lark before there is text to parse."""
    path = tmp_path / "empty.mlir"
    path.write_text("builtin.module {}\n")
    code = ("import sys; import xir.tools.opt as o; assert 'lark' not in sys.modules; "
            f"assert o.main([{str(path)!r}]) == 0; "
            "heavy = [m for m in ('numpy', 'xdsl', 'onnx') if m in sys.modules]; assert not heavy, heavy")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=30,
                            env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert result.returncode == 0, result.stderr


def test_pass_errors_count_for_verify_diagnostics(tmp_path, monkeypatch):
    """A diagnostic raised by a pass is matched like a parser or verifier error."""
    import attrs

    from xir import pass_manager

    monkeypatch.setattr(pass_manager, "_passes", dict(pass_manager._passes))

    @pass_manager.register_pass
    @attrs.frozen
    class RejectCalls(pass_manager.Pass):
        """Fails on every func.call (a test pass)."""

        name = "test-reject-calls"

        def run(self, module):
            for op in module.walk():
                if op.name == "func.call":
                    raise op.error("calls are not allowed here")

    path = tmp_path / "p.mlir"
    path.write_text(VALID.replace('  %y = "func.call"', '  // expected-error @+1 {{calls are not allowed}}\n'
                                                        '  %y = "func.call"'))
    code, out, err = run([str(path), "-p", "test-reject-calls", "--verify-diagnostics"])
    assert (code, out, err) == (0, "", "")
    code, _, err = run([str(path), "-p", "test-reject-calls"])
    assert code == 1
    assert err.splitlines()[0] == f"{path}:3:3: error: 'func.call' op calls are not allowed here"


# -- plug-ins ----------------------------------------------------------------------------------------


def test_a_plugin_file_registers_its_dialect_and_passes(tmp_path: Path, valid: Path):
    plugin = tmp_path / "my_plugin.py"
    plugin.write_text(
        "import attrs\n"
        "from xir.pass_manager import Pass, register_pass\n"
        "@attrs.frozen\n"
        "class Rename(Pass):\n"
        "    '''Rename every function (and its calls) to @renamed.'''\n"
        "    name = 'rename-functions'\n"
        "    def run(self, module):\n"
        "        from xir.attributes import StringAttr, SymbolRefAttr\n"
        "        for op in module.walk():\n"
        "            if op.name == 'func.func':\n"
        "                op.properties['sym_name'] = StringAttr('renamed')\n"
        "            if op.name == 'func.call':\n"
        "                op.properties['callee'] = SymbolRefAttr('renamed')\n"
        "def register():\n"
        "    register_pass(Rename)\n")
    code, out, err = run([str(valid), "--load-plugin", str(plugin), "-p", "rename-functions"])
    assert (code, err) == (0, "")
    assert "func.func @renamed(%x: i32) -> i32 {" in out and "callee = @renamed" in out


@pytest.mark.parametrize("spec, message", [
    ("missing_plugin.py", "xir-opt: error: cannot load plugin 'missing_plugin.py': no such file\n"),
    ("no_such.module", "xir-opt: error: cannot load plugin 'no_such.module': "
                       "ModuleNotFoundError: No module named 'no_such'\n"),
])
def test_a_plugin_that_cannot_load_is_one_error(valid: Path, spec: str, message: str):
    assert run([str(valid), "--load-plugin", spec]) == (1, "", message)


def test_a_plugin_that_raises_is_one_error(tmp_path: Path, valid: Path):
    plugin = tmp_path / "broken.py"
    plugin.write_text("raise RuntimeError('boom')\n")
    code, out, err = run([str(valid), "--load-plugin", str(plugin)])
    assert (code, out) == (1, "")
    assert err == f"xir-opt: error: cannot load plugin '{plugin}': RuntimeError: boom\n"


# -- the README's example ----------------------------------------------------------------------------

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[list[str]]:
    """The ``xir-opt examples/...`` command lines shown in the README."""
    lines = (ROOT / "README.md").read_text().splitlines()
    return [line.split("#")[0].split()[1:] for line in lines if line.startswith("xir-opt examples/")]


@pytest.mark.parametrize("argv", readme_commands(), ids=" ".join)
def test_the_readme_example_runs(argv, monkeypatch):
    monkeypatch.chdir(ROOT)
    code, out, err = run(argv)
    assert code == 0, err
    assert '"graph.conv2d"' in out and "conv1_w:" in out


def test_the_readme_pipeline_removes_the_unused_relu(monkeypatch):
    monkeypatch.chdir(ROOT)
    before = run(["examples/small_cnn.xir"])[1]
    after = run(["examples/small_cnn.xir", "-p", "cse,canonicalize,dce"])[1]
    assert '%unused = "graph.relu"' in before and "%unused" not in after
    assert len(readme_commands()) >= 2


def test_the_readme_onnx_walkthrough_runs(tmp_path):
    """The README's SqueezeNet shell block, run as written (from a scratch directory)."""
    import os
    import re
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if b.startswith("M=$("))
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("squeezenet.xir", "squeezenet.xir.weights", "out.npz", "squeezenet.onnx",
                 "report.json"):
        assert (tmp_path / name).is_file(), name
    assert "DPUCZDX8G_ISA1_B4096" in result.stdout and "softmax" in result.stdout


def test_the_readme_quantization_walkthrough_runs(tmp_path):
    """The README's digits block, run as written from the repository (outputs in a scratch
    directory)."""
    import os
    import re
    import subprocess
    import sys

    text = (ROOT / "README.md").read_text()
    block = next(b for b in re.findall(r"```sh\n(.*?)```", text, re.S) if "xir quantize" in b)
    block = block.replace("examples/", f"{ROOT}/examples/")
    env = dict(os.environ, PATH=f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(["bash", "-e", "-c", block], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in ("cnn.q.xir", "cnn.qdq.onnx", "cnn.html", "logits.npz", "cnn.xmodel",
                 "compiled.npz"):
        assert (tmp_path / name).is_file(), name
    import numpy as np

    quantized, compiled = np.load(tmp_path / "logits.npz"), np.load(tmp_path / "compiled.npz")
    assert np.array_equal(quantized["logits"], compiled["logits"])
    assert "DPU subgraph number 1" in result.stdout
