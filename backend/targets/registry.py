"""Finding a target: by name, from an ``arch.json``, or from a fingerprint.

:func:`load_target` is the one entry point every stage and command uses. The known targets are the
generated DPUCZDX8G ISA1 family (:mod:`xir.backend.targets.isa1`) and the JSON files of
``data/``; :func:`known_targets` lists them.
"""

from __future__ import annotations

import difflib
import functools
import json
import os

from xir.backend.targets.description import FAMILIES, Target
from xir.backend.targets.isa1 import ISA_VERSION as ISA1, dpuczdx8g_isa1, isa1_family
from xir.diagnostics import XirError

_PACKAGE = "xir.backend.targets"


@functools.cache
def known_targets() -> tuple[Target, ...]:
    """Every target xir knows, by family and ISA version (the ISA1 family in the order of its table)."""
    from importlib import resources

    data = []
    folder = resources.files(_PACKAGE).joinpath("data")
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if entry.name.endswith(".json"):
            source = f"backend/targets/data/{entry.name}"
            try:
                description = json.loads(entry.read_text(encoding="utf-8"))
            except ValueError as e:
                raise XirError(f"bad target description in {source}: not JSON ({e})") from None
            data.append(Target.from_json(description, source))
    targets = isa1_family() + data
    return tuple(sorted(targets, key=lambda t: (t.type_code, t.isa_version)))  # stable: B512 first


def _short_names(t: Target) -> list[str]:
    """The names ``t`` answers to besides its own: ``B4096`` and ``ISA1_B4096`` for the ISA1
    family, ``ISA0_B4096`` for ISA0, the family alone where it has one target, ``C32B3`` …"""
    rest = t.name[len(t.type) + 1:] if t.name.startswith(t.type + "_") else ""
    _, _, size = rest.partition("_")
    if not size:
        return []
    if t.type == "DPUCZDX8G" and t.isa_version != ISA1:
        return [rest]  # the bare size means the ISA1 configuration
    names = [rest, size]
    return names


@functools.cache
def _aliases() -> dict[str, Target]:
    """Upper-case name -> target, full names first so a short form never shadows one."""
    targets = known_targets()
    table = {t.name.upper(): t for t in targets}
    per_family: dict[str, list[Target]] = {}
    for t in targets:
        per_family.setdefault(t.type, []).append(t)
        for short in _short_names(t):
            table.setdefault(short.upper(), t)
    for family, members in per_family.items():
        if len(members) == 1:
            table.setdefault(family.upper(), members[0])
    return table


def target_by_name(name: str) -> Target:
    """The known target called ``name`` (any case; short forms like ``B4096``)."""
    target = _aliases().get(name.strip().upper())
    if target is not None:
        return target
    spellings = {t.name.upper(): t.name for t in known_targets()}
    for t in known_targets():
        for short in _short_names(t):
            spellings.setdefault(short.upper(), short)
    close = difflib.get_close_matches(name.strip().upper(), list(spellings), n=1, cutoff=0.6)
    hint = f"did you mean '{spellings[close[0]]}'?" if close else "run 'xir targets' for the list"
    raise XirError(f"unknown target '{name}' ({hint})")


def parse_fingerprint(text: str | int) -> int:
    """The integer of a fingerprint written ``0x101000056010407`` (or already an integer)."""
    if isinstance(text, int) and not isinstance(text, bool):
        value = text
    else:
        try:
            value = int(str(text).strip(), 16)
        except ValueError:
            raise XirError(f"bad fingerprint '{text}': expected a hexadecimal number "
                           f"like 0x101000056010407") from None
    if not 0 <= value < 1 << 64:
        raise XirError(f"bad fingerprint '{text}': it must fit in 64 bits")
    return value


def target_by_fingerprint(fingerprint: str | int) -> Target:
    """The target a fingerprint names: decoded for DPUCZDX8G ISA1, an exact match otherwise."""
    value = parse_fingerprint(fingerprint)
    type_code, isa, feature_code = value >> 56, (value >> 48) & 0xFF, value & (1 << 48) - 1
    family = FAMILIES.get(type_code)
    if family is None:
        known = ", ".join(f"{code} {name}" for code, name in FAMILIES.items())
        raise XirError(f"fingerprint {value:#x} is of an unknown DPU family "
                       f"(type code {type_code}; known: {known})")
    if (family, isa) == ("DPUCZDX8G", ISA1):
        try:
            return dpuczdx8g_isa1(feature_code)
        except XirError as e:
            raise XirError(f"fingerprint {value:#x}: {e.diagnostic.message}") from None
    for t in known_targets():
        if t.fingerprint == value:
            return t
    same = [f"{t.name} {t.fingerprint_hex}" for t in known_targets() if t.type == family]
    known = ", ".join(same) if same else "none"
    raise XirError(f"fingerprint {value:#x} is a {family} ISA{isa} with no known description "
                   f"(known {family} targets: {known})")


def load_arch_json(path: str | os.PathLike) -> Target:
    """The target of an ``arch.json``: ``{"target": NAME}`` or ``{"fingerprint": "0x…"}``
    (a full target description, with ``conv_engine`` …, is read as one too)."""
    where = f"cannot read arch.json '{os.fspath(path)}'"
    try:
        with open(path, encoding="utf-8") as f:
            data = json.load(f)
    except OSError as e:
        raise XirError(f"{where}: {e.strerror or e}") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise XirError(f"{where}: not JSON ({e})") from None
    if isinstance(data, dict) and "conv_engine" in data:
        return Target.from_json(data, os.fspath(path))
    keys = [k for k in ("target", "fingerprint") if isinstance(data, dict) and k in data]
    if len(keys) != 1:
        problem = "has both" if len(keys) == 2 else "needs one of"
        raise XirError(f'{where}: {problem} "target" and "fingerprint"')
    value = data[keys[0]]
    if keys[0] == "target":
        if not isinstance(value, str):
            raise XirError(f'{where}: "target" must be a string, got {value!r}')
        return target_by_name(value)
    if not isinstance(value, (str, int)) or isinstance(value, bool):
        raise XirError(f'{where}: "fingerprint" must be a hex string, got {value!r}')
    return target_by_fingerprint(value)


def load_target(spec: str | int | os.PathLike | Target) -> Target:
    """The target ``spec`` names: a :class:`Target` (returned as is), a fingerprint (an integer
    or ``"0x…"``), a path to an ``arch.json`` (a ``.json`` name or an existing file), or a
    target name (any case, short forms like ``B4096``)."""
    if isinstance(spec, Target):
        return spec
    if isinstance(spec, int) and not isinstance(spec, bool):
        return target_by_fingerprint(spec)
    if isinstance(spec, os.PathLike):
        return load_arch_json(spec)
    if not isinstance(spec, str):
        raise XirError(f"cannot load a target from {type(spec).__name__} {spec!r}")
    text = spec.strip()
    if text.lower().startswith("0x"):
        return target_by_fingerprint(text)
    if text.lower().endswith(".json") or os.sep in text or os.path.isfile(text):
        return load_arch_json(text)
    return target_by_name(text)
