"""Passes, the registry, pipeline strings and the pass manager (xir/pass_manager.py)."""

import io
import re
import subprocess
import sys
import textwrap

import attrs
import pytest
from testing_dialect import tst  # noqa: F401

from xir import pass_manager
from xir.diagnostics import XirError
from xir.parser import parse
from xir.pass_manager import (Pass, PassManager, available_passes, lookup_pass, option,
                              parse_pipeline, pass_help, register_pass)
from xir.printer import print_ir


@pytest.fixture(autouse=True)
def clean_registry(monkeypatch):
    """Passes registered by a test do not outlive it."""
    monkeypatch.setattr(pass_manager, "_passes", dict(pass_manager._passes))
    monkeypatch.setattr(pass_manager, "_entry_points", None)


@attrs.frozen
class Knobs(Pass):
    """A pass with one option of each type.

    It does nothing.
    """

    name = "knobs"
    count: int = option(3, "how many")
    ratio: float = option(0.5)
    enabled: bool = option(False, "switch")
    label: str = option("x")

    def run(self, module):
        pass


@pytest.fixture
def knobs():
    return register_pass(Knobs)


# -- pipelines -----------------------------------------------------------------------------------


def test_pipeline_with_options(knobs):
    canonicalize, cse, k = parse_pipeline(" canonicalize{max-iterations=3 fold=false} , cse,"
                                          "knobs{ count=-2 ratio=1e-3 enabled label='a b,}' }")
    assert (canonicalize.max_iterations, canonicalize.fold, canonicalize.strict) == (3, False, False)
    assert cse.name == "cse"
    assert k == Knobs(count=-2, ratio=0.001, enabled=True, label="a b,}")
    assert parse_pipeline("knobs{enabled}") == [Knobs(enabled=True)]
    assert parse_pipeline("knobs{enabled=0 label=\"\"}") == [Knobs(label="")]
    assert parse_pipeline("") == [] and parse_pipeline("  ") == []


def test_pipeline_text_round_trips(knobs):
    k = Knobs(count=4, label="two words")
    assert k.pipeline_text() == 'knobs{count=4 label="two words"}'
    assert parse_pipeline(k.pipeline_text()) == [k]
    assert Knobs().pipeline_text() == "knobs"


ERRORS = [
    ("cse,foo", 5, "unknown pass 'foo'"),
    ("cse, dcee", 6, "unknown pass 'dcee' (did you mean 'dce'?)"),
    ("canonicalise", 1, "unknown pass 'canonicalise' (did you mean 'canonicalize'?)"),
    ("cse{x=1}", 5, "unknown option 'x' for pass 'cse'"),
    ("canonicalize{max_iterations=2}", 14,
     "unknown option 'max_iterations' for pass 'canonicalize' (did you mean 'max-iterations'?)"),
    ("canonicalize{max-iterations=abc}", 29,
     "option 'max-iterations' of pass 'canonicalize' expects an integer, got 'abc'"),
    ("canonicalize{fold=yes}", 19, "option 'fold' of pass 'canonicalize' expects true or false, got 'yes'"),
    ("knobs{ratio=fast}", 13, "option 'ratio' of pass 'knobs' expects a number, got 'fast'"),
    ("knobs{count}", 12, "expected '=' and a value after option 'count'"),
    ("knobs{count=}", 13, "expected a value for option 'count', found '}'"),
    ("knobs{label='x}", 13, "unterminated string"),
    ("knobs{count=1 count=2}", 15, "option 'count' of pass 'knobs' is given twice"),
    ("cse{", 5, "expected '}' to close the options of pass 'cse' opened at column 4"),
    ("knobs{=1}", 7, "expected an option name or '}', found '='"),
    ("cse,", 5, "expected a pass name, found end of pipeline"),
    ("cse,,dce", 5, "expected a pass name, found ','"),
    ("cse dce", 5, "expected ',' or end of pipeline, found 'd'"),
    ("canonicalize{max-iterations=0}", 1,
     "invalid options for pass 'canonicalize': 'max_iterations' must be >= 1: 0"),
]


@pytest.mark.parametrize("text, column, message", ERRORS, ids=[e[0] for e in ERRORS])
def test_pipeline_errors(knobs, text, column, message):
    with pytest.raises(XirError) as info:
        parse_pipeline(text)
    d = info.value.diagnostic
    assert (d.message, d.filename, d.line, d.column) == (message, "<pipeline>", 1, column)
    assert d.render().splitlines()[1:] == [text, " " * (column - 1) + "^"]


# -- the registry ----------------------------------------------------------------------------------


def test_builtin_passes_are_found_by_name():
    passes = available_passes()
    assert {"canonicalize", "cse", "dce"} <= set(passes)
    assert lookup_pass("cse") is passes["cse"] and lookup_pass("no-such-pass") is None
    assert passes["cse"].summary == "Eliminate common subexpressions: reuse an equal earlier pure op's results."


def test_passes_load_lazily():
    code = textwrap.dedent("""
        import sys
        from xir.pass_manager import lookup_pass, parse_pipeline
        assert not any(m.startswith("xir.passes.") for m in sys.modules)
        parse_pipeline("dce")
        assert "xir.passes.dce" in sys.modules and "xir.passes.cse" not in sys.modules
    """)
    subprocess.run([sys.executable, "-c", code], check=True)


def test_help_and_option_declarations(knobs):
    assert Knobs.summary == "A pass with one option of each type."
    assert pass_help(Knobs) == ("knobs  A pass with one option of each type.\n"
                                "    count=integer (default 3)  how many\n"
                                "    ratio=number (default 0.5)\n"
                                "    enabled=boolean (default false)  switch\n"
                                "    label=string (default x)")

    @attrs.frozen
    class NoDefault(Pass):
        name = "no-default"
        size: int

    @attrs.frozen
    class BadType(Pass):
        name = "bad-type"
        sizes: list = option([])

    for cls in (NoDefault, BadType):
        with pytest.raises(TypeError, match="must be an int, float, bool or str with a default"):
            register_pass(cls)
    with pytest.raises(TypeError, match="not a Pass subclass with a name"):
        register_pass(int)


@pytest.fixture
def install(tmp_path, monkeypatch):
    """Installs (on sys.path) a one-module distribution, xir-hello, with ``xir.passes`` entries:
    the real mechanism by which a third-party package ships passes."""

    def install(entries: str, module_text: str) -> None:
        info = tmp_path / "xir_hello-1.0.dist-info"
        info.mkdir()
        (info / "METADATA").write_text("Metadata-Version: 2.1\nName: xir-hello\nVersion: 1.0\n")
        (info / "entry_points.txt").write_text(f"[xir.passes]\n{entries}\n")
        (tmp_path / "xir_hello.py").write_text(textwrap.dedent(module_text))
        monkeypatch.syspath_prepend(str(tmp_path))

    yield install
    sys.modules.pop("xir_hello", None)


HELLO = """
    import attrs
    from xir import attributes as A
    from xir.pass_manager import Pass, option

    @attrs.frozen
    class Hello(Pass):
        '''Greet the module.'''
        name = "hello"
        greeting: str = option("hi")

        def run(self, module):
            module.attributes["greeting"] = A.StringAttr(self.greeting)
"""


def test_third_party_pass_through_an_entry_point(install):
    install("hello = xir_hello:Hello", HELLO)
    assert lookup_pass("hello").__module__ == "xir_hello"
    assert "hello" in available_passes()
    module = parse("")
    PassManager("hello{greeting=hey}").run(module)
    assert print_ir(module) == 'builtin.module attributes {greeting = "hey"} {\n}\n'


def test_broken_third_party_pass_is_a_clear_error(install):
    install("hello = xir_hello:Hello\nwrong-name = xir_hello:Hello\nbroken = xir_hello:Missing", HELLO)
    with pytest.raises(XirError, match=r"cannot load pass 'broken' \(xir_hello:Missing\): AttributeError"):
        lookup_pass("broken")
    with pytest.raises(XirError, match="entry point 'wrong-name' in group xir.passes .* is not a Pass "
                                       "subclass named 'wrong-name'"):
        lookup_pass("wrong-name")
    with pytest.warns(UserWarning) as warned:
        assert "hello" in available_passes() and "broken" not in available_passes()
    assert sorted({str(w.message).split(" (")[0] for w in warned}) == [
        "cannot load pass 'broken'", "entry point 'wrong-name' in group xir.passes"]


# -- the pass manager ------------------------------------------------------------------------------

SOURCE = """
func.func @f(%a: i32) -> i32 {
  %z = "tst.constant"() <{value = 0 : i32}> : () -> i32
  %0 = "tst.add"(%a, %z) : (i32, i32) -> i32
  %1 = "tst.add"(%a, %z) : (i32, i32) -> i32
  %2 = "tst.mul"(%0, %1) : (i32, i32) -> i32
  "func.return"(%2) : (i32) -> ()
}
"""


def test_print_ir_after_all_and_before_one(tst):
    module, log = parse(SOURCE), io.StringIO()
    PassManager(parse_pipeline("cse,dce"), print_after_all=True, print_before=["dce"],
                print_stream=log).run(module)
    after_cse = textwrap.dedent("""\
        builtin.module {
          func.func @f(%a: i32) -> i32 {
            %z = "tst.constant"() <{value = 0 : i32}> : () -> i32
            %0 = "tst.add"(%a, %z) : (i32, i32) -> i32
            %1 = "tst.mul"(%0, %0) : (i32, i32) -> i32
            "func.return"(%1) : (i32) -> ()
          }
        }
        """)
    assert log.getvalue() == (f"// -----// IR Dump After cse //----- //\n{after_cse}\n"
                              f"// -----// IR Dump Before dce //----- //\n{after_cse}\n"
                              f"// -----// IR Dump After dce //----- //\n{after_cse}\n")


def test_print_generic_to_stderr_by_default(tst, capsys):
    PassManager("dce", print_before_all=True, print_generic=True).run(parse(SOURCE))
    err = capsys.readouterr().err
    assert err.startswith('// -----// IR Dump Before dce //----- //\n"builtin.module"() ({\n')


@attrs.frozen
class Breaker(Pass):
    """Moves the return to the top of the function, which breaks dominance."""

    name = "breaker"

    def run(self, module):
        ret = next(op for op in module.walk() if op.name == "func.return")
        block = ret.parent
        block.insert_before(ret.detach(), block.first_op)


def test_verifier_failure_after_a_pass_names_the_pass(tst):
    register_pass(Breaker)
    with pytest.raises(XirError) as info:
        PassManager("cse,breaker,dce").run(parse(SOURCE, "in.xir"))
    assert str(info.value) == ("in.xir:6:3: error: IR is invalid after pass 'breaker': "
                               "'tst.mul' op block in 'func.func' must end with a terminator, "
                               "not 'tst.mul'")
    PassManager("cse,breaker,dce", verify_each=False).run(parse(SOURCE))


def test_invalid_input_is_reported_before_any_pass_runs(tst):
    module = parse(SOURCE)
    Breaker().run(module)
    ran = []

    @attrs.frozen
    class Spy(Pass):
        name = "spy"

        def run(self, module):
            ran.append(True)

    with pytest.raises(XirError, match="must end with a terminator, not 'tst.mul'") as info:
        PassManager([Spy()]).run(module)
    assert "after pass" not in str(info.value) and not ran


def test_timing_report(tst):
    pm = PassManager("cse,dce,cse", timing=True)
    pm.run(parse(SOURCE))
    report = pm.timing_report()
    lines = report.splitlines()
    assert lines[0] == lines[2] == "===" + "-" * 73 + "==="
    assert lines[1].strip() == "... Execution time report ..."
    assert re.fullmatch(r"  Total Execution Time: \d+\.\d{4} seconds", lines[3])
    assert lines[5] == "  ----Wall Time----  ----Name----"
    names = [re.fullmatch(r"  +\d+\.\d{4} \( *\d+\.\d%\)  (.*)", line).group(1) for line in lines[6:]]
    assert names == ["cse", "dce", "cse", "(V) verifier", "Total"]
    assert lines[-1].endswith("(100.0%)  Total")


def test_operation_pass_runs_on_each_op_of_its_name(tst):
    seen = []

    @attrs.frozen
    class PerFunction(Pass):
        """Runs on each function."""

        name = "per-function"
        op_name = "func.func"

        def run_on_operation(self, op):
            seen.append(op.sym_name.value)

    module = parse('func.func @f() {\n  "func.return"() : () -> ()\n}\n'
                   'func.func @g() {\n  "func.return"() : () -> ()\n}\n')
    PassManager([PerFunction()]).run(module)
    assert seen == ["f", "g"]
