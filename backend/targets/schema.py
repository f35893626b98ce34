"""The JSON form of a target description: the field names of the public ``target.proto``.

``target_to_json`` and ``target_from_json`` are inverses: for every target ``t``,
``target_from_json(target_to_json(t)) == t``. Limits are range strings, ``feature_code`` a hex
string (an integer is accepted too), nonlinear / eltwise / pool / ALU types their enum names.
Our extras beside the schema: ``clock_mhz``, ``ddr_bytes_per_cycle`` and ``notes``.
"""

from __future__ import annotations

from xir.backend.targets.description import (
    ALU_TYPES, BANK_TYPES, ELEW_TYPES, FAMILIES, NONLINEAR_TYPES, POOL_TYPES, AluEngine, BankGroup,
    ConvEngine, DwconvEngine, EltwiseEngine, LoadEngine, PadLimit, PoolEngine, SaveEngine, Target,
)
from xir.backend.targets.ranges import RangeSet
from xir.diagnostics import XirError

# -- to JSON ----------------------------------------------------------------------------------


def _nonlinear(types) -> dict:
    return {"nonlinear_type": list(types)}


def _limit(kernel, stride) -> dict:
    return {"kernel_size": str(kernel), "stride": str(stride)}


def _pads(pad: PadLimit) -> dict:
    return {"pad_left": str(pad.left), "pad_right": str(pad.right),
            "pad_top": str(pad.top), "pad_bottom": str(pad.bottom)}


def _banks(engine) -> dict:
    return {"input_bank": list(engine.input_bank), "output_bank": list(engine.output_bank)}


def target_to_json(t: Target) -> dict:
    """``t`` as a JSON-ready dict (see the module docstring)."""
    load = {"channel_parallel": t.load.channel_parallel, "output_bank": list(t.load.output_bank)}
    if t.load.meanvalue_bank is not None:
        load["meanvalue_reduction"] = {"meanvalue_bank": t.load.meanvalue_bank}
    c = t.conv
    conv = {"input_channel_parallel": c.input_channel_parallel,
            "output_channel_parallel": c.output_channel_parallel,
            "pixel_parallel": c.pixel_parallel, **_banks(c),
            "weight_bank": c.weight_bank, "bias_bank": c.bias_bank}
    if c.channel_augmentation is not None:
        conv["channel_augmentation"] = {"channel_num": c.channel_augmentation}
    conv["nonlinear"] = _nonlinear(c.nonlinear)
    conv["conv_limit"] = _limit(c.kernel, c.stride)
    if c.pad is not None:
        conv["pad_limit"] = _pads(c.pad)
    e = t.eltwise
    out = {
        "name": t.name, "type": t.type, "isa_version": t.isa_version,
        "feature_code": f"{t.feature_code:#x}",
        "bank_group": [{"name": g.name, "type": g.type, "base_id": g.base_id, "bank_num": g.bank_num,
                        "bank_width": g.bank_width, "bank_depth": g.bank_depth}
                       for g in t.bank_groups],
        "load_engine": load,
        "save_engine": {"channel_parallel": t.save.channel_parallel,
                        "input_bank": list(t.save.input_bank), "argmax": t.save.argmax},
        "conv_engine": conv,
        "eltwise_engine": {"channel_parallel": e.channel_parallel,
                           "pixel_parallel": e.pixel_parallel, **_banks(e),
                           "nonlinear": _nonlinear(e.nonlinear), "elew_type": list(e.elew_type)},
    }
    if (p := t.pool) is not None:
        pool = {"channel_parallel": p.channel_parallel, "pixel_parallel": p.pixel_parallel,
                **_banks(p), "pool_type": list(p.pool_type), "nonlinear": _nonlinear(p.nonlinear)}
        if p.max_kernel is not None:
            pool["max_limit"] = _limit(p.max_kernel, p.max_stride)
        if p.avg_kernel is not None:
            pool["avg_limit"] = _limit(p.avg_kernel, p.avg_stride)
        out["pool_engine"] = pool
    if (d := t.dwconv) is not None:
        out["dwconv_engine"] = {
            "channel_parallel": d.channel_parallel, "pixel_parallel": d.pixel_parallel,
            **_banks(d), "weight_bank": d.weight_bank, "bias_bank": d.bias_bank,
            "nonlinear": _nonlinear(d.nonlinear), "dwconv_limit": _limit(d.kernel, d.stride)}
    if (a := t.alu) is not None:
        out["alu_engine"] = {
            "channel_parallel": a.channel_parallel, "pixel_parallel": a.pixel_parallel,
            **_banks(a), "weight_bank": a.weight_bank, "bias_bank": a.bias_bank,
            "alu_type": list(a.alu_type), "nonlinear": _nonlinear(a.nonlinear),
            "alu_limit": _limit(a.kernel, a.stride), "pad_limit": _pads(a.pad)}
    out.update(batch=t.batch, clock_mhz=t.clock_mhz, ddr_bytes_per_cycle=t.ddr_bytes_per_cycle)
    if t.ddr_peak_gbytes_per_s is not None:
        out["ddr_peak_gbytes_per_s"] = t.ddr_peak_gbytes_per_s
    out["notes"] = list(t.notes)
    return out


# -- from JSON --------------------------------------------------------------------------------


class _Reader:
    """Reads one JSON object, naming the source and the field path in every error."""

    def __init__(self, data, source: str, path: str = ""):
        self.source, self.path = source, path
        if not isinstance(data, dict):
            self.fail(f"expected an object, got {type(data).__name__}")
        self.data = data

    def fail(self, message: str):
        where = f" field '{self.path}'" if self.path else ""
        raise XirError(f"bad target description in {self.source}:{where} {message}")

    def _at(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def has(self, key: str) -> bool:
        return key in self.data

    def _get(self, key: str, kinds, what: str, default=...):
        if key not in self.data:
            if default is ...:
                _Reader({}, self.source, self._at(key)).fail("is missing")
            return default
        value = self.data[key]
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            _Reader({}, self.source, self._at(key)).fail(f"expected {what}, got {value!r}")
        return value

    def str(self, key: str, default=...) -> str:
        return self._get(key, (str,), "a string", default)

    def int(self, key: str, default=...) -> int:
        value = self._get(key, (int,), "a non-negative integer", default)
        if isinstance(value, int) and value < 0:
            _Reader({}, self.source, self._at(key)).fail(f"expected a non-negative integer, got {value}")
        return value

    def number(self, key: str, default=...) -> float:
        value = self._get(key, (int, float), "a number", default)
        return float(value) if value is not None else None

    def bool(self, key: str, default=...) -> bool:
        return self._get(key, (bool,), "true or false", default)

    def hex_int(self, key: str, bits: int) -> int:
        value = self._get(key, (int, str), "an integer or a hex string")
        number = value
        if isinstance(value, str):
            try:
                number = int(value, 16 if value.lower().startswith("0x") else 10)
            except ValueError:
                number = -1
        if not 0 <= number < 1 << bits:
            _Reader({}, self.source, self._at(key)).fail(
                f"expected a hex string of at most {bits} bits, got {value!r}")
        return number

    def strs(self, key: str, allowed=None, default=...) -> list[str]:
        value = self._get(key, (list,), "a list of strings", default)
        for item in value:
            if not isinstance(item, str) or (allowed is not None and item not in allowed):
                expected = f"one of {', '.join(allowed)}" if allowed else "a string"
                _Reader({}, self.source, self._at(key)).fail(f"expected {expected}, got {item!r}")
        return value

    def obj(self, key: str, optional: bool = False):
        if optional and key not in self.data:
            return None
        return _Reader(self._get(key, (dict,), "an object"), self.source, self._at(key))

    def ranges(self, key: str) -> RangeSet:
        text = self.str(key)
        try:
            return RangeSet.parse(text)
        except XirError as e:
            _Reader({}, self.source, self._at(key)).fail(e.diagnostic.message)

    def nonlinear(self) -> list[str]:
        return self.obj("nonlinear").strs("nonlinear_type", NONLINEAR_TYPES, default=[])


def _pad_limit(r: _Reader) -> PadLimit:
    return PadLimit(r.ranges("pad_left"), r.ranges("pad_right"), r.ranges("pad_top"),
                    r.ranges("pad_bottom"))


def _in_out(r: _Reader) -> dict:
    return {"input_bank": r.strs("input_bank"), "output_bank": r.strs("output_bank")}


def _conv(r: _Reader) -> ConvEngine:
    limit = r.obj("conv_limit")
    augmentation = r.obj("channel_augmentation", optional=True)
    pad = r.obj("pad_limit", optional=True)
    return ConvEngine(
        r.int("input_channel_parallel"), r.int("output_channel_parallel"), r.int("pixel_parallel"),
        **_in_out(r), weight_bank=r.str("weight_bank"), bias_bank=r.str("bias_bank"),
        nonlinear=r.nonlinear(), kernel=limit.ranges("kernel_size"), stride=limit.ranges("stride"),
        channel_augmentation=None if augmentation is None else augmentation.int("channel_num"),
        pad=None if pad is None else _pad_limit(pad))


def _pool(r: _Reader) -> PoolEngine:
    limits = {}
    for kind in ("max", "avg"):
        limit = r.obj(f"{kind}_limit", optional=True)
        if limit is not None:
            limits[f"{kind}_kernel"] = limit.ranges("kernel_size")
            limits[f"{kind}_stride"] = limit.ranges("stride")
    return PoolEngine(r.int("channel_parallel"), r.int("pixel_parallel"), **_in_out(r),
                      pool_type=r.strs("pool_type", POOL_TYPES), nonlinear=r.nonlinear(), **limits)


def _dwconv(r: _Reader) -> DwconvEngine:
    limit = r.obj("dwconv_limit")
    return DwconvEngine(r.int("channel_parallel"), r.int("pixel_parallel"), **_in_out(r),
                        weight_bank=r.str("weight_bank"), bias_bank=r.str("bias_bank"),
                        nonlinear=r.nonlinear(), kernel=limit.ranges("kernel_size"),
                        stride=limit.ranges("stride"))


def _alu(r: _Reader) -> AluEngine:
    limit = r.obj("alu_limit")
    return AluEngine(r.int("channel_parallel"), r.int("pixel_parallel"), **_in_out(r),
                     weight_bank=r.str("weight_bank"), bias_bank=r.str("bias_bank"),
                     alu_type=r.strs("alu_type", ALU_TYPES), nonlinear=r.nonlinear(),
                     kernel=limit.ranges("kernel_size"), stride=limit.ranges("stride"),
                     pad=_pad_limit(r.obj("pad_limit")))


def target_from_json(data, source: str = "target description") -> Target:
    """The :class:`Target` of ``data``; XirError (one line, naming the field) if it is malformed."""
    r = _Reader(data, source)
    family = r.str("type")
    if family not in FAMILIES.values():
        _Reader({}, source, "type").fail(f"unknown DPU family {family!r} "
                                         f"(known: {', '.join(FAMILIES.values())})")
    groups = []
    for i, item in enumerate(r._get("bank_group", (list,), "a list of bank groups")):
        g = _Reader(item, source, f"bank_group[{i}]")
        kind = g.str("type")
        if kind not in BANK_TYPES:
            _Reader({}, source, f"bank_group[{i}].type").fail(f"expected Virtual or Param, got {kind!r}")
        groups.append(BankGroup(g.str("name"), kind, g.int("base_id"), g.int("bank_num"),
                                g.int("bank_width"), g.int("bank_depth")))
    load, save, elt = r.obj("load_engine"), r.obj("save_engine"), r.obj("eltwise_engine")
    mean = load.obj("meanvalue_reduction", optional=True)
    target = Target(
        name=r.str("name"), type=family, isa_version=r.hex_int("isa_version", 8),
        feature_code=r.hex_int("feature_code", 48), bank_groups=groups,
        load=LoadEngine(load.int("channel_parallel"), load.strs("output_bank"),
                        None if mean is None else mean.str("meanvalue_bank")),
        save=SaveEngine(save.int("channel_parallel"), save.strs("input_bank"),
                        save.bool("argmax", False)),
        conv=_conv(r.obj("conv_engine")),
        eltwise=EltwiseEngine(elt.int("channel_parallel"), elt.int("pixel_parallel"), **_in_out(elt),
                              nonlinear=elt.nonlinear(), elew_type=elt.strs("elew_type", ELEW_TYPES)),
        pool=_pool(r.obj("pool_engine")) if r.has("pool_engine") else None,
        dwconv=_dwconv(r.obj("dwconv_engine")) if r.has("dwconv_engine") else None,
        alu=_alu(r.obj("alu_engine")) if r.has("alu_engine") else None,
        batch=r.int("batch", 1) or 1,  # the schema's proto3 default 0 means one
        clock_mhz=r.number("clock_mhz"), ddr_bytes_per_cycle=r.number("ddr_bytes_per_cycle"),
        ddr_peak_gbytes_per_s=r.number("ddr_peak_gbytes_per_s") if r.has("ddr_peak_gbytes_per_s")
        else None,
        notes=r.strs("notes", default=[]),
    )
    _check_banks(target, source)
    return target


def _check_banks(t: Target, source: str) -> None:
    """Every bank an engine names must be a bank group of the target."""
    names = {g.name for g in t.bank_groups}
    engines = {"load_engine": t.load, "save_engine": t.save, "conv_engine": t.conv,
               "eltwise_engine": t.eltwise, "pool_engine": t.pool, "dwconv_engine": t.dwconv,
               "alu_engine": t.alu}
    fields = {"input_bank": "input_bank", "output_bank": "output_bank", "weight_bank": "weight_bank",
              "bias_bank": "bias_bank", "meanvalue_bank": "meanvalue_reduction.meanvalue_bank"}
    for key, engine in engines.items():
        if engine is None:
            continue
        for field, json_field in fields.items():
            value = getattr(engine, field, None)
            for bank in (value,) if isinstance(value, str) else value or ():
                if bank not in names:
                    _Reader({}, source, f"{key}.{json_field}").fail(
                        f"names bank group {bank!r}, which the target does not have "
                        f"(it has {', '.join(sorted(names))})")
