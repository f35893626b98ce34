"""A fine-tune hook in PyTorch for xir's pruning (``xir.passes.prune.finetune``).

xir hands the hook the pruned model as ONNX; the hook builds a torch model of that shape from
its initializers, trains it for a few epochs on the digits training split and returns the
trained weights by initializer name. Batch norms stay in inference mode (their running
statistics are kept, their scale and shift train), so a small model and a few epochs change the
pruned model gently.

    from xir.passes.prune.finetune import finetune
    tuned = finetune(pruned, torch_hook(x_train, y_train))

The graph interpreter below covers the ops the digits models export (Conv, BatchNormalization,
Relu, Add, MaxPool, GlobalAveragePool, Flatten, Gemm), which is all a worked example needs.
Needs PyTorch, as ``train.py`` does; xir itself does not.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from onnx import helper, numpy_helper
from torch import nn

SEED = 0
EPOCHS = 5
BATCH = 32
LEARNING_RATE = 1e-4  # 3e-4 and up sometimes lose a test image that reconstruction kept
WEIGHT_DECAY = 1e-4


class OnnxNet(nn.Module):
    """An ONNX graph of the ops above run in torch, its float initializers as parameters (batch
    norms' running statistics as buffers), keyed by initializer name."""

    def __init__(self, model):
        super().__init__()
        graph = model.graph
        statistics = {name for node in graph.node if node.op_type == "BatchNormalization"
                      for name in node.input[3:5]}
        self.names = [init.name for init in graph.initializer]
        self.params = nn.ParameterDict()
        self.stats: dict[str, torch.Tensor] = {}
        for init in graph.initializer:
            value = torch.from_numpy(numpy_helper.to_array(init).astype(np.float32).copy())
            if init.name in statistics:
                self.stats[init.name] = value
            else:
                self.params[_key(init.name)] = nn.Parameter(value)
        self.nodes = list(graph.node)
        self.input, self.output = graph.input[0].name, graph.output[0].name

    def value(self, name: str, env: dict) -> torch.Tensor:
        if name in env:
            return env[name]
        return self.stats[name] if name in self.stats else self.params[_key(name)]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        env = {self.input: x}
        for node in self.nodes:
            ins = [self.value(name, env) for name in node.input if name]
            attrs = {a.name: helper.get_attribute_value(a) for a in node.attribute}
            env[node.output[0]] = _run(node.op_type, ins, attrs)
        return env[self.output]

    def trained(self) -> dict[str, np.ndarray]:
        """The trained parameters by initializer name (the running statistics are unchanged)."""
        return {name: self.params[_key(name)].detach().numpy().copy()
                for name in self.names if name not in self.stats}


def _key(name: str) -> str:
    return name.replace(".", "__")  # ParameterDict keys may not hold dots


def _run(op_type: str, ins: list, attrs: dict) -> torch.Tensor:
    if op_type == "Conv":
        pads = attrs.get("pads", [0, 0, 0, 0])
        x = F.pad(ins[0], (pads[1], pads[3], pads[0], pads[2]))
        return F.conv2d(x, ins[1], ins[2] if len(ins) > 2 else None, attrs.get("strides", 1),
                        0, attrs.get("dilations", 1), attrs.get("group", 1))
    if op_type == "BatchNormalization":
        return F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], training=False,
                            eps=attrs.get("epsilon", 1e-5))
    if op_type == "Relu":
        return F.relu(ins[0])
    if op_type == "Add":
        return ins[0] + ins[1]
    if op_type == "MaxPool":
        return F.max_pool2d(ins[0], attrs["kernel_shape"], attrs.get("strides"))
    if op_type == "GlobalAveragePool":
        return ins[0].mean(dim=(2, 3), keepdim=True)
    if op_type == "Flatten":
        return ins[0].flatten(attrs.get("axis", 1))
    if op_type == "Gemm":
        a = ins[0].T if attrs.get("transA", 0) else ins[0]
        b = ins[1].T if attrs.get("transB", 0) else ins[1]
        y = attrs.get("alpha", 1.0) * (a @ b)
        return y + attrs.get("beta", 1.0) * ins[2] if len(ins) > 2 else y
    raise NotImplementedError(f"the worked hook has no torch op for ONNX '{op_type}'")


def torch_hook(x: np.ndarray, y: np.ndarray, epochs: int = EPOCHS, lr: float = LEARNING_RATE):
    """A fine-tune hook training on images ``x`` (float32, (N, 1, 8, 8)) and labels ``y`` with
    AdamW and cosine decay for ``epochs`` epochs; seeded, one thread, deterministic."""

    def hook(model) -> dict[str, np.ndarray]:
        torch.manual_seed(SEED)
        threads = torch.get_num_threads()
        torch.set_num_threads(1)
        try:
            net = OnnxNet(model)
            inputs, labels = torch.from_numpy(x), torch.from_numpy(y)
            generator = torch.Generator().manual_seed(SEED)
            optimizer = torch.optim.AdamW(net.parameters(), lr=lr, weight_decay=WEIGHT_DECAY)
            schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, epochs)
            for _ in range(epochs):
                for batch in torch.randperm(len(inputs), generator=generator).split(BATCH):
                    optimizer.zero_grad()
                    F.cross_entropy(net(inputs[batch]), labels[batch]).backward()
                    optimizer.step()
                schedule.step()
            return net.trained()
        finally:
            torch.set_num_threads(threads)

    return hook
