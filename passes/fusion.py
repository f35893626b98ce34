"""Which graph ops the DPU runs as one instruction: the fusion patterns.

A DPU op is an *anchor* (convolution, depthwise or transposed convolution, fully connected,
pooling, eltwise, or a per-channel affine on its own, run as a depthwise convolution) with what
it absorbs: a constant-zero pad right before it (convolution and pooling), and after it per-channel
affines (batch norms, constant per-channel scales and shifts; after convolutions and affines only,
and only before any activation) followed by one activation its engine applies. Order matters, as on the real DPU: conv → bn → relu is one DPU op; conv → relu → bn
leaves the bn on its own. Every absorbed op is the only user of the value it reads, and the
anchor's value has no other user either, since fusion hides it.

:func:`find_groups` returns the groups; the inspector reports them, and the fuse pass (quant →
dpu) builds its super-ops from the same patterns.
"""

from __future__ import annotations

import attrs

from . import dpu_rules as R

PAD_ABSORBERS = ("conv", "dwconv", "pool")
ANCHOR_KINDS = ("conv", "dwconv", "conv_transpose", "fc", "pool", "eltwise", "affine")
AFFINE_OPS = {"graph.batch_norm", "graph.add", "graph.mul"}


@attrs.frozen
class FusedGroup:
    """One DPU op: its ``anchor`` with the ``leading`` pad and ``following`` batch norm and
    activation it absorbs, and the anchor's verdict checked with the fused pads."""

    anchor: object
    verdict: R.Verdict
    leading: tuple = ()
    following: tuple = ()

    @property
    def members(self) -> tuple:
        """Every op of the group, in program order."""
        return (*self.leading, self.anchor, *self.following)


def sole_user(value):
    """The op that is ``value``'s only user (None if it has none or several)."""
    users = value.users
    if len(users) != 1 or len(value.uses) != 1:
        return None
    return users[0]


def _fusable_pad(op):
    """The zero pad ``op`` reads as its input (its only user), or None."""
    producer = R.producer(op.operands[0])
    if producer is None or producer.name != "graph.pad" or sole_user(producer.results[0]) is not op:
        return None
    p = producer.param
    if p["mode"] != "constant" or p["value"] != 0 or len(p["pads"]) != 8 or any(p["pads"][:2]) \
            or any(p["pads"][4:6]):
        return None  # only the spatial sides of an NCHW tensor fold into a window op
    return producer


def _spatial_pads(pad_op) -> tuple:
    """A 4-D pad's (top, left, bottom, right), as window ops order them."""
    pads = pad_op.param["pads"]
    return pads[2], pads[3], pads[6], pads[7]


def _follower(value, names):
    """The op among ``names`` that is ``value``'s only user, or None."""
    user = sole_user(value)
    return user if user is not None and user.name in names else None


def _reads_feature_map(op, source) -> bool:
    """Whether ``op`` (a batch norm or per-channel affine) transforms ``source``'s value, not its
    constant."""
    if op.name == "graph.batch_norm":
        return op.operands[0] is source.results[0] and all(R.is_constant(v) for v in op.operands[1:])
    return R.channel_constant(op) is source.results[0]


def find_groups(ops, target, verdicts: dict) -> list[FusedGroup]:
    """The fused groups among ``ops`` (a block's ops in order), given each op's own verdict."""
    groups, taken = [], set()
    for op in ops:
        if op in taken:
            continue
        verdict = verdicts.get(op)
        if verdict is None or verdict.kind not in ANCHOR_KINDS:
            continue
        leading = ()
        pad = _fusable_pad(op) if verdict.kind in PAD_ABSORBERS and op.name in R.FUSED_PADDING \
            else None  # (global pooling and reduce_mean have no pads to absorb it into)
        if pad is not None and pad not in taken:
            verdict = R.check(op, target, extra_pads=_spatial_pads(pad))
            leading = (pad,)
        following, last = [], op
        if verdict.kind in (*R.CONV_KINDS, "affine"):
            while (affine := _follower(last.results[0], AFFINE_OPS)) is not None and \
                    verdicts[affine].kind == "affine" and _reads_feature_map(affine, last):
                following.append(affine)
                last = affine
        act = _follower(last.results[0], R.ACTIVATION_OPS)
        if act is not None and verdicts[act].on_dpu and R.nonlinear_type(act) in verdict.nonlinear:
            following.append(act)
        if leading or following:
            groups.append(FusedGroup(op, verdict, leading, tuple(following)))
            taken.update(leading)
            taken.update(following)
    return groups
