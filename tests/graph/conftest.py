"""Lets the graph-dialect tests import their helpers (``from ort_reference import run_node``)."""

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
