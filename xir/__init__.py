"""xir: an open, MLIR-style compiler for DPU-style INT8 accelerators.

The core package: IR objects (:mod:`xir.ir`), types and attributes, the parser and printer of the
textual IR, the verifier, diagnostics, the dialect registry, the pass manager and rewrite driver.
Submodules are imported on demand, so ``import xir`` is cheap.
"""

__version__ = "0.1.0"
