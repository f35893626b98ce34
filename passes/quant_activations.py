"""Which graph-dialect activations the quantizer computes in the integer domain, and which it
fuses into the op before them (:class:`.quant_lowering.Lowering` asks these questions).

A graph activation is a quant activation when the DPU computes it (:func:`activation_kind`):
relu, relu6 (clip 0..6), leaky relu (slope 26/256; 0.1 is accepted), hard sigmoid (alpha 1/6,
beta 1/2), hard swish, PReLU. A conv, transposed conv or dense absorbs the activation that is its
result's only user when it is one of :data:`ACCUMULATOR_ACTIVATIONS`, an eltwise add one of
:data:`ELTWISE_ACTIVATIONS`; PReLU never fuses (its slopes are an operand: ``docs/quant.md``).
``x · hard_sigmoid(x)`` written as a mul is a hard swish (:func:`swish_pattern`).
"""

from __future__ import annotations

from xir import types as T

from .dpu_rules import LEAKY_ALPHA, nonlinear_type
from .fusion import sole_user

_QUANT_ACTIVATION = {"relu": "relu", "relu_six": "relu6", "leaky_relu": "leaky_relu",
                     "hsigmoid": "hard_sigmoid", "hswish": "hard_swish", "prelu": "prelu"}
ACCUMULATOR_ACTIVATIONS = ("relu", "relu6", "leaky_relu", "hard_sigmoid", "hard_swish")
ELTWISE_ACTIVATIONS = ("relu", "leaky_relu")


def activation_kind(op) -> str | None:
    """The quant activation a graph op is (None if the DPU does not compute it)."""
    kind = nonlinear_type(op)
    if kind == "leaky_relu" and abs(op.param["alpha"] - LEAKY_ALPHA) >= 2e-3:
        return None  # 0.1 is accepted and computed as 26/256, as the DPU quantizers do
    if kind == "hsigmoid" and not (abs(op.param["alpha"] - 1 / 6) < 1e-6
                                   and abs(op.param["beta"] - 0.5) < 1e-6):
        return None
    return _QUANT_ACTIVATION.get(kind)


def fused_activation(op, allowed):
    """The activation op that ``op`` absorbs (its result's only user, one the engine applies)."""
    user = sole_user(op.results[0])
    if user is None or not is_f32(user.results[0] if user.results else None):
        return None
    kind = activation_kind(user)
    return user if kind in allowed else None


def swish_pattern(value):
    """``(hard_sigmoid, mul)`` if ``value``'s only users are a DPU hard sigmoid of it and a
    ``graph.mul`` of ``value`` by that hard sigmoid (its only user): x · hsigmoid(x), a hard
    swish; else None."""
    users = value.users
    if len(users) != 2 or len(value.uses) != 2:
        return None
    hsig = next((u for u in users if u.name == "graph.hard_sigmoid"), None)
    if hsig is None or activation_kind(hsig) != "hard_sigmoid":
        return None
    mul = sole_user(hsig.results[0])
    if mul is None or mul.name != "graph.mul" or mul not in users or \
            set(map(id, mul.operands)) != {id(value), id(hsig.results[0])}:
        return None
    return (hsig, mul) if is_f32(mul.results[0]) else None


def is_f32(value) -> bool:
    """Whether ``value`` is a float32 tensor."""
    return value is not None and isinstance(value.type, T.TensorType) and \
        value.type.element_type == T.f32
