"""lit configuration for xir's IR tests: ``RUN: xir-opt %s | filecheck %s`` files.

The tools are the executables installed next to the Python that runs lit, so the suite works in
any fresh virtual environment (``python -m pytest`` runs it through tests/test_lit.py).
"""

import os
import sys

import lit.formats

config.name = "xir"
config.test_format = lit.formats.ShTest(execute_external=False)
config.suffixes = [".mlir", ".xir"]
config.excludes = ["Output", "lit.cfg.py"]
config.test_source_root = os.path.dirname(os.path.abspath(__file__))
config.test_exec_root = os.path.join(config.test_source_root, "Output")

_bin = os.path.dirname(os.path.abspath(sys.executable))


def _tool(name: str) -> str:
    path = os.path.join(_bin, name)
    if not os.path.exists(path):
        lit_config.fatal(f"'{name}' is not installed next to {sys.executable} "
                         f"(install xir with its dev extras: pip install -e '.[dev]')")
    return path


# Whole words only, so that a path containing "xir-opt" is left alone.
# xir-opt-tst: xir-opt with the test dialect `tst` of tests/testing_dialect.py loaded as a plug-in
# (pure, foldable ops for the pass fixtures), as mlir-opt links in MLIR's test dialect.
_tst_plugin = os.path.join(os.path.dirname(config.test_source_root), "testing_dialect.py")
config.substitutions.append((r"(?<![\w/.-])xir-opt-tst(?![\w-])",
                             f"{_tool('xir-opt')} --load-plugin {_tst_plugin}"))
config.substitutions.append((r"(?<![\w/.-])xir-opt(?![\w-])", _tool("xir-opt")))
config.substitutions.append((r"(?<![\w/.-])xir(?![\w.-])", _tool("xir")))
config.substitutions.append((r"(?<![\w/.-])filecheck(?![\w-])", _tool("filecheck")))
config.substitutions.append((r"(?<![\w/.-])FileCheck(?![\w-])", _tool("filecheck")))

# Keep the environment the tools need (the editable install's finder, caches).
for name in ("HOME", "XDG_CACHE_HOME", "PYTHONPATH", "PYTHONDONTWRITEBYTECODE", "VIRTUAL_ENV"):
    if name in os.environ:
        config.environment[name] = os.environ[name]
