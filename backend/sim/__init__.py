"""The DPU simulator: the machine (:mod:`.machine`: bank groups and DDR in :mod:`.memory`, the
four instruction queues with their dependency tokens, the data-movement engines in
:mod:`.datamove`) and the compute engines (:mod:`.engines`, Numba-compiled, bit-exact against the
quant dialect's integer kernels) that will execute compute instructions on the modeled banks."""
