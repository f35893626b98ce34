"""Runs the lit suite under tests/lit (IR files with RUN and CHECK lines) as one pytest test.

The suite uses the ``xir-opt`` and ``filecheck`` executables installed next to this Python, so
``python -m pytest`` in any environment with xir installed (``pip install -e '.[dev]'``) runs it.
"""

import os
import subprocess
import sys

LIT_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "lit")


def test_lit_suite():
    result = subprocess.run(
        [sys.executable, "-c", "import sys; from lit.main import main; sys.exit(main())",
         "-v", "--order=lexical", LIT_DIR],
        capture_output=True, text=True, timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"lit failed (exit {result.returncode}):\n{output}"
    assert "Passed" in output, output
