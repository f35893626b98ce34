"""Train the small digits CNNs that xir's quantization and pruning are measured on, and export them
to ONNX.

Needs PyTorch and scikit-learn, which xir itself does not: they are only for running this script
(``pip install torch==2.13.0 scikit-learn``). The files it writes are committed next to it, so the
tests and benchmarks that read them need neither.

    python examples/digits/train.py              # every model
    python examples/digits/train.py digits_res   # only the named models

Writes, next to this file:

- ``digits.npz``: the fixed 70/30 stratified split of scikit-learn's digits, ``x_train``/``x_test``
  as uint8 raw pixel values 0..16 of shape (N, 1, 8, 8) (the models take ``x / 16`` as float32),
  ``y_train``/``y_test`` as int64 labels;
- ``digits_cnn.onnx``: conv+BN+ReLU blocks, a max pool, global average pooling and a dense head;
- ``digits_dwsep.onnx``: its depthwise-separable variant;
- ``digits_res.onnx``: a wider CNN with two residual blocks (the pruning benchmark's model);
- ``results.json``: float test accuracy of each model (PyTorch and onnxruntime), seed, versions.

Naming models trains only those: ``digits.npz`` is then read (and checked against the split)
rather than rewritten, and ``results.json`` keeps the other models' entries.

The ONNX graphs are built with ``onnx.helper`` from the trained weights rather than with
``torch.onnx``, whose exporter wants packages of its own. Training is seeded, single-threaded and
uses deterministic algorithms, so a rerun on the same machine and versions writes the same files.
"""

from __future__ import annotations

import json
import sys
from collections import OrderedDict
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import sklearn
import torch
from onnx import TensorProto, helper, numpy_helper
from sklearn.datasets import load_digits
from sklearn.model_selection import train_test_split
from torch import nn

HERE = Path(__file__).resolve().parent
SEED = 0
TEST_FRACTION = 0.3
PIXEL_MAX = 16  # digits pixels are integers 0..16
OPSET = 17
EPOCHS = 60
BATCH = 32
LEARNING_RATE = 3e-3
WEIGHT_DECAY = 1e-4
BN_EPS = 1e-5

# A layer plan: ("conv", out_channels, kernel, depthwise) is a Conv+BN+ReLU block, "pool" a 2x2 max
# pool. Both models end in global average pooling, flatten and a dense layer to 10 logits.
CNN = (("conv", 16, 3, False), ("conv", 32, 3, False), "pool", ("conv", 32, 3, False))
DWSEP = (("conv", 16, 3, False),
         ("conv", 16, 3, True), ("conv", 32, 1, False), "pool",
         ("conv", 32, 3, True), ("conv", 64, 1, False),
         ("conv", 64, 3, True), ("conv", 64, 1, False))
MODELS = {"digits_cnn": CNN, "digits_dwsep": DWSEP}
RES_WIDTHS = (32, 64)  # digits_res: channels of its two stages (8x8, then 4x4 after the pool)
ALL_MODELS = (*MODELS, "digits_res")


def split_digits() -> dict[str, np.ndarray]:
    """The seeded, stratified 70/30 split of scikit-learn's digits: uint8 pixels 0..16 shaped
    (N, 1, 8, 8) and int64 labels."""
    digits = load_digits()
    pixels = digits.images.astype(np.uint8).reshape(-1, 1, 8, 8)
    x_train, x_test, y_train, y_test = train_test_split(
        pixels, digits.target.astype(np.int64), test_size=TEST_FRACTION,
        stratify=digits.target, random_state=SEED)
    return {"x_train": x_train, "y_train": y_train, "x_test": x_test, "y_test": y_test}


def to_float(pixels: np.ndarray) -> np.ndarray:
    """The models' input: pixels scaled to [0, 1] as float32."""
    return (pixels.astype(np.float32) / PIXEL_MAX).astype(np.float32)


def build_model(plan) -> nn.Sequential:
    """A torch model for a layer plan, its modules named as the ONNX nodes will be (conv1, bn1,
    relu1, ..., pool1, gap, flatten, fc)."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    channels, n_conv, n_pool = 1, 0, 0
    for step in plan:
        if step == "pool":
            n_pool += 1
            layers[f"pool{n_pool}"] = nn.MaxPool2d(2)
            continue
        _, out, kernel, depthwise = step
        n_conv += 1
        groups = channels if depthwise else 1
        layers[f"conv{n_conv}"] = nn.Conv2d(channels, out, kernel, padding=kernel // 2,
                                            groups=groups, bias=False)
        layers[f"bn{n_conv}"] = nn.BatchNorm2d(out, eps=BN_EPS)
        layers[f"relu{n_conv}"] = nn.ReLU()
        channels = out
    layers["gap"] = nn.AdaptiveAvgPool2d(1)
    layers["flatten"] = nn.Flatten()
    layers["fc"] = nn.Linear(channels, 10)
    return nn.Sequential(layers)


class GraphNet(nn.Module):
    """A torch model run as a list of ``(name, inputs)`` steps: each step is the named module
    applied to one earlier output, or (a name starting with ``add``) the sum of two. The ONNX
    export follows the same list, so the graph is written once."""

    def __init__(self, layers: OrderedDict, steps: list):
        super().__init__()
        self.layers = nn.ModuleDict(layers)
        self.steps = steps

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        values = {"input": x}
        for name, inputs in self.steps:
            if name.startswith("add"):
                values[name] = values[inputs[0]] + values[inputs[1]]
            else:
                values[name] = self.layers[name](values[inputs[0]])
        return values[self.steps[-1][0]]


def build_residual(widths=RES_WIDTHS) -> GraphNet:
    """digits_res: a conv+BN+ReLU stem, a residual block (conv-BN-ReLU-conv-BN, plus the block's
    input, then ReLU), a 2x2 max pool, a conv+BN+ReLU widening to the second stage, a second
    residual block, global average pooling and a dense head."""
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    steps, channels, last, n = [], 1, "input", 0

    def conv_bn(out: int, relu: bool) -> None:
        nonlocal channels, last, n
        n += 1
        layers[f"conv{n}"] = nn.Conv2d(channels, out, 3, padding=1, bias=False)
        layers[f"bn{n}"] = nn.BatchNorm2d(out, eps=BN_EPS)
        steps.extend([(f"conv{n}", [last]), (f"bn{n}", [f"conv{n}"])])
        channels, last = out, f"bn{n}"
        if relu:
            relu_step(n)

    def relu_step(k: int) -> None:
        nonlocal last
        layers[f"relu{k}"] = nn.ReLU()
        steps.append((f"relu{k}", [last]))
        last = f"relu{k}"

    def block(k: int) -> None:
        nonlocal last
        skip = last
        conv_bn(channels, relu=True)
        conv_bn(channels, relu=False)
        steps.append((f"add{k}", [last, skip]))
        last = f"add{k}"
        relu_step(n)

    conv_bn(widths[0], relu=True)
    block(1)
    layers["pool1"] = nn.MaxPool2d(2)
    steps.append(("pool1", [last]))
    last = "pool1"
    conv_bn(widths[1], relu=True)
    block(2)
    for name, module in (("gap", nn.AdaptiveAvgPool2d(1)), ("flatten", nn.Flatten()),
                         ("fc", nn.Linear(channels, 10))):
        layers[name] = module
        steps.append((name, [last]))
        last = name
    return GraphNet(layers, steps)


def train(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> None:
    """AdamW with cosine decay over seeded, shuffled mini-batches; leaves the model in eval mode."""
    generator = torch.Generator().manual_seed(SEED)
    optimizer = torch.optim.AdamW(model.parameters(), lr=LEARNING_RATE, weight_decay=WEIGHT_DECAY)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, EPOCHS)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(EPOCHS):
        for batch in torch.randperm(len(x), generator=generator).split(BATCH):
            optimizer.zero_grad()
            loss_fn(model(x[batch]), y[batch]).backward()
            optimizer.step()
        schedule.step()
    model.eval()


def tensor(name: str, value: torch.Tensor) -> TensorProto:
    """An ONNX float32 initializer from a torch tensor."""
    return numpy_helper.from_array(value.detach().numpy().astype(np.float32), name)


def export_layer(name: str, module: nn.Module, source: str, out: str):
    """The ONNX node and initializers for one torch module."""
    if isinstance(module, nn.Conv2d):
        k = module.kernel_size
        pad = module.padding
        return (helper.make_node("Conv", [source, f"{name}.weight"], [out], name=name,
                                 kernel_shape=list(k), pads=[pad[0], pad[1], pad[0], pad[1]],
                                 strides=list(module.stride), group=module.groups),
                [tensor(f"{name}.weight", module.weight)])
    if isinstance(module, nn.BatchNorm2d):
        names = [f"{name}.{p}" for p in ("weight", "bias", "running_mean", "running_var")]
        values = (module.weight, module.bias, module.running_mean, module.running_var)
        return (helper.make_node("BatchNormalization", [source, *names], [out], name=name,
                                 epsilon=module.eps),
                [tensor(n, v) for n, v in zip(names, values)])
    if isinstance(module, nn.ReLU):
        return helper.make_node("Relu", [source], [out], name=name), []
    if isinstance(module, nn.MaxPool2d):
        k, stride = module.kernel_size, module.stride
        return helper.make_node("MaxPool", [source], [out], name=name, kernel_shape=[k, k],
                                strides=[stride, stride]), []
    if isinstance(module, nn.AdaptiveAvgPool2d):
        return helper.make_node("GlobalAveragePool", [source], [out], name=name), []
    if isinstance(module, nn.Flatten):
        return helper.make_node("Flatten", [source], [out], name=name, axis=1), []
    if isinstance(module, nn.Linear):
        return (helper.make_node("Gemm", [source, f"{name}.weight", f"{name}.bias"], [out],
                                 name=name, transB=1),
                [tensor(f"{name}.weight", module.weight), tensor(f"{name}.bias", module.bias)])
    raise TypeError(f"no ONNX export for {type(module).__name__}")


def export_onnx(model: nn.Module, graph_name: str) -> onnx.ModelProto:
    """The trained model as an opset-17 ONNX graph: input "input" (N, 1, 8, 8), output "logits"
    (N, 10), one node per torch module (or residual add), each node's output named after the
    node."""
    nodes, initializers = [], []
    if isinstance(model, GraphNet):
        steps = [(name, inputs, None if name.startswith("add") else model.layers[name])
                 for name, inputs in model.steps]
    else:
        names = ["input", *(name for name, _ in model.named_children())]
        steps = [(name, [names[i]], module)
                 for i, (name, module) in enumerate(model.named_children())]
    renamed = {"input": "input", steps[-1][0]: "logits"}
    for name, inputs, module in steps:
        sources = [renamed.get(i, i) for i in inputs]
        out = renamed.get(name, name)
        if module is None:
            node, weights = helper.make_node("Add", sources, [out], name=name), []
        else:
            node, weights = export_layer(name, module, sources[0], out)
        nodes.append(node)
        initializers += weights
    graph = helper.make_graph(
        nodes, graph_name,
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 1, 8, 8])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, ["N", 10])],
        initializers)
    proto = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)],
                              producer_name="xir examples/digits/train.py")
    proto.ir_version = 8  # the lowest IR version that opset 17 allows, for older onnxruntimes
    onnx.checker.check_model(proto, full_check=True)
    return proto


def ort_logits(proto: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    """onnxruntime's logits for ``x``, on one thread."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(proto.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return session.run(["logits"], {"input": x})[0]


def fit_and_export(name: str, data: dict[str, np.ndarray]) -> dict:
    """Train one model, export it, check onnxruntime against torch, write the ONNX file, and
    return its accuracy record."""
    torch.manual_seed(SEED)
    model = build_model(MODELS[name]) if name in MODELS else build_residual()
    train(model, torch.from_numpy(to_float(data["x_train"])), torch.from_numpy(data["y_train"]))
    x_test = to_float(data["x_test"])
    with torch.no_grad():
        torch_logits = model(torch.from_numpy(x_test)).numpy()
    proto = export_onnx(model, name)
    logits = ort_logits(proto, x_test)
    max_diff = float(np.abs(logits - torch_logits).max())
    if max_diff >= 1e-4:
        raise SystemExit(f"{name}: onnxruntime differs from torch by {max_diff:.3g}")
    onnx.save(proto, HERE / f"{name}.onnx")
    correct = int((logits.argmax(1) == data["y_test"]).sum())
    torch_correct = int((torch_logits.argmax(1) == data["y_test"]).sum())
    n = len(data["y_test"])
    print(f"{name}: float test accuracy {correct / n:.2%} ({correct}/{n}) in onnxruntime, "
          f"{torch_correct}/{n} in torch; max |ort - torch| = {max_diff:.2g}; "
          f"{sum(p.numel() for p in model.parameters())} parameters")
    return {"test_correct": correct, "test_accuracy": correct / n,
            "torch_test_correct": torch_correct, "max_abs_diff_ort_torch": max_diff,
            "parameters": sum(p.numel() for p in model.parameters())}


def main(names: list[str]) -> None:
    """Split the data, train and export the named models (all by default), write digits.npz
    (when training all) and results.json."""
    unknown = sorted(set(names) - set(ALL_MODELS))
    if unknown:
        raise SystemExit(f"unknown model '{unknown[0]}' (known: {', '.join(ALL_MODELS)})")
    torch.set_num_threads(1)
    torch.use_deterministic_algorithms(True)
    data = split_digits()
    if names:
        committed = np.load(HERE / "digits.npz")
        if any(not np.array_equal(committed[k], v) for k, v in data.items()):
            raise SystemExit("digits.npz is not this split: run without model names")
        results = json.loads((HERE / "results.json").read_text())
        for name in ALL_MODELS:
            if name in names:
                results["models"][name] = fit_and_export(name, data)
        results["models"] = {n: results["models"][n] for n in ALL_MODELS if n in results["models"]}
        (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")
        return
    np.savez_compressed(HERE / "digits.npz", **data)
    results = {
        "seed": SEED,
        "split": {"test_fraction": TEST_FRACTION, "stratified": True,
                  "n_train": len(data["y_train"]), "n_test": len(data["y_test"]),
                  "input": f"x / {PIXEL_MAX} as float32, shape (N, 1, 8, 8)"},
        "training": {"optimizer": "AdamW", "learning_rate": LEARNING_RATE,
                     "weight_decay": WEIGHT_DECAY, "schedule": "cosine", "epochs": EPOCHS,
                     "batch": BATCH},
        "models": {name: fit_and_export(name, data) for name in ALL_MODELS},
        "versions": {"torch": torch.__version__, "scikit-learn": sklearn.__version__,
                     "numpy": np.__version__, "onnx": onnx.__version__,
                     "onnxruntime": ort.__version__},
    }
    (HERE / "results.json").write_text(json.dumps(results, indent=2) + "\n")


if __name__ == "__main__":
    main(sys.argv[1:])
