"""Channel pruning: dependency groups, their importance, zeroing and removing channels, and the
MACs and parameters it is measured in (``docs/prune.md``)."""

from .groups import ChannelGroup, ChannelSlice, Use, find_groups, trace
from .macs import model_macs, model_params, op_macs
from .transform import channel_importance, remove_channels, zero_channels

__all__ = [
    "ChannelGroup", "ChannelSlice", "Use", "find_groups", "trace", "channel_importance",
    "zero_channels", "remove_channels", "model_macs", "model_params", "op_macs",
]
