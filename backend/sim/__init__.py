"""The DPU simulator: the compute engines (:mod:`.engines`, Numba-compiled, bit-exact against
the quant dialect's integer kernels) that execute an instruction stream on the modeled banks."""
